"""Element-wise ops of several tensors with ONNX (= NumPy) multidirectional broadcasting."""
from __future__ import annotations

import functools

import numpy as np

from .node import NodeSpec


def _plain(function):
    def factory(spec: NodeSpec):
        def run(a, b):
            return (function(a, b),)
        return run
    return factory


def _variadic(function):
    def factory(spec: NodeSpec):
        def run(*xs):
            return (functools.reduce(function, xs),)
        return run
    return factory


def _div(a, b):
    """Integer division truncates toward zero (C semantics), unlike NumPy's floor division."""
    if np.issubdtype(a.dtype, np.integer):
        quotient = np.abs(a) // np.abs(b)
        return np.where((a < 0) != (b < 0), -quotient, quotient).astype(a.dtype)
    return np.divide(a, b)


def _pow(base, exponent):
    """The result has the base's type; common scalar exponents avoid the slow pow()."""
    if np.issubdtype(base.dtype, np.integer):
        return np.power(base.astype(np.float64), exponent).astype(base.dtype)
    if exponent.size == 1 and exponent.ndim <= base.ndim:
        return scalar_power(base, float(exponent.reshape(())))
    return np.power(base, exponent.astype(base.dtype, copy=False))


def _root_three_quarters(x):
    root = np.sqrt(x)
    root *= x
    return np.sqrt(root, out=root)


_SHORTCUTS = {
    1.0: np.copy, 2.0: np.square, -1.0: np.reciprocal, 0.5: np.sqrt,
    -0.5: lambda x: np.reciprocal(np.sqrt(x)),
    0.75: _root_three_quarters,  # LRN's beta in every Caffe net
    -0.75: lambda x: np.reciprocal(_root_three_quarters(x)),
}


def scalar_power(base: np.ndarray, exponent: float) -> np.ndarray:
    """base ** exponent for a float array, by square roots and products where possible."""
    shortcut = _SHORTCUTS.get(exponent)
    return shortcut(base) if shortcut else np.power(base, base.dtype.type(exponent))


def mod(spec: NodeSpec):
    function = np.fmod if spec.attr("fmod", 0) else np.mod

    def run(a, b):
        return (function(a, b),)

    return run


def where(spec: NodeSpec):
    def run(condition, a, b):
        return (_masked(condition, a, b),)
    return run


def _masked(condition, a, b):
    """np.where, but a multiply by the mask when one branch is a float zero scalar (the
    ReLU gradient): several times faster, and equal wherever the product stays finite."""
    with np.errstate(invalid="ignore"):  # inf * 0 is caught below
        if _zero_scalar(b, a):
            product = np.multiply(a, condition)
        elif _zero_scalar(a, b):
            product = np.multiply(b, np.logical_not(condition))
        else:
            return np.where(condition, a, b)
    if product.ndim >= max(a.ndim, b.ndim) and np.isfinite(product).all():
        return product
    return np.where(condition, a, b)


def _zero_scalar(value, other) -> bool:
    return (value.size == 1 and other.dtype.kind == "f" and value.dtype == other.dtype
            and not value.any())


KERNELS = {
    "Add": _plain(np.add), "Sub": _plain(np.subtract), "Mul": _plain(np.multiply),
    "Div": _plain(_div), "Pow": _plain(_pow), "Mod": mod,
    "Greater": _plain(np.greater), "Less": _plain(np.less), "Equal": _plain(np.equal),
    "GreaterOrEqual": _plain(np.greater_equal), "LessOrEqual": _plain(np.less_equal),
    "And": _plain(np.logical_and), "Or": _plain(np.logical_or),
    "Sum": _variadic(np.add), "Max": _variadic(np.maximum), "Min": _variadic(np.minimum),
    "Where": where,
}
