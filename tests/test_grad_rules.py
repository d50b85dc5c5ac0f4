"""Every backward rule on a small random graph: float64 gradients against central finite
differences, and each mode's graph on onnxruntime (float32) against onnx's reference evaluator
(float64) and, once it exists, the NumPy executor."""
from __future__ import annotations

import numpy as np
import pytest

from deepvis.grad import MODES, build_grad_graph

from .grad_helpers import (Net, assert_close, check_finite_differences, check_runtimes_agree,
                           finite_difference, numpy_executor_available, numpy_run, ort_run,
                           reference_run)


def _conv(n, w_shape, **attrs):
    return n.op("Conv", [n.x, n.w(*w_shape), n.w(w_shape[0], name="b")], **attrs)


def _flat(n):
    return n.op("Flatten", [n.x])


def _positive(n):
    """x^2 + 1: a smooth, strictly positive function of x."""
    return n.op("Add", [n.op("Mul", [n.x, n.x]), n.c(1.0)])


# name -> (input shape without batch, graph body returning the output tensor)
CASES = {
    "conv_same": ((2, 5, 5), lambda n: _conv(n, (3, 2, 3, 3), pads=[1, 1, 1, 1])),
    "conv_group_stride_dilation": ((4, 9, 9), lambda n: _conv(
        n, (4, 2, 3, 3), group=2, strides=[2, 2], dilations=[2, 2], pads=[1, 1, 1, 1])),
    "conv_asymmetric_pads": ((2, 8, 7), lambda n: _conv(
        n, (3, 2, 3, 2), strides=[3, 2], pads=[0, 1, 2, 1])),
    "conv_begin_pads_only": ((2, 5, 6), lambda n: _conv(n, (2, 2, 3, 3), pads=[2, 0, 0, 1])),
    "conv_stride4_two_dropped_rows": ((1, 11, 11), lambda n: _conv(
        n, (2, 1, 3, 3), strides=[4, 4], pads=[1, 1, 1, 1])),
    "conv_depthwise_same_upper": ((3, 6, 5), lambda n: _conv(
        n, (3, 1, 3, 3), group=3, strides=[2, 2], auto_pad="SAME_UPPER")),
    # Stride 1 runs as a Conv with the flipped kernel; pads past the kernel's extent cannot.
    "conv_stride1_group_dilation_asymmetric": ((4, 7, 8), lambda n: _conv(
        n, (6, 2, 3, 2), group=2, dilations=[2, 1], pads=[1, 0, 2, 1])),
    "conv_stride1_depthwise": ((3, 5, 5), lambda n: _conv(n, (6, 1, 3, 3), group=3)),
    "conv_1x1_padded_past_kernel": ((2, 4, 4), lambda n: _conv(n, (3, 2, 1, 1), pads=[1, 1, 1, 1])),
    "gemm_transB": ((2, 3, 3), lambda n: n.op(
        "Gemm", [_flat(n), n.w(4, 18), n.w(4)], transB=1, alpha=0.5, beta=2.0)),
    "gemm_transA": ((2, 3, 3), lambda n: n.op(
        "Gemm", [n.op("Transpose", [_flat(n)], perm=[1, 0]), n.w(18, 4)], transA=1)),
    "gemm_data_as_B": ((2, 3, 3), lambda n: n.op("Transpose", [n.op(
        "Gemm", [n.w(4, 18), n.op("Transpose", [_flat(n)], perm=[1, 0])], alpha=1.5)])),
    "gemm_data_as_B_transposed": ((2, 3, 3), lambda n: n.op("Transpose", [n.op(
        "Gemm", [n.w(18, 4), _flat(n)], transA=1, transB=1)])),
    "matmul_weight": ((2, 3, 3), lambda n: n.op("MatMul", [_flat(n), n.w(18, 5)])),
    "matmul_broadcast_batch": ((1, 3, 4), lambda n: n.op("MatMul", [n.x, n.w(2, 4, 5)])),
    "matmul_two_tensors": ((2, 3, 4), lambda n: n.op("MatMul", [
        n.x, n.op("Transpose", [n.op("Mul", [n.x, n.w(2, 3, 4)])], perm=[0, 1, 3, 2])])),
    "maxpool_overlapping": ((2, 7, 7), lambda n: n.op(
        "MaxPool", [n.x], kernel_shape=[3, 3], strides=[2, 2])),
    "maxpool_pads_ceil": ((2, 6, 7), lambda n: n.op(
        "MaxPool", [n.x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)),
    "maxpool_asymmetric_pads": ((2, 7, 6), lambda n: n.op(
        "MaxPool", [n.x], kernel_shape=[3, 2], strides=[2, 2], pads=[0, 1, 1, 0])),
    "avgpool_count_pads_ceil": ((2, 6, 7), lambda n: n.op(
        "AveragePool", [n.x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
        ceil_mode=1, count_include_pad=1)),
    "avgpool_exclude_pads_ceil": ((2, 6, 7), lambda n: n.op(
        "AveragePool", [n.x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
        ceil_mode=1, count_include_pad=0)),
    "avgpool_asymmetric_pads": ((2, 7, 6), lambda n: n.op(
        "AveragePool", [n.x], kernel_shape=[2, 3], strides=[2, 2], pads=[0, 1, 1, 2],
        ceil_mode=1, count_include_pad=1)),
    "avgpool_begin_pads": ((2, 7, 6), lambda n: n.op(
        "AveragePool", [n.x], kernel_shape=[3, 3], strides=[2, 2], pads=[2, 1, 0, 0],
        count_include_pad=1)),
    "avgpool_dropped_row": ((2, 7, 7), lambda n: n.op(
        "AveragePool", [n.x], kernel_shape=[2, 2], strides=[2, 2])),
    "avgpool_stride1_asymmetric": ((2, 5, 6), lambda n: n.op(
        "AveragePool", [n.x], kernel_shape=[2, 3], pads=[1, 0, 0, 1], count_include_pad=0)),
    "global_average_pool": ((3, 4, 5), lambda n: n.op("GlobalAveragePool", [n.x])),
    "global_max_pool": ((3, 4, 5), lambda n: n.op("GlobalMaxPool", [n.x])),
    "lrn_size5": ((7, 3, 3), lambda n: n.op(
        "LRN", [n.x], size=5, alpha=0.5, beta=0.75, bias=2.0)),
    "lrn_size3": ((4, 3, 2), lambda n: n.op(
        "LRN", [n.x], size=3, alpha=1.0, beta=0.6, bias=1.0)),
    "batchnorm": ((3, 4, 4), lambda n: n.op("BatchNormalization", [
        n.x, n.w(3), n.w(3), n.w(3), n.w(3, scale=0.1, offset=1.0)], epsilon=1e-3)),
    "add_bias": ((3, 4, 4), lambda n: n.op("Add", [n.x, n.w(3, 1, 1)])),
    "sub_from_const": ((3, 4, 4), lambda n: n.op("Sub", [n.w(1, 4), n.x])),
    "mul_const": ((3, 4, 4), lambda n: n.op("Mul", [n.w(3, 1, 4), n.x])),
    "div_by_const": ((3, 4, 4), lambda n: n.op("Div", [n.x, n.w(3, 1, 1, offset=3.0)])),
    "div_const_by_tensor": ((3, 4, 4), lambda n: n.op("Div", [n.w(4), _positive(n)])),
    "add_residual_fan_out": ((3, 4, 4), lambda n: n.op(
        "Add", [n.x, n.op("Mul", [n.x, n.w(3, 1, 1)])])),
    "mul_two_tensors": ((3, 4, 4), lambda n: n.op("Mul", [n.x, n.op("Sub", [n.x, n.w(4)])])),
    "div_two_tensors": ((3, 4, 4), lambda n: n.op("Div", [n.x, _positive(n)])),
    "sum_three": ((3, 4, 4), lambda n: n.op("Sum", [
        n.x, n.op("Mul", [n.x, n.w(4)]), n.w(3, 1, 1)])),
    "max_two": ((3, 4, 4), lambda n: n.op("Max", [n.x, n.op("Mul", [n.x, n.w(3, 4, 4)])])),
    "max_three_broadcast": ((3, 4, 4), lambda n: n.op("Max", [
        n.x, n.w(3, 1, 1), n.op("Mul", [n.x, n.w(4)])])),
    # Where: dy to X where the condition holds, to Y elsewhere; a data-dependent condition
    "where_data_condition": ((3, 4, 4), lambda n: n.op("Where", [
        n.op("Greater", [n.x, n.c(0.3)]), n.op("Mul", [n.x, n.w(3, 1, 1)]), _positive(n)])),
    "where_broadcast_branches": ((3, 4, 4), lambda n: n.op("Where", [
        n.op("Less", [n.op("ReduceMean", [n.x], axes=[1]), n.c(0.0)]), n.x,
        n.op("Mul", [n.op("ReduceMean", [n.x], axes=[2]), n.w(4)])])),
    "where_constant_branch": ((3, 4, 4), lambda n: n.op("Where", [
        n.op("Greater", [n.x, n.w(3, 1, 1)]), n.w(1, 4, name="c"), n.op("Mul", [n.x, n.x])])),
    "concat": ((2, 4, 4), lambda n: n.op("Concat", [
        _conv(n, (3, 2, 1, 1)), n.op("Mul", [n.x, n.w(2, 1, 1)]), n.x], axis=1)),
    "reshape": ((2, 3, 4), lambda n: n.op("Reshape", [
        n.op("Mul", [n.x, n.w(4)]), n.c([0, 4, -1], np.int64)])),
    "identity_dropout": ((2, 3, 3), lambda n: n.op("Dropout", [
        n.op("Identity", [n.op("Mul", [n.x, n.w(3)])])])),
    "softmax_fc": ((2, 3, 3), lambda n: n.op("Softmax", [
        n.op("Gemm", [_flat(n), n.w(5, 18), n.w(5)], transB=1)], axis=1)),
    "softmax_channels": ((4, 2, 3), lambda n: n.op("Softmax", [n.x], axis=1)),
    "pad_constant": ((2, 3, 4), lambda n: n.op("Mul", [n.op("Pad", [
        n.x, n.c([0, 0, 1, 2, 0, 0, 2, 1], np.int64), n.c(0.5)]), n.w(6, 7)])),
    "transpose": ((2, 3, 4), lambda n: n.op("Mul", [
        n.op("Transpose", [n.x], perm=[0, 2, 3, 1]), n.w(3, 4, 2)])),
    "pow_const_exponent": ((2, 3, 3), lambda n: n.op("Pow", [n.x, n.c(3.0)])),
    "sqrt": ((2, 3, 3), lambda n: n.op("Sqrt", [_positive(n)])),
    # Non-rectifying activations and gates: the true derivative in every mode.
    "sigmoid": ((2, 3, 3), lambda n: n.op("Sigmoid", [_scaled(n, 2.0)])),
    "silu": ((2, 3, 3), lambda n: n.op("Mul", [n.x, n.op("Sigmoid", [n.x])])),
    "tanh": ((2, 3, 3), lambda n: n.op("Tanh", [_scaled(n, 1.5)])),
    "gelu_erf": ((2, 3, 3), lambda n: n.op("Mul", [n.op("Mul", [n.x, n.c(0.5)]), n.op(
        "Add", [n.c(1.0), n.op("Erf", [n.op("Div", [n.x, n.c(np.sqrt(2.0))])])])])),
    "softplus": ((2, 3, 3), lambda n: n.op("Softplus", [_scaled(n, 3.0)])),
    "softsign": ((2, 3, 3), lambda n: n.op("Softsign", [_scaled(n, 2.0)])),
    "elu": ((2, 3, 3), lambda n: n.op("Elu", [n.x], alpha=0.7)),
    "selu": ((2, 3, 3), lambda n: n.op("Selu", [n.x])),
    "hard_sigmoid_gate": ((2, 3, 3), lambda n: n.op("Mul", [n.x, n.op(
        "HardSigmoid", [_scaled(n, 4.0)], alpha=1 / 6, beta=0.5)])),
    "hard_swish": ((2, 3, 3), lambda n: n.op("HardSwish", [_scaled(n, 4.0)])),
    "squeeze_excitation": ((4, 3, 3), lambda n: n.op("Mul", [n.x, n.op("Sigmoid", [n.op(
        "Conv", [n.op("ReduceMean", [n.x], axes=[2, 3]), n.w(4, 4, 1, 1)])])])),
    "reduce_mean_axes_input_opset18": ((3, 4, 5), lambda n: n.op(
        "ReduceMean", [n.x, n.c([-1, 2], np.int64)], keepdims=1)),
    "reduce_mean_keepdims0": ((3, 4, 5), lambda n: n.op("Mul", [
        n.op("ReduceMean", [n.x], axes=[1], keepdims=0), n.w(4, 5)])),
    "reduce_sum": ((3, 4, 5), lambda n: n.op("Mul", [
        n.op("ReduceSum", [n.x, n.c([1, 3], np.int64)], keepdims=0), n.w(4)])),
    "layer_norm_last_axis": ((3, 4, 5), lambda n: n.op(
        "LayerNormalization", [n.x, n.w(5, offset=1.0), n.w(5)], axis=-1, epsilon=1e-3)),
    "layer_norm_two_axes_no_bias": ((3, 4, 5), lambda n: n.op(
        "LayerNormalization", [n.x, n.w(4, 5, offset=1.0)], axis=2)),
    "layer_norm_decomposed": ((3, 4, 5), lambda n: _decomposed_layer_norm(n)),
    "instance_norm": ((3, 4, 5), lambda n: n.op(
        "InstanceNormalization", [n.x, n.w(3, offset=1.0), n.w(3)], epsilon=1e-3)),
    "group_norm_opset21": ((4, 3, 5), lambda n: n.op(
        "GroupNormalization", [n.x, n.w(4, offset=1.0), n.w(4)], num_groups=2, epsilon=1e-3,
        stash_type=11)),  # statistics in float64, or the float64 reference rounds them
    # ONNX infers no shape past GroupNormalization; GraphInfo carries it to the Conv's rule
    "group_norm_then_conv_opset21": ((4, 3, 5), lambda n: n.op("Conv", [n.op(
        "GroupNormalization", [n.x, n.w(4, offset=1.0), n.w(4)], num_groups=4, stash_type=11),
        n.w(4, 4, 3, 3)], pads=[1, 1, 1, 1])),
    "resize_nearest_scales": ((2, 3, 4), lambda n: n.op("Mul", [n.op(
        "Resize", [n.x, "", n.c([1, 1, 2, 1.5], np.float32)], mode="nearest"), n.w(6, 6)])),
    "resize_linear_half_pixel": ((2, 3, 4), lambda n: n.op("Mul", [n.op(
        "Resize", [n.x, "", n.c([1, 1, 2.0, 2.0], np.float32)], mode="linear"), n.w(6, 8)])),
    "resize_linear_align_corners_sizes_opset18": ((2, 4, 5), lambda n: n.op("Mul", [n.op(
        "Resize", [n.x, "", "", n.c([7, 3], np.int64)], mode="linear", axes=[2, 3],
        coordinate_transformation_mode="align_corners"), n.w(7, 3)])),
    "resize_linear_pytorch_half_pixel_down": ((2, 6, 7), lambda n: n.op("Mul", [n.op(
        "Resize", [n.x, "", n.c([1, 1, 0.5, 0.6], np.float32)], mode="linear",
        coordinate_transformation_mode="pytorch_half_pixel"), n.w(3, 4)])),
    "resize_cubic_asymmetric": ((2, 3, 4), lambda n: n.op("Mul", [n.op(
        "Resize", [n.x, "", n.c([1, 1, 2.0, 1.5], np.float32)], mode="cubic", cubic_coeff_a=-0.5,
        coordinate_transformation_mode="asymmetric"), n.w(6, 6)])),
    "resize_cubic_exclude_outside": ((2, 3, 4), lambda n: n.op("Mul", [n.op(
        "Resize", [n.x, "", n.c([1, 1, 2.0, 2.0], np.float32)], mode="cubic", exclude_outside=1),
        n.w(6, 8)])),
    "gather_repeated_indices": ((3, 4, 5), lambda n: n.op("Mul", [n.op(
        "Gather", [n.x, n.c([[3, 0], [-1, 1]], np.int64)], axis=2), n.w(2, 2, 5)])),
    "gather_axis0_batch_second": ((2, 3, 2), lambda n: n.op("Transpose", [n.op("Gather", [
        n.op("Transpose", [n.x], perm=[1, 0, 2, 3]), n.c([1, 0, 1], np.int64)])],
        perm=[1, 0, 2, 3])),
    "squeeze_unsqueeze": ((1, 3, 4), lambda n: n.op("Mul", [n.op("Unsqueeze", [n.op(
        "Squeeze", [n.x, n.c([1], np.int64)]), n.c([2], np.int64)]), n.w(3, 1, 4)])),
}


def _scaled(n, factor):
    """factor * x: spreads a unit-variance input over an activation's interesting range."""
    return n.op("Mul", [n.x, n.c(factor)])


def _decomposed_layer_norm(n):
    """LayerNorm as exporters before opset 17 write it: ReduceMean, Sub, Pow, Sqrt, Div."""
    centred = n.op("Sub", [n.x, n.op("ReduceMean", [n.x], axes=[-1])])
    variance = n.op("ReduceMean", [n.op("Pow", [centred, n.c(2.0)])], axes=[-1])
    return n.op("Div", [centred, n.op("Sqrt", [n.op("Add", [variance, n.c(1e-5)])])])


def make_case(name: str, dtype) -> tuple:
    shape, body = CASES[name]
    net = Net(shape, dtype, seed=sorted(CASES).index(name))
    out = body(net)
    net.op("Identity", [out], ["y"])
    opset = int(name[-2:]) if name[-7:-2] == "opset" else None
    return net.build(["y"], opset=opset), shape


@pytest.mark.parametrize("case", sorted(CASES))
def test_grad_matches_finite_differences(case):
    check_finite_differences(make_case, case)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_runtimes_agree(case, mode):
    check_runtimes_agree(make_case, case, mode)


@pytest.mark.parametrize("case", sorted(CASES))
def test_modes_differ_only_at_rectifiers(case):
    """No case above contains a ReLU-like op, so deconv and guided must equal grad."""
    forward, shape = make_case(case, np.float64)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, *shape))
    seed = rng.standard_normal(reference_run(forward, {"data": x})["y"].shape)
    results = [reference_run(build_grad_graph(forward, "y", mode), {"data": x, "seed": seed})
               ["grad"] for mode in MODES]
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


def _activation(op, attrs, bounds=()):
    def body(n):
        return n.op(op, [n.x, *[n.c(b) if b is not None else "" for b in bounds]], **attrs)
    return body


SLOPE = float(np.float32(0.2))  # ONNX float attributes are float32
SLOPES = np.array([0.25, -0.5, 0.0]).reshape(3, 1, 1)  # PRelu: one learned slope per channel

ACTIVATIONS = {
    "relu": (_activation("Relu", {}),
             lambda x, s: {"grad": s * (x > 0), "deconv": np.maximum(s, 0),
                           "guided": np.maximum(s, 0) * (x > 0)}),
    "leaky_relu": (_activation("LeakyRelu", {"alpha": SLOPE}),
                   lambda x, s: {"grad": np.where(x > 0, s, SLOPE * s), "deconv": np.maximum(s, 0),
                                 "guided": np.where(x > 0, 1.0, SLOPE) * np.maximum(s, 0)}),
    "prelu_per_channel": (lambda n: n.op("PRelu", [n.x, n.c(SLOPES)]),
                          lambda x, s: {"grad": np.where(x > 0, s, SLOPES * s),
                                        "deconv": np.maximum(s, 0),
                                        "guided": np.where(x > 0, 1.0, SLOPES) * np.maximum(s, 0)}),
    "clip_relu6": (_activation("Clip", {}, (0.0, 0.6)),
                   lambda x, s: {"grad": s * ((x > 0) & (x < 0.6)), "deconv": np.maximum(s, 0),
                                 "guided": np.maximum(s, 0) * ((x > 0) & (x < 0.6))}),
    "clip_upper_only": (_activation("Clip", {}, (None, 0.5)),
                        lambda x, s: {"grad": s * (x < 0.5), "deconv": np.maximum(s, 0),
                                      "guided": np.maximum(s, 0) * (x < 0.5)}),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_rules(name, mode):
    body, formula = ACTIVATIONS[name]
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 4, 4))
    seed = rng.standard_normal(x.shape)
    expected = formula(x, seed)[mode]
    assert np.abs(expected - formula(x, seed)["grad"]).max() > 0 or mode == "grad"
    for dtype, run, rtol in ((np.float64, reference_run, 1e-12), (np.float32, ort_run, 1e-6)):
        net = Net((3, 4, 4), dtype)
        net.op("Identity", [body(net)], ["y"])
        graph = build_grad_graph(net.build(["y"]), "y", mode)
        feeds = {"data": x.astype(dtype), "seed": seed.astype(dtype)}
        assert_close(run(graph, feeds)["grad"], expected, rtol=rtol)
        if dtype == np.float32 and numpy_executor_available():
            assert_close(numpy_run(graph, feeds)["grad"], expected, rtol=rtol)
    if mode == "grad":
        net = Net((3, 4, 4), np.float64)
        net.op("Identity", [body(net)], ["y"])
        forward = net.build(["y"])
        fd = finite_difference(forward, "y", x[:1], seed[:1]).reshape(x[:1].shape)
        assert_close(fd, expected[:1], rtol=1e-6)


@pytest.mark.parametrize("case, transposed", [
    ("conv_same", False), ("conv_stride1_group_dilation_asymmetric", False),
    ("avgpool_stride1_asymmetric", False), ("conv_1x1_padded_past_kernel", True),
    ("conv_group_stride_dilation", True), ("avgpool_count_pads_ceil", True)])
def test_stride_one_windows_differentiate_as_a_plain_conv(case, transposed):
    """The faster path (a Conv with the flipped kernel) is taken exactly where it is exact:
    stride 1 and pads within the kernel's extent; the finite-difference tests above check both."""
    forward, _ = make_case(case, np.float32)
    grad = build_grad_graph(forward, "y", "grad")
    ops = [node.op_type for node in grad.graph.node[len(forward.graph.node):]]
    assert ("ConvTranspose" in ops) == transposed
    assert ("Conv" in ops) != transposed


def test_reduce_mean_over_the_batch_counts_at_run_time():
    """Reducing a dynamic batch axis: the divisor is size(x) / size(y), computed in the graph."""
    net = Net((3, 4), np.float32)
    net.op("ReduceMean", [net.op("Mul", [net.x, net.x])], ["y"], keepdims=1)
    graph = build_grad_graph(net.build(["y"]), "y", "grad")
    for batch in (1, 5):
        x = np.random.default_rng(batch).standard_normal((batch, 3, 4)).astype(np.float32)
        seed = np.full((1, 1, 1), 1.5, np.float32)
        expected = 1.5 * 2 * x / x.size
        assert_close(ort_run(graph, {"data": x, "seed": seed})["grad"], expected, rtol=1e-6)
        assert_close(numpy_run(graph, {"data": x, "seed": seed})["grad"], expected, rtol=1e-6)
