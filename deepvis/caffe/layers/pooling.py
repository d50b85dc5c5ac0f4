"""Pooling with Caffe's output size (ceil by default, plus the clip rule) and AVE divisor.

ONNX pooling is emitted with ceil_mode 0 and explicit end pads that make the floor
formula land on Caffe's size; every onnxruntime release and execution provider
agrees on that form. MAX is then exact (extra pads are -inf). AVE with
count_include_pad=1 divides by the whole window including the extra end pads,
whereas Caffe stops counting at the padded border, so when extra end pads are
needed AVE is emitted as a depthwise sum (Conv with ones) times a per-position
1/pool_size map computed here from Caffe's formula.
"""
from __future__ import annotations

import math

import numpy as np

from ...errors import UnsupportedError
from .base import Converter, Site, geometry


def caffe_pooled_size(size: int, k: int, s: int, p: int, ceil: bool = True) -> int:
    """Caffe's pooled size: ceil (or floor) division, then the last window must start inside
    the input or its begin pad (checked only when padded, as in Caffe)."""
    span = size + 2 * p - k
    out = (math.ceil(span / s) if ceil else span // s) + 1
    if p > 0 and (out - 1) * s >= size + p:
        out -= 1
    return out


def extra_end_pad(size: int, k: int, s: int, p: int, out: int) -> int:
    """Rows past the padded input that the last Caffe window overhangs."""
    return max(0, (out - 1) * s + k - (size + 2 * p))


def ave_divisors(size: int, k: int, s: int, p: int, out: int) -> np.ndarray:
    """Caffe's AVE pool_size per output position along one axis: the window clipped to the
    padded extent [-p, size + p)."""
    start = np.arange(out) * s - p
    return np.minimum(start + k, size + p) - start


def _settings(layer, in_shape):
    p = layer.param("pooling_param")
    pool = p.get("pool", "MAX")
    if pool not in ("MAX", "AVE"):
        raise UnsupportedError(f"layer {layer.name!r} (Pooling): pool method {pool} is not "
                               "supported (only MAX and AVE)")
    if len(in_shape) != 4:
        raise UnsupportedError(f"layer {layer.name!r} (Pooling): needs a 4-D input, got {in_shape}")
    size = list(in_shape[2:])
    if p.get("global_pooling", False):
        return dict(pool=pool, glob=True, kernel=size, stride=[1, 1], pad=[0, 0], size=size,
                    out=[1, 1])
    kernel = geometry(p, 2, "kernel_size", 0, layer)
    if min(kernel) <= 0:
        raise UnsupportedError(f"layer {layer.name!r} (Pooling): kernel size is not given")
    stride = geometry(p, 2, "stride", 1, layer)
    pad = geometry(p, 2, "pad", 0, layer)
    ceil = p.get("round_mode", "CEIL") == "CEIL"
    out = [caffe_pooled_size(n, k, s, q, ceil) for n, k, s, q in zip(size, kernel, stride, pad)]
    return dict(pool=pool, glob=False, kernel=kernel, stride=stride, pad=pad, size=size, out=out)


def _tops(layer, in_shapes):
    c = _settings(layer, in_shapes[0])
    return [tuple(in_shapes[0][:2]) + tuple(c["out"])]


def _emit(site: Site):
    c = _settings(site.layer, site.in_shapes[0])
    g, x, y = site.g, site.inputs[0], site.outputs[0]
    if c["glob"]:
        g.node("GlobalMaxPool" if c["pool"] == "MAX" else "GlobalAveragePool", [x], [y])
        return
    k, s, p = c["kernel"], c["stride"], c["pad"]
    extra = [extra_end_pad(n, *args, o) for n, args, o in zip(c["size"], zip(k, s, p), c["out"])]
    pads = p + [q + e for q, e in zip(p, extra)]
    if any(q + e >= kk for q, e, kk in zip(p, extra, k)):
        raise UnsupportedError(f"layer {site.layer.name!r} (Pooling): the last window lies wholly "
                               f"in the padding (kernel {k}, stride {s}, pad {p}, "
                               f"input {c['size']})")
    if c["pool"] == "MAX":
        g.node("MaxPool", [x], [y], kernel_shape=k, strides=s, pads=pads, ceil_mode=0)
    elif not any(extra):
        g.node("AveragePool", [x], [y], kernel_shape=k, strides=s, pads=pads,
               count_include_pad=1, ceil_mode=0)
    else:
        channels = site.in_shapes[0][1]
        ones = site.weight(np.ones((channels, 1, *k), np.float32), "ones")
        summed = g.node("Conv", [x, ones], [site.tmp("sum")], kernel_shape=k, strides=s,
                        pads=pads, group=channels)
        rows, cols = (ave_divisors(n, kk, ss, q, o)
                      for n, kk, ss, q, o in zip(c["size"], k, s, p, c["out"]))
        inverse = site.weight(1.0 / np.outer(rows, cols), "inv_count")
        g.node("Mul", [summed, inverse], [y])


POOLING = Converter(tops=_tops, emit=_emit)
