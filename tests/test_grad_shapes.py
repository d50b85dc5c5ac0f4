"""Gradient graphs of forward graphs whose shapes ONNX's shape inference cannot give: an
output declared without a shape, tensors behind a Reshape to a computed shape or a Squeeze of
computed axes, and an input of dynamic height and width. Float64 gradients against central
finite differences; each mode on onnxruntime (float32) against onnx's reference evaluator
(float64) and the NumPy executor."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from deepvis.errors import UnsupportedError
from deepvis.grad import MODES, build_grad_graph
from deepvis.model import load_model

from . import test_grad_rules
from .grad_helpers import (Net, assert_close, check_finite_differences, check_runtimes_agree,
                           finite_difference, numpy_run, ort_run, reference_run)


def _dims(n, x, *axes):
    """The sizes of `x` along `axes`, read at run time (as exporters write x.size(i))."""
    sizes = n.op("Shape", [x])
    return [n.op("Slice", [sizes, n.c([a], np.int64), n.c([a + 1], np.int64)]) for a in axes]


def _channel_shuffle(n):
    """ShuffleNet's shuffle of 2 groups: the channels per group are computed (C / 2), so no
    inference knows the channels of its result; a Conv and a broadcast Add follow."""
    x = n.op("Mul", [n.x, n.w(4, 1, 1)])
    batch, channels, height, width = _dims(n, x, 0, 1, 2, 3)
    half = n.op("Div", [channels, n.c([2], np.int64)])
    grouped = n.op("Reshape", [x, n.op("Concat", [batch, n.c([2], np.int64), half, height,
                                                  width], axis=0)])
    swapped = n.op("Transpose", [grouped], perm=[0, 2, 1, 3, 4])
    shuffled = n.op("Reshape", [swapped, n.op("Concat", [batch, n.c([-1], np.int64), height,
                                                         width], axis=0)], ["open"])
    gate = n.op("ReduceMean", [n.op("Mul", [n.x, n.x])], axes=[1])
    return n.op("Conv", [n.op("Add", [shuffled, gate]), n.w(3, 4, 3, 3)], pads=[1, 1, 1, 1])


def _flatten_by_shape(n):
    """x.view(x.size(0), -1) @ W: the flatten's target is read from Shape at run time."""
    (batch,) = _dims(n, n.x, 0)
    flat = n.op("Reshape", [n.x, n.op("Concat", [batch, n.c([-1], np.int64)], axis=0)],
                ["open"])
    return n.op("Add", [n.op("MatMul", [flat, n.w(24, 5)]), n.op("ReduceMean", [flat], axes=[1])])


def _squeeze_computed_axes(n):
    """A Squeeze whose axes are computed: not even the rank of its result is known, so the
    broadcast Add after it learns its axes when it runs, and the seed has no declared shape."""
    lifted = n.op("Unsqueeze", [n.op("Mul", [n.x, n.w(3, 1, 1)]), n.c([1], np.int64)])
    rank = n.op("Shape", [n.op("Shape", [lifted])])
    axes = n.op("Sub", [rank, n.c([4], np.int64)])
    squeezed = n.op("Squeeze", [lifted, axes], ["open"])
    per_pixel = n.op("Mul", [n.op("ReduceMean", [n.x], axes=[1]), n.w(1, 4, 1, name="v")])
    return n.op("Add", [squeezed, per_pixel])


# name -> (input shape without batch, graph body returning the output tensor)
CASES = {
    "channel_shuffle_conv": ((4, 5, 5), _channel_shuffle),
    "flatten_by_shape_matmul": ((2, 3, 4), _flatten_by_shape),
    "squeeze_computed_axes_broadcast": ((3, 4, 5), _squeeze_computed_axes),
}


def make_case(name: str, dtype) -> tuple:
    """The forward graph, its output `y` declared with a type and no shape, unchecked (onnx's
    checker wants one; onnxruntime and deepvis take such files)."""
    shape, body = CASES[name]
    net = Net(shape, dtype, seed=sorted(CASES).index(name))
    net.op("Identity", [body(net)], ["y"])
    return _shapeless_output(net, "y", dtype), shape


def _shapeless_output(net, name, dtype) -> onnx.ModelProto:
    net.b.output(name, dtype)
    model = net.b.build(check=False)
    model.graph.output[0].type.tensor_type.ClearField("shape")  # the builder fills it in
    return model


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_cases_hold_shapes_inference_cannot_give(case):
    forward, _ = make_case(case, np.float32)
    assert not forward.graph.output[0].type.tensor_type.HasField("shape")
    inferred = onnx.shape_inference.infer_shapes(forward, strict_mode=False)
    known = {v.name: v.type.tensor_type for v in inferred.graph.value_info}
    dims = known["open"].shape.dim if known["open"].HasField("shape") else None
    assert dims is None or not all(d.HasField("dim_value") for d in list(dims)[1:])


@pytest.mark.parametrize("case", sorted(CASES))
def test_grad_matches_finite_differences(case):
    check_finite_differences(make_case, case)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_runtimes_agree(case, mode):
    check_runtimes_agree(make_case, case, mode)


def test_broadcast_axes_are_found_at_run_time_only_where_shapes_cannot_tell():
    """Every graph of test_grad_rules keeps its build-time axes (no NonZero); the Squeeze of
    computed axes needs run-time ones, and its seed is declared without a shape."""
    def ops(graph):
        return {node.op_type for node in graph.graph.node}

    for name in test_grad_rules.CASES:
        forward = test_grad_rules.make_case(name, np.float32)[0]
        assert "NonZero" not in ops(build_grad_graph(forward, "y")), name
    squeezed = build_grad_graph(make_case("squeeze_computed_axes_broadcast", np.float32)[0], "y")
    assert "NonZero" in ops(squeezed)
    seed = next(i for i in squeezed.graph.input if i.name == "seed")
    assert not seed.type.tensor_type.HasField("shape")


def _dynamic_size(dtype):
    """Conv (stride 2, SAME_UPPER: pads depend on the size) and an average pool, on an input
    exported with a symbolic height and width."""
    net = Net((2, "H", "W"), dtype, seed=5)
    conv = net.op("Conv", [net.x, net.w(3, 2, 3, 3)], strides=[2, 2], auto_pad="SAME_UPPER")
    net.op("AveragePool", [conv], ["y"], kernel_shape=[2, 2], pads=[0, 0, 1, 1])
    return _shapeless_output(net, "y", dtype)


def test_an_input_shape_fixes_a_dynamic_height_and_width():
    with pytest.raises(UnsupportedError, match="static shape"):
        build_grad_graph(_dynamic_size(np.float64), "y")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 2, 7, 6))
    forward = _dynamic_size(np.float64)
    graph = build_grad_graph(forward, "y", input_shape=x.shape)
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["N", 2, 7, 6]
    seed = rng.standard_normal(reference_run(forward, {"data": x})["y"].shape)
    expected = finite_difference(forward, "y", x, seed).reshape(x.shape)
    assert_close(reference_run(graph, {"data": x, "seed": seed})["grad"], expected, rtol=1e-6)
    batch = rng.standard_normal((3, 2, 7, 6))
    seeds = rng.standard_normal((3, *seed.shape[1:]))
    expected = reference_run(graph, {"data": batch, "seed": seeds})["grad"]
    graph32 = build_grad_graph(_dynamic_size(np.float32), "y", input_shape=x.shape)
    feeds32 = {"data": batch.astype(np.float32), "seed": seeds.astype(np.float32)}
    assert_close(ort_run(graph32, feeds32)["grad"], expected)
    assert_close(numpy_run(graph32, feeds32)["grad"], expected)


def _upsampling(dtype, computed: bool) -> onnx.ModelProto:
    """Conv, ReLU, 2x2 max pool, then a nearest Resize back to the conv's size, added to it:
    by sizes computed from Shape (Div included, which no inference propagates) or by scales."""
    net = Net((3, 8, 8), dtype, seed=3)
    relu = net.op("Relu", [net.op("Conv", [net.x, net.w(4, 3, 3, 3)], pads=[1, 1, 1, 1])])
    small = net.op("MaxPool", [relu], kernel_shape=[2, 2], strides=[2, 2])
    if computed:
        batch_channels, height_width = _dims(net, small, 0, 1), _dims(net, relu, 2, 3)
        divided = [net.op("Div", [d, net.c([1], np.int64)]) for d in height_width]
        up = net.op("Resize", [small, "", "", net.op("Concat", batch_channels + divided,
                                                        axis=0)], mode="nearest")
    else:
        up = net.op("Resize", [small, "", net.c([1, 1, 2, 2], np.float32)], mode="nearest")
    mixed = net.op("Conv", [net.op("Add", [up, relu]), net.w(4, 4, 3, 3)], pads=[1, 1, 1, 1])
    net.op("Flatten", [net.op("GlobalAveragePool", [mixed])], ["logits"])
    return net.build(["logits"])


@pytest.mark.parametrize("backend", ["ort", "numpy"])
def test_a_model_measures_the_shapes_no_inference_gives(backend, tmp_path):
    """A dynamic-batch export whose Resize sizes are computed: loading measures the shapes
    the Resize rule needs (one run), so its gradient is that of the same net resized by
    scales."""
    path = tmp_path / "computed.onnx"
    onnx.save(_upsampling(np.float32, computed=True), str(path))
    model = load_model(path, backend=backend)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 8, 8))
    seed = rng.standard_normal((2, 4))
    grad = model.backward(x.astype(np.float32), "logits", seed.astype(np.float32))
    expected = reference_run(build_grad_graph(_upsampling(np.float64, computed=False), "logits"),
                             {"data": x, "seed": seed})["grad"]
    assert_close(grad, expected)
