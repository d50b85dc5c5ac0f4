"""LRN. ACROSS_CHANNELS is ONNX LRN with every parameter copied (both divide alpha by size).
WITHIN_CHANNEL has no ONNX op; it is composed as Caffe builds it internally:
y = x * (1 + alpha * mean_{n x n, zero padded}(x^2))^-beta, with k ignored."""
from __future__ import annotations

from ...errors import UnsupportedError
from .base import Converter, Site, same_shape


def _emit(site: Site):
    p = site.layer.param("lrn_param")
    size = int(p.get("local_size", 5))
    alpha, beta = float(p.get("alpha", 1.0)), float(p.get("beta", 0.75))
    if size % 2 == 0:
        raise UnsupportedError(f"layer {site.layer.name!r} (LRN): local_size {size} must be odd")
    g, x, y = site.g, site.inputs[0], site.outputs[0]
    region = p.get("norm_region", "ACROSS_CHANNELS")
    if region == "ACROSS_CHANNELS":
        g.node("LRN", [x], [y], size=size, alpha=alpha, beta=beta, bias=float(p.get("k", 1.0)))
        return
    if region != "WITHIN_CHANNEL":
        raise UnsupportedError(f"layer {site.layer.name!r} (LRN): norm_region {region}")
    half = (size - 1) // 2
    squared = g.node("Mul", [x, x], [site.tmp("square")])
    # stride 1 and pad (n-1)/2 keep every window inside the padded extent: the divisor is n^2
    mean = g.node("AveragePool", [squared], [site.tmp("mean")], kernel_shape=[size, size],
                  strides=[1, 1], pads=[half] * 4, count_include_pad=1)
    scaled = g.node("Mul", [mean, g.const(alpha)], [site.tmp("scaled")])
    base = g.node("Add", [scaled, g.const(1.0)], [site.tmp("base")])
    factor = g.node("Pow", [base, g.const(-beta)], [site.tmp("factor")])
    g.node("Mul", [x, factor], [y])


LRN = Converter(tops=same_shape, emit=_emit)
