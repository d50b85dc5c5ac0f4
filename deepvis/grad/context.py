"""The emitting side of a gradient rule: new nodes, constants and shape facts in one object.

Rules see only this context, so they stay small functions of (context, node, output grads).
"""
from __future__ import annotations

import numpy as np
import onnx

from ..errors import UnsupportedError
from ..graph.builder import GraphBuilder
from ..graph.info import GraphInfo


class GradContext:
    def __init__(self, builder: GraphBuilder, info: GraphInfo, mode: str, dtype: np.dtype,
                 wanted: set[str]):
        self.builder = builder
        self.info = info
        self.mode = mode
        self.dtype = np.dtype(dtype)
        self.elem_type = onnx.helper.np_dtype_to_tensor_dtype(self.dtype)
        self._wanted = wanted  # tensors on a differentiable path from the input to the seed
        self._shape_nodes: dict[str, str] = {}
        self.node: onnx.NodeProto | None = None  # the forward node whose rule is running
        self.spread_parts: set[str] = set()  # see `spread`

    # -- emitting ------------------------------------------------------------
    def emit(self, op_type: str, inputs, outputs=None, **attrs):
        """Append a backward node named after the forward node it differentiates."""
        label = self.node.name or self.node.output[0]
        return self.builder.node(op_type, inputs, outputs, name=f"grad/{label}/{op_type}", **attrs)

    def fconst(self, value) -> str:
        """A float constant in the graph's float type."""
        return self.builder.const(value, dtype=self.dtype)

    def iconst(self, value) -> str:
        return self.builder.const(value, dtype=np.int64)

    def masked(self, dy: str, condition: str) -> str:
        """dy where `condition` holds, else 0, as Caffe writes it: dy times the 0/1 mask.
        (onnxruntime's broadcasting Where is about 5x slower than Cast and Mul.)"""
        return self.emit("Mul", [dy, self.emit("Cast", [condition], to=self.elem_type)])

    def spread(self, grad: str) -> str:
        """A gradient part that broadcasts to its tensor's shape (a pooled dy), left for the
        builder to expand: where the tensor has other parts, their Sum broadcasts it, with no
        pass over the full shape of its own (EfficientNet's squeeze-excitation pools)."""
        self.spread_parts.add(grad)
        return grad

    def shape_of(self, name: str) -> str:
        """A runtime Shape of a forward tensor, emitted once per tensor."""
        if name not in self._shape_nodes:
            self._shape_nodes[name] = self.builder.node("Shape", [name], name=f"grad/shape/{name}")
        return self._shape_nodes[name]

    def zeros_flat_like(self, name: str) -> str:
        """A 1-D zero vector with as many elements as `name` (any batch size)."""
        zeros = self.emit("ConstantOfShape", [self.shape_of(name)],
                          value=onnx.numpy_helper.from_array(np.zeros(1, self.dtype)))
        return self.emit("Reshape", [zeros, self.iconst([-1])])

    # -- facts ---------------------------------------------------------------
    def needs_grad(self, name: str) -> bool:
        return name in self._wanted

    def shape(self, name: str) -> tuple | None:
        return self.info.shape(name)

    def dims(self, name: str) -> tuple | None:
        """Dims with their symbols (equal symbols are equal sizes); see GraphInfo.dims."""
        return self.info.dims(name)

    def static_shape(self, name: str, skip_batch: bool = True) -> tuple:
        """Known dims (the batch dim may stay None); raises when a rule needs an unknown one."""
        return self._known(name, 1 if skip_batch else 0)

    def spatial_size(self, name: str) -> list[int]:
        """The known sizes past batch and channels, all a window op's geometry needs: the
        channels may stay unknown (behind a channel shuffle's Reshape to a computed shape)."""
        return list(self._known(name, 2)[2:])

    def _known(self, name: str, first: int) -> tuple:
        shape = self.info.shape(name)
        if shape is None or any(d is None for d in shape[first:]):
            raise self.unsupported(f"needs the static shape of {name!r}, which shape inference "
                                   "could not determine")
        return shape

    def value(self, name: str):
        return self.info.value(name) if name else None

    def attr(self, key: str, default=None):
        for a in self.node.attribute:
            if a.name == key:
                value = onnx.helper.get_attribute_value(a)
                return value.decode() if isinstance(value, bytes) else value
        return default

    def unsupported(self, why: str) -> UnsupportedError:
        return UnsupportedError(f"{self.node.op_type} node {self.node.name!r}: {why}")
