"""Normalizations over a sample's own values (every mode: the true derivative).

LayerNormalization (axes axis..last), InstanceNormalization (the spatial axes per channel)
and GroupNormalization (each group of channels with its spatial axes) all standardize x over
some axes, xhat = (x - mean) / sqrt(var + epsilon), then scale and shift. With g = dy * scale
(the gradient at xhat) and means over the same axes:

    dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + epsilon)

The statistics are recomputed here from x (the optional Mean / InvStdDev outputs are often
absent): for LayerNormalization by a second LayerNormalization with unit scale, whose outputs
are xhat and 1 / sqrt(var + epsilon); for the others with reductions. Scale and bias are
weights: no gradient flows to them.
"""
from __future__ import annotations

import numpy as np


def layer_normalization(ctx, node, dys):
    """xhat and 1/std from one LayerNormalization with unit scale (its optional outputs), not
    recomputed with a dozen elementwise ops: on ConvNeXt that halves the rule's passes."""
    x, scale = node.input[:2]
    shape = ctx.static_shape(x)
    first = ctx.attr("axis", -1) % len(shape)
    axes = list(range(first, len(shape)))
    xhat, _, inv_std = ctx.emit("LayerNormalization", [x, ctx.fconst(np.ones(shape[first:]))],
                                outputs=3, axis=first, epsilon=ctx.attr("epsilon", 1e-5))
    g = ctx.emit("Mul", [dys[0], scale])
    count = int(np.prod(shape[first:]))
    spread = ctx.emit("Mul", [xhat, _mean(ctx, ctx.emit("Mul", [g, xhat]), axes, count)])
    inner = ctx.emit("Sub", [ctx.emit("Sub", [g, spread]), _mean(ctx, g, axes, count)])
    return [ctx.emit("Mul", [inner, inv_std])] + [None] * (len(node.input) - 1)


def instance_normalization(ctx, node, dys):
    x, scale = node.input[:2]
    shape = ctx.static_shape(x)
    g = ctx.emit("Mul", [dys[0], _per_channel(ctx, scale, len(shape))])
    dx = _standardize_backward(ctx, x, g, list(range(2, len(shape))), int(np.prod(shape[2:])))
    return [dx, None, None]


def group_normalization(ctx, node, dys):
    """Scale and bias per channel (opset 21; ONNX deprecated opset 18's per-group form)."""
    x, scale = node.input[:2]
    shape = ctx.static_shape(x)
    groups, channels = ctx.attr("num_groups"), shape[1]
    if int(np.prod(ctx.static_shape(scale, skip_batch=False))) != channels:
        raise ctx.unsupported("needs one scale per channel (GroupNormalization-21)")
    view = ctx.iconst([0, groups, -1])
    g = ctx.emit("Reshape", [ctx.emit("Mul", [dys[0], _per_channel(ctx, scale, len(shape))]),
                             view])
    count = channels // groups * int(np.prod(shape[2:]))
    dx = _standardize_backward(ctx, ctx.emit("Reshape", [x, view]), g, [2], count)
    return [ctx.emit("Reshape", [dx, ctx.shape_of(x)]), None, None]


def _per_channel(ctx, vector: str, rank: int) -> str:
    return ctx.emit("Reshape", [vector, ctx.iconst([-1] + [1] * (rank - 2))])


def _standardize_backward(ctx, x: str, g: str, axes: list[int], count: int) -> str:
    epsilon = ctx.attr("epsilon", 1e-5)
    centred = ctx.emit("Sub", [x, _mean(ctx, x, axes, count)])
    variance = _mean(ctx, ctx.emit("Mul", [centred, centred]), axes, count)
    inv_std = ctx.emit("Reciprocal", [ctx.emit("Sqrt", [
        ctx.emit("Add", [variance, ctx.fconst(epsilon)])])])
    xhat = ctx.emit("Mul", [centred, inv_std])
    spread = ctx.emit("Mul", [xhat, _mean(ctx, ctx.emit("Mul", [g, xhat]), axes, count)])
    inner = ctx.emit("Sub", [ctx.emit("Sub", [g, _mean(ctx, g, axes, count)]), spread])
    return ctx.emit("Mul", [inner, inv_std])


def _mean(ctx, v: str, axes: list[int], count: int) -> str:
    total = ctx.emit("ReduceSum", [v, ctx.iconst(axes)], keepdims=1)
    return ctx.emit("Mul", [total, ctx.fconst(1.0 / count)])


RULES = {"LayerNormalization": layer_normalization,
         "InstanceNormalization": instance_normalization,
         "GroupNormalization": group_normalization}
