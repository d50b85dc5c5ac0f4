"""Activations beyond the rectifiers: the smooth ones (Tanh, Erf, Softplus, Elu, Selu, Softsign)
and the piecewise-linear gates (HardSigmoid, HardSwish), plus PRelu with its slope tensor.

Each is written so that it neither overflows nor warns at the tails (softplus as
max(x, 0) + log1p(exp(-|x|)), elu's exp only where x <= 0), and keeps the input's dtype.
"""
from __future__ import annotations

import numpy as np

from .node import NodeSpec


def _elementwise(function):
    def factory(spec: NodeSpec):
        def run(x):
            return (np.asarray(function(x, spec)).astype(x.dtype, copy=False),)
        return run
    return factory


def _tanh(x, spec):
    return np.tanh(x)


def _erf(x, spec):
    from scipy.special import erf
    return erf(x)


def _softplus(x, spec):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _softsign(x, spec):
    return x / (1 + np.abs(x))


def _elu(x, spec):
    alpha = x.dtype.type(spec.attr("alpha", 1.0))
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _selu(x, spec):
    alpha = x.dtype.type(spec.attr("alpha", 1.67326319217681884765625))
    gamma = x.dtype.type(spec.attr("gamma", 1.05070102214813232421875))
    return gamma * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _hard_sigmoid(x, spec):
    alpha, beta = x.dtype.type(spec.attr("alpha", 0.2)), x.dtype.type(spec.attr("beta", 0.5))
    return np.clip(alpha * x + beta, 0, 1)


def _hard_swish(x, spec):
    """x * HardSigmoid(x) with alpha 1/6 and beta 0.5, as ONNX defines it."""
    return x * np.clip(x * x.dtype.type(1 / 6) + x.dtype.type(0.5), 0, 1)


def prelu(spec: NodeSpec):
    """The slope broadcasts to x (unidirectionally, NumPy rules)."""
    def run(x, slope):
        return (np.where(x < 0, x * slope, x).astype(x.dtype, copy=False),)
    return run


KERNELS = {
    "Tanh": _elementwise(_tanh), "Erf": _elementwise(_erf),
    "Softplus": _elementwise(_softplus), "Softsign": _elementwise(_softsign),
    "Elu": _elementwise(_elu), "Selu": _elementwise(_selu),
    "HardSigmoid": _elementwise(_hard_sigmoid), "HardSwish": _elementwise(_hard_swish),
    "PRelu": prelu,
}
