"""Undo NumPy-style broadcasting on a gradient: sum over the axes an operand was stretched on.

The axes are fixed when building wherever the shapes say which they are; where they cannot
(a tensor behind a Reshape to a computed shape, whose rank or sizes no inference finds), the
graph compares the two shapes when it runs.
"""
from __future__ import annotations

import numpy as np
import onnx


def unbroadcast(ctx, grad: str, operand: str, result: str) -> str:
    """`grad` has the shape of `result`; return it summed down to the shape of `operand`."""
    have, want = ctx.dims(result), ctx.dims(operand)
    axes = _stretched_axes(have, want) if have is not None and want is not None else None
    if axes is None:
        return _unbroadcast_at_run_time(ctx, grad, operand)
    if not axes:
        return grad
    summed = ctx.emit("ReduceSum", [grad, ctx.iconst(axes)], keepdims=1)
    lead = len(have) - len(want)
    return ctx.emit("Reshape", [summed, ctx.shape_of(operand)]) if lead else summed


def _stretched_axes(have: tuple, want: tuple) -> list[int] | None:
    """Axes of the result the operand was stretched along, or None when the dims cannot tell.

    An operand dim of 1 is summed over whatever the result's size (summing a size-1 axis
    changes nothing); a known size other than 1, or the result's own symbol, is not; an
    unknown operand dim is decided only where the result's is 1.
    """
    lead = len(have) - len(want)
    if lead < 0:
        return None
    axes = list(range(lead))
    for i, (mine, theirs) in enumerate(zip(want, have[lead:]), lead):
        if mine == 1 and theirs != 1:
            axes.append(i)
        elif not (isinstance(mine, int) or theirs == 1 or (mine is not None and mine == theirs)):
            return None
    return axes


def _unbroadcast_at_run_time(ctx, grad: str, operand: str) -> str:
    """Sum over the axes where the operand's shape, padded with leading 1s to the gradient's
    rank, differs from the gradient's: those are its stretched ones. (The gradient's own
    shape, not the result's: a MatMul operand's gradient differs from the result in the
    last two axes, which were not broadcast.)"""
    have, want = ctx.emit("Shape", [grad]), ctx.shape_of(operand)
    lead = ctx.emit("Sub", [ctx.emit("Shape", [have]), ctx.emit("Shape", [want])])
    ones = ctx.emit("ConstantOfShape", [lead],
                    value=onnx.numpy_helper.from_array(np.ones(1, np.int64)))
    padded = ctx.emit("Concat", [ones, want], axis=0)
    differs = ctx.emit("Not", [ctx.emit("Equal", [padded, have])])
    axes = ctx.emit("Reshape", [ctx.emit("NonZero", [differs]), ctx.iconst([-1])])
    summed = ctx.emit("ReduceSum", [grad, axes], keepdims=1, noop_with_empty_axes=1)
    return ctx.emit("Reshape", [summed, want])
