"""Settings: defaults, templates, user files in YAML and the original's Python form."""
import pathlib

import pytest

from deepvis.errors import DeepvisError, FormatError
from deepvis.resources import models_dir
from deepvis.settings import load_settings, read_settings_file


def test_defaults_carry_the_original_values():
    s = load_settings()
    assert s.window_panes["caffevis_layers"] == [30, 300, 870, 900]
    assert s.caffe_net_channel_swap == [2, 1, 0]
    assert s.caffevis_boost_gamma_choices == [1, 0.7, 0.5, 0.3]


def test_model_template_overrides_defaults_and_is_marked_explicit():
    s = load_settings(model="efficientnet-lite0")
    assert s.caffe_net_channel_swap is None
    assert s.caffevis_prob_layer == "prob"
    assert "caffe_net_channel_swap" in s.explicit
    assert "window_panes" not in s.explicit


def test_user_yaml_wins_and_unknown_key_names_the_closest(tmp_path):
    good = tmp_path / "mine.yaml"
    good.write_text("deepvis_model: efficientnet-lite0\nstatic_file_stretch_mode: true\n")
    s = load_settings(good)
    assert s.static_file_stretch_mode is True and s.caffevis_prob_layer == "prob"
    bad = tmp_path / "bad.yaml"
    bad.write_text("caffevis_labls: imagenet-1k\n")
    with pytest.raises(DeepvisError, match="caffevis_labels"):
        load_settings(bad)
    with pytest.raises(AttributeError, match="caffevis_labels"):
        load_settings().caffevis_labls


def test_original_python_settings_are_read_without_running_them(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "settings_local.py"
    path.write_text(
        "import os\n"
        "caffevis_caffe_root = '/path/to/caffe'\n"
        "caffevis_deploy_prototxt = '%DVT_ROOT%/models/caffenet-yos/deploy.prototxt'\n"
        "caffevis_data_mean = (104, 117, 123)\n"
        "caffevis_layer_pretty_name_fn = lambda name: name.replace('pool','p').replace('norm','n')\n"
        "caffevis_filter_layers = lambda name: '_split_' in name\n")
    values = read_settings_file(path)
    assert values["caffevis_deploy_prototxt"] == str(models_dir() / "caffenet-yos" / "deploy.prototxt")
    assert values["caffevis_data_mean"] == (104, 117, 123)
    assert values["caffevis_layer_pretty_names"] == [["pool", "p"], ["norm", "n"]]
    assert values["caffevis_filter_layers"] == ["_split_"]
    evil = tmp_path / "evil.py"
    evil.write_text(f"x = open({str(marker)!r}, 'w')\n")
    with pytest.raises(FormatError, match=r"evil.py:1: the value of x is not a literal"):
        read_settings_file(evil)
    assert not marker.exists()


def test_relative_paths_resolve_against_the_settings_file(tmp_path):
    path = tmp_path / "sub" / "s.yaml"
    path.parent.mkdir()
    path.write_text("caffevis_labels: labels.txt\ncaffevis_data_mean: [1, 2, 3]\n")
    values = read_settings_file(path)
    assert pathlib.Path(values["caffevis_labels"]) == path.parent / "labels.txt"
    assert values["caffevis_data_mean"] == [1, 2, 3]


def test_missing_and_malformed_files_name_the_file(tmp_path):
    with pytest.raises(FormatError, match="nope.yaml does not exist"):
        read_settings_file(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1, 2\n")
    with pytest.raises(FormatError, match="broken.yaml: not valid YAML"):
        read_settings_file(broken)
