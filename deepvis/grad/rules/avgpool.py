"""Average pooling (every mode: the true, linear derivative).

AveragePool  dy is divided by each window's divisor (a constant map computed here from the
             ONNX definition: ceil_mode with the rule that a window starts inside the input or
             its begin pad; count_include_pad counting pads but not the ceil overhang), then
             spread over the window by a ConvTranspose with a ones kernel applied to every
             channel as its own image: (N, C, *out) -> (N*C, 1, *out).
GlobalAveragePool  dy / (H*W) broadcast to the input shape (see GradContext.spread).
"""
from __future__ import annotations

import numpy as np

from .window import explicit_pads, transposed_window


def average_pool(ctx, node, dys):
    x = node.input[0]
    in_size = ctx.spatial_size(x)
    n = len(in_size)
    kernel = list(ctx.attr("kernel_shape"))
    strides = list(ctx.attr("strides", [1] * n))
    dilations = list(ctx.attr("dilations", [1] * n))
    pads = explicit_pads(ctx, in_size, kernel, strides, dilations, ctx.attr("auto_pad", "NOTSET"))
    ceil = bool(ctx.attr("ceil_mode", 0))
    axes = list(zip(in_size, kernel, strides, dilations, pads[:n], pads[n:]))
    out_size = [pooled_size(h, d * (k - 1) + 1, s, b, e, ceil) for h, k, s, d, b, e in axes]
    divisor = np.ones(out_size)
    for axis, (h, k, s, d, b, e) in enumerate(axes):
        counts = window_counts(h, d * (k - 1) + 1, s, b, e, out_size[axis],
                               bool(ctx.attr("count_include_pad", 0)), d)
        divisor = divisor * counts.reshape([-1 if i == axis else 1 for i in range(n)])
    scaled = ctx.emit("Mul", [dys[0], ctx.fconst(1.0 / divisor)])
    planes = ctx.emit("Reshape", [scaled, ctx.iconst([-1, 1] + out_size)])
    ones = ctx.fconst(np.ones([1, 1] + kernel))
    back = transposed_window(ctx, planes, ones, in_size, out_size, kernel, strides, dilations, pads)
    return [ctx.emit("Reshape", [back, ctx.shape_of(x)])]


def global_average_pool(ctx, node, dys):
    x = node.input[0]
    count = int(np.prod(ctx.spatial_size(x)))
    scaled = ctx.emit("Mul", [dys[0], ctx.fconst(1.0 / count)])
    return [ctx.spread(scaled)]


def pooled_size(size: int, span: int, stride: int, begin: int, end: int, ceil: bool) -> int:
    """Output length of a pooling axis (ONNX, with the last-window-starts-inside rule)."""
    room = size + begin + end - span
    out = (-(-room // stride) if ceil else room // stride) + 1
    if ceil and (out - 1) * stride >= size + begin:
        out -= 1
    return out


def window_counts(size: int, span: int, stride: int, begin: int, end: int, out: int,
                  include_pad: bool, dilation: int = 1) -> np.ndarray:
    """Per-output divisor along one axis: the window's taps inside the input (or the padded
    extent with count_include_pad), never the overhang past the end pad."""
    counts = np.empty(out)
    for o in range(out):
        start = o * stride - begin
        taps = np.arange(start, start + span, dilation)
        lo, hi = (-begin, size + end) if include_pad else (0, size)
        counts[o] = np.count_nonzero((taps >= lo) & (taps < hi))
    return counts


RULES = {"AveragePool": average_pool, "GlobalAveragePool": global_average_pool}
