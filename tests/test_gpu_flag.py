"""--gpu: every command that runs a network takes it, and it reaches every process that
loads the model. Where onnxruntime has no CUDA provider (this project's CI), the command
says so once and gives the CPU's results."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from deepvis.cli import COMMANDS, build_parser
from deepvis.commands.common import setting_overrides
from deepvis.figures.runner import ModelRef

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MISSING = "CUDA execution provider not available"


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_with_a_backend_takes_gpu():
    parsers = subparsers()
    assert len(parsers) >= len(COMMANDS)
    with_backend = {name for name, p in parsers.items()
                    if any("--backend" in a.option_strings for a in p._actions)}
    assert {"forward", "backprop", "optimize", "optimize-layer", "figure3", "figure4", "judge",
            "find-maxes", "crop-max-patches", "toolbox", "render", "serve",
            "reproduce"} <= with_backend
    for name in with_backend:
        assert any("--gpu" in a.option_strings for a in parsers[name]._actions), name


def test_gpu_is_the_original_setting_for_every_process():
    on = argparse.Namespace(model="m", settings=None, backend="ort", gpu=True,
                            input_size=None, preprocess="lite")
    assert setting_overrides(on) == {"caffevis_mode_gpu": True, "deepvis_preprocess": "lite"}
    assert setting_overrides(argparse.Namespace(gpu=False)) == {}
    # what a Dask worker of figure3/figure4/optimize-layer loads with
    assert dict(ModelRef.from_args(on).overrides)["caffevis_mode_gpu"] is True


def test_optimize_loads_its_network_with_gpu_set():
    from deepvis.commands.optimize import open_network

    args = build_parser("optimize").parse_args(
        ["optimize", "--model", "efficientnet-lite0", "--gpu", "--backend", "ort"])
    model = open_network(args)
    assert model.settings.get("caffevis_mode_gpu") is True


def test_forward_with_gpu_gives_the_cpu_scores_where_cuda_is_missing(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    image = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(image), rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    runs = {}
    for flags in ((), ("--gpu",)):
        result = subprocess.run([sys.executable, "-m", "deepvis.cli", "forward",
                                 "efficientnet-lite0", "--input", str(image), "--backend", "ort",
                                 "--json", *flags], capture_output=True, text=True, cwd=REPO,
                                timeout=300)
        assert result.returncode == 0, result.stderr
        runs[flags] = result
    with_gpu = runs[("--gpu",)]
    assert MISSING not in runs[()].stderr
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        assert MISSING not in with_gpu.stderr
    else:
        assert with_gpu.stderr.count(MISSING) == 1
        assert with_gpu.stdout == runs[()].stdout
