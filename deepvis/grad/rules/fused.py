"""Rules for the chains `grad.fused` merges into one node: fewer elementwise passes than the
chain's nodes differentiated one by one, from values the forward has already computed.

ErfGelu  y = [c *] x * a, a = b + erf(d), d = x / k:  dy/dx = [c *] (a + 2/sqrt(pi) d exp(-d^2))
         (x * d/dx erf(d) = 2/sqrt(pi) d exp(-d^2) whatever k; the Gaussian is d / exp(d^2),
         which is 0, not NaN, where exp(d^2) overflows)
Silu     y = x * s, s = sigmoid(x):  dy/dx = s + x s (1 - s) = s + y (1 - s)
Every mode takes the true derivative (smooth.py).
"""
from __future__ import annotations

import math

import numpy as np


def erf_gelu(ctx, node, dys):
    d, a, *scale = _inner(ctx)
    dy = ctx.emit("Mul", [dys[0], scale[0]]) if scale else dys[0]
    bell = ctx.emit("Div", [d, ctx.emit("Exp", [ctx.emit("Mul", [d, d])])])
    slope = ctx.emit("Add", [a, ctx.emit("Mul", [bell, ctx.fconst(2.0 / math.sqrt(math.pi))])])
    return [ctx.emit("Mul", [dy, slope])]


def silu(ctx, node, dys):
    (s,), y = _inner(ctx), node.output[0]
    slope = ctx.emit("Add", [ctx.emit("Mul", [y, _one_minus(ctx, s)]), s])  # s + y (1 - s)
    return [ctx.emit("Mul", [dys[0], slope])]


def _one_minus(ctx, t: str) -> str:
    """1 - t; where t's dim 1 is known, as a BatchNormalization with scale -1 and bias 1.
    onnxruntime runs that inside its blocked NCHWc layout (as a 1x1 depthwise conv) next to
    the convolutions, where a Sub would reorder its operand out of that layout and its result
    back in: on EfficientNet those reorders cost more than the arithmetic."""
    shape = ctx.shape(t)
    if shape is None or len(shape) < 2 or not shape[1]:
        return ctx.emit("Sub", [ctx.fconst(1.0), t])
    ones = ctx.fconst(np.ones(shape[1]))
    return ctx.emit("BatchNormalization", [t, ctx.fconst(-np.ones(shape[1])), ones,
                                           ctx.fconst(np.zeros(shape[1])), ones], epsilon=0.0)


def _inner(ctx) -> list[str]:
    """The forward tensors the fused node's rule reads (see grad.fused)."""
    return [n.decode() if isinstance(n, bytes) else n for n in ctx.attr("inner")]


RULES = {"ErfGelu": erf_gelu, "Silu": silu}
