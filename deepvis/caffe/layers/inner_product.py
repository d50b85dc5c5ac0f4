"""InnerProduct: y = flatten_from(axis)(x) . W^T + b (W stored (K, N) when `transpose`).

The usual axis-1 case is Flatten + Gemm; any other axis keeps the leading dims with a
Reshape and multiplies with MatMul, which broadcasts over them.
"""
from __future__ import annotations

import math

import numpy as np

from .base import Converter, Site, canonical_axis, he_normal, small_bias


def _settings(layer, in_shape):
    p = layer.param("inner_product_param")
    axis = canonical_axis(int(p.get("axis", 1)), len(in_shape), layer)
    return dict(axis=axis, num_output=int(p["num_output"]), bias=bool(p.get("bias_term", True)),
                transpose=bool(p.get("transpose", False)), fan_in=math.prod(in_shape[axis:]))


def _blob_shapes(layer, in_shapes):
    c = _settings(layer, in_shapes[0])
    n, k = c["num_output"], c["fan_in"]
    weight = (k, n) if c["transpose"] else (n, k)
    return [weight, (n,)] if c["bias"] else [weight]


def _tops(layer, in_shapes):
    c = _settings(layer, in_shapes[0])
    return [tuple(in_shapes[0][:c["axis"]]) + (c["num_output"],)]


def _emit(site: Site):
    c = _settings(site.layer, site.in_shapes[0])
    g, x, y = site.g, site.inputs[0], site.outputs[0]
    bias = [site.weight(site.blobs[1], "bias")] if c["bias"] else []
    if c["axis"] == 1:
        if len(site.in_shapes[0]) > 2:
            x = g.node("Flatten", [x], [site.tmp("flatten")], axis=1)
        weight = site.weight(site.blobs[0], "weight")
        g.node("Gemm", [x, weight] + bias, [y], transB=0 if c["transpose"] else 1)
        return
    keep = [0] * c["axis"] + [-1]  # 0 copies a leading dim (the batch stays dynamic)
    flat = g.node("Reshape", [x, g.const(keep, np.int64)], [site.tmp("flatten")])
    matrix = site.blobs[0] if c["transpose"] else site.blobs[0].T
    weight = site.weight(matrix, "weight")
    if not bias:
        g.node("MatMul", [flat, weight], [y])
        return
    product = g.node("MatMul", [flat, weight], [site.tmp("matmul")])
    g.node("Add", [product] + bias, [y])


def _random(layer, shapes, rng, input_std):
    fan_in = shapes[0][0] if layer.param("inner_product_param").get("transpose", False) \
        else shapes[0][1]
    return [he_normal(rng, shapes[0], fan_in, input_std)] + [small_bias(s) for s in shapes[1:]]


INNER_PRODUCT = Converter(tops=_tops, emit=_emit, blob_shapes=_blob_shapes, random_blobs=_random)
