"""Read Caffe files into ``Net`` records, normalising what Caffe's upgrader normalises.

V1 ``layers`` (enum types, possibly wrapping V0 layers) and V2 ``layer`` become the
same ``Layer`` records; the three deploy input forms become ``Net.inputs``; a
prototxt is filtered for the TEST phase as pycaffe's ``Net(..., caffe.TEST)`` does.
A .caffemodel is not filtered: Caffe copies weights from every source layer by name.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepvis.caffe import schema
from deepvis.caffe.caffemodel import blob_array, decode_caffemodel, read_binaryproto
from deepvis.caffe.net import Layer, Net
from deepvis.caffe.prototxt import parse_text
from deepvis.errors import FormatError

__all__ = ["read_prototxt", "parse_prototxt_text", "read_caffemodel", "read_binaryproto"]

# V0 field -> (V2 param message, V2 field) per V0 type; V0 scalars that became repeated
# (convolution pad/kernel/stride) are wrapped in lists.
_V0_PARAMS = {
    "conv": ("convolution_param", {
        "num_output": "num_output", "biasterm": "bias_term", "weight_filler": "weight_filler",
        "bias_filler": "bias_filler", "pad": "pad", "kernelsize": "kernel_size",
        "group": "group", "stride": "stride"}),
    "innerproduct": ("inner_product_param", {
        "num_output": "num_output", "biasterm": "bias_term", "weight_filler": "weight_filler",
        "bias_filler": "bias_filler"}),
    "pool": ("pooling_param", {
        "pool": "pool", "pad": "pad", "kernelsize": "kernel_size", "stride": "stride"}),
    "lrn": ("lrn_param", {"local_size": "local_size", "alpha": "alpha", "beta": "beta",
                          "k": "k"}),
    "dropout": ("dropout_param", {"dropout_ratio": "dropout_ratio"}),
    "concat": ("concat_param", {"concat_dim": "concat_dim"}),
}


def read_prototxt(path) -> Net:
    """A deploy/train .prototxt as a TEST-phase ``Net``."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        raise FormatError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FormatError(f"{path}: not a text prototxt (byte {error.start} is not UTF-8; "
                          f"a binary .caffemodel?)") from None
    return parse_prototxt_text(text, str(path))


def parse_prototxt_text(text: str, source: str = "<string>") -> Net:
    """Prototxt text as a TEST-phase ``Net``; ``source`` names it in error messages."""
    return _net(parse_text(text, "NetParameter", source), source, filter_phase=True)


def read_caffemodel(path) -> Net:
    """Every layer of a binary .caffemodel, with its blobs as read-only float32 arrays."""
    return _net(decode_caffemodel(path), str(path), filter_phase=False)


@dataclass(frozen=True)
class _State:
    """The NetState a deploy net is built with: TEST, plus the file's own level/stages."""
    level: int
    stages: frozenset


def _net(msg: dict, source: str, filter_phase: bool) -> Net:
    if "layer" in msg and "layers" in msg:
        raise FormatError(f"{source}: uses both 'layer' (V2) and 'layers' (V1) fields")
    if "layer" not in msg and "layers" not in msg:
        raise FormatError(f"{source}: defines no layers; not a Caffe network")
    if "layer" in msg:
        layers = [_v2_layer(raw, source) for raw in msg["layer"]]
    else:
        layers = _fold_v0_padding([_v1_layer(raw, source) for raw in msg["layers"]], source)
    state = msg.get("state", {})
    state = _State(state.get("level", 0), frozenset(state.get("stage", [])))
    if filter_phase:
        layers = [layer for layer in layers if _included(layer, state, source)]
    inputs = _legacy_inputs(msg, source)
    kept = []
    for layer in layers:
        if layer.type == "Input":
            inputs.extend(_input_layer_shapes(layer, source))
        else:
            kept.append(layer)
    return Net(name=msg.get("name", ""), inputs=inputs, layers=kept,
               force_backward=msg.get("force_backward", False), source=source)


def _v2_layer(raw: dict, source: str) -> Layer:
    return _layer(raw, raw.get("type", ""), source)


def _v1_layer(raw: dict, source: str) -> Layer:
    if "layer" in raw:
        return _v0_layer(raw, source)
    return _layer(raw, schema.V1_LAYER_TYPES[raw.get("type", "NONE")], source)


def _layer(raw: dict, type_: str, source: str) -> Layer:
    name = raw.get("name", "")
    params = {key: _plain(value) for key, value in raw.items() if schema.is_layer_param(key)}
    _upgrade_concat_dim(params, name, source)
    return Layer(name=name, type=type_, bottoms=list(raw.get("bottom", [])),
                 tops=list(raw.get("top", [])), params=params,
                 blobs=_blobs(raw.get("blobs", []), name, source),
                 include=_plain(raw.get("include", [])), exclude=_plain(raw.get("exclude", [])))


def _v0_layer(raw: dict, source: str) -> Layer:
    """A pre-2014 layer (V1 wrapping V0): type string and flat settings moved into params."""
    v0 = raw["layer"]
    name, v0_type = v0.get("name", ""), v0.get("type", "")
    if v0_type == "padding":
        type_ = "padding"          # removed again by _fold_v0_padding
        params = {"padding": {"pad": v0.get("pad", 0)}}
    elif v0_type in schema.V0_LAYER_TYPES:
        type_ = schema.V0_LAYER_TYPES[v0_type]
        params = {}
        if v0_type in _V0_PARAMS:
            key, renames = _V0_PARAMS[v0_type]
            params[key] = {new: _v0_value(key, new, _plain(v0[old]))
                           for old, new in renames.items() if old in v0}
            _upgrade_concat_dim(params, name, source)
    else:
        raise FormatError(f"{source}: layer '{name}' has unknown V0 type '{v0_type}'")
    return Layer(name=name, type=type_, bottoms=list(raw.get("bottom", [])),
                 tops=list(raw.get("top", [])), params=params,
                 blobs=_blobs(v0.get("blobs", []), name, source),
                 include=_plain(raw.get("include", [])), exclude=_plain(raw.get("exclude", [])))


def _v0_value(param_key: str, field_name: str, value):
    message = schema.field("LayerParameter", param_key).type
    return [value] if schema.field(message, field_name).repeated else value


def _fold_v0_padding(layers: list[Layer], source: str) -> list[Layer]:
    """Caffe's V0 upgrade: a 'padding' layer becomes the pad of the conv/pool it feeds."""
    pads, kept = {}, []
    for layer in layers:
        if layer.type == "padding":
            if len(layer.bottoms) != 1 or len(layer.tops) != 1:
                raise FormatError(f"{source}: padding layer '{layer.name}' needs one bottom "
                                  f"and one top")
            pads[layer.tops[0]] = (layer.bottoms[0], layer.params["padding"]["pad"])
            continue
        for i, bottom in enumerate(layer.bottoms):
            if bottom not in pads:
                continue
            key = {"Convolution": "convolution_param", "Pooling": "pooling_param"}.get(layer.type)
            if key is None:
                raise FormatError(f"{source}: padding feeds layer '{layer.name}' of type "
                                  f"{layer.type}; only Convolution and Pooling take padding")
            layer.bottoms[i], pad = pads[bottom]
            layer.params.setdefault(key, {})["pad"] = [pad] if key == "convolution_param" else pad
        kept.append(layer)
    return kept


def _upgrade_concat_dim(params: dict, name: str, source: str) -> None:
    concat = params.get("concat_param")
    if concat is None or "concat_dim" not in concat:
        return
    if "axis" in concat:
        raise FormatError(f"{source}: layer '{name}' sets both concat_dim and axis")
    concat["axis"] = concat.pop("concat_dim")


def _blobs(raw_blobs: list[dict], name: str, source: str) -> list[np.ndarray]:
    return [blob_array(blob, f"{source}: layer '{name}' blob {i}")
            for i, blob in enumerate(raw_blobs)]


def _plain(value):
    """Parameter values as plain Python data (small repeated floats arrive as arrays)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _included(layer: Layer, state: _State, source: str) -> bool:
    if layer.include and layer.exclude:
        raise FormatError(f"{source}: layer '{layer.name}' has both include and exclude rules")
    if layer.include:
        return any(_meets(rule, state) for rule in layer.include)
    return not any(_meets(rule, state) for rule in layer.exclude)


def _meets(rule: dict, state: _State) -> bool:
    """Caffe's StateMeetsRule for phase TEST."""
    return (rule.get("phase", "TEST") == "TEST"
            and state.level >= rule.get("min_level", state.level)
            and state.level <= rule.get("max_level", state.level)
            and all(stage in state.stages for stage in rule.get("stage", []))
            and not any(stage in state.stages for stage in rule.get("not_stage", [])))


def _legacy_inputs(msg: dict, source: str) -> list[tuple[str, tuple[int, ...]]]:
    """NetParameter input + input_dim (4 per input) or input + input_shape."""
    names, dims, shapes = msg.get("input", []), msg.get("input_dim", []), msg.get("input_shape", [])
    if dims and shapes:
        raise FormatError(f"{source}: gives both input_dim and input_shape")
    if dims:
        if len(dims) != 4 * len(names):
            raise FormatError(f"{source}: {len(names)} input(s) need {4 * len(names)} "
                              f"input_dim values, found {len(dims)}")
        return [(name, tuple(dims[4 * i:4 * i + 4])) for i, name in enumerate(names)]
    if shapes:
        if len(shapes) != len(names):
            raise FormatError(f"{source}: {len(names)} input(s) but {len(shapes)} input_shape")
        return [(name, tuple(shape.get("dim", []))) for name, shape in zip(names, shapes)]
    return []          # inputs without dims (inside some .caffemodel files) carry no shape


def _input_layer_shapes(layer: Layer, source: str) -> list[tuple[str, tuple[int, ...]]]:
    """An Input layer: one shape per top, one shape for all tops, or none (shape ())."""
    shapes = [tuple(shape.get("dim", [])) for shape in layer.param("input_param").get("shape", [])]
    if len(shapes) == 1:
        shapes = shapes * len(layer.tops)
    elif not shapes:
        shapes = [()] * len(layer.tops)
    elif len(shapes) != len(layer.tops):
        raise FormatError(f"{source}: Input layer '{layer.name}' has {len(layer.tops)} tops "
                          f"but {len(shapes)} shapes")
    return list(zip(layer.tops, shapes))
