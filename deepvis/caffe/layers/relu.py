"""ReLU: max(x, 0) + negative_slope * min(x, 0), i.e. Relu, or LeakyRelu when sloped."""
from __future__ import annotations

from .base import Converter, Site, same_shape


def _emit(site: Site):
    slope = float(site.layer.param("relu_param").get("negative_slope", 0.0))
    if slope == 0.0:
        site.g.node("Relu", site.inputs[:1], site.outputs[:1])
    else:
        site.g.node("LeakyRelu", site.inputs[:1], site.outputs[:1], alpha=slope)


RELU = Converter(tops=same_shape, emit=_emit)
