"""grad, deconv and guided backprop on hand-built cases whose answers are derived by hand below,
plus the builder's contract (seeds below in-place ReLUs, fan-out, batch, outputs, errors)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from deepvis.errors import DeepvisError, UnsupportedError
from deepvis.graph import meta
from deepvis.grad import MODES, build_grad_graph

from .grad_helpers import Net, numpy_executor_available, numpy_run, ort_run, reference_run

RUNNERS = [reference_run, ort_run] + ([numpy_run] if numpy_executor_available() else [])


def _grad(forward, target, mode, x, seed, extra=()):
    graph = build_grad_graph(forward, target, mode, extra)
    results = [run(graph, {"data": x, "seed": seed}) for run in RUNNERS]
    for other in results[1:]:
        for name, value in results[0].items():
            np.testing.assert_allclose(other[name], value, rtol=1e-5, atol=1e-6)
    return results[0]


def _row(values):
    return np.asarray(values, np.float32).reshape(1, 1, 1, -1)


def conv_relu_pool():
    """x (7 wide) -> conv [1, -1] -> relu -> max pool 2/2.

    x = [0, 2, 3, 1, 4, 1, 0] gives pre = [-2, -1, 2, -3, 3, 1], relu = [0, 0, 2, 0, 3, 1] and
    switches at 0 (a tie of zeros goes to the first element), 2 and 4. The seed [3, -1, 2] on
    the pool output puts dr = [3, 0, -1, 0, 2, 0] on the relu output.
      grad:   mask pre > 0 -> [0, 0, -1, 0, 2, 0]
      deconv: max(dr, 0)   -> [3, 0, 0, 0, 2, 0]
      guided: both         -> [0, 0, 0, 0, 2, 0]
    The conv's transpose maps d to dx_i = d_i - d_(i-1).
    """
    net = Net((1, 1, 7))
    pre = net.op("Conv", [net.x, net.b.initializer(_row([1, -1]), "w")], ["pre"])
    net.op("Relu", [pre], ["relu"])
    net.op("MaxPool", ["relu"], ["pool"], kernel_shape=[1, 2], strides=[1, 2])
    return net.build(["pool"])


@pytest.mark.parametrize("mode, expected", [
    ("grad", [0, 0, -1, 1, 2, -2, 0]),
    ("deconv", [3, -3, 0, 0, 2, -2, 0]),
    ("guided", [0, 0, 0, 0, 2, -2, 0]),
])
def test_conv_relu_pool_chain(mode, expected):
    grad = _grad(conv_relu_pool(), "pool", mode, _row([0, 2, 3, 1, 4, 1, 0]), _row([3, -1, 2]))
    np.testing.assert_array_equal(grad["grad"], _row(expected))


@pytest.mark.parametrize("mode", MODES)
def test_lrn_keeps_true_derivative(mode):
    """size 3, alpha 3 (alpha/size = 1), beta 0.5, k 1 at x = [1, 2, 0]: scale_0 = 1 + 1 + 4 = 6,
    y_0 = x_0 / sqrt(6). Seeding y_0: dx_0 = 6^-.5 - x_0^2 6^-1.5 = 5 / (6 sqrt 6),
    dx_1 = -x_0 x_1 6^-1.5 = -1 / (3 sqrt 6), dx_2 = 0 (channel 2's window misses channel 0)."""
    net = Net((3, 1, 1))
    net.op("LRN", [net.x], ["norm"], size=3, alpha=3.0, beta=0.5, bias=1.0)
    x = np.array([1, 2, 0], np.float32).reshape(1, 3, 1, 1)
    seed = np.array([1, 0, 0], np.float32).reshape(1, 3, 1, 1)
    grad = _grad(net.build(["norm"]), "norm", mode, x, seed)["grad"]
    expected = np.array([5 / (6 * 6 ** 0.5), -1 / (3 * 6 ** 0.5), 0]).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", MODES)
def test_overlapping_pool_windows_add_up(mode):
    """Windows [0..2] and [2..4] of [0, 1, 5, 1, 0] both pick element 2: it gets 2 + 3."""
    net = Net((1, 1, 5))
    net.op("MaxPool", [net.x], ["pool"], kernel_shape=[1, 3], strides=[1, 2])
    grad = _grad(net.build(["pool"]), "pool", mode, _row([0, 1, 5, 1, 0]), _row([2, 3]))
    np.testing.assert_array_equal(grad["grad"], _row([0, 0, 5, 0, 0]))


def in_place_relu_net(with_seed_metadata: bool):
    """conv (channels x and -x) followed by an in-place ReLU: blob "conv" is post-ReLU."""
    net = Net((1, 1, 2))
    weight = np.array([1, -1], np.float32).reshape(2, 1, 1, 1)
    net.op("Conv", [net.x, net.b.initializer(weight, "w")], ["conv/pre"])
    net.op("Relu", ["conv/pre"], ["conv"])
    seeds = {"conv": "conv/pre"} if with_seed_metadata else None
    return net.build(["conv"], meta.encode(blobs=["data", "conv"], seeds=seeds))


@pytest.mark.parametrize("mode", MODES)
def test_seed_enters_below_in_place_relu(mode):
    """Unit (channel 1, x 0) has pre-activation -1 < 0; seeded below the ReLU its gradient is
    the weight -1. Seeded on the post-ReLU tensor the mask kills it (grad, guided); deconv
    ignores the mask and still gives -1."""
    x, seed = _row([1, 2]), np.zeros((1, 2, 1, 2), np.float32)
    seed[0, 1, 0, 0] = 1
    below = _grad(in_place_relu_net(True), "conv", mode, x, seed)["grad"]
    np.testing.assert_array_equal(below, _row([-1, 0]))
    above = _grad(in_place_relu_net(False), "conv", mode, x, seed)["grad"]
    np.testing.assert_array_equal(above, _row([-1 if mode == "deconv" else 0, 0]))


def test_fan_out_sums_branches():
    """a = 2x feeds both operands of a + 3a, so d/dx = 2 * (1 + 3) = 8."""
    net = Net((1, 1, 3))
    a = net.op("Mul", [net.x, net.c(2.0)])
    net.op("Add", [a, net.op("Mul", [a, net.c(3.0)])], ["y"])
    grad = _grad(net.build(["y"]), "y", "grad", _row([1, -2, 5]), _row([1, 0.5, -1]))["grad"]
    np.testing.assert_array_equal(grad, _row([8, 4, -8]))


def test_max_ties_follow_caffe():
    """Max(x, 2x, 3x): x < 0 -> x wins, x > 0 -> 3x wins, x = 0 ties all three: Caffe gives it
    to the second operand (a tie beats the first, a later one must be strictly greater)."""
    net = Net((1, 1, 3))
    net.op("Max", [net.x, net.op("Mul", [net.x, net.c(2.0)]), net.op("Mul", [net.x, net.c(3.0)])],
           ["y"])
    grad = _grad(net.build(["y"]), "y", "grad", _row([-1, 0, 2]), _row([1, 1, 1]))["grad"]
    np.testing.assert_array_equal(grad, _row([1, 2, 3]))


def test_any_batch_size_and_extra_outputs():
    forward = conv_relu_pool()
    rng = np.random.default_rng(0)
    x, seed = rng.standard_normal((3, 1, 1, 7)), rng.standard_normal((3, 1, 1, 3))
    x, seed = x.astype(np.float32), seed.astype(np.float32)
    together = _grad(forward, "pool", "guided", x, seed, extra=["relu", "pool"])
    for i in range(3):
        alone = _grad(forward, "pool", "guided", x[i:i + 1], seed[i:i + 1])
        np.testing.assert_allclose(together["grad"][i:i + 1], alone["grad"], rtol=1e-6)
    forward_values = ort_run(forward, {"data": x})
    np.testing.assert_allclose(together["pool"], forward_values["pool"], rtol=1e-6)
    np.testing.assert_allclose(together["relu"], np.maximum(
        x[..., :-1] - x[..., 1:], 0), rtol=1e-6, atol=1e-6)


def test_target_is_the_input():
    forward = conv_relu_pool()
    x = _row([0, 2, 3, 1, 4, 1, 0])
    seed = _row(np.arange(7))
    np.testing.assert_array_equal(_grad(forward, "data", "grad", x, seed)["grad"], seed)


def test_target_independent_of_the_input_has_zero_gradient():
    net = Net((1, 1, 3))
    net.op("Mul", [net.b.initializer(_row([1, 2, 3]), "w"), net.c(2.0)], ["w2"])
    net.op("Add", [net.x, "w2"], ["y"])
    grad = _grad(net.build(["w2", "y"]), "w2", "grad", _row([1, 2, 3]), _row([5, 6, 7]))["grad"]
    np.testing.assert_array_equal(grad, np.zeros((1, 1, 1, 3)))


def test_graph_shares_forward_weight_names_and_records_the_seed():
    forward = in_place_relu_net(True)
    graph = build_grad_graph(forward, "conv", "deconv")
    assert [i.name for i in graph.graph.input] == ["data", "seed"]
    assert [o.name for o in graph.graph.output] == ["grad"]
    assert "w" in {t.name for t in graph.graph.initializer}
    props = {p.key: p.value for p in graph.metadata_props}
    assert json.loads(props["deepvis.grad"])["seed_tensor"] == "conv/pre"
    assert "Relu" not in [n.op_type for n in graph.graph.node]  # the ReLU is above the seed


def test_only_nodes_on_the_path_get_backward_nodes():
    """An op without a rule is fine off the path (or above the seed), and gets no backward node;
    on the path it raises, naming op type and node."""
    net = Net((1, 2, 2))
    a = net.op("Mul", [net.x, net.c(2.0)], ["a"])
    net.op("Sin", [net.x], ["side"], name="side_branch")
    net.op("Sin", [a], ["above"], name="above_target")
    forward = net.build(["a", "side", "above"])
    graph = build_grad_graph(forward, "a", "grad")
    assert "Sin" not in [n.op_type for n in graph.graph.node]
    with pytest.raises(UnsupportedError, match="Sin.*above_target"):
        build_grad_graph(forward, "above", "grad")


def test_bad_requests_are_refused():
    forward = conv_relu_pool()
    with pytest.raises(ValueError, match="mode"):
        build_grad_graph(forward, "pool", "backprop")
    with pytest.raises(DeepvisError, match="nope"):
        build_grad_graph(forward, "nope")
