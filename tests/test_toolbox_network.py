"""The network work behind a frame: seeds, reuse, and diffs at intermediate blobs, checked
against NumPy on a tiny conv net."""
import numpy as np
import onnx
import pytest

from deepvis import load_model
from deepvis.graph import meta
from deepvis.graph.builder import GraphBuilder
from deepvis.toolbox.layer_diffs import cut_graph
from deepvis.toolbox.network import NetRunner, Request, unit_seed

RNG = np.random.default_rng(3)
W = {name: RNG.standard_normal(shape).astype(np.float32) * 0.5
     for name, shape in (("w1", (3, 2, 3, 3)), ("w2", (3, 3, 3, 3)), ("w3", (2, 3, 3, 3)))}


def conv(x, w):
    """'same' 3x3 convolution of (C, H, W) by (O, C, 3, 3), in plain NumPy."""
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    h, wd = x.shape[1:]
    out = np.zeros((w.shape[0], h, wd), np.float64)
    for i in range(3):
        for j in range(3):
            out += np.einsum("oc,chw->ohw", w[:, :, i, j], padded[:, i:i + h, j:j + wd])
    return out


def transpose(w, dy, shape):
    """d sum(dy * conv(x, w)) / dx, from the linear map's columns."""
    grad = np.zeros(shape)
    for idx in np.ndindex(*shape):
        unit = np.zeros(shape)
        unit[idx] = 1
        grad[idx] = (dy * conv(unit, w)).sum()
    return grad


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """data -> conv w1 -> relu = c1 -> conv w2 -> relu = c2 -> conv w3 = c3."""
    b = GraphBuilder("tiny")
    b.input("data", ["N", 2, 6, 6])
    x = "data"
    for k, relu in ((1, True), (2, True), (3, False)):
        w = b.initializer(W[f"w{k}"], f"w{k}")
        pre = f"c{k}/pre" if relu else f"c{k}"
        b.node("Conv", [x, w], [pre], pads=[1, 1, 1, 1])
        if relu:
            b.node("Relu", [pre], [f"c{k}"])
        x = f"c{k}"
    for name in ("c1", "c2", "c3"):
        b.output(name)
    model = b.build(meta.encode(blobs=["data", "c1", "c2", "c3"],
                                seeds={"c1": "c1/pre", "c2": "c2/pre"}))
    path = tmp_path_factory.mktemp("tiny") / "tiny.onnx"
    onnx.save(model, str(path))
    return load_model(str(path))


def forward_numpy(x):
    c1 = np.maximum(conv(x, W["w1"]), 0)
    c2_pre = conv(c1, W["w2"])
    return c1, c2_pre, conv(np.maximum(c2_pre, 0), W["w3"])


@pytest.mark.parametrize("mode", ["grad", "deconv"])
def test_layer_diff_matches_numpy(tiny, mode):
    x = RNG.standard_normal((1, 2, 6, 6)).astype(np.float32)
    runner = NetRunner(tiny)
    runner.to_input = lambda frame: frame               # feed the network input directly
    request = Request(0, x, ("c3", 1, mode), "c1")
    results = runner.run(request)
    c1, c2_pre, c3 = forward_numpy(x[0])
    seed = np.zeros_like(c3)
    seed[1] = c3[1]                                     # the unit's own map
    dc2 = transpose(W["w3"], seed, c2_pre.shape)
    dc2 = dc2 * (c2_pre > 0) if mode == "grad" else np.maximum(dc2, 0)
    dc1 = transpose(W["w2"], dc2, c1.shape)             # w.r.t. the visible c1 (after ReLU)
    # shown below c1's in-place ReLU, as Caffe's shared buffer held it (its mask: c1 > 0)
    expected = dc1 * (c1 > 0) if mode == "grad" else np.maximum(dc1, 0)
    np.testing.assert_allclose(results.diff, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(results.blobs["c3"], c3, rtol=1e-4, atol=1e-4)
    assert results.diff_key == ("c1", ("c3", 1, mode)) and runner.up_to_date(request, results)


def test_diffs_at_and_above_the_seed(tiny):
    x = RNG.standard_normal((1, 2, 6, 6)).astype(np.float32)
    runner = NetRunner(tiny)
    runner.to_input = lambda frame: frame
    at = runner.run(Request(0, x, ("c2", 2, "grad"), "c2"))
    np.testing.assert_array_equal(at.diff, unit_seed(at.blobs["c2"][None], 2)[0])
    above = runner.run(Request(0, x, ("c2", 2, "grad"), "c3"), at)
    assert not above.diff.any() and above.diff.shape == (2, 6, 6)
    assert above.blobs is at.blobs                      # same frame: no new forward
    assert cut_graph(tiny.graph, "c3", "c1/pre", tiny.blob_shapes) is None


def test_runner_reuses_and_back_seed_is_the_units_map(tiny):
    x = RNG.standard_normal((1, 2, 6, 6)).astype(np.float32)
    runner = NetRunner(tiny)
    runner.to_input = lambda frame: frame
    first = runner.run(Request(0, x, None))
    assert first.grad is None and first.back is None
    back = runner.run(Request(0, x, ("c2", 0, "grad")), first)
    # back on for a shown frame: one forward+backward pass, whose blobs replace the shown ones
    # (test_grad_masks_shown.py: so the masks are those of the values on screen)
    assert back.blobs is not first.blobs
    for name, value in first.blobs.items():
        np.testing.assert_allclose(back.blobs[name], value, rtol=1e-5, atol=1e-6)
    seed = np.zeros((1, 3, 6, 6), np.float32)
    seed[0, 0] = first.blobs["c2"][0]
    np.testing.assert_allclose(back.grad, tiny.backward(x, "c2", seed, "grad")[0], rtol=1e-6)
    again = runner.run(Request(0, x, ("c2", 0, "grad")), back)
    assert again.grad is back.grad
    new_frame = runner.run(Request(1, x * 2, ("c2", 0, "grad")), again)
    assert new_frame.grad is not again.grad and new_frame.frame_id == 1
