"""LRN across channels (every mode: the true derivative; the Caffe fork's deconv keeps it too).

With S(v)_c the sum of v over the channel window of c, scale = bias + alpha/size * S(x^2) and
y = x * scale^-beta (caffe-facts 1.3):
    dx_c = dy_c * scale_c^-beta - (2 alpha beta / size) * x_c * S'(dy * x * scale^(-beta-1))_c
where S' sums over the channels whose window contains c (S itself for odd sizes). Channel
window sums are a Conv with a (1, 1, size, 1) ones kernel on the tensor viewed as
(N, 1, C, rest); the window is [c - floor((size-1)/2), c + ceil((size-1)/2)] as in ONNX.
"""
from __future__ import annotations

import numpy as np


def lrn(ctx, node, dys):
    x = node.input[0]
    channels = ctx.static_shape(x)[1]
    size = ctx.attr("size")
    alpha, beta, bias = ctx.attr("alpha", 1e-4), ctx.attr("beta", 0.75), ctx.attr("bias", 1.0)
    view = ctx.iconst([0, 1, channels, -1])
    xs = ctx.emit("Reshape", [x, view])
    dy = ctx.emit("Reshape", [dys[0], view])
    ones = ctx.fconst(np.ones((1, 1, size, 1)))
    head, tail = (size - 1) // 2, size // 2

    def window_sum(v, before, after):
        return ctx.emit("Conv", [v, ones], pads=[before, 0, after, 0])

    squares = window_sum(ctx.emit("Mul", [xs, xs]), head, tail)
    scaled = ctx.emit("Mul", [squares, ctx.fconst(alpha / size)])
    scale = ctx.emit("Add", [ctx.fconst(bias), scaled])
    damp = ctx.emit("Pow", [scale, ctx.fconst(-beta)])
    direct = ctx.emit("Mul", [dy, damp])
    inner = ctx.emit("Div", [ctx.emit("Mul", [ctx.emit("Mul", [dy, xs]), damp]), scale])
    cross = ctx.emit("Mul", [xs, window_sum(inner, tail, head)])
    dx = ctx.emit("Sub", [direct, ctx.emit("Mul", [cross, ctx.fconst(2 * alpha * beta / size)])])
    return [ctx.emit("Reshape", [dx, ctx.shape_of(x)])]


RULES = {"LRN": lrn}
