"""LRN, BatchNormalization (inference), Softmax, and the normalizations over a sample's own
values: LayerNormalization, InstanceNormalization and GroupNormalization.

The last three share one step: standardize over some trailing axes of a view of x, with the
variance as the mean of squared deviations (two passes, as onnxruntime does, so that a
large mean does not cancel the variance)."""
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


def standardized(x: np.ndarray, axes: tuple, epsilon: float):
    """(x - mean) / sqrt(var + epsilon) over `axes`, with the mean and 1/std (keepdims)."""
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    inv_std = 1 / np.sqrt(np.mean(centred * centred, axis=axes, keepdims=True)
                          + x.dtype.type(epsilon))
    centred *= inv_std
    return centred, mean, inv_std


def layer_normalization(spec: NodeSpec):
    axis, epsilon = spec.attr("axis", -1), spec.attr("epsilon", 1e-5)

    def run(x, scale, bias=None):
        first = axis % x.ndim
        y, mean, inv_std = standardized(x, tuple(range(first, x.ndim)), epsilon)
        y *= scale
        if bias is not None:
            y += bias
        return (y, mean, inv_std)[:max(1, spec.n_outputs)]

    return run


def instance_normalization(spec: NodeSpec):
    epsilon = spec.attr("epsilon", 1e-5)

    def run(x, scale, bias):
        y, _, _ = standardized(x, tuple(range(2, x.ndim)), epsilon)
        shape = (-1,) + (1,) * (x.ndim - 2)
        y *= scale.reshape(shape)
        y += bias.reshape(shape)
        return (y,)

    return run


def group_normalization(spec: NodeSpec):
    """Scale and bias per channel (opset 21; ONNX deprecated opset 18's per-group form)."""
    groups, epsilon = spec.attr("num_groups"), spec.attr("epsilon", 1e-5)

    def run(x, scale, bias):
        n, c = x.shape[:2]
        if c % groups or scale.size != c:
            raise ValueError(f"{c} channels do not split into {groups} groups with one scale "
                             f"per channel (scale has {scale.size})")
        y, _, _ = standardized(x.reshape(n, groups, -1), (2,), epsilon)
        y = y.reshape(x.shape)
        shape = (-1,) + (1,) * (x.ndim - 2)
        y *= scale.reshape(shape)
        y += bias.reshape(shape)
        return (y,)

    return run


KERNELS = {"LRN": lrn, "BatchNormalization": batch_normalization, "Softmax": softmax,
           "LayerNormalization": layer_normalization,
           "InstanceNormalization": instance_normalization,
           "GroupNormalization": group_normalization}
