"""Flatten and Reshape, with the batch dim kept dynamic.

ONNX Reshape's `0` copies the input dim at the same position, which is exactly
Caffe's `0` for dims inside the reshaped range and for the untouched leading dims;
trailing dims after the range are written out (they never include the batch).
"""
from __future__ import annotations

import math

import numpy as np

from ...errors import FormatError
from .base import Converter, Site, canonical_axis


def _flatten_range(layer, in_shape):
    p = layer.param("flatten_param")
    rank = len(in_shape)
    start = canonical_axis(int(p.get("axis", 1)), rank, layer)
    end = canonical_axis(int(p.get("end_axis", -1)), rank, layer)
    return start, end


def _flatten_tops(layer, in_shapes):
    shape = in_shapes[0]
    start, end = _flatten_range(layer, shape)
    return [shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:]]


def _flatten_emit(site: Site):
    shape = site.in_shapes[0]
    start, end = _flatten_range(site.layer, shape)
    if start == 1 and end == len(shape) - 1:
        site.g.node("Flatten", site.inputs[:1], site.outputs[:1], axis=1)
        return
    target = [0] * start + [-1] + list(shape[end + 1:])
    site.g.node("Reshape", [site.inputs[0], site.g.const(target, np.int64)], site.outputs[:1])


def _reshape_spec(layer, in_shape):
    """(start, end, dims): bottom dims [start, end) are replaced by `dims` (Caffe 0/-1 kept)."""
    p = layer.param("reshape_param")
    dims = [int(d) for d in p.get("shape", {}).get("dim", [])]
    rank = len(in_shape)
    axis, num_axes = int(p.get("axis", 0)), int(p.get("num_axes", -1))
    start = axis if axis >= 0 else rank + axis + 1
    end = rank if num_axes == -1 else start + num_axes
    if not 0 <= start <= end <= rank:
        raise FormatError(f"layer {layer.name!r} (Reshape): axis {axis} / num_axes {num_axes} do "
                          f"not fit a {rank}-D input")
    if dims.count(-1) > 1:
        raise FormatError(f"layer {layer.name!r} (Reshape): more than one -1 in shape {dims}")
    return start, end, dims


def _reshape_tops(layer, in_shapes):
    shape = in_shapes[0]
    start, end, dims = _reshape_spec(layer, shape)
    resolved = [shape[start + i] if d == 0 else d for i, d in enumerate(dims)]
    known = math.prod(d for d in resolved if d != -1) * math.prod(shape[:start] + shape[end:])
    total = math.prod(shape)
    if -1 in resolved:
        if known == 0 or total % known:
            raise FormatError(f"layer {layer.name!r} (Reshape): cannot infer -1 in {dims} for "
                              f"input {shape}")
        resolved[resolved.index(-1)] = total // known
    elif known != total:
        raise FormatError(f"layer {layer.name!r} (Reshape): shape {dims} does not hold the "
                          f"{total} values of input {shape}")
    return [shape[:start] + tuple(resolved) + shape[end:]]


def _reshape_emit(site: Site):
    shape = site.in_shapes[0]
    start, end, dims = _reshape_spec(site.layer, shape)
    target = [0] * start + dims + list(shape[end:])
    site.g.node("Reshape", [site.inputs[0], site.g.const(target, np.int64)], site.outputs[:1])


FLATTEN = Converter(tops=_flatten_tops, emit=_flatten_emit)
RESHAPE = Converter(tops=_reshape_tops, emit=_reshape_emit)
