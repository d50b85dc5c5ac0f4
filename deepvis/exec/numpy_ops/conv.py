"""Conv: im2col (an as_strided view copied one batch chunk at a time) and one BLAS matmul
per group and chunk; pointwise (1x1) kernels need no im2col, depthwise kernels are summed
tap by tap instead."""
from __future__ import annotations

import math

import numpy as np

from . import window
from .node import NodeSpec


def conv(spec: NodeSpec):
    window.check_auto_pad(spec)
    group = spec.attr("group", 1)

    def run(x, w, b=None):
        rank = x.ndim - 2
        kernel, strides, dilations = window.kernel_geometry(spec, rank, w.shape[2:])
        begin, end = window.resolve_pads(spec, x.shape[2:], kernel, strides, dilations)
        out = window.output_shape(x.shape[2:], kernel, strides, dilations, begin, end)
        padded = window.pad_for_windows(x, begin, out, kernel, strides, dilations, 0)
        if group > 1 and group == x.shape[1] == w.shape[0]:
            y = _depthwise(padded, w, out, kernel, strides, dilations)
        else:
            y = _grouped_matmul(padded, w, group, out, kernel, strides, dilations)
        if b is not None:
            y += b.reshape((-1,) + (1,) * rank)
        return (y,)

    return run


def _grouped_matmul(padded, w, group, out, kernel, strides, dilations):
    """One GEMM per group and batch chunk, the chunk's images side by side in its columns:
    few large BLAS calls parallelise far better than one small call per image."""
    n, c = padded.shape[:2]
    m = w.shape[0]
    cg, mg = c // group, m // group
    if cg * group != c or w.shape[1] != cg or mg * group != m:
        raise ValueError(f"Conv: input channels {c}, weight {w.shape} and group {group} disagree")
    pixels = math.prod(out)
    taps = math.prod(kernel)
    rank = len(kernel)
    weights = w.reshape(group, mg, cg * taps)
    if taps == 1:  # pointwise: the (strided) input is its own column matrix, image by image
        points = padded[(Ellipsis,) + tuple(slice(None, None, s) for s in strides)]
        y = np.matmul(weights, points.reshape(n, group, cg, pixels))
        return y.reshape((n, m) + tuple(out))
    y = np.empty((n, m) + tuple(out), dtype=np.result_type(padded, w))
    view = window.window_view(padded, out, kernel, strides, dilations)
    # (C, *kernel, N, *out): channels and taps in the rows, images and pixels in the columns
    kernel_axes, out_axes = range(2, 2 + rank), range(2 + rank, 2 + 2 * rank)
    view = view.transpose((1, *kernel_axes, 0, *out_axes))
    chunk = window.batch_chunk(c * taps * pixels, y.itemsize, n)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        cols = view[(slice(None),) * (1 + rank) + (slice(start, stop),)]
        cols = cols.reshape(group, cg * taps, (stop - start) * pixels)
        result = np.matmul(weights, cols).reshape(group, mg, stop - start, pixels)
        y[start:stop].reshape(stop - start, group, mg, pixels)[...] = result.transpose(2, 0, 1, 3)
    return y


def _depthwise(padded, w, out, kernel, strides, dilations):
    """One multiply-add per kernel tap, channels last: a tap reads a slice of its stride
    phase (channels-last copy of padded[..., r::s]), whose rows are unit-stride, times its
    weight tiled along the row, so NumPy runs each product over whole rows. Far cheaper than
    one tiny matmul per channel."""
    n, c = padded.shape[:2]
    channels_last = np.moveaxis(padded, 1, -1)
    dtype = np.result_type(padded, w)
    phases = {}
    y = np.empty((n,) + tuple(out) + (c,), dtype=dtype)
    row_shape = tuple(out[1:]) + (c,)
    tiles = np.ascontiguousarray(np.broadcast_to(
        w.reshape(c, -1).T.reshape((-1,) + (1,) * (len(out) - 1) + (c,)),
        (math.prod(kernel),) + row_shape), dtype=dtype)
    for images, rows in window.image_row_blocks(n, out[0], math.prod(row_shape) * y.itemsize):
        target = y[images, rows]
        scratch = np.empty_like(target)
        for number, tap in enumerate(window.tap_offsets(kernel)):
            starts = [t * d for t, d in zip(tap, dilations)]
            phase = tuple(p % s for p, s in zip(starts, strides))
            if phase not in phases:
                phases[phase] = np.ascontiguousarray(channels_last[
                    (slice(None),) + tuple(slice(r, None, s) for r, s in zip(phase, strides))])
            first = [p // s for p, s in zip(starts, strides)]
            index = (images, slice(first[0] + rows.start, first[0] + rows.stop))
            index += tuple(slice(f, f + o) for f, o in zip(first[1:], out[1:]))
            if number == 0:
                np.multiply(phases[phase][index], tiles[0], out=target)
            else:
                np.multiply(phases[phase][index], tiles[number], out=scratch)
                target += scratch
    return np.ascontiguousarray(np.moveaxis(y, -1, 1))


KERNELS = {"Conv": conv}
