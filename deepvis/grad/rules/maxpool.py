"""Max pooling (every mode: dy goes to the forward switches; deconv keeps them too).

The pooling is recomputed with its Indices output (row-major over the whole tensor, padding
not counted), and dy is scattered into zeros with ScatterElements(reduction="add"), so an input
that wins several overlapping windows receives the sum of their gradients.
GlobalMaxPool is the same with one window covering the spatial extent.
"""
from __future__ import annotations

_COPIED = ("auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides")


def max_pool(ctx, node, dys):
    attrs = {key: ctx.attr(key) for key in _COPIED}
    return [_scatter_to_switches(ctx, node.input[0], dys[0], attrs)]


def global_max_pool(ctx, node, dys):
    x = node.input[0]
    return [_scatter_to_switches(ctx, x, dys[0], {"kernel_shape": ctx.spatial_size(x)})]


def _scatter_to_switches(ctx, x: str, dy: str, attrs: dict) -> str:
    _, switches = ctx.emit("MaxPool", [x], 2, storage_order=0, **attrs)
    flat = ctx.iconst([-1])
    scattered = ctx.emit("ScatterElements", [ctx.zeros_flat_like(x),
                                             ctx.emit("Reshape", [switches, flat]),
                                             ctx.emit("Reshape", [dy, flat])],
                         axis=0, reduction="add")
    return ctx.emit("Reshape", [scattered, ctx.shape_of(x)])


RULES = {"MaxPool": max_pool, "GlobalMaxPool": global_max_pool}
