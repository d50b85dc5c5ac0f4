"""ConvTranspose as the adjoint of Conv: one batched matmul gives every tap's contribution
(col buffer), then col2im adds each tap's slab into the output with a strided slice-add,
clipped to the output window, so pads (even negative ones from output_shape) need no crop."""
from __future__ import annotations

import math

import numpy as np

from . import window
from .node import NodeSpec


def conv_transpose(spec: NodeSpec):
    if spec.attr("auto_pad", "NOTSET") != "NOTSET":
        raise spec.unsupported(f"auto_pad={spec.attr('auto_pad')!r} (give explicit pads)")
    group = spec.attr("group", 1)

    def run(x, w, b=None):
        rank = x.ndim - 2
        kernel, strides, dilations = window.kernel_geometry(spec, rank, w.shape[2:])
        begin, out = _output_geometry(spec, x.shape[2:], kernel, strides, dilations)
        c_in, c_out = x.shape[1], w.shape[1] * group
        if w.shape[0] != c_in or c_in % group:
            raise ValueError(f"ConvTranspose: input channels {c_in}, weight {w.shape} and "
                             f"group {group} disagree")
        y = np.zeros((x.shape[0], c_out) + out, dtype=np.result_type(x, w))
        if group > 1 and group == c_in == c_out:
            _depthwise(x, w, y, begin, kernel, strides, dilations)
        else:
            _grouped(x, w, y, group, begin, kernel, strides, dilations)
        if b is not None:
            y += b.reshape((-1,) + (1,) * rank)
        return (y,)

    return run


def _output_geometry(spec, in_shape, kernel, strides, dilations):
    """Begin pads and output size per spatial axis (output_shape attribute per the spec)."""
    rank = len(in_shape)
    extra = tuple(spec.attr("output_padding") or (0,) * rank)
    full = tuple(s * (n - 1) + e + (k - 1) * d + 1
                 for n, e, k, s, d in zip(in_shape, extra, kernel, strides, dilations))
    wanted = spec.attr("output_shape")
    if wanted:
        wanted = tuple(wanted[-rank:])
        totals = tuple(f - o for f, o in zip(full, wanted))
        return tuple(t - t // 2 for t in totals), wanted
    pads = spec.attr("pads") or (0,) * (2 * rank)
    out = tuple(f - pb - pe for f, pb, pe in zip(full, pads[:rank], pads[rank:]))
    return tuple(pads[:rank]), out


def _tap_slices(tap, in_shape, out, begin, strides, dilations):
    """(source slices into the input grid, destination slices into the output) for one tap.

    Input position i lands on output position t*d + i*s - begin; keep those inside [0, out)."""
    src, dst = [], []
    for t, n, o, b, s, d in zip(tap, in_shape, out, begin, strides, dilations):
        offset = t * d - b
        lo = max(0, -(offset // s))
        hi = min(n, (o - 1 - offset) // s + 1)
        if hi <= lo:
            return None
        src.append(slice(lo, hi))
        dst.append(slice(offset + lo * s, offset + (hi - 1) * s + 1, s))
    return tuple(src), tuple(dst)


def _grouped(x, w, y, group, begin, kernel, strides, dilations):
    """One GEMM per group and batch chunk (images side by side in the columns), then each
    tap's slab of the column buffer is added into the output."""
    n, c_in = x.shape[:2]
    in_shape = x.shape[2:]
    cig, cog = c_in // group, w.shape[1]
    taps, pixels = math.prod(kernel), math.prod(in_shape)
    weights_t = w.reshape(group, cig, cog * taps).transpose(0, 2, 1)
    grid = x.reshape(n, group, cig, pixels)
    if taps == 1:  # pointwise: one matmul per image, its result lands on a strided grid
        where = _tap_slices((0,) * len(kernel), in_shape, y.shape[2:], begin,
                            strides, dilations)
        if where is not None:
            src, dst = where
            result = np.matmul(weights_t, grid).reshape((n, group * cog) + tuple(in_shape))
            y[(Ellipsis,) + dst] = result[(Ellipsis,) + src]
        return
    chunk = window.batch_chunk(group * cog * taps * pixels, y.itemsize, n)
    slices = [(tap, _tap_slices(tap, in_shape, y.shape[2:], begin, strides, dilations))
              for tap in window.tap_offsets(kernel)]
    everything = (slice(None), slice(None))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        images = grid[start:stop].transpose(1, 2, 0, 3).reshape(group, cig, -1)
        cols = np.matmul(weights_t, images)
        cols = cols.reshape((group * cog,) + tuple(kernel) + (stop - start,) + tuple(in_shape))
        target = y[start:stop].swapaxes(0, 1)  # (C_out, images, *out) like the columns
        for tap, where in slices:
            if where is not None:
                src, dst = where
                target[everything + dst] += cols[(slice(None),) + tap + (slice(None),) + src]


def _depthwise(x, w, y, begin, kernel, strides, dilations):
    """Each tap's input slab times its per-channel weight (tiled along the slab's unit-stride
    rows), added channels last into the output, one block of images at a time."""
    n, c = x.shape[:2]
    source = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    target = np.zeros((n,) + y.shape[2:] + (c,), dtype=y.dtype)
    weights = w.reshape(c, -1).T.astype(y.dtype)
    taps = []
    for number, tap in enumerate(window.tap_offsets(kernel)):
        where = _tap_slices(tap, x.shape[2:], y.shape[2:], begin, strides, dilations)
        if where is not None:
            src, dst = where
            row = tuple(s.stop - s.start for s in src[1:]) + (c,)
            taps.append((src, dst, np.ascontiguousarray(np.broadcast_to(weights[number], row))))
    for images in window.image_blocks(n, math.prod(y.shape[2:]) * c * y.itemsize):
        for src, dst, tile in taps:
            target[(images,) + dst] += source[(images,) + src] * tile
    y[...] = np.moveaxis(target, -1, 1)


KERNELS = {"ConvTranspose": conv_transpose}
