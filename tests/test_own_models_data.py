"""Committed exports of tiny random CNNs with modern ops (tests/data/make_own_models.py):
legacy exporter at opsets 13 (fixed batch) and 17 (dynamic batch), dynamo exporter at 18
(fixed batch, its Reshape with allowzero). No torch needed: the files carry torch's own
forward values and autograd input gradients for dense seeds at three blobs each."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

from deepvis.model import load_model
from tests.own_model_commands import make_photos, run_every_command

DATA = pathlib.Path(__file__).resolve().parent / "data" / "own_models"
NAMES = sorted(p.stem for p in DATA.glob("*.onnx"))


def test_the_data_is_there():
    kinds = {name.split("-")[1] for name in NAMES}
    assert len(NAMES) >= 9 and kinds == {"legacy13", "legacy17", "dynamo18"}
    assert sum(p.stat().st_size for p in DATA.iterdir()) < 2_000_000


def references(name):
    data = np.load(DATA / f"{name}.npz")
    count = len([k for k in data.files if k.startswith("blob")])
    return data["input"], [(str(data[f"blob{i}"]), data[f"seed{i}"], data[f"value{i}"],
                            data[f"grad{i}"]) for i in range(count)]


@pytest.mark.parametrize("backend", ["ort", "numpy"])
@pytest.mark.parametrize("name", NAMES)
def test_forward_and_gradient_match_torch(name, backend):
    model = load_model(DATA / f"{name}.onnx", backend=backend)
    x, refs = references(name)                      # a batch of two images
    for blob, seed, value, want in refs:
        got_value = model.forward(x, blobs=[blob])[blob]
        assert np.abs(got_value - value).max() <= 1e-4 * np.abs(value).max(), blob
        got = model.backward(x, blob, seed, "grad")
        error = np.abs(got - want).max() / np.abs(want).max()
        assert error < 1e-4, f"{name} {blob} on {backend}: relative error {error:.2e}"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return make_photos(tmp_path_factory.mktemp("photos"))


@pytest.mark.parametrize("name", NAMES)
def test_every_command_exits_0(name, photos, tmp_path, capsys):
    x, _ = references(name)
    run_every_command(DATA / f"{name}.onnx", x.shape[1:], photos, tmp_path, capsys)
