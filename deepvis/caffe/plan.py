"""The layer-by-layer plan of a parsed deploy net (already filtered for the TEST phase):
which tensor each bottom/top is, every shape at batch 1, and the visible blobs.

Caffe rewrites blobs in place (ReLU, Dropout). A graph cannot, so each version of a
rewritten blob gets its own tensor: the version made by layer L is `<blob>@<L>`,
except the last version, which carries the plain blob name so that graph outputs
match pycaffe's `net.blobs` (values after the in-place layers). The first version
is where a backward seed enters (below the ReLU), recorded as the blob's seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import FormatError, UnsupportedError
from .layers import converter_for
from .layers.base import Converter, Shape
from .net import Layer, Net


@dataclass
class Step:
    layer: Layer
    converter: Converter
    inputs: list[str]
    in_shapes: list[Shape]
    outputs: list[str]
    out_shapes: list[Shape]
    blob_shapes: list[Shape]
    reads_input: bool          # a bottom is a network input (pixel-scale data)


@dataclass
class Plan:
    inputs: list[tuple[str, Shape]]
    steps: list[Step] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)         # visible blobs, inputs first
    seeds: dict[str, str] = field(default_factory=dict)    # blob -> first version, if rewritten
    shapes: dict[str, Shape] = field(default_factory=dict)  # tensor -> shape at batch 1


def where(source: str) -> str:
    """'file: ' to start an error message, or nothing for a net built in memory."""
    return f"{source}: " if source else ""


def _version_names(layers: list[Layer], input_names: set[str], source: str) -> tuple[dict, dict]:
    """(layer index, top index) -> tensor name, and blob -> seed tensor for rewritten blobs."""
    producers: dict[str, list[tuple[int, int]]] = {}
    for i, layer in enumerate(layers):
        for t, top in enumerate(layer.tops):
            in_place = t < len(layer.bottoms) and layer.bottoms[t] == top
            if in_place and top in input_names:
                raise UnsupportedError(f"layer {layer.name!r} rewrites the network input {top!r} "
                                       "in place")
            if not in_place and (top in producers or top in input_names):
                raise FormatError(f"{where(source)}top blob {top!r} of layer {layer.name!r} is "
                                  "produced by multiple sources")
            producers.setdefault(top, []).append((i, t))
    names, seeds = {}, {}
    for blob, versions in producers.items():
        for i, t in versions:
            names[i, t] = blob if (i, t) == versions[-1] else f"{blob}@{layers[i].name}"
        if len(versions) > 1:
            seeds[blob] = names[versions[0]]
    return names, seeds


def plan_net(net: Net, batch: int = 1) -> Plan:
    """Plan `net` with its inputs' batch dim set to `batch`."""
    layers = net.layers
    if not net.inputs:
        raise FormatError(f"{where(net.source)}the net declares no input (input/input_shape or an "
                          "Input layer)")
    for name, shape in net.inputs:
        if len(shape) < 2:
            raise FormatError(f"{where(net.source)}input {name!r} has no (N, C, ...) shape")
    inputs = [(name, (batch, *(int(d) for d in shape[1:]))) for name, shape in net.inputs]
    for name, shape in inputs:
        _check_size(shape, f"{where(net.source)}input {name!r}")
    input_names = {name for name, _ in inputs}
    seen: set[str] = set()
    for layer in layers:  # the graph names tensors after layers: two of a name would collide
        if layer.name in seen:
            raise FormatError(f"{where(net.source)}two layers are named {layer.name!r}")
        seen.add(layer.name)
    names, seeds = _version_names(layers, input_names, net.source)

    plan = Plan(inputs=inputs, blobs=[name for name, _ in inputs], seeds=seeds,
                shapes=dict(inputs))
    current = {name: name for name in input_names}
    for i, layer in enumerate(layers):
        converter = converter_for(layer)
        missing = [b for b in layer.bottoms if b not in current]
        if missing:
            raise FormatError(f"{where(net.source)}layer {layer.name!r} reads {missing[0]!r}, "
                              "which no earlier layer or input produces")
        if not layer.bottoms:
            raise FormatError(f"{where(net.source)}layer {layer.name!r} ({layer.type}) has no "
                              "bottom")
        ins = [current[b] for b in layer.bottoms]
        in_shapes = [plan.shapes[t] for t in ins]
        out_shapes, blob_shapes = _shapes(converter, layer, in_shapes, net.source)
        if len(out_shapes) != len(layer.tops):
            raise UnsupportedError(f"layer {layer.name!r} ({layer.type}) has {len(layer.tops)} "
                                   f"tops; deepvis converts it with {len(out_shapes)}")
        outs = [names[i, t] for t in range(len(layer.tops))]
        plan.steps.append(Step(layer, converter, ins, in_shapes, outs, out_shapes,
                               blob_shapes,
                               any(b in input_names for b in layer.bottoms)))
        for top, out, shape in zip(layer.tops, outs, out_shapes):
            current[top] = out
            plan.shapes[out] = tuple(shape)
            if top not in plan.blobs:
                plan.blobs.append(top)
    return plan


# A blob or weight of more elements than this (1 GiB of float32; VGG's largest weight has
# 103 M) is a typo or an attack.
MAX_ELEMENTS = 1 << 28


def _check_size(shape, what: str) -> None:
    if any(int(d) < 1 for d in shape):
        raise FormatError(f"{what} has shape {tuple(shape)}: every dimension must be at least 1")
    count = 1
    for d in shape:
        count *= int(d)
    if count > MAX_ELEMENTS:
        raise FormatError(f"{what} has shape {tuple(shape)}: {count} elements, more than "
                          f"deepvis accepts ({MAX_ELEMENTS})")


def _shapes(converter: Converter, layer: Layer, in_shapes, source: str):
    """The layer's top and parameter shapes, each checked to be non-empty and of sane size.

    Converters compute shapes with plain arithmetic; parameters Caffe itself would refuse
    (a zero divisor, a missing field) surface here as one error naming the layer."""
    what = f"{where(source)}layer {layer.name!r} ({layer.type})"
    try:
        tops = converter.tops(layer, in_shapes)
        blobs = converter.blob_shapes(layer, in_shapes)
    except (FormatError, UnsupportedError):
        raise
    except KeyError as exc:
        raise FormatError(f"{what}: required parameter {exc.args[0]!r} is missing") from None
    except (ArithmeticError, IndexError, ValueError, TypeError) as exc:
        raise FormatError(f"{what}: its parameters cannot be converted: {exc}") from None
    for shape in tops:
        _check_size(shape, f"{what}: top")
    for shape in blobs:
        _check_size(shape, f"{what}: parameter blob")
    return tops, blobs
