"""Concat along `axis`, or the legacy `concat_dim` when only that is given."""
from __future__ import annotations

from ...errors import FormatError
from .base import Converter, Site, canonical_axis


def _axis(layer, in_shapes) -> int:
    p = layer.param("concat_param")
    axis = p.get("axis", p.get("concat_dim", 1))
    return canonical_axis(int(axis), len(in_shapes[0]), layer)


def _tops(layer, in_shapes):
    axis = _axis(layer, in_shapes)
    first = in_shapes[0]
    for shape in in_shapes[1:]:
        if len(shape) != len(first) or any(a != b for i, (a, b) in enumerate(zip(shape, first))
                                           if i != axis):
            raise FormatError(f"layer {layer.name!r} (Concat): bottom shapes {in_shapes} differ "
                              f"outside axis {axis}")
    total = sum(shape[axis] for shape in in_shapes)
    return [first[:axis] + (total,) + first[axis + 1:]]


def _emit(site: Site):
    site.g.node("Concat", site.inputs, site.outputs[:1], axis=_axis(site.layer, site.in_shapes))


CONCAT = Converter(tops=_tops, emit=_emit)
