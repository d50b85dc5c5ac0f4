"""BatchNormalization in inference form (every mode).

y = (x - mean) * scale / sqrt(var + epsilon) + B, per channel (axis 1), so
dx = dy * scale / sqrt(var + epsilon). The factor is computed in the graph from the forward
weights (runtimes fold it), keeping the gradient graph free of copied parameters.
"""
from __future__ import annotations


def batch_normalization(ctx, node, dys):
    if ctx.attr("training_mode", 0):
        raise ctx.unsupported("training-mode batch statistics have no inference gradient")
    x, scale, _, _, var = node.input[:5]
    rank = len(ctx.static_shape(x))
    std = ctx.emit("Sqrt", [ctx.emit("Add", [var, ctx.fconst(ctx.attr("epsilon", 1e-5))])])
    factor = ctx.emit("Reshape", [ctx.emit("Div", [scale, std]),
                                  ctx.iconst([-1] + [1] * (rank - 2))])
    return [ctx.emit("Mul", [dys[0], factor])] + [None] * 4


RULES = {"BatchNormalization": batch_normalization}
