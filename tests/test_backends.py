"""onnxruntime and the NumPy executor agree on every blob of the real networks."""
import json
import subprocess
import sys

import numpy as np
import pytest

import deepvis
from tests.conftest import REPO

skimage_data = pytest.importorskip("skimage.data")


def assert_blobs_agree(ort_model, np_model, x):
    ours, theirs = np_model.forward(x), ort_model.forward(x)
    assert list(ours) == list(theirs) == ort_model.blob_names
    for name in ort_model.blob_names:
        scale = max(np.abs(theirs[name]).max(), 1e-12)
        err = np.abs(ours[name] - theirs[name]).max() / scale
        assert err < 1e-4, f"{name}: relative error {err:.2e}"


def test_efficientnet_lite0_every_blob():
    ort_model = deepvis.load_model("efficientnet-lite0", backend="ort")
    np_model = deepvis.load_model("efficientnet-lite0", backend="numpy")
    assert np_model.backend == "numpy"
    x = np.concatenate([ort_model.preprocess(getattr(skimage_data, n)()[..., ::-1])
                        for n in ("chelsea", "coffee")])
    assert_blobs_agree(ort_model, np_model, x)


def test_caffenet_every_blob(tmp_path):
    from tests.fixtures_caffenet import synthetic_caffenet_onnx

    path = synthetic_caffenet_onnx(tmp_path, seed=0)
    ort_model = deepvis.load_model(str(path), backend="ort")
    np_model = deepvis.load_model(str(path), backend="numpy")
    assert ort_model.blob_names == ["data", "conv1", "pool1", "norm1", "conv2", "pool2", "norm2",
                                    "conv3", "conv4", "conv5", "pool5", "fc6", "fc7", "fc8", "prob"]
    x = np.random.default_rng(0).normal(0, 40, (2, 3, 227, 227)).astype(np.float32)
    assert_blobs_agree(ort_model, np_model, x)


def test_numpy_backend_runs_with_onnxruntime_hidden(tmp_path):
    """A fresh interpreter where `import onnxruntime` fails: auto picks NumPy and still works."""
    script = (
        "import sys, json; sys.modules['onnxruntime'] = None\n"
        "import deepvis, skimage.data\n"
        "m = deepvis.load_model('efficientnet-lite0')\n"
        "p = m.forward(m.preprocess(skimage.data.chelsea()[..., ::-1]), blobs=['prob'])['prob']\n"
        "print(json.dumps([m.backend, int(p.argmax())]))\n")
    env_cache = {"DEEPVIS_CACHE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                         env={**__import__("os").environ, **env_cache}, timeout=600)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == ["numpy", 285]
