"""A gradient goes through the ReLU masks of the forward values the user sees.

Two onnxruntime sessions of different graphs may round a pre-activation near 0 differently,
so a mask recomputed in the gradient graph could disagree with the activation on screen. Here
the forward session is made to round differently on purpose (pre-activations that are exactly
0, at an input pixel that is 0, come out as +1e-12, as a reordered sum can), and the back
pane's gradient must still be the one the displayed values imply.
"""
import numpy as np
import onnx
import pytest

from deepvis import load_model
from deepvis.graph import meta
from deepvis.graph.builder import GraphBuilder
from deepvis.toolbox.network import NetRunner, Request

RNG = np.random.default_rng(11)
W1 = RNG.standard_normal((3, 2, 1, 1)).astype(np.float32)
W2 = RNG.standard_normal((2, 3, 1, 1)).astype(np.float32)
B2 = np.array([0.5, 0.5], np.float32)  # y > 0 where h is 0: the seed reaches that pixel
NUDGE = 1e-12
X = RNG.standard_normal((1, 2, 4, 4)).astype(np.float32)
X[0, :, 1, 2] = 0.0  # every h/pre channel is exactly 0 at this pixel


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """data -> 1x1 conv W1 = h/pre -> relu = h -> 1x1 conv W2, B2 = y/pre -> relu = y."""
    b = GraphBuilder("masks")
    b.input("data", ["N", 2, 4, 4])
    b.node("Conv", ["data", b.initializer(W1, "w1")], ["h/pre"])
    b.node("Relu", ["h/pre"], ["h"])
    b.node("Conv", ["h", b.initializer(W2, "w2"), b.initializer(B2, "b2")], ["y/pre"])
    b.node("Relu", ["y/pre"], ["y"])
    for name in ("h/pre", "h", "y/pre", "y"):
        b.output(name)
    graph = b.build(meta.encode(blobs=["data", "h/pre", "h", "y/pre", "y"]))
    path = tmp_path_factory.mktemp("masks") / "masks.onnx"
    onnx.save(graph, str(path))
    return load_model(str(path), backend="ort")


class RoundsDifferently:
    """The forward executor, but channel 1 of h/pre (and so of h) comes out +1e-12: only its
    exact zeros change sign."""

    def __init__(self, executor):
        self._executor = executor
        self.calls = 0

    def run(self, feeds, outputs=None):
        self.calls += 1
        out = self._executor.run(feeds, outputs)
        for name in ("h/pre", "h"):
            if name in out:
                out[name] = out[name].copy()
                out[name][:, 1] += NUDGE
        return out


def implied_gradient(blobs: dict, unit: int) -> np.ndarray:
    """The toolbox's gradient (seed: unit's own activation map at y) through the masks of
    the displayed h/pre, for 1x1 convolutions: a matrix product per pixel."""
    seed = np.zeros_like(blobs["y"])
    seed[unit] = blobs["y"][unit]
    dh = np.einsum("oc,ohw->chw", W2[:, :, 0, 0], seed * (blobs["y/pre"] > 0))
    dh *= blobs["h/pre"] > 0
    return np.einsum("oc,ohw->chw", W1[:, :, 0, 0], dh)


def test_back_pane_uses_the_masks_of_the_displayed_forward(model, monkeypatch):
    monkeypatch.setattr(model, "_executor", RoundsDifferently(model._executor))
    runner = NetRunner(model)
    monkeypatch.setattr(runner, "to_input", lambda frame: X)
    frame = np.zeros((4, 4, 3), np.uint8)
    shown = runner.run(Request(1, frame))
    assert shown.blobs["h/pre"][1, 1, 2] > 0  # the nudge is on screen
    unit = int(np.argmax([shown.blobs["y"][c].sum() for c in range(2)]))
    back = runner.run(Request(1, frame, back=("y", unit, "grad")), shown)
    assert np.abs(back.grad).max() > 0
    expected = implied_gradient(back.blobs, unit)
    np.testing.assert_allclose(back.grad, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    # The displayed values changed to the pass the gradient came from, and with them the
    # masks: the pixel is exactly 0 again, so no gradient flows through it.
    assert back.blobs["h/pre"][1, 1, 2] == 0
    stale = implied_gradient(shown.blobs, unit)
    assert np.abs(stale - expected).max() > 1e-3 * np.abs(expected).max()


def test_backprop_command_seed_and_masks_come_from_one_pass(model, monkeypatch, tmp_path):
    """`deepvis backprop --seed activation` multiplies the seed by the activations of the same
    run as its masks: the (nudged) forward executor is never asked."""
    from deepvis.commands import backprop

    forward = RoundsDifferently(model._executor)
    monkeypatch.setattr(model, "_executor", forward)
    x = X
    np.save(tmp_path / "x.npy", x)
    monkeypatch.setattr(backprop, "open_model", lambda args: model)
    args = type("Args", (), dict(model="masks.onnx", input=str(tmp_path / "x.npy"), layer="y",
                                 unit="0", mode="grad", seed="activation",
                                 out=str(tmp_path / "g.npy"), png=None, filter="raw",
                                 force=False))()
    assert backprop._run(args) == 0
    assert forward.calls == 0
    grad = np.load(tmp_path / "g.npy")
    grad_again, blobs = model.forward_backward(x, "y", _channel(0), "grad",
                                               blobs=["h/pre", "y/pre", "y"],
                                               seed_times_activation=True)
    np.testing.assert_array_equal(grad, grad_again)
    expected = implied_gradient({k: v[0] for k, v in blobs.items()}, 0)
    np.testing.assert_allclose(grad[0], expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())


def _channel(c):
    seed = np.zeros((1, 2, 4, 4), np.float32)
    seed[0, c] = 1.0
    return seed
