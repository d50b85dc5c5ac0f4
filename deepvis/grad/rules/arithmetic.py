"""Elementwise arithmetic with broadcasting (every mode: the true derivative).

Add, Sum  each operand gets dy, summed over its broadcast axes.
Sub       a gets dy, b gets -dy.
Mul       a gets dy * b, b gets dy * a.
Div       a gets dy / b, b gets -dy * y / b.
Pow       the base gets dy * p * x^(p-1); a data-dependent exponent is refused.
Sqrt      dy / (2 y).
Only operands computed from the network input get gradients, so a constant operand costs nothing.
"""
from __future__ import annotations

from .broadcast import unbroadcast


def add(ctx, node, dys):
    return _each(ctx, node, [dys[0]] * len(node.input))


def sub(ctx, node, dys):
    a, b = node.input
    return _each(ctx, node, [dys[0], ctx.emit("Neg", [dys[0]]) if ctx.needs_grad(b) else None])


def mul(ctx, node, dys):
    a, b = node.input
    return _each(ctx, node, [ctx.emit("Mul", [dys[0], b]) if ctx.needs_grad(a) else None,
                             ctx.emit("Mul", [dys[0], a]) if ctx.needs_grad(b) else None])


def div(ctx, node, dys):
    a, b = node.input
    da = ctx.emit("Div", [dys[0], b]) if ctx.needs_grad(a) else None
    db = None
    if ctx.needs_grad(b):
        ratio = ctx.emit("Div", [ctx.emit("Mul", [dys[0], node.output[0]]), b])
        db = ctx.emit("Neg", [ratio])
    return _each(ctx, node, [da, db])


def power(ctx, node, dys):
    x, p = node.input
    if ctx.info.elem_type(p) != ctx.elem_type:
        p = ctx.emit("Cast", [p], to=ctx.elem_type)
    lowered = ctx.emit("Pow", [x, ctx.emit("Sub", [p, ctx.fconst(1.0)])])
    slope = ctx.emit("Mul", [lowered, p])
    return _each(ctx, node, [ctx.emit("Mul", [dys[0], slope]), None])


def sqrt(ctx, node, dys):
    return [ctx.emit("Div", [dys[0], ctx.emit("Mul", [node.output[0], ctx.fconst(2.0)])])]


def _each(ctx, node, grads):
    """Bring each operand's gradient back to that operand's shape; skip constants."""
    out = node.output[0]
    return [unbroadcast(ctx, g, x, out) if g is not None and ctx.needs_grad(x) else None
            for g, x in zip(grads, node.input)]


RULES = {"Add": add, "Sum": add, "Sub": sub, "Mul": mul, "Div": div, "Pow": power, "Sqrt": sqrt}
