"""BatchNorm (test-time, global statistics) and Scale, as broadcast Sub/Mul/Add.

BatchNorm's blobs hold running sums scaled by a normaliser s (blob 2): the statistics
are blob/s, or zero when s == 0. The per-channel 1/sqrt(var + eps) is folded here.
"""
from __future__ import annotations

import numpy as np

from ...errors import UnsupportedError
from .base import Converter, Site, canonical_axis, same_shape


def _broadcastable(array: np.ndarray, axis: int, rank: int) -> np.ndarray:
    """Trailing 1s so that `array` lines up with dims [axis, axis + ndim) of a rank-D input."""
    return array.reshape(array.shape + (1,) * (rank - axis - array.ndim))


def _bn_blob_shapes(layer, in_shapes):
    channels = in_shapes[0][1] if len(in_shapes[0]) > 1 else 1
    return [(channels,), (channels,), (1,)]


def _bn_emit(site: Site):
    p = site.layer.param("batch_norm_param")
    if not p.get("use_global_stats", True):
        raise UnsupportedError(f"layer {site.layer.name!r} (BatchNorm): use_global_stats false "
                               "(batch statistics at test time) is not supported")
    eps = float(p.get("eps", 1e-5))
    mean_sum, var_sum, normaliser = (b.astype(np.float64) for b in site.blobs)
    factor = 0.0 if normaliser[0] == 0 else 1.0 / normaliser[0]
    rank = len(site.in_shapes[0])
    mean = _broadcastable(mean_sum * factor, 1, rank)
    inv_std = _broadcastable(1.0 / np.sqrt(var_sum * factor + eps), 1, rank)
    g = site.g
    centred = g.node("Sub", [site.inputs[0], site.weight(mean, "mean")], [site.tmp("centred")])
    g.node("Mul", [centred, site.weight(inv_std, "inv_std")], site.outputs[:1])


def _bn_random(layer, shapes, rng, input_std):
    channels = shapes[0][0]
    return [np.zeros(channels, np.float32), np.ones(channels, np.float32),
            np.ones(1, np.float32)]


def _scale_axes(layer, in_shapes):
    p = layer.param("scale_param")
    rank = len(in_shapes[0])
    axis = canonical_axis(int(p.get("axis", 1)), rank, layer)
    if len(in_shapes) > 1:
        return axis, tuple(in_shapes[1])
    num_axes = int(p.get("num_axes", 1))
    end = rank if num_axes == -1 else axis + num_axes
    if end > rank:
        raise UnsupportedError(f"layer {layer.name!r} (Scale): axis {axis} + num_axes {num_axes} "
                               f"exceeds the {rank}-D input")
    return axis, tuple(in_shapes[0][axis:end])


def _scale_blob_shapes(layer, in_shapes):
    _, shape = _scale_axes(layer, in_shapes)
    with_bias = bool(layer.param("scale_param").get("bias_term", False))
    return ([] if len(in_shapes) > 1 else [shape]) + ([shape] if with_bias else [])


def _scale_emit(site: Site):
    axis, shape = _scale_axes(site.layer, site.in_shapes)
    rank = len(site.in_shapes[0])
    g, x = site.g, site.inputs[0]
    blobs = list(site.blobs)
    if len(site.inputs) > 1:
        trailing = rank - axis - len(shape)
        gamma = site.inputs[1] if trailing == 0 else g.node(
            "Reshape", [site.inputs[1], g.const([0] * len(shape) + [1] * trailing, np.int64)],
            [site.tmp("multiplier")])
    else:
        gamma = site.weight(_broadcastable(blobs.pop(0), axis, rank), "weight")
    if not blobs:
        g.node("Mul", [x, gamma], site.outputs[:1])
        return
    scaled = g.node("Mul", [x, gamma], [site.tmp("scaled")])
    beta = site.weight(_broadcastable(blobs[0], axis, rank), "bias")
    g.node("Add", [scaled, beta], site.outputs[:1])


def _scale_random(layer, shapes, rng, input_std):
    """Identity stand-ins: gamma 1 (absent with a second bottom), beta 0."""
    gamma = [] if len(layer.bottoms) > 1 else [np.ones(shapes[0], np.float32)]
    return gamma + [np.zeros(shape, np.float32) for shape in shapes[len(gamma):]]


BATCH_NORM = Converter(tops=same_shape, emit=_bn_emit, blob_shapes=_bn_blob_shapes,
                       random_blobs=_bn_random)
SCALE = Converter(tops=same_shape, emit=_scale_emit, blob_shapes=_scale_blob_shapes,
                  random_blobs=_scale_random)
