"""Resize (every mode: the true derivative). Resize is linear in x: along each resized axis
y = M x with M the interpolation matrix (deepvis.graph.resize), so dx = M^T dy, one MatMul
per axis with M built here as a constant. Only the last two axes may be resized; sizes come
from the scales input (which also sets the coordinate transform) or from static shapes.
"""
from __future__ import annotations

from ...errors import UnsupportedError
from ...graph.resize import axis_matrix, check_attributes


def resize(ctx, node, dys):
    x, y = node.input[0], node.output[0]
    attrs = {a.name: ctx.attr(a.name) for a in node.attribute}
    try:
        check_attributes(attrs, f"Resize node {node.name!r}")
    except UnsupportedError as exc:
        raise ctx.unsupported(str(exc)) from None
    if attrs.get("coordinate_transformation_mode") == "tf_crop_and_resize":
        raise ctx.unsupported("tf_crop_and_resize has no gradient rule")
    in_shape, out_shape = ctx.static_shape(x), ctx.static_shape(y)
    rank = len(in_shape)
    factors = _scales(ctx, node, rank)
    dx = dys[0]
    for axis in range(rank):
        n_in, n_out = in_shape[axis], out_shape[axis]
        factor = factors[axis] if factors else (n_out / n_in if n_in else 1.0)
        if n_in == n_out and factor == 1.0:
            continue
        if axis < rank - 2:
            raise ctx.unsupported(f"resizes axis {axis}; only the last two axes are handled")
        try:
            matrix = axis_matrix(n_in, n_out, factor, attrs)
        except UnsupportedError as exc:
            raise ctx.unsupported(str(exc)) from None
        if axis == rank - 1:  # (..., Wo) @ (Wo, W)
            dx = ctx.emit("MatMul", [dx, ctx.fconst(matrix)])
        else:  # (H, Ho) @ (..., Ho, W)
            dx = ctx.emit("MatMul", [ctx.fconst(matrix.T), dx])
    return [dx] + [None] * (len(node.input) - 1)


def _scales(ctx, node, rank: int) -> list[float] | None:
    """Per-axis scale factors when the scales input is a non-empty constant, else None."""
    if len(node.input) < 3 or not node.input[2]:
        return None
    given = ctx.value(node.input[2])
    if given is None:
        if len(node.input) > 3 and node.input[3]:
            return None  # sizes decide; scales is a runtime-empty placeholder
        raise ctx.unsupported("needs constant scales")
    if given.size == 0:
        return None
    axes = ctx.attr("axes")
    factors = [1.0] * rank
    for axis, value in zip(axes if axes is not None else range(rank), given.ravel()):
        factors[axis % rank] = float(value)
    return factors
RULES = {"Resize": resize}
