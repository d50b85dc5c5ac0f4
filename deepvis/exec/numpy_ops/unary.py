"""Element-wise ops of one tensor (plus Clip's bounds, Cast's target, Dropout's inference mask)."""
from __future__ import annotations

import numpy as np

from .node import NodeSpec, numpy_dtype


def _plain(function):
    def factory(spec: NodeSpec):
        def run(x):
            return (function(x),)
        return run
    return factory


def _relu(x):
    return np.maximum(x, 0)


def _sigmoid(x):
    """exp(-|x|) never overflows, so the result is exact at both tails without warnings."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def leaky_relu(spec: NodeSpec):
    alpha = spec.attr("alpha", 0.01)

    def run(x):
        return (np.where(x >= 0, x, x * alpha),)

    return run


def clip(spec: NodeSpec):
    """Bounds are inputs from opset 11, attributes before; an absent bound does not clip."""
    legacy = (spec.attr("min"), spec.attr("max"))

    def run(x, low=None, high=None):
        if spec.opset < 11:
            low, high = legacy
        if low is None and high is None:
            return (x,)
        low = None if low is None else np.asarray(low, dtype=x.dtype)
        high = None if high is None else np.asarray(high, dtype=x.dtype)
        return (np.clip(x, low, high),)

    return run


def cast(spec: NodeSpec):
    target = numpy_dtype(spec.attr("to"))

    def run(x):
        return (x.astype(target),)

    return run


def identity(spec: NodeSpec):
    def run(x):
        return (x,)
    return run


def dropout(spec: NodeSpec):
    """Inference only: the output is the input and the optional mask is all True."""
    with_mask = spec.has_output(1)

    def run(x, ratio=None, training_mode=None):
        if training_mode is not None and bool(training_mode):
            raise spec.unsupported("training_mode=True")
        return (x, np.ones(x.shape, dtype=bool)) if with_mask else (x,)

    return run


KERNELS = {
    "Relu": _plain(_relu), "Sigmoid": _plain(_sigmoid), "Sqrt": _plain(np.sqrt),
    "Exp": _plain(np.exp), "Neg": _plain(np.negative), "Abs": _plain(np.abs),
    "Sign": _plain(np.sign), "Reciprocal": _plain(np.reciprocal), "Floor": _plain(np.floor),
    "Ceil": _plain(np.ceil), "Not": _plain(np.logical_not),
    "LeakyRelu": leaky_relu, "Clip": clip, "Cast": cast, "Identity": identity,
    "Dropout": dropout,
}
