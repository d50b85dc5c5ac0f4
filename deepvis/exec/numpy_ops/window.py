"""Sliding-window geometry shared by Conv, ConvTranspose and the pooling ops.

Everything works on N-D inputs laid out (N, C, *spatial). A window op is computed either
as one as_strided im2col view feeding a matmul, or as a loop over kernel taps, each tap
element-wise over whole planes (PlaneTaps); never as a loop over output pixels.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .node import NodeSpec

# Bytes of planes that tap loops (pooling, depthwise conv) work on at once: about what
# stays in a core's cache.
BLOCK_BYTES = 1 << 20

# Bytes of im2col/col2im column buffer per batch chunk: big enough for large BLAS calls,
# small enough that batch-16 gradient graphs do not double their peak memory.
COLUMN_BUFFER_BYTES = 32 << 20


def kernel_geometry(spec: NodeSpec, rank: int, kernel=None):
    """(kernel, strides, dilations) as tuples; `kernel` overrides the attribute (Conv weights)."""
    kernel = tuple(kernel if kernel is not None else spec.attr("kernel_shape"))
    strides = tuple(spec.attr("strides") or (1,) * rank)
    dilations = tuple(spec.attr("dilations") or (1,) * rank)
    return kernel, strides, dilations


def check_auto_pad(spec: NodeSpec) -> None:
    mode = spec.attr("auto_pad", "NOTSET")
    if mode not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise spec.unsupported(f"auto_pad={mode!r}")


def resolve_pads(spec: NodeSpec, in_shape, kernel, strides, dilations):
    """Begin and end pads per spatial axis, from `pads` or from `auto_pad`."""
    rank = len(in_shape)
    mode = spec.attr("auto_pad", "NOTSET")
    if mode == "NOTSET":
        pads = spec.attr("pads") or (0,) * (2 * rank)
        return tuple(pads[:rank]), tuple(pads[rank:])
    if mode == "VALID":
        return (0,) * rank, (0,) * rank
    begin, end = [], []
    for size, k, s, d in zip(in_shape, kernel, strides, dilations):
        out = -(-size // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        small = total // 2
        begin.append(small if mode == "SAME_UPPER" else total - small)
        end.append(total - begin[-1])
    return tuple(begin), tuple(end)


def output_shape(in_shape, kernel, strides, dilations, begin, end, ceil_mode=False):
    """Spatial output size; in ceil mode the last window must start inside input + begin pad."""
    out = []
    for size, k, s, d, pb, pe in zip(in_shape, kernel, strides, dilations, begin, end):
        span = size + pb + pe - ((k - 1) * d + 1)
        if ceil_mode:
            n = -(-span // s) + 1
            if (n - 1) * s >= size + pb:
                n -= 1
        else:
            n = span // s + 1
        if n < 1:
            raise ValueError(f"window of size {(k - 1) * d + 1} does not fit input {size} "
                             f"with pads ({pb}, {pe})")
        out.append(n)
    return tuple(out)


def pad_for_windows(x: np.ndarray, begin, out, kernel, strides, dilations, fill) -> np.ndarray:
    """x extended by `begin` fill values in front and cut or extended at the end to exactly
    the extent the windows read (a view of x when no padding is needed)."""
    spatial = x.shape[2:]
    need = tuple((o - 1) * s + (k - 1) * d + 1
                 for o, k, s, d in zip(out, kernel, strides, dilations))
    if all(b == 0 for b in begin) and all(n <= size for n, size in zip(need, spatial)):
        return x[(slice(None), slice(None)) + tuple(slice(0, n) for n in need)]
    padded = np.full(x.shape[:2] + need, fill, dtype=x.dtype)
    src, dst = [], []
    for b, n, size in zip(begin, need, spatial):
        lo, hi = max(0, -b), min(size, n - b)
        src.append(slice(lo, max(lo, hi)))
        dst.append(slice(lo + b, max(lo, hi) + b))
    padded[(Ellipsis,) + tuple(dst)] = x[(Ellipsis,) + tuple(src)]
    return padded


def tap_offsets(kernel):
    """Kernel taps in row-major order (the order that breaks max-pool ties)."""
    return itertools.product(*(range(k) for k in kernel))


class PlaneTaps:
    """The kernel taps of a block of planes (P, *spatial), each as a (P, plane) array.

    The block is split into its stride phases (block[..., r::s]), each copied into a
    contiguous buffer laid out on one common grid; a tap is then its phase's buffer shifted
    by the tap's offset on that grid. Every tap covers whole planes, so element-wise work on
    taps runs over long unit-stride rows, fast even for narrow images. Grid positions past
    the output (and the reads they make into the next plane) are garbage, which `crop` drops.
    """

    def __init__(self, block: np.ndarray, out, kernel, strides, dilations, fill):
        planes = block.shape[0]
        self.out = tuple(out)
        self.grid = tuple(-(-n // s) for n, s in zip(block.shape[1:], strides))
        self.plane = math.prod(self.grid)
        grid_strides = [math.prod(self.grid[axis + 1:]) for axis in range(len(self.grid))]
        self._taps = []
        for tap in tap_offsets(kernel):
            starts = [t * d for t, d in zip(tap, dilations)]
            phase = tuple(p % s for p, s in zip(starts, strides))
            shift = sum((p // s) * g for p, s, g in zip(starts, strides, grid_strides))
            self._taps.append((phase, shift))
        tail = max(shift for _, shift in self._taps)
        self._buffers = {}
        for phase in {phase for phase, _ in self._taps}:
            buffer = np.full(planes * self.plane + tail, fill, dtype=block.dtype)
            source = block[(slice(None),)
                           + tuple(slice(r, None, s) for r, s in zip(phase, strides))]
            grid = buffer[:planes * self.plane].reshape((planes,) + self.grid)
            grid[(slice(None),) + tuple(slice(0, n) for n in source.shape[1:])] = source
            self._buffers[phase] = buffer
        self.shape = (planes, self.plane)

    def __len__(self) -> int:
        return len(self._taps)

    def __getitem__(self, number: int) -> np.ndarray:
        phase, shift = self._taps[number]
        return self._buffers[phase][shift:shift + self.shape[0] * self.plane].reshape(self.shape)

    def crop(self, result: np.ndarray) -> np.ndarray:
        """(P, plane) result on the grid -> (P, *out) view of the real outputs."""
        grid = result.reshape((self.shape[0],) + self.grid)
        return grid[(slice(None),) + tuple(slice(0, o) for o in self.out)]


def plane_blocks(padded: np.ndarray):
    """(all planes as one (N*C, *spatial) array, slices of planes of about BLOCK_BYTES)."""
    planes = padded.reshape((-1,) + padded.shape[2:])
    per_block = max(1, BLOCK_BYTES // max(1, planes[0].nbytes))
    return planes, [slice(i, min(len(planes), i + per_block))
                    for i in range(0, len(planes), per_block)]


def image_blocks(batch: int, image_bytes: int):
    """Slices of whole images, about BLOCK_BYTES each (at least one image)."""
    step = max(1, BLOCK_BYTES // max(1, image_bytes))
    return [slice(i, min(batch, i + step)) for i in range(0, batch, step)]


def image_row_blocks(batch: int, rows: int, row_bytes: int):
    """(images, output rows) slice pairs covering a batch in blocks of about BLOCK_BYTES of
    output: several whole images when they are small, else bands of rows of one image."""
    if rows * row_bytes <= BLOCK_BYTES:
        return [(images, slice(0, rows)) for images in image_blocks(batch, rows * row_bytes)]
    step = max(1, BLOCK_BYTES // max(1, row_bytes))
    return [(slice(i, i + 1), slice(r, min(rows, r + step)))
            for i in range(batch) for r in range(0, rows, step)]


def window_view(padded: np.ndarray, out, kernel, strides, dilations) -> np.ndarray:
    """Read-only (N, C, *kernel, *out) im2col view of `padded` (no copy)."""
    lead = padded.strides[:2]
    spatial = padded.strides[2:]
    strides_k = tuple(st * d for st, d in zip(spatial, dilations))
    strides_o = tuple(st * s for st, s in zip(spatial, strides))
    return as_strided(padded, padded.shape[:2] + tuple(kernel) + tuple(out),
                      lead + strides_k + strides_o, writeable=False)


def batch_chunk(per_image_elements: int, itemsize: int, batch: int) -> int:
    """Images per im2col chunk, so the column buffer stays near COLUMN_BUFFER_BYTES."""
    return max(1, min(batch, COLUMN_BUFFER_BYTES // max(1, per_image_elements * itemsize)))
