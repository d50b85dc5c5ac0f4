"""Ops that only move values around (every mode: route dy back unchanged).

Identity, Dropout (inference)  dy.
Flatten, Reshape, Squeeze,     dy reshaped to the input's runtime shape.
Unsqueeze
Transpose                      dy transposed by the inverse permutation.
Concat                         a Slice of dy per input along the axis (static sizes).
Pad (constant mode)            dy with the padded border sliced off (non-negative pads).
Gather (constant indices)      dy added into zeros at the gathered positions (ScatterElements
                               with reduction="add", so repeated indices sum), the index
                               dims of dy first flattened into one axis.
"""
from __future__ import annotations

import numpy as np
import onnx

_INT64_MAX = np.iinfo(np.int64).max


def identity(ctx, node, dys):
    return [dys[0]] + [None] * (len(node.input) - 1)


def dropout(ctx, node, dys):
    if len(node.input) > 2 and node.input[2]:
        training = ctx.value(node.input[2])
        if training is None or bool(training):
            raise ctx.unsupported("training-mode dropout is random; only inference is handled")
    return identity(ctx, node, dys)


def reshape(ctx, node, dys):
    x = node.input[0]
    return [ctx.emit("Reshape", [dys[0], ctx.shape_of(x)])] + [None] * (len(node.input) - 1)


def transpose(ctx, node, dys):
    perm = ctx.attr("perm") or list(range(_rank(ctx, node.input[0])))[::-1]
    return [ctx.emit("Transpose", [dys[0]], perm=[int(i) for i in np.argsort(perm)])]


def concat(ctx, node, dys):
    axis = ctx.attr("axis") % _rank(ctx, node.output[0])
    grads, start = [], 0
    for x in node.input:
        size = (ctx.shape(x) or [None] * (axis + 1))[axis]
        if size is None:
            raise ctx.unsupported(f"needs the static size of {x!r} along axis {axis}")
        grads.append(ctx.emit("Slice", [dys[0], ctx.iconst([start]), ctx.iconst([start + size]),
                                        ctx.iconst([axis])]) if ctx.needs_grad(x) else None)
        start += size
    return grads


def pad(ctx, node, dys):
    if ctx.attr("mode", "constant") != "constant":
        raise ctx.unsupported(f"only constant padding is handled, not {ctx.attr('mode')!r}")
    pads = ctx.value(node.input[1])
    if pads is None or (pads < 0).any():
        raise ctx.unsupported("needs constant, non-negative pads")
    axes_value = ctx.value(node.input[3]) if len(node.input) > 3 and node.input[3] else None
    rank = len(pads) // 2
    axes = [int(a) for a in axes_value] if axes_value is not None else list(range(rank))
    begin, end = pads[:rank].astype(np.int64), pads[rank:].astype(np.int64)
    ends = np.where(end > 0, -end, _INT64_MAX)  # Slice counts negative ends from the back
    dx = ctx.emit("Slice", [dys[0], ctx.iconst(begin), ctx.iconst(ends), ctx.iconst(axes)])
    return [dx] + [None] * (len(node.input) - 1)


def gather(ctx, node, dys):
    data, indices = node.input
    index = ctx.value(indices)
    if index is None:
        raise ctx.unsupported("needs constant indices")
    shape = list(ctx.shape(data) or [])
    if not shape:
        raise ctx.unsupported(f"needs the rank of {data!r}")
    axis = ctx.attr("axis", 0) % len(shape)
    index = np.asarray(index, np.int64).ravel()
    if (index < 0).any():
        if shape[axis] is None:
            raise ctx.unsupported(f"negative indices need the static size of axis {axis}")
        index = np.where(index < 0, index + shape[axis], index)
    # dy viewed with data's shape, the gathered axis holding len(index) entries
    sizes = ctx.shape_of(data)
    parts = [ctx.emit("Slice", [sizes, ctx.iconst([0]), ctx.iconst([axis])]),
             ctx.iconst([index.size]),
             ctx.emit("Slice", [sizes, ctx.iconst([axis + 1]), ctx.iconst([len(shape)])])]
    dy = ctx.emit("Reshape", [dys[0], ctx.emit("Concat", parts, axis=0)])
    position = [1] * len(shape)
    position[axis] = index.size
    where = ctx.emit("Expand", [ctx.iconst(index.reshape(position)), ctx.shape_of(dy)])
    zeros = ctx.emit("ConstantOfShape", [ctx.shape_of(data)],
                     value=onnx.numpy_helper.from_array(np.zeros(1, ctx.dtype)))
    dx = ctx.emit("ScatterElements", [zeros, where, dy], axis=axis, reduction="add")
    return [dx, None]


def _rank(ctx, name: str) -> int:
    shape = ctx.shape(name)
    if shape is None:
        raise ctx.unsupported(f"needs the rank of {name!r}")
    return len(shape)


RULES = {"Identity": identity, "Dropout": dropout, "Flatten": reshape, "Reshape": reshape,
         "Squeeze": reshape, "Unsqueeze": reshape, "Transpose": transpose, "Concat": concat,
         "Pad": pad, "Gather": gather}
