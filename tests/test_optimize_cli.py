"""`deepvis optimize`, `optimize-layer` and `reproduce` end to end on small models."""
from __future__ import annotations

import json
import os
import pickle

import cv2
import numpy as np
import pytest

from deepvis.cli import main
from tests.test_optimize_loop import build_tiny

NUMPY_GLOBALS = {("numpy._core.multiarray", "_reconstruct"),
                 ("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"),
                 ("numpy", "dtype")}


class PlainUnpickler(pickle.Unpickler):
    """Loads built-in types and NumPy arrays only: no deepvis (or any other) class."""

    def find_class(self, module, name):
        if (module, name) in NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"forbidden global {module}.{name}")


def plain_load(path):
    with open(path, "rb") as f:
        return PlainUnpickler(f).load()


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return str(build_tiny(tmp_path_factory.mktemp("tiny") / "tiny.onnx"))


def optimize(tiny_path, out, *extra):
    return main(["optimize", "--model", tiny_path, "--push-layer", "fc", "--max-iter", "3",
                 "--lr-params", "{'lr': 200.0}", "--output-prefix", str(out / "opt"),
                 "--quiet", *extra])


def test_optimize_writes_the_originals_files(tiny_path, tmp_path):
    assert optimize(tiny_path, tmp_path, "--push-channel", "0-2", "--preset", "paper3",
                    "--blur-every", "2") == 0
    for unit in range(3):
        prefix = tmp_path / f"opt_fc_{unit:04d}_0_"
        for suffix in ("best_X.jpg", "best_Xpm.jpg", "info.txt", "info.pkl", "info_big.pkl",
                       "info.json"):
            assert os.path.exists(str(prefix) + suffix), suffix
    prefix = str(tmp_path / "opt_fc_0001_0_")
    text = open(prefix + "info.txt").read()
    assert text.startswith("FindParams:\n") and "\n\n\nFindResults:\n" in text
    assert "                    blur_every: 2\n" in text          # explicit flag beat preset
    assert "                         decay: 0.0001\n" in text      # preset value
    assert "                     push_unit: (1, 0, 0)\n" in text
    params, results = plain_load(prefix + "info_big.pkl")
    assert params["push_channel"] == 1 and params["lr_params"] == {"lr": 200.0}
    assert results["ii"] == [0, 1, 2] and isinstance(results["best_xx"], np.ndarray)
    assert results["best_xx"].shape == (3, 6, 6) and type(results["obj"][0]) is float
    params_small, small = plain_load(prefix + "info.pkl")
    assert params_small == params
    assert small["best_xx"].startswith("Trimmed (3, 6, 6) array [")
    assert small["obj"] == results["obj"]
    doc = json.load(open(prefix + "info.json"))
    assert doc["params"]["push_unit"] == [1, 0, 0] and doc["results"]["ii"] == [0, 1, 2]
    image = cv2.imread(prefix + "best_Xpm.jpg")
    assert image.shape == (6, 6, 3) and image.min() < 40 and image.max() > 215   # min-max


def test_never_overwrites_without_brave_and_checks_before_working(tiny_path, tmp_path, capsys):
    assert optimize(tiny_path, tmp_path, "--push-channel", "1") == 0
    info = tmp_path / "opt_fc_0001_0_info.txt"
    before = info.read_text()
    capsys.readouterr()
    assert optimize(tiny_path, tmp_path, "--push-channel", "0,1", "--max-iter", "2") == 1
    assert "Cowardly refusing to overwrite" in capsys.readouterr().err
    assert not (tmp_path / "opt_fc_0000_0_info.txt").exists()     # unit 0 never ran
    assert info.read_text() == before
    assert optimize(tiny_path, tmp_path, "--push-channel", "0,1", "--max-iter", "2",
                    "--brave") == 0
    assert "max_iter: 2" in info.read_text()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]   # no temp files left


@pytest.mark.parametrize("flag, value", [
    ("--lr-params", "{'lr': "), ("--push-spatial", "(6, 6"), ("--channel-swap-to-rgb", "(2,1"),
    ("--lr-params", "open('x')"),
])
def test_bad_literal_is_an_error_naming_the_flag(tiny_path, tmp_path, capsys, flag, value):
    assert optimize(tiny_path, tmp_path, flag, value) == 1
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_flag_errors(tiny_path, tmp_path, capsys):
    assert optimize(tiny_path, tmp_path, "--lr-policy", "progress") == 1
    assert "desired_prog" in capsys.readouterr().err
    assert optimize(tiny_path, tmp_path, "--push-channel", "7") == 1
    assert "outside" in capsys.readouterr().err
    assert optimize(tiny_path, tmp_path, "--deploy-proto", "x.prototxt") == 1
    assert "--net-weights" in capsys.readouterr().err
    assert optimize(tiny_path, tmp_path, "--caffe-root", "/opt/caffe", "--skipbig",
                    "--push-channel", "2") == 0
    assert "--caffe-root is ignored" in capsys.readouterr().err
    assert (tmp_path / "opt_fc_0002_0_info.pkl").exists()
    assert not (tmp_path / "opt_fc_0002_0_info_big.pkl").exists()


def test_mean_flag_overrides_the_models_mean(tiny_path, tmp_path):
    mean_file = tmp_path / "mean.npy"
    np.save(mean_file, np.full((3, 8, 8), 50.0))            # centre-cropped to 6x6
    for tag, mean in (("file", str(mean_file)), ("tuple", "(50, 50, 50)")):
        out = tmp_path / tag
        out.mkdir()
        assert optimize(tiny_path, out, "--push-channel", "0", "--mean", mean,
                        "--start-at", "randu") == 0
        _, results = plain_load(out / "opt_fc_0000_0_info_big.pkl")
        pixels = results["x0"] + 50.0                        # x0 = uniform(0, 255) - mean
        assert 0 <= pixels.min() and pixels.max() <= 255 and pixels.mean() > 100


def test_optimize_layer_montages_resume_and_sprite(tiny_path, tmp_path, capsys):
    args = ["optimize-layer", tiny_path, "--layer", "fc", "--max-iter", "2", "--quiet",
            "--out", str(tmp_path), "--lr-params", "{'lr': 100.0}"]
    assert main(args + ["--units", "0-1"]) == 0
    folder = tmp_path / "regularized_opt" / "fc"
    first = folder / "fc_0000_montage.jpg"
    montage = cv2.imread(str(first))
    side = montage.shape[0]
    assert montage.shape == (side, side, 3) and side % 2 == 0 and side == 2 * (3 * 6 + 2 + 6)
    half = side // 2
    assert montage[:half].std() < 2                            # only quadrant 2 is filled
    assert montage[half + 3:2 * half - 3, 3:half - 3].std() > 10
    assert not (folder / "whole_layer.jpg").exists()          # units 2..4 still missing
    stamp = first.stat().st_mtime_ns
    assert main(args) == 0                                     # all units: 0, 1 are skipped
    assert first.stat().st_mtime_ns == stamp
    assert sorted(os.listdir(folder)) == [f"fc_{u:04d}_montage.jpg" for u in range(5)] + \
        ["whole_layer.jpg"]
    sprite = cv2.imread(str(folder / "whole_layer.jpg"))
    assert sprite.shape == (3 * 96, 3 * 96, 3)                 # ceil(sqrt(5)) = 3 cells a side


def test_optimize_layer_conv_pushes_the_centre(tiny_path, tmp_path):
    assert main(["optimize-layer", tiny_path, "--layer", "conv", "--units", "1",
                 "--max-iter", "2", "--quiet", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "regularized_opt" / "conv" / "conv_0001_montage.jpg").exists()


def test_a_preset_runs_in_the_models_units_and_info_records_both(tiny_path, tmp_path, capsys):
    """The tiny model's input is pixels x 0.02: paper3's lr of 100 becomes 5000; explicit
    --lr-params stay literal (the other tests pass {'lr': 200.0})."""
    assert main(["optimize", "--model", tiny_path, "--push-layer", "fc", "--max-iter", "2",
                 "--preset", "paper3", "--push-channel", "1",
                 "--output-prefix", str(tmp_path / "opt")]) == 0
    assert "its learning-rate parameters are divided by that, lr_params {'lr': 5000.0" in capsys.readouterr().err
    prefix = str(tmp_path / "opt_fc_0001_0_")
    assert "                     lr_params: {'lr': 5000.0" in open(prefix + "info.txt").read()
    doc = json.load(open(prefix + "info.json"))
    assert doc["params"]["lr_params"] == {"lr": pytest.approx(5000.0)}   # 0.02 is a float32
    assert doc["run"] == {"preset": "paper3", "input_scale": pytest.approx(0.02),
                          "preset_lr_params": {"lr": 100.0}, "lr_params_literal": False}
