"""Convolution -> Conv. Caffe's weight layout (M, C/group, k...) is ONNX's, so blobs go in as-is."""
from __future__ import annotations

from ...errors import FormatError, UnsupportedError
from .base import Converter, Site, geometry, he_normal, per_dim, small_bias


def _settings(layer, in_shape):
    p = layer.param("convolution_param")
    if int(p.get("axis", 1)) != 1:
        raise UnsupportedError(f"layer {layer.name!r} (Convolution): only axis 1 is supported")
    nd = len(in_shape) - 2
    kernel = geometry(p, nd, "kernel_size", 0, layer)
    if min(kernel) <= 0:
        raise UnsupportedError(f"layer {layer.name!r} (Convolution): kernel size is not given")
    for name in ("num_output", "group"):
        if int(p.get(name, 1)) < 1:
            raise FormatError(f"layer {layer.name!r} (Convolution): {name} {p[name]} must be "
                              "at least 1")
    return dict(
        num_output=int(p["num_output"]),
        bias=bool(p.get("bias_term", True)),
        group=int(p.get("group", 1)),
        kernel=kernel,
        stride=geometry(p, nd, "stride", 1, layer),
        pad=geometry(p, nd, "pad", 0, layer),
        dilation=per_dim(p, "dilation", nd, 1, layer),
    )


def conv_output_size(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - (d * (k - 1) + 1)) // s + 1


def _blob_shapes(layer, in_shapes):
    c = _settings(layer, in_shapes[0])
    channels = in_shapes[0][1]
    if channels % c["group"] or c["num_output"] % c["group"]:
        raise UnsupportedError(f"layer {layer.name!r} (Convolution): group {c['group']} does not "
                               f"divide {channels} input channels and {c['num_output']} outputs")
    weight = (c["num_output"], channels // c["group"], *c["kernel"])
    return [weight, (c["num_output"],)] if c["bias"] else [weight]


def _tops(layer, in_shapes):
    c = _settings(layer, in_shapes[0])
    spatial = [conv_output_size(n, *args) for n, args in
               zip(in_shapes[0][2:], zip(c["kernel"], c["stride"], c["pad"], c["dilation"]))]
    return [(in_shapes[0][0], c["num_output"], *spatial)]


def _emit(site: Site):
    c = _settings(site.layer, site.in_shapes[0])
    inputs = [site.inputs[0], site.weight(site.blobs[0], "weight")]
    if c["bias"]:
        inputs.append(site.weight(site.blobs[1], "bias"))
    site.g.node("Conv", inputs, [site.outputs[0]], kernel_shape=c["kernel"], strides=c["stride"],
                pads=c["pad"] * 2, dilations=c["dilation"], group=c["group"])


def _random(layer, shapes, rng, input_std):
    fan_in = 1
    for n in shapes[0][1:]:
        fan_in *= n
    return [he_normal(rng, shapes[0], fan_in, input_std)] + [small_bias(s) for s in shapes[1:]]


CONVOLUTION = Converter(tops=_tops, emit=_emit, blob_shapes=_blob_shapes, random_blobs=_random)
