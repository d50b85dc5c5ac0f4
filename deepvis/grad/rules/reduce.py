"""ReduceSum and ReduceMean (every mode: the true, linear derivative).

dy (with the reduced axes put back as size 1 when keepdims=0) is expanded over the reduced
axes, divided by their element count for ReduceMean. Axes come from the second input (from
opset 13 for ReduceSum, 18 for ReduceMean: the dynamo exporter's global pooling) or from the
attribute, and must be constants; no axes means all of them, or none with
noop_with_empty_axes.
"""
from __future__ import annotations

import numpy as np


def reduce_sum(ctx, node, dys):
    return _spread(ctx, node, dys[0], mean=False)


def reduce_mean(ctx, node, dys):
    return _spread(ctx, node, dys[0], mean=True)


def _spread(ctx, node, dy, mean: bool):
    x = node.input[0]
    shape = ctx.shape(x)
    if shape is None:
        raise ctx.unsupported(f"needs the rank of {x!r}")
    rank = len(shape)
    axes = _axes(ctx, node, rank)
    rest = [None] * (len(node.input) - 1)
    if not axes:  # noop_with_empty_axes: the identity
        return [dy] + rest
    if not ctx.attr("keepdims", 1):
        dy = ctx.emit("Unsqueeze", [dy, ctx.iconst(axes)])
    if mean:
        dy = ctx.emit("Mul", [dy, _inverse_count(ctx, x, node.output[0], axes)])
    return [ctx.emit("Expand", [dy, ctx.shape_of(x)])] + rest


def _inverse_count(ctx, x: str, y: str, axes: list[int]) -> str:
    """1 / (elements averaged per output): a constant when the reduced dims are static, else
    size(y) / size(x) at run time (a batch of any size reduced along)."""
    shape = ctx.shape(x)
    if all(shape[a] is not None for a in axes):
        return ctx.fconst(1.0 / np.prod([shape[a] for a in axes]))
    sizes = [ctx.emit("Cast", [ctx.emit("Size", [name])], to=ctx.elem_type) for name in (y, x)]
    return ctx.emit("Div", sizes)


def _axes(ctx, node, rank: int) -> list[int]:
    if len(node.input) > 1 and node.input[1]:
        given = ctx.value(node.input[1])
        if given is None:
            raise ctx.unsupported("needs constant axes")
        axes = [int(a) for a in np.ravel(given)]
    else:
        axes = list(ctx.attr("axes", []) or [])
    if not axes and not ctx.attr("noop_with_empty_axes", 0):
        axes = list(range(rank))
    return sorted(a % rank for a in axes)


RULES = {"ReduceSum": reduce_sum, "ReduceMean": reduce_mean}
