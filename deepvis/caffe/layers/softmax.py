"""Softmax over one axis (ONNX opset >= 13 has Caffe's single-axis semantics)."""
from __future__ import annotations

from .base import Converter, Site, canonical_axis, same_shape


def _emit(site: Site):
    axis = int(site.layer.param("softmax_param").get("axis", 1))
    site.g.node("Softmax", site.inputs[:1], site.outputs[:1],
                axis=canonical_axis(axis, len(site.in_shapes[0]), site.layer))


SOFTMAX = Converter(tops=same_shape, emit=_emit)
