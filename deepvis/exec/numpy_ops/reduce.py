"""Reductions. Axes come from the input where the op's opset takes them there (ReduceSum
from 13, the others from 18) and from the attribute otherwise; both are accepted."""
from __future__ import annotations

import numpy as np

from .node import NodeSpec


def _reduction(function):
    def factory(spec: NodeSpec):
        keepdims = bool(spec.attr("keepdims", 1))
        noop_when_empty = bool(spec.attr("noop_with_empty_axes", 0))

        def run(x, axes=None):
            chosen = spec.axes(axes)
            if not chosen:
                if noop_when_empty:
                    return (x,)
                chosen = range(x.ndim)
            y = function(x, axis=tuple(chosen), keepdims=keepdims)
            return (np.asarray(y).astype(x.dtype, copy=False),)

        return run
    return factory


def argmax(spec: NodeSpec):
    axis = spec.attr("axis", 0)
    keepdims = bool(spec.attr("keepdims", 1))
    last = bool(spec.attr("select_last_index", 0))

    def run(x):
        if last:
            flipped = np.flip(x, axis=axis)
            index = x.shape[axis] - 1 - np.argmax(flipped, axis=axis)
        else:
            index = np.argmax(x, axis=axis)
        index = np.asarray(index, dtype=np.int64)
        return (np.expand_dims(index, axis) if keepdims else index,)

    return run


KERNELS = {"ReduceSum": _reduction(np.sum), "ReduceMean": _reduction(np.mean),
           "ReduceMax": _reduction(np.max), "ReduceMin": _reduction(np.min), "ArgMax": argmax}
