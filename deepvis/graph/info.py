"""Static facts about a forward graph: types, static shapes, constants (for graph rewrites).

Shape inference runs on a light copy whose large weights are replaced by typed graph inputs,
so inspecting a CaffeNet-sized model never duplicates its weights. Where it leaves a shape
open, a second pass propagates the values of shape tensors (Shape -> Slice -> Concat ->
Reshape, as exporters flatten), and an input shape given by the caller fixes the input's
dims past the batch first.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16}
_INLINE_LIMIT = 4096  # elements; smaller initializers (shapes, pads, scalars) keep their values


class GraphInfo:
    """Static facts about one forward model, looked up by tensor name."""

    def __init__(self, model: onnx.ModelProto, input_shape=None):
        """`input_shape`: the shape of an actual input; its dims past the batch replace the
        first input's declared ones (the batch stays as declared)."""
        graph = model.graph
        self.initializers = {t.name: t for t in graph.initializer}
        self.input_names = [i.name for i in graph.input if i.name not in self.initializers]
        self.nodes = list(graph.node)
        self.producer = {out: i for i, node in enumerate(self.nodes) for out in node.output if out}
        self.constants = {node.output[0]: node for node in self.nodes
                          if node.op_type == "Constant"}
        self._values = {}
        light = _light_copy(model)
        if input_shape is not None and self.input_names:
            for declared in light.graph.input:
                if declared.name == self.input_names[0]:
                    declared.CopyFrom(with_input_shape(declared, input_shape))
        self.value_infos = _value_infos(_inferred(light))
        if any(o and not _complete(self.value_infos.get(o))
               for node in self.nodes for o in node.output):
            # all facts from one pass: the symbols each pass invents for unknown dims
            # (unk__0, ...) mean equal sizes within that pass only
            self.value_infos = _value_infos(_inferred(light, data_prop=True)) or self.value_infos
        for name, tensor in self.initializers.items():
            self.value_infos[name] = onnx.helper.make_tensor_value_info(
                name, tensor.data_type, list(tensor.dims))

    def has(self, name: str) -> bool:
        return name in self.producer or name in self.initializers or name in self.input_names

    def elem_type(self, name: str) -> int | None:
        info = self.value_infos.get(name)
        return info.type.tensor_type.elem_type if info is not None else None

    def is_float(self, name: str) -> bool:
        elem = self.elem_type(name)
        return elem in (None, TensorProto.UNDEFINED) or elem in FLOAT_TYPES

    def shape(self, name: str) -> tuple | None:
        """Dims as ints (None where symbolic or unknown); None when even the rank is unknown."""
        dims = self.dims(name)
        return None if dims is None else tuple(d if isinstance(d, int) else None for d in dims)

    def dims(self, name: str) -> tuple | None:
        """Dims as ints, symbols (str: equal symbols are equal sizes) or None where unknown;
        None when even the rank is unknown."""
        info = self.value_infos.get(name)
        if info is None or not info.type.tensor_type.HasField("shape"):
            return None
        return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                     for d in info.type.tensor_type.shape.dim)

    def value(self, name: str):
        """The array of a constant tensor (initializer or Constant node), else None."""
        if name not in self._values:
            if name in self.initializers:
                tensor = self.initializers[name]
                if tensor.data_location == TensorProto.EXTERNAL:  # a weight, not a setting
                    return None
                self._values[name] = numpy_helper.to_array(tensor)
            elif name in self.constants:
                value = onnx.helper.get_attribute_value(self.constants[name].attribute[0])
                self._values[name] = (numpy_helper.to_array(value)
                                      if isinstance(value, onnx.TensorProto) else np.array(value))
            else:
                return None
        return self._values[name]


# Ops ONNX defines as functions without a shape inference of their own; their output has
# the shape and type of their first input.
_SHAPE_PRESERVING_FUNCTIONS = {"GroupNormalization"}


def with_input_shape(value_info: onnx.ValueInfoProto, shape) -> onnx.ValueInfoProto:
    """A copy of an input's declaration with `shape`'s dims past the first (the batch stays
    as declared, so a graph built from it still runs any batch)."""
    out = onnx.ValueInfoProto()
    out.CopyFrom(value_info)
    batch = onnx.TensorShapeProto.Dimension(dim_param="N")
    if len(value_info.type.tensor_type.shape.dim):
        batch.CopyFrom(value_info.type.tensor_type.shape.dim[0])
    out.type.tensor_type.ClearField("shape")
    dims = out.type.tensor_type.shape.dim
    dims.add().CopyFrom(batch)
    for d in shape[1:]:
        dims.add().dim_value = int(d)
    return out


def _value_infos(inferred: onnx.ModelProto) -> dict:
    return {v.name: v for v in (list(inferred.graph.value_info) + list(inferred.graph.input)
                                + list(inferred.graph.output))}


def _complete(info) -> bool:
    """Whether a tensor's dims past the first are all known numbers."""
    if info is None or not info.type.tensor_type.HasField("shape"):
        return False
    return all(d.HasField("dim_value") for d in list(info.type.tensor_type.shape.dim)[1:])


def _inferred(light: onnx.ModelProto, data_prop: bool = False) -> onnx.ModelProto:
    """Shape inference, carried across the ops in _SHAPE_PRESERVING_FUNCTIONS (ONNX stops at
    them, losing every shape downstream). With `data_prop`, the values of small integer
    tensors are propagated too (slower, hence only where the first pass left shapes open);
    if that pass fails, the first pass's facts stand."""
    def infer():
        try:
            return onnx.shape_inference.infer_shapes(light, strict_mode=False,
                                                     data_prop=data_prop)
        except onnx.shape_inference.InferenceError:
            if not data_prop:
                raise
            return onnx.ModelProto()

    inferred = infer()
    for _ in range(sum(n.op_type in _SHAPE_PRESERVING_FUNCTIONS for n in light.graph.node)):
        known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.input)}
        added = False
        for node in light.graph.node:
            out, source = node.output[0], known.get(node.input[0]) if node.input else None
            if (node.op_type in _SHAPE_PRESERVING_FUNCTIONS and out not in known
                    and source is not None):
                info = light.graph.value_info.add()
                info.CopyFrom(source)
                info.name = out
                added = True
        if not added:
            break
        inferred = infer()
    return inferred


def _light_copy(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with big initializers turned into typed inputs (values dropped, shapes kept)."""
    graph = onnx.GraphProto(name=model.graph.name)
    graph.node.extend(model.graph.node)
    graph.input.extend(model.graph.input)
    graph.output.extend(model.graph.output)
    graph.value_info.extend(model.graph.value_info)
    declared = {i.name for i in model.graph.input}
    for tensor in model.graph.initializer:
        count = 1
        for d in tensor.dims:
            count *= d
        if count <= _INLINE_LIMIT and tensor.data_location != TensorProto.EXTERNAL:
            graph.initializer.append(tensor)
        elif tensor.name not in declared:
            graph.input.append(onnx.helper.make_tensor_value_info(
                tensor.name, tensor.data_type, list(tensor.dims)))
    light = onnx.ModelProto(ir_version=model.ir_version)
    light.opset_import.extend(model.opset_import)
    light.graph.CopyFrom(graph)
    return light
