"""`deepvis reproduce flamingo`: the fetch hint, and a dry run on the synthetic CaffeNet."""
from __future__ import annotations

import cv2
import numpy as np

from deepvis.cli import main
from tests.test_optimize_cli import plain_load


def test_reproduce_without_weights_says_how_to_fetch(tmp_path, capsys):
    assert main(["reproduce", "flamingo", "--output-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "deepvis fetch caffenet-yos" in err and "Traceback" not in err


def test_reproduce_runs_on_a_caffenet_and_prints_the_comparison(tmp_path, capsys):
    from tests.fixtures_caffenet import synthetic_caffenet_onnx

    model = synthetic_caffenet_onnx(tmp_path)
    originals = tmp_path / "doc"            # stand-ins for the original's published images
    originals.mkdir()
    for suffix in ("best_X.jpg", "best_Xpm.jpg"):
        cv2.imwrite(str(originals / f"opt_fc8_0130_0_{suffix}"), np.full((227, 227, 3), 200,
                                                                          np.uint8))
    out = tmp_path / "out"
    assert main(["reproduce", "flamingo", "--model", str(model), "--max-iter", "2", "--quiet",
                 "--output-dir", str(out), "--original-dir", str(originals)]) == 0
    printed = capsys.readouterr().out
    assert "2 iterations; the original ran 1000" in printed
    for recorded in ("71.1864", "992", "27", "68.1828", "647.379", "1.64609", "17.6405"):
        assert recorded in printed
    # the start point is the recorded one: NumPy's legacy RNG, seed 0, normal(0, 10)
    assert "x0[0]" in printed and printed.count("17.6405") == 2
    params, results = plain_load(out / "opt_fc8_0130_0_info_big.pkl")
    assert params["push_unit"] == (130, 0, 0) and params["decay"] == 0.0001
    assert results["ii"] == [0, 1]
    side = cv2.imread(str(out / "opt_fc8_0130_0_side_by_side.jpg")).astype(int)
    assert side.shape == (2 * 227 + 4, 2 * 227 + 4, 3)
    assert abs(side[5:220, 240:450] - 200).max() < 8                 # theirs on the right
    ours = cv2.imread(str(out / "opt_fc8_0130_0_best_X.jpg")).astype(int)
    assert abs(side[:227, :227] - ours).mean() < 6                   # ours on the left
    assert main(["reproduce", "flamingo", "--model", str(model), "--max-iter", "2", "--quiet",
                 "--output-dir", str(out)]) == 1
    assert "Cowardly" in capsys.readouterr().err


def test_presets_on_caffenet_keep_the_papers_learning_rates_exactly(tmp_path, capsys):
    """CaffeNet's input is the pixel minus the mean at scale 1: the effective values written
    to info.txt and info.json are the paper's, bit for bit, with no conversion notice."""
    import json

    from deepvis.optimize.params import PRESETS
    from tests.fixtures_caffenet import synthetic_caffenet_onnx

    model = synthetic_caffenet_onnx(tmp_path)
    out = tmp_path / "out"
    assert main(["optimize", "--model", str(model), "--push-channel", "130", "--max-iter", "1",
                 "--preset", "paper1", "--quiet", "--skipbig",
                 "--output-prefix", str(out / "opt")]) == 0
    assert "step sizes" not in capsys.readouterr().err
    doc = json.load(open(out / "opt_fc8_0130_0_info.json"))
    assert doc["params"]["lr_params"] == PRESETS["paper1"]["lr_params"]
    assert doc["run"]["input_scale"] == 1.0
    assert "lr_params: {'max_lr': 100.0, 'desired_prog': 2.0}" in \
        open(out / "opt_fc8_0130_0_info.txt").read()
