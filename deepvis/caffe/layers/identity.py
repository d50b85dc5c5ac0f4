"""Layers that copy their bottom: Dropout (identity at test time) and Split (one copy per top)."""
from __future__ import annotations

from .base import Converter, Site, same_shape


def _emit(site: Site):
    for top in site.outputs:
        site.g.node("Identity", site.inputs[:1], [top])


def _split_tops(layer, in_shapes):
    return [in_shapes[0]] * len(layer.tops)


DROPOUT = Converter(tops=same_shape, emit=_emit)
SPLIT = Converter(tops=_split_tops, emit=_emit)
