"""Load an ONNX file and make its visible blobs explicit.

deepvis's own converters record the visible blobs in metadata. For any other
ONNX CNN, every float tensor computed from the input is a blob, named as the
exporter named it, so users can address any layer of their own models.
"""
from __future__ import annotations

import pathlib

import onnx
from onnx import TensorProto

from ..errors import FormatError
from . import meta


def load_onnx(path) -> onnx.ModelProto:
    path = pathlib.Path(path)
    try:
        model = onnx.load(str(path))
    except FileNotFoundError:
        raise FormatError(f"model file {path} does not exist") from None
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... on a bad file
        raise FormatError(f"{path} is not a readable ONNX model: {exc}") from exc
    from .check import check_model
    check_model(model, path)
    return model


def graph_input(model: onnx.ModelProto) -> onnx.ValueInfoProto:
    """The network input: the first graph input that is not an initializer."""
    weights = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if not inputs:
        raise FormatError("the ONNX graph has no input")
    return inputs[0]


def visible_blobs(model: onnx.ModelProto) -> list[str]:
    """Recorded blob names, or every float tensor downstream of the input, in graph order."""
    recorded = meta.read(model)["blobs"]
    if recorded:
        return recorded
    # Shape inference on a copy without the large weights: on VGG-sized models inferring on
    # the full graph serialises and copies every weight, seconds for nothing.
    from .info import _light_copy
    inferred = onnx.shape_inference.infer_shapes(_light_copy(model), strict_mode=False)
    types = {v.name: v.type.tensor_type.elem_type
             for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    source = graph_input(model).name
    reached, blobs = {source}, [source]
    for node in model.graph.node:
        if not any(i in reached for i in node.input):
            continue
        for out in node.output:
            if out and out not in reached:
                reached.add(out)
                if types.get(out, TensorProto.FLOAT) == TensorProto.FLOAT:
                    blobs.append(out)
    return blobs


def static_shapes(model: onnx.ModelProto, names, batch: int = 1) -> dict | None:
    """Shapes of `names` by ONNX shape inference, the batch symbol taken as `batch`; None
    unless every shape comes out fully known (then a forward pass must measure them)."""
    from .info import _light_copy
    inferred = onnx.shape_inference.infer_shapes(_light_copy(model), strict_mode=False)
    infos = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)
             + list(inferred.graph.input)}
    first = graph_input(model).type.tensor_type.shape.dim
    batch_symbol = first[0].dim_param if first and first[0].dim_param else None
    shapes = {}
    for name in names:
        info = infos.get(name)
        if info is None or not info.type.tensor_type.HasField("shape"):
            return None
        dims = []
        for i, d in enumerate(info.type.tensor_type.shape.dim):
            if d.HasField("dim_value"):
                dims.append(d.dim_value)
            elif i == 0 and batch_symbol and d.dim_param == batch_symbol:
                dims.append(batch)
            else:
                return None
            if i == 0 and batch_symbol and not d.dim_param:
                return None   # a blob whose first dim is not the batch: let a run tell
        shapes[name] = tuple(dims)
    return shapes


def with_outputs(model: onnx.ModelProto, names) -> onnx.ModelProto:
    """A copy whose graph outputs are exactly `names` (types left for the runtime to infer)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    known = {o.name: o for o in model.graph.output}
    del out.graph.output[:]
    for name in names:
        if name in known:
            out.graph.output.append(known[name])
        else:
            out.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    return out
