"""Where (every mode: the true derivative; a selection, not a rectifier).

y = X where the condition holds, else Y, with the three operands broadcast together:
X gets dy where the condition holds, Y gets dy where it does not, each summed back to its
own shape. The condition is boolean, so no gradient flows to it.
"""
from __future__ import annotations

from .broadcast import unbroadcast


def where(ctx, node, dys):
    condition, x, y = node.input
    out = node.output[0]
    grads = [None, None, None]
    if ctx.needs_grad(x):
        grads[1] = unbroadcast(ctx, ctx.masked(dys[0], condition), x, out)
    if ctx.needs_grad(y):
        grads[2] = unbroadcast(ctx, ctx.masked(dys[0], ctx.emit("Not", [condition])), y, out)
    return grads


RULES = {"Where": where}
