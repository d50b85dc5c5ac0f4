"""Gemm and MatMul (NumPy's matmul has ONNX MatMul's broadcasting and 1-D rules)."""
from __future__ import annotations

import numpy as np

from .node import NodeSpec


def gemm(spec: NodeSpec):
    alpha, beta = spec.attr("alpha", 1.0), spec.attr("beta", 1.0)
    trans_a, trans_b = spec.attr("transA", 0), spec.attr("transB", 0)

    def run(a, b, c=None):
        y = np.matmul(a.T if trans_a else a, b.T if trans_b else b)
        if alpha != 1.0:
            y *= alpha
        if c is not None and beta != 0.0:
            y += c if beta == 1.0 else beta * c
        return (y,)

    return run


def matmul(spec: NodeSpec):
    def run(a, b):
        return (np.matmul(a, b),)
    return run


KERNELS = {"Gemm": gemm, "MatMul": matmul}
