"""Gradients of real torchvision exports against torch autograd, on both executors.

EfficientNet-B0 (SiLU, squeeze-excitation Sigmoid gates, global pooling) and ConvNeXt-Tiny
(GELU as Erf, LayerNormalization, Transpose, MatMul, the dynamo exporter's ReduceMean with axes
as input and its Gather) have no ReLU masks and no max-pool switches, so float32 rounding cannot
flip a switch and the comparison is tight. Small inputs keep the run short.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if importlib.util.find_spec("torchvision") is None:  # importing it whole needs its C extension
    pytest.skip("torchvision is not installed", allow_module_level=True)

from bench.torchvision_ops import (build, deepvis_gradients, export, op_types,  # noqa: E402
                                   relative_error, torch_gradient)

CASES = [("efficientnet_b0", "legacy", 13, {"Sigmoid", "Mul", "GlobalAveragePool"}),
         ("convnext_tiny", "dynamo", 18, {"Erf", "LayerNormalization", "ReduceMean", "Gather"})]


@pytest.mark.parametrize("name, exporter, opset, ops", CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_gradient_matches_torch_autograd(name, exporter, opset, ops, tmp_path):
    net = build(name)
    path = export(net, tmp_path / f"{name}.onnx", opset, exporter, size=64)
    assert ops <= op_types(path)  # the ops this case is here for were exported
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 3, 64, 64)).astype(np.float32)
    seed = rng.standard_normal((1, 1000)).astype(np.float32)
    expected = torch_gradient(net, x, seed)
    assert np.abs(expected).max() > 0
    for backend, grad in deepvis_gradients(path, x, seed).items():
        assert relative_error(grad, expected) < 1e-4, backend
