"""figure3 / figure4 end to end on the tiny conv -> fc model: the cells and files, batches
that do not change a picture, resume after kill -9 without redoing finished cells, a Dask
cluster that gives the same bits, and the judges' verdicts on an ImageNet model."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from deepvis.cli import main
from deepvis.figures import plan
from deepvis.figures.units import parse_unit_rows
from deepvis.judges import judge
from tests.test_optimize_loop import UNITS, build_tiny

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return str(build_tiny(tmp_path_factory.mktemp("tiny") / "tiny.onnx"))


def figure3(tiny_path, out, *extra):
    return main(["figure3", tiny_path, "--out", str(out), "--units", "0-3", "--presets",
                 "none,paper1,paper3", "--max-iter", "4", "--quiet", *extra])


def cells(out, name="figure3"):
    """Every cell's record and its picture's bytes, keyed by cell."""
    doc = json.loads((out / f"{name}.json").read_text())
    return {c["key"]: (c, (out / "units" / c["image"]).read_bytes()) for c in doc["cells"]}


def test_figure3_writes_a_cell_per_setting_and_unit(tiny_path, tmp_path):
    assert figure3(tiny_path, tmp_path, "--batch-size", "3", "--sheet",
                   str(tmp_path / "sheet.jpg")) == 0
    assert not (tmp_path / "figure3.png").exists()
    doc = json.loads((tmp_path / "figure3.json").read_text())
    assert doc["rows"] == ["none", "paper1", "paper3"]
    assert [(c["setting"], c["unit"]) for c in doc["cells"]] == \
        [(s, u) for s in ("none", "paper1", "paper3") for u in range(4)]
    for c in doc["cells"]:
        assert c["params"]["max_iter"] == 4 and c["iterations"] <= 4
        assert c["params"]["push_channel"] == c["unit"] and c["layer"] == "fc"
        assert c["best_obj"] >= c["first_obj"] and "judges" not in c   # no labels: no judges
    paper1 = next(c for c in doc["cells"] if c["setting"] == "paper1")
    none = next(c for c in doc["cells"] if c["setting"] == "none")
    assert paper1["params"]["small_norm_percentile"] == 50.0 and paper1["params"]["blur_every"] == 4
    assert none["params"]["blur_radius"] == 0 and none["params"]["decay"] == 0
    sheet = cv2.imread(str(tmp_path / "sheet.jpg"))
    # three rows of 112-pixel tiles, four columns, labels and captions around them
    assert sheet.shape[0] > 3 * 112 and sheet.shape[1] > 4 * 112
    assert sheet.std() > 10                      # pictures and text, not a blank page


def test_batches_do_not_change_a_cell(tiny_path, tmp_path):
    assert figure3(tiny_path, tmp_path / "one", "--batch-size", "1") == 0
    assert figure3(tiny_path, tmp_path / "four", "--batch-size", "4") == 0
    assert cells(tmp_path / "one") == cells(tmp_path / "four")


def test_batches_share_a_layer_and_a_setting():
    jobs = [plan.Job("r", s, layer, u, None) for s in ("a", "b") for layer in ("x", "y")
            for u in range(3)]
    groups = plan.batches(jobs, 2)
    assert [len(b) for b in groups] == [2] * 4 + [1] * 4       # first pieces of every row first
    assert [(b[0].setting, b[0].layer) for b in groups[:4]] == [("a", "x"), ("a", "y"),
                                                                ("b", "x"), ("b", "y")]
    assert all(len({(j.setting, j.layer) for j in b}) == 1 for b in groups)
    assert sorted(j.key for b in groups for j in b) == sorted(j.key for j in jobs)


def test_kill_9_then_rerun_skips_finished_cells(tiny_path, tmp_path):
    out = tmp_path / "killed"
    args = ["figure3", tiny_path, "--out", str(out), "--units", "0-3", "--presets",
            "none,paper3", "--max-iter", "1000", "--batch-size", "1", "--quiet"]
    code = f"import sys; from deepvis.cli import main; sys.exit(main({args!r}))"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    units = out / "units"
    deadline = time.time() + 120
    while time.time() < deadline and not (units.is_dir() and list(units.glob("*.json"))):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in units.glob("*.json")}
    assert 0 < len(finished) < 8, finished            # killed in the middle
    assert not (out / "figure3.json").exists()

    assert main(args[:-1]) == 0                        # not quiet: says what it skips
    for name, mtime in finished.items():
        assert (units / name).stat().st_mtime_ns == mtime, f"{name} was redone"
    assert len(list(units.glob("*.json"))) == 8
    assert not [p for p in units.iterdir() if ".tmp" in p.name or p.name.startswith(".")]
    # and the result is that of an uninterrupted run
    assert main(args[:3] + [str(tmp_path / "whole")] + args[4:]) == 0
    assert cells(out) == cells(tmp_path / "whole")


def test_skipping_is_announced(tiny_path, tmp_path, capsys):
    assert figure3(tiny_path, tmp_path) == 0
    assert main(["figure3", tiny_path, "--out", str(tmp_path), "--units", "0-3", "--presets",
                 "none,paper1,paper3", "--max-iter", "4"]) == 0
    assert "12 of 12 cells are done; skipping them" in capsys.readouterr().err


def test_draw_only_draws_the_cells_done_so_far(tiny_path, tmp_path):
    assert main(["figure3", tiny_path, "--out", str(tmp_path), "--units", "0-1", "--presets",
                 "none", "--max-iter", "4", "--quiet"]) == 0
    assert figure3(tiny_path, tmp_path, "--draw-only") == 0
    doc = json.loads((tmp_path / "figure3.json").read_text())
    missing = [(c["setting"], c["unit"]) for c in doc["cells"] if c.get("missing")]
    assert len(doc["cells"]) == 12 and len(missing) == 10
    assert ("none", 0) not in missing and ("none", 2) in missing
    assert not list((tmp_path / "units").glob("paper1_*"))          # nothing was optimized


def test_cells_made_with_other_settings_are_refused_unless_brave(tiny_path, tmp_path, capsys):
    assert figure3(tiny_path, tmp_path) == 0
    assert figure3(tiny_path, tmp_path, "--rand-seed", "3") == 1
    assert "made with other settings" in capsys.readouterr().err
    assert figure3(tiny_path, tmp_path, "--rand-seed", "3", "--brave") == 0
    doc = json.loads((tmp_path / "figure3.json").read_text())
    assert {c["params"]["rand_seed"] for c in doc["cells"]} == {3}


def test_a_dask_cluster_gives_the_same_cells(tiny_path, tmp_path):
    pytest.importorskip("dask.distributed")
    from dask.distributed import LocalCluster

    assert figure3(tiny_path, tmp_path / "here", "--batch-size", "2") == 0
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        assert figure3(tiny_path, tmp_path / "spread", "--batch-size", "2", "--scheduler",
                       cluster.scheduler_address) == 0
    assert cells(tmp_path / "here") == cells(tmp_path / "spread")


def test_figure4_rows_per_layer_pushes_conv_units_at_the_centre(tiny_path, tmp_path):
    assert main(["figure4", tiny_path, "--out", str(tmp_path), "--units", "conv:0,3;fc:1,4",
                 "--preset", "paper3", "--max-iter", "3", "--quiet"]) == 0
    doc = json.loads((tmp_path / "figure4.json").read_text())
    assert doc["rows"] == ["conv", "fc"]
    assert [(c["layer"], c["unit"], c["setting"]) for c in doc["cells"]] == \
        [("conv", 0, "paper3"), ("conv", 3, "paper3"), ("fc", 1, "paper3"), ("fc", 4, "paper3")]
    conv = doc["cells"][0]["params"]
    assert conv["push_spatial"] == [3, 3] and conv["decay"] == 0.0001
    assert doc["cells"][2]["params"]["push_spatial"] == [0, 0]
    assert doc["cells"][3]["meta_result"] == "Metaresult: grad 0 failure"    # the dead unit


def test_figure_errors_name_the_flag(tiny_path, tmp_path, capsys):
    assert main(["figure4", tiny_path, "--out", str(tmp_path), "--units", "conv:9"]) == 1
    assert "'conv' has 4 units; 9 is outside it" in capsys.readouterr().err
    assert main(["figure4", tiny_path, "--out", str(tmp_path), "--units", "nosuch:1"]) == 1
    assert "no blob named 'nosuch'" in capsys.readouterr().err
    assert figure3(tiny_path, tmp_path, "--presets", "none,paper9") == 1
    assert "unknown preset 'paper9'" in capsys.readouterr().err
    assert main(["figure3", tiny_path, "--out", str(tmp_path), "--units", str(UNITS)]) == 1
    assert figure3(tiny_path, tmp_path, "--tile", "4") == 1
    assert "--tile must be at least 16" in capsys.readouterr().err
    assert parse_unit_rows("conv1:0-2;fc8:130") == (("conv1", (0, 1, 2)), ("fc8", (130,)))


def test_class_units_of_an_imagenet_model_are_judged_on_the_saved_picture(tmp_path):
    assert main(["figure3", "efficientnet-lite0", "--out", str(tmp_path), "--units", "130,9",
                 "--presets", "paper3", "--max-iter", "2", "--judges", "lite1",
                 "--quiet"]) == 0
    doc = json.loads((tmp_path / "figure3.json").read_text())
    pictures = [cv2.cvtColor(cv2.imread(str(tmp_path / "units" / c["image"])),
                             cv2.COLOR_BGR2RGB) for c in doc["cells"]]
    expected = judge(pictures, [130, 9], ["lite1"])
    for cell, verdict in zip(doc["cells"], expected):
        assert cell["label"] == verdict["label"]
        assert cell["judges"] == json.loads(json.dumps(verdict["judges"]))
    assert doc["tally"]["paper3"]["efficientnet-lite1"]["units"] == 2
    assert np.asarray(pictures).shape == (2, 224, 224, 3)


def test_optimize_layer_on_a_dask_cluster_writes_the_same_montages(tiny_path, tmp_path):
    pytest.importorskip("dask.distributed")
    from dask.distributed import LocalCluster

    def montages(out, *extra):
        assert main(["optimize-layer", tiny_path, "--layer", "conv", "--out", str(out),
                     "--max-iter", "3", "--batch-size", "5", "--quiet", *extra]) == 0
        folder = out / "regularized_opt" / "conv"
        return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}

    here = montages(tmp_path / "here")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        spread = montages(tmp_path / "spread", "--scheduler", cluster.scheduler_address)
    assert list(here) == [f"conv_{u:04d}_montage.jpg" for u in range(4)] + ["whole_layer.jpg"]
    assert spread == here


def test_default_units_exist_in_their_models_and_name_the_papers_classes():
    from deepvis import load_model
    from deepvis.caffe.parse import read_prototxt
    from deepvis.figures import units as U
    from deepvis.labels import imagenet_labels
    from tests.fixtures_caffenet import DEPLOY

    labels = imagenet_labels()
    assert [labels[c] for c in U.PAPER_CLASSES] == [
        "flamingo", "pelican", "hartebeest", "pool table", "ground beetle", "Indian cobra",
        "beach wagon", "black swan", "gorilla", "ostrich", "school bus"]
    assert len(U.LITE_CLASSES) == len(set(U.LITE_CLASSES)) == 20
    outputs = {layer.name: (layer.params.get("convolution_param")
                            or layer.params.get("inner_product_param"))["num_output"]
               for layer in read_prototxt(DEPLOY).layers
               if layer.type in ("Convolution", "InnerProduct")}
    layer, classes = U.FIGURE3["caffenet-yos"]
    assert layer == "fc8" and max(classes) < outputs["fc8"]
    for layer, units in U.FIGURE4["caffenet-yos"]:
        assert max(units) < outputs[layer], layer
    assert dict(U.FIGURE4["caffenet-yos"])["conv5"][:2] == (151, 26)
    lite0 = load_model("efficientnet-lite0")
    assert U.figure3_units(lite0, "efficientnet-lite0") == ("fc", U.LITE_CLASSES)
    rows = U.figure4_units(lite0, "efficientnet-lite0")
    assert [layer for layer, _ in rows] == ["stem", "block03", "block06", "block11", "block16", "fc"]
    for layer, units in rows:
        assert max(units) < lite0.blob_shapes[layer][1], layer
    # any other model: a spread of its conv blobs and its class layer
    rows = U.figure4_units(lite0, "some-model.onnx")
    assert rows[0][0] == "stem" and rows[-1][0] == "fc" and len(rows) == 6


def test_figure4_cuts_conv_units_to_their_receptive_field(tiny_path):
    from deepvis import load_model
    from deepvis.commands.figures import crop_to_field
    from deepvis.maxes.receptive import RegionComputer

    model = load_model(tiny_path)
    regions = RegionComputer(model.graph)
    image = np.arange(6 * 6 * 3, dtype=np.uint8).reshape(6, 6, 3)
    jobs = plan.jobs_for(model, [("conv", "paper3", "conv", (0,)), ("fc", "paper3", "fc", (1,))],
                         lambda preset: {"max_iter": 2})
    # a 3x3 kernel with padding 1: the centre unit (3, 3) sees rows and columns 2..4
    np.testing.assert_array_equal(crop_to_field(model, regions, jobs[0], image), image[2:5, 2:5])
    assert crop_to_field(model, regions, jobs[1], image) is image        # fc sees it all


def test_workers_load_the_model_with_the_command_lines_settings():
    import argparse

    from deepvis.figures.runner import ModelRef

    args = argparse.Namespace(model="m.onnx", settings=None, backend="numpy",
                              input_size="200x200", preprocess=None)
    ref = ModelRef.from_args(args)
    assert ref == ModelRef("m.onnx", None, "numpy", (("deepvis_input_size", "200x200"),))
    assert hash(ref) == hash(ModelRef.from_args(args))      # one model per process
