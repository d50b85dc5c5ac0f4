"""Elementwise Max (every mode): dy goes to the winning operand only.

Winners follow Caffe's Eltwise MAX so ties resolve the same way: the second operand beats the
first when equal, later operands must be strictly greater than the running maximum.
"""
from __future__ import annotations

from .broadcast import unbroadcast


def maximum(ctx, node, dys):
    inputs = list(node.input)
    takes, running = [None], inputs[0]  # takes[i]: operand i beats every earlier one
    for i, x in enumerate(inputs[1:], 1):
        take = (ctx.emit("Not", [ctx.emit("Less", [x, running])]) if i == 1
                else ctx.emit("Greater", [x, running]))
        takes.append(take)
        if i < len(inputs) - 1:
            running = ctx.emit("Max", [running, x])
    grads, later = [None] * len(inputs), None  # later: some later operand took over
    for i in range(len(inputs) - 1, -1, -1):
        if ctx.needs_grad(inputs[i]):
            wins = _and_not(ctx, takes[i], later)
            routed = dys[0] if wins is None else ctx.masked(dys[0], wins)
            grads[i] = unbroadcast(ctx, routed, inputs[i], node.output[0])
        if takes[i] is not None:
            later = takes[i] if later is None else ctx.emit("Or", [later, takes[i]])
    return grads


def _and_not(ctx, take, later):
    if later is None:
        return take
    lost = ctx.emit("Not", [later])
    return lost if take is None else ctx.emit("And", [take, lost])


RULES = {"Max": maximum}
