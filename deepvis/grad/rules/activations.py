"""Rectifying activations: the only ops whose backward differs between modes.

A rectifier passes its input (or a fixed multiple of it) through a switch set by the sign or
the bounds of x: Relu, LeakyRelu, PRelu and Clip (ReLU6). deconv and guided backprop change
only these switches; every other activation keeps its true derivative (smooth.py).

Relu       grad: dy where x > 0 (0 at x == 0, as Caffe's `bottom_data > 0`).
           deconv: max(dy, 0), the forward mask ignored (Zeiler & Fergus, the Caffe fork).
           guided: dy where x > 0 and dy > 0.
LeakyRelu  grad: dy where x > 0, alpha * dy elsewhere.
           deconv: max(dy, 0) (the fork rectifies and only warns about the slope).
           guided: the grad rule applied to max(dy, 0): the negative slope is kept, so
           guided is "rectify the signal, then the true derivative" for every rectifier.
PRelu      as LeakyRelu, with the slope tensor (broadcast to x) in place of alpha.
Clip       grad: dy where min < x < max (a missing bound does not mask).
           deconv: max(dy, 0), the mask ignored (ReLU6 treated as a ReLU).
           guided: max(dy, 0) where min < x < max.
"""
from __future__ import annotations


def relu(ctx, node, dys):
    dy = _rectified(ctx, dys[0])
    if ctx.mode == "deconv":
        return [dy]
    return [ctx.masked(dy, ctx.emit("Greater", [node.input[0], ctx.fconst(0.0)]))]


def leaky_relu(ctx, node, dys):
    dy = _rectified(ctx, dys[0])
    if ctx.mode == "deconv":
        return [dy]
    # Caffe's dy * ((x > 0) + slope * (x <= 0)), as one slope map: alpha + (1 - alpha) * mask
    alpha = ctx.attr("alpha", 0.01)
    positive = ctx.emit("Cast", [ctx.emit("Greater", [node.input[0], ctx.fconst(0.0)])],
                        to=ctx.elem_type)
    slope = ctx.emit("Add", [ctx.emit("Mul", [positive, ctx.fconst(1.0 - alpha)]),
                             ctx.fconst(alpha)])
    return [ctx.emit("Mul", [dy, slope])]


def prelu(ctx, node, dys):
    dy = _rectified(ctx, dys[0])
    if ctx.mode == "deconv":
        return [dy, None]
    x, slope = node.input
    if ctx.info.elem_type(slope) != ctx.elem_type:
        slope = ctx.emit("Cast", [slope], to=ctx.elem_type)
    factor = ctx.emit("Where", [ctx.emit("Greater", [x, ctx.fconst(0.0)]), ctx.fconst(1.0), slope])
    return [ctx.emit("Mul", [dy, factor]), None]


def clip(ctx, node, dys):
    dy = _rectified(ctx, dys[0])
    if ctx.mode == "deconv":
        return [dy]
    x = node.input[0]
    bounds = list(node.input[1:]) + ["", ""]
    inside = None
    for op, bound in (("Greater", bounds[0]), ("Less", bounds[1])):
        if bound:
            test = ctx.emit(op, [x, bound])
            inside = test if inside is None else ctx.emit("And", [inside, test])
    if inside is None:
        return [dy]
    return [ctx.masked(dy, inside)]


def _rectified(ctx, dy: str) -> str:
    """deconv and guided both drop negative top gradients."""
    return dy if ctx.mode == "grad" else ctx.emit("Relu", [dy])


RULES = {"Relu": relu, "LeakyRelu": leaky_relu, "PRelu": prelu, "Clip": clip}
