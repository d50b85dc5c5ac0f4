"""Registry of the NumPy kernels: op type -> factory(NodeSpec) -> kernel(*inputs) -> outputs.

A factory runs once per node at executor construction (attributes decoded, unsupported
attribute values rejected there); the kernel it returns runs on every `run` call, takes
the node's inputs (None for an absent optional one) and returns a tuple of outputs.
Kernels never write into their inputs.
"""
from __future__ import annotations

from . import (binary, conv, conv_transpose, gather_scatter, generators, linalg,
               normalization, pool, reduce, resize, shape_ops, smooth, unary)
from .node import NodeSpec, decode_attributes, numpy_dtype

OPS = {}
for _module in (binary, conv, conv_transpose, gather_scatter, generators, linalg,
                normalization, pool, reduce, resize, shape_ops, smooth, unary):
    OPS.update(_module.KERNELS)

__all__ = ["OPS", "NodeSpec", "decode_attributes", "numpy_dtype"]
