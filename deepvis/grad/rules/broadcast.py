"""Undo NumPy-style broadcasting on a gradient: sum over the axes an operand was stretched on."""
from __future__ import annotations


def unbroadcast(ctx, grad: str, operand: str, result: str) -> str:
    """`grad` has the shape of `result`; return it summed down to the shape of `operand`."""
    have, want = ctx.shape(result), ctx.shape(operand)
    if have is None or want is None:
        raise ctx.unsupported(f"needs the ranks of {operand!r} and {result!r} to undo broadcasting")
    lead = len(have) - len(want)
    axes = list(range(lead)) + [lead + i for i, d in enumerate(want)
                                if d == 1 and have[lead + i] != 1]
    if not axes:
        return grad
    summed = ctx.emit("ReduceSum", [grad, ctx.iconst(axes)], keepdims=1)
    return ctx.emit("Reshape", [summed, ctx.shape_of(operand)]) if lead else summed
