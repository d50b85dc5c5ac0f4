"""Real torchvision architectures (random weights) and three CNNs of our own, exported with
torch.onnx.export exactly as a user would (fixed batch of 1, the default), then:

- every command exits 0 on each export (layers, forward, backprop in three modes, render,
  optimize, find-maxes, crop-max-patches), called in-process through deepvis.cli.main;
- the plain gradient at the input of a dense random seed matches torch autograd (run in
  float64) to 1e-4 of its maximum, on both executors, at three layers per model (blobs found
  by value: exporters name tensors as they like and fold batch norm into convolutions).

Skips where torch or torchvision cannot be imported. Images are small where the
architecture allows (VGG's adaptive pooling needs 224).
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
tv = pytest.importorskip("tests.torchvision_export")
try:
    tv.torchvision_models()
except ImportError as exc:
    pytest.skip(f"torchvision cannot be imported: {exc}", allow_module_level=True)

from deepvis.model import load_model  # noqa: E402
from tests.own_model_commands import make_photos, run_every_command  # noqa: E402

MODELS = [*tv.OWN, *tv.TORCHVISION]
EXPORTS = MODELS + ["resnet18-dynamo"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (.onnx path, module, input (C, H, W), modules to compare), exported once."""
    folder = tmp_path_factory.mktemp("torchvision")
    cache = {}

    def get(name):
        if name not in cache:
            base, dynamo = name.removesuffix("-dynamo"), name.endswith("-dynamo")
            module, chw, layers = tv.build(base)
            path = folder / f"{name}.onnx"
            tv.export(module, chw, path, dynamo=dynamo, opset=18 if dynamo else 17,
                      dynamic_batch=dynamo)
            cache[name] = (path, module, chw, layers)
        return cache[name]
    return get


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return make_photos(tmp_path_factory.mktemp("photos"))


@pytest.mark.parametrize("name", EXPORTS)
def test_every_command_exits_0(name, exported, photos, tmp_path, capsys):
    path, _, chw, _ = exported(name)
    run_every_command(path, chw, photos, tmp_path, capsys)


def autograd_in_float64(module, x, layer, seed) -> np.ndarray:
    """torch autograd's input gradient with the module in float64 (and back to float32
    after, exactly). Torch's own float32 gradient is no reference at this tolerance: on
    vgg11_bn at 224 it is 2.9% of its maximum off its float64 one, deepvis's 2e-7."""
    module.double()
    try:
        return tv.autograd_input_gradient(module, x.astype(np.float64), layer,
                                          seed.astype(np.float64))
    finally:
        module.float()


@pytest.mark.parametrize("backend", ["ort", "numpy"])
@pytest.mark.parametrize("name", MODELS)
def test_plain_gradient_matches_torch_autograd(name, backend, exported):
    path, module, chw, layers = exported(name)
    model = load_model(path, backend=backend)
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (1, *chw)).astype(np.float32)
    outputs = tv.module_outputs(module, x, layers)
    for layer in layers:
        blob = tv.matching_blob(model, x, outputs[layer])
        seed = rng.normal(0, 1, outputs[layer].shape).astype(np.float32)
        want = autograd_in_float64(module, x, layer, seed)
        got = model.backward(x, blob, seed, "grad")
        error = float(np.abs(got - want).max()) / float(np.abs(want).max())
        assert error < 1e-4, f"{name} {layer} ({blob}) on {backend}: relative error {error:.2e}"
