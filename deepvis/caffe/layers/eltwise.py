"""Eltwise: SUM (with optional per-bottom coefficients), PROD, MAX over equally shaped bottoms."""
from __future__ import annotations

from ...errors import FormatError, UnsupportedError
from .base import Converter, Site


def _tops(layer, in_shapes):
    if any(shape != in_shapes[0] for shape in in_shapes):
        raise FormatError(f"layer {layer.name!r} (Eltwise): bottom shapes {in_shapes} differ")
    return [in_shapes[0]]


def _emit(site: Site):
    p = site.layer.param("eltwise_param")
    operation, coeffs = p.get("operation", "SUM"), [float(c) for c in p.get("coeff", [])]
    g, xs, y = site.g, site.inputs, site.outputs[0]
    if coeffs and (operation != "SUM" or len(coeffs) != len(xs)):
        raise FormatError(f"layer {site.layer.name!r} (Eltwise): coeff needs operation SUM and one "
                          f"value per bottom ({len(xs)}), got {len(coeffs)}")
    if operation == "SUM":
        terms = [x if c == 1.0 else g.node("Mul", [x, g.const(c)], [site.tmp(f"term{i}")])
                 for i, (x, c) in enumerate(zip(xs, coeffs or [1.0] * len(xs)))]
        g.node("Sum", terms, [y])
    elif operation == "PROD":
        product = xs[0]
        for i, x in enumerate(xs[1:], start=1):
            product = g.node("Mul", [product, x], [y if i == len(xs) - 1 else site.tmp("prod")])
    elif operation == "MAX":
        g.node("Max", xs, [y])
    else:
        raise UnsupportedError(f"layer {site.layer.name!r} (Eltwise): operation {operation}")


ELTWISE = Converter(tops=_tops, emit=_emit)
