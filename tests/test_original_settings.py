"""An original settings_local.py is found where run_toolbox.py found it, `installed_apps` is
accepted and ignored with a notice, and static files keep os.listdir's order with it."""
from __future__ import annotations

import os
import re

import cv2
import numpy as np
import pytest

from deepvis.caffe.parse import parse_prototxt_text
from deepvis.caffe.weights import random_weights
from deepvis.cli import main
from deepvis.resources import models_dir
from tests.caffe_writer import write_caffemodel

SETTINGS_LOCAL = """\
# an original toolbox settings_local.py (the caffenet-yos template's form)
caffevis_caffe_root = '/path/to/caffe'
caffevis_deploy_prototxt = 'slim-deploy.prototxt'
caffevis_network_weights = 'slim.caffemodel'
caffevis_data_mean = (104, 117, 123)
installed_apps = (('caffevis.app', 'CaffeVisApp'),)
caffevis_control_fsize = .85
static_files_dir = 'photos'
def caffevis_layer_pretty_name_fn(name):
    return name.replace('pool', 'p').replace('norm', 'n')
"""


@pytest.fixture(scope="module")
def original_folder(tmp_path_factory):
    """A folder as a user of the original has it: settings_local.py, the Caffe files, photos."""
    folder = tmp_path_factory.mktemp("original-user")
    text = (models_dir() / "caffenet-yos" / "deploy.prototxt").read_text()
    text = re.sub(r"num_output: (\d+)", lambda m: f"num_output: {int(m[1]) // 16}", text)
    (folder / "slim-deploy.prototxt").write_text(text)
    net = parse_prototxt_text(text)
    blobs = random_weights(net, 0)
    write_caffemodel(folder / "slim.caffemodel",
                     [(l.name, l.type, blobs[l.name]) for l in net.layers if l.name in blobs])
    (folder / "settings_local.py").write_text(SETTINGS_LOCAL)
    photos = folder / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("zebra.jpg", "apple.png", "mango.jpg", "notes.txt"):
        if name.endswith(".txt"):
            (photos / name).write_text("not an image")
        else:
            cv2.imwrite(str(photos / name), rng.integers(0, 255, (64, 80, 3), np.uint8))
    return folder


def test_deepvis_toolbox_uses_the_settings_local_py_of_the_working_directory(
        original_folder, monkeypatch, capsys):
    from deepvis.commands import toolbox as toolbox_command
    from deepvis.toolbox.app import ToolboxApp

    seen = {}

    def fake_run(app):
        seen["session"], seen["device"] = app.session, app.fetcher.device
    monkeypatch.chdir(original_folder)
    monkeypatch.setattr(toolbox_command, "display_problem", lambda *a, **k: None, raising=False)
    monkeypatch.setattr(ToolboxApp, "run", fake_run)
    assert main(["toolbox", "--backend", "numpy"]) == 0
    session = seen["session"]
    assert seen["device"] == 0                   # camera 0, as the original's default
    err = capsys.readouterr().err
    assert "settings_local.py" in err and "installed_apps is ignored" in err
    assert session.settings["caffevis_control_fsize"] == pytest.approx(0.85)
    assert session.settings["installed_apps"] == (("caffevis.app", "CaffeVisApp"),)
    assert session.model.blob_shapes["conv1"][1] == 6               # the slim net, not the default
    assert session.drawer.pretty_names[:3] == ["conv1", "p1", "n1"]
    # static files: os.listdir's order, filtered by static_files_regexp
    listed = [n for n in os.listdir(original_folder / "photos") if not n.endswith(".txt")]
    assert session.static.files() == listed


def test_deepvis_render_finds_it_too_and_without_it_lists_sorted(original_folder, monkeypatch,
                                                                 tmp_path, capsys):
    monkeypatch.chdir(original_folder)
    out = tmp_path / "frame.png"
    assert main(["render", "--backend", "numpy", "--input", "photos", "--out", str(out)]) == 0
    assert "settings_local.py" in capsys.readouterr().err
    assert cv2.imread(str(out)).shape == (930, 1500, 3)
    from deepvis.settings import load_settings
    from deepvis.toolbox.inputs import StaticFiles
    assert StaticFiles(load_settings(), original_folder / "photos").files() == \
        ["apple.png", "mango.jpg", "zebra.jpg"]


def test_no_settings_local_means_the_defaults(tmp_path, monkeypatch):
    from deepvis.commands.toolbox import find_settings_local
    monkeypatch.chdir(tmp_path)
    assert find_settings_local() is None
    (tmp_path / "settings_local.py").write_text("caffevis_control_fsize = 1.0\n")
    assert find_settings_local() == tmp_path / "settings_local.py"


def test_find_maxes_with_an_original_settings_file_squashes_to_256_then_cuts_227(
        original_folder):
    """The model of an original template-style settings_local.py: its find-maxes input is the
    original find_max_acts one (checked against a NumPy resize and crop)."""
    import deepvis
    from deepvis.maxes.framing import default_framing
    from tests.test_maxes_crops import squash_227_numpy

    model = deepvis.load_model(str(original_folder / "settings_local.py"), backend="numpy")
    framing = default_framing(model)
    assert framing.how == "squash"
    prep = framing.preprocessor(model)
    for path in sorted((original_folder / "photos").glob("*.*g")):
        ours = prep(cv2.imread(str(path)))[0]
        assert np.abs(ours - squash_227_numpy(path, [104, 117, 123])).max() <= 1.0
