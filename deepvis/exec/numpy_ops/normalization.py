"""LRN, BatchNormalization (inference) and Softmax."""
from __future__ import annotations

import numpy as np

from .binary import scalar_power
from .node import NodeSpec


def lrn(spec: NodeSpec):
    size = spec.attr("size")
    alpha, beta, bias = spec.attr("alpha", 1e-4), spec.attr("beta", 0.75), spec.attr("bias", 1.0)
    before = (size - 1) // 2
    after = size - 1 - before

    def run(x):
        squares = x * x
        c = x.shape[1]
        window_sum = squares.copy()
        for offset in range(-before, after + 1):
            if offset:
                window_sum[:, max(0, -offset):c - max(0, offset)] += \
                    squares[:, max(0, offset):c + min(0, offset)]
        del squares
        window_sum *= alpha / size
        window_sum += bias
        return (x * scalar_power(window_sum, -beta),)

    return run


def batch_normalization(spec: NodeSpec):
    if spec.attr("training_mode", 0) or spec.has_output(1):
        raise spec.unsupported("training mode")
    epsilon = spec.attr("epsilon", 1e-5)

    def run(x, scale, bias, mean, var):
        factor = scale / np.sqrt(var + epsilon)
        shift = bias - mean * factor
        shape = (-1,) + (1,) * (x.ndim - 2)
        y = x * factor.reshape(shape)
        y += shift.reshape(shape)
        return (y,)

    return run


def softmax(spec: NodeSpec):
    """Opset >= 13: normalise along `axis`; older opsets flatten to 2-D at `axis` first."""
    legacy = spec.opset < 13
    axis = spec.attr("axis", 1 if legacy else -1)

    def run(x):
        if legacy:
            flat = x.reshape(int(np.prod(x.shape[:axis])), -1)
            return (_softmax(flat, 1).reshape(x.shape),)
        return (_softmax(x, axis),)

    return run


def _softmax(x, axis):
    y = x - x.max(axis=axis, keepdims=True)
    np.exp(y, out=y)
    y /= y.sum(axis=axis, keepdims=True)
    return y


KERNELS = {"LRN": lrn, "BatchNormalization": batch_normalization, "Softmax": softmax}
