"""MaxPool, AveragePool and the global pools.

A pool is a loop over kernel taps, each one element-wise over a block of (n, c) planes
small enough to stay in cache (see window.PlaneTaps: every tap reads whole planes).
MaxPool's Indices name the first kernel tap (row-major) equal to the window maximum,
which is the element onnxruntime (and Caffe) pick on ties.
Output sizes in ceil mode follow onnxruntime >= 1.21.1 (the last window must start inside
the input or the begin pad).
"""
from __future__ import annotations

import math

import numpy as np

from . import window
from .node import NodeSpec

def _lowest(dtype: np.dtype):
    return -np.inf if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min


def _geometry(spec, x):
    rank = x.ndim - 2
    kernel, strides, dilations = window.kernel_geometry(spec, rank)
    begin, end = window.resolve_pads(spec, x.shape[2:], kernel, strides, dilations)
    out = window.output_shape(x.shape[2:], kernel, strides, dilations, begin, end,
                              bool(spec.attr("ceil_mode", 0)))
    return kernel, strides, dilations, begin, end, out


def max_pool(spec: NodeSpec):
    window.check_auto_pad(spec)
    storage_order = spec.attr("storage_order", 0)
    with_indices = spec.has_output(1)

    def run(x):
        kernel, strides, dilations, begin, _, out = _geometry(spec, x)
        padded = window.pad_for_windows(x, begin, out, kernel, strides, dilations,
                                        _lowest(x.dtype))
        planes, blocks = window.plane_blocks(padded)
        y = np.empty((len(planes),) + out, dtype=x.dtype)
        if with_indices:
            offsets, base = _index_parts(x.shape[2:], kernel, strides, dilations, begin, out,
                                         storage_order)
            indices = np.empty(y.shape, dtype=np.int64)
            plane_size = math.prod(x.shape[2:])
        for block in blocks:
            taps = window.PlaneTaps(planes[block], out, kernel, strides, dilations,
                                    _lowest(x.dtype))
            best = np.array(taps[0])
            for number in range(1, len(taps)):
                np.maximum(best, taps[number], out=best)
            y[block] = taps.crop(best)
            if with_indices:
                target = indices[block]
                np.take(offsets, taps.crop(_first_tap(taps, best)), out=target)
                target += base
                first = np.arange(block.start, block.stop, dtype=np.int64) * plane_size
                target += first.reshape((-1,) + (1,) * len(out))
        shape = x.shape[:2] + out
        return (y.reshape(shape),) + ((indices.reshape(shape),) if with_indices else ())

    return run


def _first_tap(taps, best):
    """Number (row-major) of the first kernel tap holding each window's maximum.

    Tap k scores top - k where it holds the maximum and 0 elsewhere; the best score over
    all taps names the first one. Plain unsigned arithmetic, no masked writes."""
    count = len(taps)
    dtype = np.dtype(np.uint8 if count <= 0xFF else np.uint16 if count <= 0xFFFF else np.uint32)
    top = np.iinfo(dtype).max
    score = np.full(best.shape, top - (count - 1), dtype=dtype)  # the last tap, unless...
    hit = np.empty(best.shape, dtype=bool)
    points = np.empty(best.shape, dtype=dtype)
    for number in range(count - 1):
        np.equal(taps[number], best, out=hit)
        np.multiply(hit, dtype.type(top - number), out=points)
        np.maximum(score, points, out=score)
    return np.subtract(top, score, out=score)


def _index_parts(in_shape, kernel, strides, dilations, begin, out, storage_order):
    """Flat index = offsets[tap] + base[output position] + plane * plane size, where the
    flat order is row-major ((n*C + c)*H + h)*W + w, or column-major within the plane for
    storage_order 1."""
    rank = len(in_shape)
    order = range(rank) if storage_order == 0 else reversed(range(rank))
    multipliers, m = [0] * rank, 1
    for axis in reversed(list(order)):
        multipliers[axis] = m
        m *= in_shape[axis]
    offsets = np.array([sum(t * d * mult for t, d, mult in zip(tap, dilations, multipliers))
                        for tap in window.tap_offsets(kernel)], dtype=np.int64)
    base = np.zeros(out, dtype=np.int64)
    for axis in range(rank):
        start = np.arange(out[axis], dtype=np.int64) * strides[axis] - begin[axis]
        shape = [1] * rank
        shape[axis] = out[axis]
        base = base + (start * multipliers[axis]).reshape(shape)
    return offsets, base


def average_pool(spec: NodeSpec):
    window.check_auto_pad(spec)
    include_pad = bool(spec.attr("count_include_pad", 0))

    def run(x):
        kernel, strides, dilations, begin, end, out = _geometry(spec, x)
        padded = window.pad_for_windows(x, begin, out, kernel, strides, dilations, 0)
        planes, blocks = window.plane_blocks(padded)
        y = np.empty((len(planes),) + out, dtype=x.dtype)
        for block in blocks:
            taps = window.PlaneTaps(planes[block], out, kernel, strides, dilations, 0)
            total = np.array(taps[0])
            for number in range(1, len(taps)):
                total += taps[number]
            y[block] = taps.crop(total)
        y /= _window_counts(x.shape[2:], kernel, strides, dilations, begin, end, out,
                            include_pad).astype(x.dtype)
        return (y.reshape(x.shape[:2] + out),)

    return run


def _window_counts(in_shape, kernel, strides, dilations, begin, end, out, include_pad):
    """Divisor per output position: taps inside the padded extent (count_include_pad=1) or
    inside the input (0); the ceil-mode overhang past the end pad never counts."""
    counts = np.ones((), dtype=np.int64)
    for size, k, s, d, pb, pe, o in zip(in_shape, kernel, strides, dilations, begin, end, out):
        pos = (np.arange(o) * s)[:, None] + (np.arange(k) * d)[None, :]
        lo, hi = (0, size + pb + pe) if include_pad else (pb, pb + size)
        axis_counts = ((pos >= lo) & (pos < hi)).sum(axis=1)
        counts = np.multiply.outer(counts, axis_counts)
    return counts


def global_average_pool(spec: NodeSpec):
    def run(x):
        return (x.mean(axis=tuple(range(2, x.ndim)), keepdims=True),)
    return run


def global_max_pool(spec: NodeSpec):
    def run(x):
        return (x.max(axis=tuple(range(2, x.ndim)), keepdims=True),)
    return run


KERNELS = {"MaxPool": max_pool, "AveragePool": average_pool,
           "GlobalAveragePool": global_average_pool, "GlobalMaxPool": global_max_pool}
