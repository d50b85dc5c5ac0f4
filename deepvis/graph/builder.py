"""A small, explicit helper for emitting ONNX graphs.

Every converter (Caffe import, EfficientNet-Lite, gradient graphs) builds its
graph through this class, so names stay unique, constants are folded into
initializers once, and every model gets the same opset and metadata layout.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # >= 16 for ScatterElements(reduction="add"), >= 13 for Softmax axis semantics

_DTYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64,
           np.dtype(np.float64): TensorProto.DOUBLE, np.dtype(np.bool_): TensorProto.BOOL,
           np.dtype(np.int32): TensorProto.INT32}


class GraphBuilder:
    """Accumulates nodes, initializers and value infos; `build()` returns a checked ModelProto."""

    def __init__(self, name: str):
        self.name = name
        self.nodes: list[onnx.NodeProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()
        self._const_cache: dict[tuple, str] = {}

    # -- names -------------------------------------------------------------
    def unique(self, base: str) -> str:
        """Return `base` if unused, else `base_1`, `base_2`, ... (and reserve it)."""
        name, i = base, 0
        while name in self._names:
            i += 1
            name = f"{base}_{i}"
        self._names.add(name)
        return name

    def reserve(self, name: str) -> str:
        if name in self._names:
            raise ValueError(f"tensor name {name!r} is already used in graph {self.name!r}")
        self._names.add(name)
        return name

    # -- graph interface -----------------------------------------------------
    def input(self, name: str, shape, dtype=np.float32) -> str:
        self.reserve(name)
        self.inputs.append(helper.make_tensor_value_info(name, _DTYPES[np.dtype(dtype)], list(shape)))
        return name

    def output(self, name: str, dtype=np.float32, shape=None) -> str:
        self.outputs.append(helper.make_tensor_value_info(name, _DTYPES[np.dtype(dtype)], shape))
        return name

    def initializer(self, array: np.ndarray, name: str) -> str:
        """Add a weight tensor under a readable, unique name."""
        name = self.unique(name)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def const(self, value, dtype=np.float32) -> str:
        """A small constant (shape, scalar, axis list), shared when repeated."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._const_cache:
            self._const_cache[key] = self.initializer(array, "const")
        return self._const_cache[key]

    def node(self, op_type: str, inputs, outputs=None, name: str | None = None, **attrs):
        """Append one node. `outputs` may be names, a count, or None (one fresh output).

        Returns the single output name, or the list of names when there are several.
        """
        base = name or op_type.lower()
        if outputs is None:
            outputs = [self.unique(base)]
        elif isinstance(outputs, int):
            outputs = [self.unique(f"{base}_out{i}") for i in range(outputs)]
        else:
            outputs = [o if o == "" else self._claim(o) for o in outputs]
        node_name = self.unique(f"node/{name or outputs[0]}")
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs, name=node_name, **attrs))
        return outputs[0] if len(outputs) == 1 else outputs

    def _claim(self, name: str) -> str:
        self._names.add(name)
        return name

    def build(self, metadata: dict[str, str] | None = None, check: bool = True) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="deepvis")
        model.ir_version = 8  # readable by every onnxruntime >= 1.14
        _fill_output_types(model)
        for key, value in (metadata or {}).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        if check:
            onnx.checker.check_model(model)
        return model


def _fill_output_types(model: onnx.ModelProto) -> None:
    """Give shapeless graph outputs the type ONNX shape inference finds for them."""
    if all(o.type.tensor_type.HasField("shape") for o in model.graph.output):
        return
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for out in model.graph.output:
        if not out.type.tensor_type.HasField("shape") and out.name in known:
            out.type.CopyFrom(known[out.name].type)
