"""Ops that make tensors from attributes or shapes: Constant, ConstantOfShape, Range."""
from __future__ import annotations

import math

import numpy as np

from .node import NodeSpec


def constant(spec: NodeSpec):
    value = _constant_value(spec)

    def run():
        return (value,)

    return run


def _constant_value(spec: NodeSpec) -> np.ndarray:
    if "value" in spec.attrs:
        return np.array(spec.attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in spec.attrs:
            return np.array(spec.attrs[key], dtype=dtype)
    raise spec.unsupported(f"Constant with attribute(s) {sorted(spec.attrs)}")


def constant_of_shape(spec: NodeSpec):
    fill = spec.attr("value")
    fill = np.zeros(1, dtype=np.float32) if fill is None else np.ravel(fill)

    def run(shape):
        return (np.full([int(d) for d in shape], fill[0], dtype=fill.dtype),)

    return run


def range_(spec: NodeSpec):
    def run(start, limit, delta):
        dtype = start.dtype
        first, stop, step = start.item(), limit.item(), delta.item()
        count = max(math.ceil((stop - first) / step), 0)
        if np.issubdtype(dtype, np.integer):
            return (np.arange(first, first + count * step, step, dtype=dtype),)
        return ((first + np.arange(count, dtype=dtype) * dtype.type(step)).astype(dtype),)

    return run


KERNELS = {"Constant": constant, "ConstantOfShape": constant_of_shape, "Range": range_}
