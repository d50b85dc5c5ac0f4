"""Real torchvision architectures (random weights) and three CNNs of our own, exported with
torch.onnx.export exactly as a user would (fixed batch of 1, the default), then:

- every command exits 0 on each export (layers, forward, backprop in three modes, render,
  optimize, find-maxes, crop-max-patches), called in-process through deepvis.cli.main;
- the plain gradient at the input matches torch autograd to 1e-4 of its maximum, on both
  executors, at three layers per model (blobs found by value: exporters name tensors as they
  like and fold batch norm into convolutions).

Skips where torch or torchvision cannot be imported. Images are small where the
architecture allows (VGG's adaptive pooling needs 224).
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")
tv = pytest.importorskip("tests.torchvision_export")
try:
    tv.torchvision_models()
except ImportError as exc:
    pytest.skip(f"torchvision cannot be imported: {exc}", allow_module_level=True)

from deepvis.cli import main  # noqa: E402
from deepvis.model import load_model  # noqa: E402

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
    """Three smooth random photos, 80 x 120 (not square: each model crops its own way)."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(3):
        small = rng.integers(0, 256, (6, 9, 3)).astype(np.uint8)
        cv2.imwrite(str(folder / f"photo{i}.png"),
                    cv2.resize(small, (120, 80), interpolation=cv2.INTER_CUBIC))
    return folder


def run(capsys, *argv) -> str:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    assert code == 0, f"deepvis {' '.join(map(str, argv))} exited {code}:\n{out.err[-2000:]}"
    return out.out


@pytest.mark.parametrize("name", EXPORTS)
def test_every_command_exits_0(name, exported, photos, tmp_path, capsys):
    path, _, chw, _ = exported(name)
    images = sorted(photos.iterdir())
    rows = json.loads(run(capsys, "layers", path, "--json"))
    shapes = {row["name"]: row["shape"] for row in rows}
    assert rows[0]["shape"] == [1, *chw] and rows[-1]["name"] == "logits"
    spatial = [row["name"] for row in rows[1:] if len(row["shape"]) == 4]
    layer = spatial[len(spatial) // 2]

    results = json.loads(run(capsys, "forward", path, "-i", *images[:2], "--json"))
    assert len(results) == 2 and "score" in results[0]["top"][0]   # a batch of 2, logits

    for mode in ("grad", "deconv", "guided"):
        out = tmp_path / f"{mode}.npy"
        run(capsys, "backprop", path, "-i", images[0], "--layer", layer, "--unit", "0",
            "--mode", mode, "--out", out, "--png", tmp_path / f"{mode}.png")
        grad = np.load(out)
        assert grad.shape == (1, *chw) and np.isfinite(grad).all()

    frame = tmp_path / "frame.png"
    run(capsys, "render", "--model", path, "--input", images[0], "--keys", "down right b",
        "--out", frame)
    assert cv2.imread(str(frame)).std() > 0

    prefix = tmp_path / "opt" / "o"
    run(capsys, "optimize", "--model", path, "--push-layer", "logits", "--push-channel", "1",
        "--max-iter", "2", "--output-prefix", prefix, "--quiet")
    assert any(p.name.endswith("best_X.jpg") for p in prefix.parent.iterdir())

    maxes, units = tmp_path / "maxes.npz", tmp_path / "units"
    run(capsys, "find-maxes", path, "--images", photos, "--layers", f"{layer},logits",
        "-o", maxes)
    run(capsys, "crop-max-patches", path, maxes, "-o", units, "--layers", layer,
        "--units", "0-1", "--no-loose")
    assert len(list((units / "max_im").rglob("*.jpg"))) == 2
    assert shapes[layer][1] >= 2


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
        want = tv.autograd_input_gradient(module, x, layer, seed)
        got = model.backward(x, blob, seed, "grad")
        error = float(np.abs(got - want).max()) / float(np.abs(want).max())
        assert error < 1e-4, f"{name} {layer} ({blob}) on {backend}: relative error {error:.2e}"
