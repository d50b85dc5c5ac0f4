"""Gather, GatherElements and ScatterElements (the max-pool gradient: duplicate indices
accumulate under reduction="add", which unbuffered ufunc.at guarantees), and NonZero (the
axes a gradient sums over when only a run knows which were broadcast)."""
from __future__ import annotations

import numpy as np

from .node import NodeSpec


def _wrap(indices: np.ndarray, length: int) -> np.ndarray:
    """Negative indices count from the end, as in ONNX; out-of-range ones raise."""
    indices = np.where(indices < 0, indices + length, indices)
    if indices.size and (indices.min() < 0 or indices.max() >= length):
        raise IndexError(f"index out of range for axis of length {length}")
    return indices


def gather(spec: NodeSpec):
    axis = spec.attr("axis", 0)

    def run(data, indices):
        return (np.take(data, _wrap(indices, data.shape[axis]), axis=axis),)

    return run


def gather_elements(spec: NodeSpec):
    axis = spec.attr("axis", 0)

    def run(data, indices):
        return (np.take_along_axis(data, _wrap(indices, data.shape[axis]), axis=axis),)

    return run


_REDUCERS = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def scatter_elements(spec: NodeSpec):
    axis = spec.attr("axis", 0)
    reduction = spec.attr("reduction", "none")
    if reduction != "none" and reduction not in _REDUCERS:
        raise spec.unsupported(f"reduction={reduction!r}")

    def run(data, indices, updates):
        ax = axis + data.ndim if axis < 0 else axis
        wrapped = _wrap(indices, data.shape[ax])
        index = tuple(wrapped if a == ax else _position(indices.shape, a)
                      for a in range(data.ndim))
        result = data.copy()
        if reduction == "none":
            result[index] = updates
        else:
            _REDUCERS[reduction].at(result, index, updates)
        return (result,)

    return run


def _position(shape, axis: int) -> np.ndarray:
    """Coordinate along `axis` of every element of a tensor of `shape`, broadcastable."""
    view = [1] * len(shape)
    view[axis] = shape[axis]
    return np.arange(shape[axis]).reshape(view)


def non_zero(spec: NodeSpec):
    def run(x):
        """(rank, count) indices in row-major order; a scalar counts as one element."""
        return (np.array(np.nonzero(np.atleast_1d(x)), dtype=np.int64),)

    return run


KERNELS = {"Gather": gather, "GatherElements": gather_elements,
           "ScatterElements": scatter_elements, "NonZero": non_zero}
