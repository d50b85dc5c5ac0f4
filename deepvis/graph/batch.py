"""Input dimensions a graph was exported with, made to fit any batch and a chosen image size.

`torch.onnx.export` fixes the batch at the example's size (1) unless told otherwise, so most
user exports take one image at a time. Convolutions, pooling, norms and elementwise ops do not
care about the batch, and neither do Flatten or a Reshape that keeps dimension 0 (0 or -1
there); only a Reshape (or Expand, Tile, ConstantOfShape) whose constant target spells out the
batch ties a graph to it. `any_batch` renames the batch to a symbol and rewrites such Reshapes
to copy dimension 0 from their input, which is exactly what they did at the exported batch.
Where a hard-coded batch remains elsewhere it leaves the graph alone and says so; the model
then runs images one at a time (deepvis.model).

Graphs with a symbolic height and width (dynamic axes) get the size a user chose, fixed in
the graph, so shapes, receptive fields and gradient graphs are all static.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import DeepvisError
from .load import graph_input

BATCH = "N"
_SHAPE_OPS = {"Expand": 1, "Tile": 1, "ConstantOfShape": 0}  # op -> shape input index


def input_dims(model: onnx.ModelProto) -> list:
    """The network input's dims: ints where fixed, the symbol's name (or None) where not."""
    dims = graph_input(model).type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims]


def fixed_batch(model: onnx.ModelProto) -> int | None:
    dims = input_dims(model)
    return dims[0] if dims and isinstance(dims[0], int) and dims[0] > 0 else None


def any_batch(model: onnx.ModelProto) -> tuple[onnx.ModelProto, str | None]:
    """(model with a symbolic batch, None), or (model unchanged, why not) for a fixed batch
    that is spelled out in an op other than Reshape. Edits `model` in place."""
    batch = fixed_batch(model)
    if batch is None:
        return model, None
    graph = model.graph
    constants = _constants(graph)
    from_input = _downstream_of_input(model)
    reshapes = []
    for node in graph.node:
        if node.op_type == "Reshape" and node.input[0] in from_input:
            target = constants.get(node.input[1])
            if target is None:
                if not _shape_is_computed(node.input[1], graph):
                    return model, f"Reshape {node.name or node.output[0]!r} takes its shape " \
                                  "from a graph input"
                continue  # computed from Shape(): follows the batch by itself
            if target.size and int(target[0]) == batch and not _allowzero(node):
                reshapes.append(node)
        elif node.op_type in _SHAPE_OPS and len(node.input) > _SHAPE_OPS[node.op_type]:
            target = constants.get(node.input[_SHAPE_OPS[node.op_type]])
            if target is not None and node.op_type != "Tile" and target.size \
                    and int(target[0]) == batch and batch != 1:
                return model, f"{node.op_type} {node.name or node.output[0]!r} spells out " \
                              f"the batch of {batch}"
    for node in reshapes:
        target = np.array(constants[node.input[1]], np.int64)
        target[0] = 0   # copy dimension 0 from the input: the batch
        name = f"{node.input[1]}.any_batch.{node.output[0]}"
        graph.initializer.append(numpy_helper.from_array(target, name))
        node.input[1] = name
    _rename_dim0(graph_input(model), batch)
    for output in graph.output:
        _rename_dim0(output, batch)
    del graph.value_info[:]   # recorded intermediate shapes name the old batch
    return model, None


def with_image_size(model: onnx.ModelProto, size) -> onnx.ModelProto:
    """Fix a symbolic H and W of the input to `size` (H, W); fixed dims must already match."""
    dims = graph_input(model).type.tensor_type.shape.dim
    if len(dims) != 4:
        raise DeepvisError(f"the network input must be 4-D (N, C, H, W), got {len(dims)}-D")
    for dim, value, what in zip(list(dims)[2:], size, ("height", "width")):
        if dim.HasField("dim_value") and dim.dim_value > 0:
            if dim.dim_value != int(value):
                raise DeepvisError(f"the network's input {what} is fixed at {dim.dim_value}; "
                                   f"it cannot take {int(value)} (deepvis_input_size)")
            continue
        dim.Clear()
        dim.dim_value = int(value)
    del model.graph.value_info[:]
    return model


def _rename_dim0(value_info, batch: int) -> None:
    shape = value_info.type.tensor_type.shape
    if shape.dim and shape.dim[0].HasField("dim_value") and shape.dim[0].dim_value == batch:
        shape.dim[0].Clear()
        shape.dim[0].dim_param = BATCH


def _allowzero(node) -> bool:
    return any(a.name == "allowzero" and a.i for a in node.attribute)


def _constants(graph) -> dict:
    out = {t.name: numpy_helper.to_array(t) for t in graph.initializer
           if t.data_type == onnx.TensorProto.INT64 and len(t.dims) == 1}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute:
            value = onnx.helper.get_attribute_value(node.attribute[0])
            if isinstance(value, onnx.TensorProto) and value.data_type == onnx.TensorProto.INT64:
                out[node.output[0]] = numpy_helper.to_array(value).reshape(-1)
    return out


def _shape_is_computed(name: str, graph) -> bool:
    return any(name in node.output for node in graph.node)


def _downstream_of_input(model) -> set:
    reached = {graph_input(model).name}
    for node in model.graph.node:
        if any(i in reached for i in node.input):
            reached.update(o for o in node.output if o)
    return reached
