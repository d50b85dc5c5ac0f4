"""The settings schema: every key's rule lives in settings/defaults.yaml; bad values are
refused when the file is read, naming file, key, value and what is allowed."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import yaml

from deepvis.errors import DeepvisError, FormatError
from deepvis.resources import settings_dir
from deepvis.settings import load_settings, read_settings_file
from deepvis.settings.schema import Bad, compile_rule, rules_from_defaults, safe_match


def defaults_text() -> str:
    return (settings_dir() / "defaults.yaml").read_text(encoding="utf-8")


def test_every_default_key_has_a_rule_and_its_default_obeys_it():
    values = yaml.safe_load(defaults_text())
    rules = rules_from_defaults(defaults_text())
    assert set(rules) == set(values)
    for key, value in values.items():
        assert rules[key].check(value) == value, key
    assert "installed_apps" in rules          # the original's app list is accepted, ignored


@pytest.mark.parametrize("text, key, shown, allowed", [
    ("global_font_size: -5\n", "global_font_size", "-5", "number in (0, 10]"),
    ("caffevis_status_fsize: 1e9\n", "caffevis_status_fsize", "1e9", "number in (0, 10]"),
    ("caffevis_class_fsize: .inf\n", "caffevis_class_fsize", "inf", "number in (0, 10]"),
    ("help_thick: 1.5\n", "help_thick", "1.5", "int in [1, 50]"),
    ("window_background: [0.1, 2, 0.3]\n", "window_background", "[0.1, 2, 0.3]",
     "list of 3 number in [0, 1]"),
    ("caffevis_label_loc: [1, 2, 3]\n", "caffevis_label_loc", "[1, 2, 3]", "list of 2 int"),
    ("deepvis_backend: cuda\n", "deepvis_backend", "cuda", "one of ort, numpy"),
    ("caffevis_control_face: FONT_FOO\n", "caffevis_control_face", "FONT_FOO", "font"),
    ("window_panes: {input: [0, 0, -3, 300]}\n", "window_panes", "-3", "panes"),
    ("static_files_ignore_case: 'yes'\n", "static_files_ignore_case", "yes", "bool"),
])
def test_yaml_values_outside_their_rule_are_refused_naming_file_key_value_rule(
        tmp_path, text, key, shown, allowed):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(DeepvisError) as info:
        load_settings(path)
    message = str(info.value)
    assert str(path) in message and f"setting {key} = " in message
    assert shown in message and f"allowed: {allowed}" in message


def test_python_settings_with_bad_font_sizes_are_refused_with_the_key(tmp_path):
    path = tmp_path / "settings_local.py"
    path.write_text("global_font_size = -5\n")
    with pytest.raises(DeepvisError, match=r"setting global_font_size = -5 is not allowed"):
        load_settings(path)
    path.write_text("caffevis_status_fsize = 1e9\n")
    with pytest.raises(DeepvisError, match=r"caffevis_status_fsize = 1000000000.0 .*\(0, 10\]"):
        load_settings(path)


def test_a_good_value_is_normalized_yaml_1e1_is_a_number(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("caffevis_status_fsize: 1e-1\nhelp_thick: 2.0\n")
    settings = load_settings(path)
    assert settings.caffevis_status_fsize == 0.1 and settings.help_thick == 2
    assert isinstance(settings.help_thick, int)


def test_the_cli_refuses_before_loading_any_network(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("deepvis_model: efficientnet-lite0\ncaffevis_status_fsize: 1e9\n")
    env = dict(os.environ, DEEPVIS_CACHE=str(tmp_path / "empty-cache"))
    result = subprocess.run([sys.executable, "-m", "deepvis.cli", "layers", str(path)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "caffevis_status_fsize" in result.stderr and "(0, 10]" in result.stderr
    assert not (tmp_path / "empty-cache" / "onnx").exists()     # no model was converted


def test_cross_key_rule_default_index_must_index_its_choices(tmp_path):
    path = tmp_path / "idx.yaml"
    path.write_text("caffevis_boost_gamma_default_idx: 4\n")
    with pytest.raises(DeepvisError, match="caffevis_boost_gamma_default_idx = 4 must index"):
        load_settings(path)
    path.write_text("caffevis_boost_gamma_default_idx: 4\n"
                    "caffevis_boost_gamma_choices: [1, 0.9, 0.8, 0.7, 0.6]\n")
    assert load_settings(path).caffevis_boost_gamma_default_idx == 4


def test_settings_local_is_decoded_by_its_pep263_coding_line(tmp_path):
    path = tmp_path / "settings_local.py"
    path.write_bytes("# -*- coding: latin-1 -*-\ncaffevis_prob_layer = 'prob\u00e9'\n"
                     .encode("latin-1"))
    assert read_settings_file(path)["caffevis_prob_layer"] == "prob\u00e9"
    path.write_bytes(b"caffevis_prob_layer = 'prob\xe9'\n")           # latin-1 bytes, no line
    with pytest.raises(FormatError, match="needs a coding line"):
        read_settings_file(path)
    path.write_bytes(b"x = 1\n\n\ncaffevis_prob_layer = 'prob\xe9'\n")
    with pytest.raises(FormatError, match="not valid utf-8 text"):
        read_settings_file(path)
    path.write_bytes(b"# -*- coding: klingon -*-\nx = 1\n")
    with pytest.raises(FormatError, match="klingon"):
        read_settings_file(path)


def test_a_chain_of_squarings_is_refused_quickly(tmp_path):
    lines = ["a0 = 7"] + [f"a{i + 1} = a{i} * a{i}" for i in range(40)]
    path = tmp_path / "settings_local.py"
    path.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    with pytest.raises(FormatError, match=r"settings_local.py:\d+: .*larger than"):
        read_settings_file(path)
    assert time.monotonic() - started < 2.0
    path.write_text("a0 = 7.0\n" + "\n".join(f"a{i + 1} = a{i} * a{i}" for i in range(40)))
    with pytest.raises(FormatError, match="overflows"):
        read_settings_file(path)


@pytest.mark.parametrize("source", [
    "x = " + "(" * 150 + "1" + ")" * 150,
    "x = " + "-" * 20000 + "1",
    "x = " + "[" * 80 + "]" * 80,
    "x = " + "+".join(["1"] * 20000),
])
def test_deep_expressions_are_refused_cleanly(tmp_path, source):
    path = tmp_path / "settings_local.py"
    path.write_text(source + "\n")
    with pytest.raises(DeepvisError):
        load_settings(path)


def test_catastrophic_regexp_is_refused_at_load_and_never_hangs_a_match(tmp_path):
    path = tmp_path / "re.yaml"
    path.write_text("static_files_regexp: '^(a|aa)+$'\n")
    started = time.monotonic()
    with pytest.raises(DeepvisError, match=r"static_files_regexp .* too slow to match"):
        load_settings(path)
    assert time.monotonic() - started < 5.0
    path.write_text("static_files_regexp: '(unclosed'\n")
    with pytest.raises(DeepvisError, match="not a regular expression"):
        load_settings(path)
    # a pattern that passes the probes still cannot hang a match
    started = time.monotonic()
    with pytest.raises(DeepvisError, match="took over"):
        safe_match(r"^(x|xx)+$", "x" * 64 + "!")
    assert time.monotonic() - started < 5.0
    assert safe_match(r".*\.(jpg|png)$", "CAT.JPG", ignore_case=True)


@pytest.mark.parametrize("text", [
    b"\xff\xfe not utf-8: [\n",
    b"1: 2\n",
    b"? [a, b]\n: c\n",
    b"when: 2001-13-45\n",
    b"a: &x [*x]\n",
    b"[" * 5000,
    b"- just\n- a list\n",
])
def test_broken_yaml_files_give_clean_errors(tmp_path, text):
    path = tmp_path / "broken.yaml"
    path.write_bytes(text)
    with pytest.raises(DeepvisError):
        load_settings(path)


def test_rules_read_from_text():
    check = compile_rule("null or list of 2 int in [0, 5)")
    assert check(None) is None and check([0, 4]) == [0, 4] and check((1, 2)) == (1, 2)
    for bad in ([0, 5], [1], "x", [True, 1]):
        with pytest.raises(Bad):
            check(bad)
