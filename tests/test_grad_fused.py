"""Cheaper backward formulations give the gradient of the plain ones: chains differentiated as
one node (grad.fused), fused only where nothing else reads their inner tensors; LayerNorm's
statistics from a LayerNormalization; pooled gradients broadcast by the Sum they join."""
from __future__ import annotations

import numpy as np
import pytest

from deepvis.grad import build_grad_graph
from deepvis.grad import builder as grad_builder

from .grad_helpers import (Net, assert_close, finite_difference, numpy_run, ort_run,
                           reference_run)

SQRT2 = np.sqrt(2.0)


def _gelu_torch(n):
    """As torch.onnx exports nn.GELU(): Mul(x, 1 + erf(x / sqrt 2)) * 0.5."""
    a = n.op("Add", [n.op("Erf", [n.op("Div", [n.x, n.c(SQRT2)])]), n.c(1.0)])
    return n.op("Mul", [n.op("Mul", [n.x, a]), n.c(0.5)])


def _gelu_halved_first(n):
    """(0.5 * x) * (1 + erf(x * 1/sqrt 2)): the scale inside the chain, the constant first."""
    a = n.op("Add", [n.c(1.0), n.op("Erf", [n.op("Mul", [n.c(1 / SQRT2), n.x])])])
    return n.op("Mul", [n.op("Mul", [n.c(0.5), n.x]), a])


def _silu(n):
    return n.op("Mul", [n.op("Sigmoid", [n.x]), n.x])


def _silu_flat(n):
    """On a (N, 18) tensor: the 1 - s of the rule as a BatchNormalization over 18 channels."""
    flat = n.op("Flatten", [n.x])
    return n.op("Mul", [flat, n.op("Sigmoid", [flat])])


def _silu_gate_read_twice(n):
    """The sigmoid also feeds another node: its gradient has two sources, no fusion."""
    s = n.op("Sigmoid", [n.x])
    return n.op("Add", [n.op("Mul", [n.x, s]), n.op("Mul", [s, n.c(0.3)])])


def _gelu_erf_read_twice(n):
    e = n.op("Erf", [n.op("Div", [n.x, n.c(SQRT2)])])
    y = n.op("Mul", [n.x, n.op("Add", [e, n.c(1.0)])])
    return n.op("Add", [y, e])


# name -> (graph body, whether a fused node replaces its chain)
CASES = {"gelu_torch": (_gelu_torch, True), "gelu_halved_first": (_gelu_halved_first, True),
         "silu": (_silu, True), "silu_flat": (_silu_flat, True),
         "silu_gate_read_twice": (_silu_gate_read_twice, False),
         "gelu_erf_read_twice": (_gelu_erf_read_twice, False)}


def _forward(name, dtype):
    net = Net((2, 3, 3), dtype, seed=1)
    net.op("Identity", [CASES[name][0](net)], ["y"])
    return net.build(["y"])


def _unfused(forward, monkeypatch, target="y"):
    with monkeypatch.context() as patch:
        patch.setattr(grad_builder, "fuse", lambda info, path, pinned: path)
        return build_grad_graph(forward, target, "grad")


def _inputs(shape=(3, 2, 3, 3), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2.0  # out to the tails of the sigmoid and the erf
    return x, rng.standard_normal(shape)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fused_gradient_equals_node_by_node(name, monkeypatch):
    forward = _forward(name, np.float64)
    x, seed = _inputs()
    seed = seed.reshape(reference_run(forward, {"data": x})["y"].shape)
    fused = build_grad_graph(forward, "y", "grad")
    want = reference_run(_unfused(forward, monkeypatch), {"data": x, "seed": seed})["grad"]
    assert_close(reference_run(fused, {"data": x, "seed": seed})["grad"], want, rtol=1e-12)
    expected = finite_difference(forward, "y", x[:1], seed[:1]).reshape(x[:1].shape)
    assert_close(want[:1], expected, rtol=1e-6)

    forward32 = _forward(name, np.float32)
    feeds = {"data": x.astype(np.float32), "seed": seed.astype(np.float32)}
    on_ort = ort_run(build_grad_graph(forward32, "y", "grad"), feeds)["grad"]
    assert_close(on_ort, want, rtol=1e-5)
    assert_close(numpy_run(build_grad_graph(forward32, "y", "grad"), feeds)["grad"], want,
                 rtol=1e-5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_chains_fuse_only_where_nothing_else_reads_inside(name, monkeypatch):
    forward = _forward(name, np.float32)
    fused, plain = build_grad_graph(forward, "y", "grad"), _unfused(forward, monkeypatch)
    added = len(fused.graph.node) - len(forward.graph.node)
    assert (added < len(plain.graph.node) - len(forward.graph.node)) == CASES[name][1]


def test_no_fusion_where_the_seed_enters_inside_the_chain(monkeypatch):
    """A seed at the sigmoid's output flows into x through the sigmoid alone."""
    net = Net((2, 3, 3), np.float64, seed=2)
    s = net.op("Sigmoid", [net.x], ["gate"])
    net.op("Mul", [net.x, s], ["y"])
    forward = net.build(["y", "gate"])
    x, seed = _inputs()
    graph = build_grad_graph(forward, "gate", "grad")
    want = reference_run(_unfused(forward, monkeypatch, "gate"), {"data": x, "seed": seed})
    assert_close(reference_run(graph, {"data": x, "seed": seed})["grad"], want["grad"])
    sigmoid = 1 / (1 + np.exp(-x))
    assert_close(want["grad"], seed * sigmoid * (1 - sigmoid), rtol=1e-12)


def test_gelu_gradient_stays_finite_far_out():
    """exp(d^2) overflows float32 past |x| ~ 13: the Gaussian term is 0 there, not NaN."""
    forward = _forward("gelu_torch", np.float32)
    x = np.full((1, 2, 3, 3), 30.0, np.float32)
    x[0, 0] = -30.0
    grad = ort_run(build_grad_graph(forward, "y", "grad"),
                   {"data": x, "seed": np.ones_like(x)})["grad"]
    np.testing.assert_array_equal(grad, np.where(x > 0, 1.0, 0.0))


def test_layer_norm_rule_equals_its_decomposition():
    """The LayerNormalization rule (statistics from a second LayerNormalization) against the
    same normalization written out in elementwise ops and differentiated node by node."""
    def body(n, fused_op):
        scale, bias = n.w(4, 5, offset=1.0, name="scale"), n.w(4, 5, name="bias")
        if fused_op:
            return n.op("LayerNormalization", [n.x, scale, bias], axis=2, epsilon=1e-3)
        centred = n.op("Sub", [n.x, n.op("ReduceMean", [n.x], axes=[2, 3])])
        variance = n.op("ReduceMean", [n.op("Mul", [centred, centred])], axes=[2, 3])
        xhat = n.op("Div", [centred, n.op("Sqrt", [n.op("Add", [variance, n.c(1e-3)])])])
        return n.op("Add", [n.op("Mul", [xhat, scale]), bias])

    x, seed = _inputs((2, 3, 4, 5))
    grads = []
    for fused_op in (True, False):
        net = Net((3, 4, 5), np.float64, seed=4)
        net.op("Identity", [body(net, fused_op)], ["y"])
        graph = build_grad_graph(net.build(["y"]), "y", "grad")
        grads.append(reference_run(graph, {"data": x, "seed": seed})["grad"])
    assert_close(grads[0], grads[1], rtol=1e-10)


@pytest.mark.parametrize("gated", [True, False])
def test_pooled_gradient_is_broadcast_by_the_sum_it_joins(gated):
    """GlobalAveragePool's dy / (H*W) joins the gate's full-size part in a broadcasting Sum
    (squeeze-excitation); alone, it is expanded to the input's shape."""
    def forward(dtype):
        net = Net((3, 4, 5), dtype, seed=7)
        pooled = net.op("GlobalAveragePool", [net.x])
        gate = net.op("Sigmoid", [net.op("Conv", [pooled, net.w(3, 3, 1, 1)])])
        net.op("Identity", [net.op("Mul", [net.x, gate]) if gated else gate], ["y"])
        return net.build(["y"])

    forward64 = forward(np.float64)
    x, _ = _inputs((2, 3, 4, 5))
    seed = np.random.default_rng(8).standard_normal(
        reference_run(forward64, {"data": x})["y"].shape)
    graph = build_grad_graph(forward64, "y", "grad")
    assert ("Expand" in [n.op_type for n in graph.graph.node]) != gated
    got = reference_run(graph, {"data": x, "seed": seed})["grad"]
    expected = finite_difference(forward64, "y", x[:1], seed[:1]).reshape(x[:1].shape)
    assert_close(got[:1], expected, rtol=1e-6)
    feeds = {"data": x.astype(np.float32), "seed": seed.astype(np.float32)}
    graph32 = build_grad_graph(forward(np.float32), "y", "grad")
    assert_close(ort_run(graph32, feeds)["grad"], got, rtol=1e-5)
    assert_close(numpy_run(graph32, feeds)["grad"], got, rtol=1e-5)
