"""Ops that move or select elements without arithmetic. Results may be views of their
inputs; no kernel ever writes into an input, so sharing is safe."""
from __future__ import annotations

import numpy as np

from .node import NodeSpec


def reshape(spec: NodeSpec):
    allow_zero = spec.attr("allowzero", 0)

    def run(x, shape):
        target = [int(d) for d in shape]
        if not allow_zero:
            target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
        return (x.reshape(target),)

    return run


def flatten(spec: NodeSpec):
    axis = spec.attr("axis", 1)

    def run(x):
        cut = axis + x.ndim if axis < 0 else axis
        return (x.reshape(int(np.prod(x.shape[:cut])), int(np.prod(x.shape[cut:]))),)

    return run


def transpose(spec: NodeSpec):
    perm = spec.attr("perm")

    def run(x):
        return (np.transpose(x, perm),)

    return run


def squeeze(spec: NodeSpec):
    def run(x, axes=None):
        chosen = spec.axes(axes)
        if chosen is None:
            return (np.squeeze(x),)
        return (np.squeeze(x, axis=tuple(chosen)),)
    return run


def unsqueeze(spec: NodeSpec):
    def run(x, axes=None):
        return (np.expand_dims(x, tuple(spec.axes(axes))),)
    return run


def concat(spec: NodeSpec):
    axis = spec.attr("axis")

    def run(*xs):
        return (np.concatenate(xs, axis=axis),)

    return run


def split(spec: NodeSpec):
    axis = spec.attr("axis", 0)
    count = spec.attr("num_outputs", spec.n_outputs)

    def run(x, sizes=None):
        sizes = list(np.ravel(sizes)) if sizes is not None else spec.attr("split")
        length = x.shape[axis]
        if sizes is None:
            step = -(-length // count)
            sizes = [min(step, length - i * step) for i in range(count)]
        cuts = np.cumsum([int(s) for s in sizes])[:-1]
        return tuple(np.split(x, cuts, axis=axis))

    return run


def slice_(spec: NodeSpec):
    """Starts/ends/axes/steps are inputs from opset 10; Python slices clamp like ONNX does."""
    def run(x, starts=None, ends=None, axes=None, steps=None):
        if starts is None:
            starts, ends = spec.attr("starts"), spec.attr("ends")
        starts, ends = [int(s) for s in np.ravel(starts)], [int(e) for e in np.ravel(ends)]
        axes = spec.axes(axes) or list(range(len(starts)))
        steps = [1] * len(starts) if steps is None else [int(s) for s in np.ravel(steps)]
        index = [slice(None)] * x.ndim
        for axis, start, end, step in zip(axes, starts, ends, steps):
            index[axis] = slice(start, end, step)
        return (x[tuple(index)],)

    return run


def expand(spec: NodeSpec):
    def run(x, shape):
        target = np.broadcast_shapes(x.shape, tuple(int(d) for d in shape))
        return (np.broadcast_to(x, target),)
    return run


def tile(spec: NodeSpec):
    def run(x, repeats):
        return (np.tile(x, [int(r) for r in repeats]),)
    return run


def pad(spec: NodeSpec):
    mode = spec.attr("mode", "constant")
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise spec.unsupported(f"Pad mode {mode!r}")

    def run(x, pads=None, value=None, axes=None):
        pads = [int(p) for p in (spec.attr("pads") if pads is None else np.ravel(pads))]
        axes = spec.axes(axes) or list(range(x.ndim))
        half = len(pads) // 2
        widths = [[0, 0] for _ in range(x.ndim)]
        for i, axis in enumerate(axes):
            widths[axis] = [pads[i], pads[i + half]]
        crop = tuple(slice(max(0, -lo), x.shape[a] - max(0, -hi))
                     for a, (lo, hi) in enumerate(widths))
        grow = [(max(0, lo), max(0, hi)) for lo, hi in widths]
        fill = spec.attr("value", 0.0) if value is None else np.ravel(value)[0]
        extra = {"constant_values": np.asarray(fill, dtype=x.dtype)} if mode == "constant" else {}
        return (np.pad(x[crop], grow, mode=mode, **extra),)

    return run


def shape(spec: NodeSpec):
    start, end = spec.attr("start", 0), spec.attr("end")

    def run(x):
        return (np.array(x.shape[start:end], dtype=np.int64),)

    return run


def size(spec: NodeSpec):
    def run(x):
        return (np.array(x.size, dtype=np.int64),)
    return run


KERNELS = {
    "Reshape": reshape, "Flatten": flatten, "Transpose": transpose, "Squeeze": squeeze,
    "Unsqueeze": unsqueeze, "Concat": concat, "Split": split, "Slice": slice_,
    "Expand": expand, "Tile": tile, "Pad": pad, "Shape": shape, "Size": size,
}
