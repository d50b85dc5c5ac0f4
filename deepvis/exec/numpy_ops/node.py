"""What a kernel factory sees of one ONNX node: decoded once, at executor construction."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

from deepvis.errors import UnsupportedError


@dataclass(frozen=True)
class NodeSpec:
    name: str
    op_type: str
    attrs: dict = field(default_factory=dict)
    outputs: tuple = ("",)
    opset: int = 17

    @property
    def n_outputs(self) -> int:
        """Declared outputs, absent optional ones ('') included (Split counts them)."""
        return len(self.outputs)

    def has_output(self, index: int) -> bool:
        return index < len(self.outputs) and self.outputs[index] != ""

    def attr(self, key: str, default=None):
        return self.attrs.get(key, default)

    def axes(self, given):
        """Axes from the input (newer opsets), else from the attribute (older); None if neither."""
        if given is not None:
            return [int(a) for a in np.ravel(given)]
        value = self.attrs.get("axes")
        return None if value is None else list(value)

    def unsupported(self, what: str) -> UnsupportedError:
        return UnsupportedError(f"ONNX node {self.name!r} ({self.op_type}): {what} is not "
                                "supported by the NumPy executor")


def decode_attributes(node: onnx.NodeProto) -> dict:
    """Attribute values as plain Python (str, int, float, lists) or ndarrays for tensors."""
    attrs = {}
    for proto in node.attribute:
        if proto.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            raise UnsupportedError(f"ONNX node {node.name!r} ({node.op_type}): subgraph "
                                   f"attribute {proto.name!r} is not supported by the NumPy "
                                   "executor")
        if proto.type == onnx.AttributeProto.TENSOR:
            attrs[proto.name] = numpy_helper.to_array(proto.t)
            continue
        value = helper.get_attribute_value(proto)
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        elif isinstance(value, list):
            value = [v.decode("utf-8") if isinstance(v, bytes) else v for v in value]
        attrs[proto.name] = value
    return attrs


def numpy_dtype(elem_type: int) -> np.dtype:
    """NumPy dtype of an ONNX TensorProto element type (numeric and bool types only)."""
    if elem_type in (onnx.TensorProto.STRING, onnx.TensorProto.UNDEFINED):
        raise UnsupportedError(f"ONNX element type {onnx.TensorProto.DataType.Name(elem_type)} "
                               "is not supported by the NumPy executor")
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))
