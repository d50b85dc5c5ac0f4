"""Conv (any rank, group, dilation, strides, asymmetric or auto pads).

All modes: the input gradient is the transposed convolution of dy with the same weight
tensor (ConvTranspose reads Conv's (M, C/group, k...) layout as its own), see `window`.
Weight and bias gradients are never needed (only input gradients are asked for).
"""
from __future__ import annotations

from .window import explicit_pads, transposed_window


def conv(ctx, node, dys):
    x, weight = node.input[0], node.input[1]
    in_size = ctx.spatial_size(x)
    n = len(in_size)
    kernel = list(ctx.attr("kernel_shape", None) or ctx.static_shape(weight, False)[2:])
    strides = list(ctx.attr("strides", [1] * n))
    dilations = list(ctx.attr("dilations", [1] * n))
    pads = explicit_pads(ctx, in_size, kernel, strides, dilations, ctx.attr("auto_pad", "NOTSET"))
    out_size = [(h + pads[i] + pads[n + i] - dilations[i] * (kernel[i] - 1) - 1) // strides[i] + 1
                for i, h in enumerate(in_size)]
    dx = transposed_window(ctx, dys[0], weight, in_size, out_size, kernel, strides, dilations,
                           pads, group=ctx.attr("group", 1))
    return [dx, None, None][:len(node.input)]


RULES = {"Conv": conv}
