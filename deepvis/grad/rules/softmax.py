"""Softmax over one axis (opset >= 13 semantics; every mode, as Caffe's Deconv falls back to
Backward): dx = y * (dy - sum_axis(dy * y))."""
from __future__ import annotations


def softmax(ctx, node, dys):
    y, dy = node.output[0], dys[0]
    dot = ctx.emit("ReduceSum", [ctx.emit("Mul", [dy, y]), ctx.iconst([ctx.attr("axis", -1)])],
                   keepdims=1)
    return [ctx.emit("Mul", [y, ctx.emit("Sub", [dy, dot])])]


RULES = {"Softmax": softmax}
