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
            if target.size and int(target[0]) == batch:
                if _allowzero(node) and -1 in target[1:]:
                    return model, f"Reshape {node.name or node.output[0]!r} spells out the " \
                                  "batch with allowzero"
                reshapes.append(node)
        elif node.op_type in _SHAPE_OPS and len(node.input) > _SHAPE_OPS[node.op_type]:
            target = constants.get(node.input[_SHAPE_OPS[node.op_type]])
            if target is not None and node.op_type != "Tile" and target.size \
                    and int(target[0]) == batch and batch != 1:
                return model, f"{node.op_type} {node.name or node.output[0]!r} spells out " \
                              f"the batch of {batch}"
    for node in reshapes:
        target = np.array(constants[node.input[1]], np.int64)
        # copy dimension 0 from the input (the batch); with allowzero, where 0 means 0,
        # let it be inferred instead
        target[0] = -1 if _allowzero(node) else 0
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


def open_shapes(model: onnx.ModelProto, data_prop: bool = False) -> tuple[list, dict]:
    """(float tensors computed from the input whose dims past the batch shape inference
    leaves open, the value_info it found by name)."""
    from .info import _light_copy

    inferred = onnx.shape_inference.infer_shapes(_light_copy(model), strict_mode=False,
                                                 data_prop=data_prop)
    infos = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    missing = []
    for name in _downstream_of_input(model) - {graph_input(model).name}:
        info = infos.get(name)
        if info is not None and info.type.tensor_type.elem_type not in (0, _FLOAT):
            continue
        dims = info.type.tensor_type.shape.dim if info is not None else []
        if info is None or not info.type.tensor_type.HasField("shape") or \
                any(not d.HasField("dim_value") for d in list(dims)[1:]):
            missing.append(name)
    return missing, infos


_FLOAT = onnx.TensorProto.FLOAT


def annotate_shapes(model: onnx.ModelProto, backend: str) -> int:
    """Record the shapes that shape inference cannot work out (a Reshape to a computed shape,
    as group norm exports, a Resize to computed sizes) as value_info, measured by one run at
    batch 2, so that gradient rules that need static shapes (Resize) find them. Returns how
    many were added; a graph whose every float tensor is already known is not run."""
    floats = _FLOAT
    missing, _ = open_shapes(model)      # what the gradient builder's first pass misses
    if not missing:
        return 0
    still, infos = open_shapes(model, data_prop=True)   # through Shape -> Reshape
    known = {v.name for v in model.graph.value_info}
    added = 0
    symbol = input_dims(model)[0]
    for name in set(missing) - set(still):
        dims = infos[name].type.tensor_type.shape.dim
        if not isinstance(symbol, str) or not dims or dims[0].dim_param != symbol:
            still.append(name)      # a first dim that is not the batch: measure it instead
        elif name not in known:
            model.graph.value_info.append(infos[name])
            added += 1
    missing = [name for name in missing if name in still]
    if not missing:
        return added
    from ..exec import make_executor
    from .load import with_outputs

    dims = input_dims(model)
    batch = 2 if not isinstance(dims[0], int) else dims[0]
    try:
        out = make_executor(with_outputs(model, missing), backend).run(
            {graph_input(model).name: np.zeros([batch, *dims[1:]], np.float32)}, missing)
    except Exception:  # a graph that cannot run at this batch: rules will say what they miss
        return added
    for name, value in out.items():
        symbolic = not isinstance(dims[0], int)
        if name in known or value.dtype != np.float32 or \
                (symbolic and (not value.ndim or value.shape[0] != batch)):
            continue    # only shapes that follow the batch are facts about the graph
        shape = [dims[0] if (i == 0 and symbolic) else d for i, d in enumerate(value.shape)]
        model.graph.value_info.append(onnx.helper.make_tensor_value_info(name, floats, shape))
        added += 1
    return added
