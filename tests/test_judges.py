"""Judges: their verdicts equal a plain forward pass, a hand-built colour judge gives the
hand-derived ranks (its own centre crop and channel order included), and a judge with
another label set is refused."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

import deepvis
from deepvis.cli import main
from deepvis.errors import DeepvisError
from deepvis.graph import meta
from deepvis.graph.builder import GraphBuilder
from deepvis.judges import judge, load_judge, tally

# Colour judge: network channels are BGR; class 0 reads red, 1 green, 2 blue.
COLOURS = ("red", "green", "blue")


def build_colour_judge(path):
    g = GraphBuilder("colours")
    g.input("data", ["N", 3, 8, 8])
    pooled = g.node("GlobalAveragePool", ["data"], ["pool"])
    flat = g.node("Flatten", [pooled], axis=1)
    w = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]], np.float32) * 10
    fc = g.node("Gemm", [flat, g.initializer(w, "w"), g.initializer(np.zeros(3, np.float32),
                                                                      "b")], ["fc"], transB=1)
    g.node("Softmax", [fc], ["prob"], axis=1)
    g.output("prob")
    preprocess = {"channel_swap": [2, 1, 0], "mean": [0.0, 0.0, 0.0], "scale": 1 / 255,
                  "input_size": [8, 8]}
    path.write_bytes(g.build(meta.encode(blobs=["data", "fc", "prob"],
                                         preprocess=preprocess)).SerializeToString())
    return str(path)


@pytest.fixture(scope="module")
def colour_judge(tmp_path_factory):
    return build_colour_judge(tmp_path_factory.mktemp("judge") / "colours.onnx")


def test_colour_judge_gives_the_hand_derived_ranks(colour_judge):
    red = np.zeros((30, 50, 3), np.uint8)
    red[..., 0] = 255
    # three squares side by side: green | blue | red; the judge's centre crop sees blue only
    strip = np.zeros((30, 90, 3), np.float32)
    strip[:, :30, 1] = strip[:, 30:60, 2] = strip[:, 60:, 0] = 200.0
    out = judge([red, strip, red], [0, 2, 2], [colour_judge], k=3)
    v = out[0]["judges"][colour_judge]
    assert [t["class"] for t in v["top"]] == [0, 1, 2]       # ties (green, blue) keep order
    assert v["rank"] == 1 and v["top1"] and v["top5"]
    # softmax of (10, 0, 0): e^10 / (e^10 + 2)
    assert v["top"][0]["prob"] == pytest.approx(np.exp(10) / (np.exp(10) + 2), rel=1e-5)
    s = out[1]["judges"][colour_judge]
    assert s["top"][0]["class"] == 2 and s["rank"] == 1
    assert s["top"][0]["prob"] == pytest.approx(np.exp(200 / 25.5) / (np.exp(200 / 25.5) + 2),
                                                rel=1e-5)
    r = out[2]["judges"][colour_judge]
    assert r["rank"] == 3 and not r["top1"] and r["top5"]
    assert tally(out) == {colour_judge: {"images": 3, "top1": 2, "top5": 3}}


def test_a_judge_with_another_label_set_is_refused(colour_judge):
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(DeepvisError, match="3 classes but the images' model has 1000"):
        judge([image], [0], [colour_judge], labels=1000)
    with pytest.raises(DeepvisError, match="outside judge"):
        judge([image], [3], [colour_judge])
    with pytest.raises(DeepvisError, match=r"shape \(H, W, 3\)"):
        judge([np.zeros((8, 8))], [0], [colour_judge])
    with pytest.raises(DeepvisError, match="one class per image"):
        judge([image, image], [0], [colour_judge])


def chelsea_rgb():
    skimage_data = pytest.importorskip("skimage.data")
    return skimage_data.chelsea()


def by_hand(rgb, spec):
    """Float pixels -> network input: centre square, bilinear resize, swap, mean, scale."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    square = rgb[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    size = spec.input_size
    x = cv2.resize(square.astype(np.float32), (size[1], size[0]),
                   interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
    x = x[list(spec.channel_swap)] if spec.channel_swap else x
    return ((x - spec.mean) * spec.scale)[None].astype(np.float32)


def test_verdicts_equal_an_independent_forward_pass():
    rgb = chelsea_rgb()                                       # 300 x 451, not square
    flipped = np.ascontiguousarray(rgb[:, ::-1]).astype(np.float64)
    out = judge([rgb, flipped], [285, 281], ["lite1", "efficientnet-lite2"], k=7)
    for name in ("efficientnet-lite1", "efficientnet-lite2"):
        model = deepvis.load_model(name)
        x = np.concatenate([model.preprocess(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)),
                            by_hand(flipped, model.preprocessing)])
        probs = model.forward(x, ["prob"])["prob"].reshape(2, -1)
        for entry, row, cls in zip(out, probs, (285, 281)):
            order = np.argsort(-row, kind="stable")
            v = entry["judges"][name]
            assert [t["class"] for t in v["top"]] == order[:7].tolist()
            assert [t["label"] for t in v["top"]] == [model.labels[c] for c in order[:7]]
            np.testing.assert_allclose([t["prob"] for t in v["top"]], row[order[:7]],
                                       rtol=1e-5)
            assert v["rank"] == int(np.flatnonzero(order == cls)[0]) + 1
    # hand-checked: the photo shows a cat, and both judges say Egyptian cat first
    for name in ("efficientnet-lite1", "efficientnet-lite2"):
        assert out[0]["judges"][name]["top"][0]["label"] == "Egyptian cat"
        assert out[0]["label"] == "Egyptian cat" and out[1]["label"] == "tabby"
        assert out[1]["judges"][name]["rank"] <= 5
    assert load_judge("lite1") is load_judge("efficientnet-lite1")      # loaded once


def test_cli_prints_verdicts_and_refuses_mixed_label_sets(colour_judge, tmp_path, capsys):
    rgb = chelsea_rgb()
    path = tmp_path / "cat.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert main(["judge", str(path), "--class", "egyptian cat", "--judges", "lite1",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["images"][0]["class"] == 285 and doc["images"][0]["image"] == str(path)
    assert doc["tally"] == {"efficientnet-lite1": {"images": 1, "top1": 1, "top5": 1}}
    assert main(["judge", str(path), "--class", "285", "--judges",
                 f"lite1,{colour_judge}"]) == 1
    assert "different label sets" in capsys.readouterr().err
    assert main(["judge", str(path), "--class", "no such thing", "--judges", "lite1"]) == 1
    assert "neither a class index nor a label" in capsys.readouterr().err
