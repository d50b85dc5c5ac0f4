"""Each Caffe layer converter, run by onnxruntime, against NumPy transcriptions of Caffe's
CPU loops (caffe-facts §1) written here independently of deepvis."""
from __future__ import annotations

import numpy as np
import pytest

from deepvis.caffe.convert import net_to_onnx
from deepvis.caffe.layers import ONNX_OPS
from deepvis.caffe.net import Layer, Net
from deepvis.exec import make_executor

RNG = np.random.default_rng(1234)


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def run_net(layers, inputs, blobs):
    """Convert a net (inputs: name -> array, blobs: layer name -> arrays), run it on onnxruntime."""
    net = Net(name="test", inputs=[(k, v.shape) for k, v in inputs.items()], layers=layers)
    weights = Net(layers=[Layer(name=name, type="", blobs=[np.asarray(b, np.float32) for b in bs])
                          for name, bs in blobs.items()])
    model = net_to_onnx(net, weights)
    assert {node.op_type for node in model.graph.node} <= set(ONNX_OPS)
    return make_executor(model, "ort").run(dict(inputs))


def run_layer(type_, params, inputs, blobs=(), tops=("y",)):
    """A one-layer net reading the given inputs."""
    layer = Layer(name="layer", type=type_, bottoms=list(inputs), tops=list(tops), params=params)
    out = run_net([layer], inputs, {"layer": blobs})
    return out[tops[0]] if len(tops) == 1 else [out[t] for t in tops]


def close(actual, expected, tol=1e-5):
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol)


# -- Convolution --------------------------------------------------------------------------------
def ref_conv(x, w, b, stride, pad, dilation, group):
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, pad, dilation
    ho = (h + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    wo = (wd + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((n, m, ho, wo))
    mg = m // group
    for g in range(group):
        for oc in range(g * mg, (g + 1) * mg):
            for i in range(ho):
                for j in range(wo):
                    patch = xp[:, g * cg:(g + 1) * cg, i * sh:i * sh + dh * (kh - 1) + 1:dh,
                               j * sw:j * sw + dw * (kw - 1) + 1:dw]
                    out[:, oc, i, j] = (patch * w[oc]).sum(axis=(1, 2, 3))
    return out + (0 if b is None else b[None, :, None, None])


@pytest.mark.parametrize("params, stride, pad, dilation, group, kernel", [
    ({"num_output": 4, "kernel_size": [3]}, (1, 1), (0, 0), (1, 1), 1, (3, 3)),
    ({"num_output": 6, "kernel_size": [3], "stride": [2], "pad": [1], "group": 2},
     (2, 2), (1, 1), (1, 1), 2, (3, 3)),
    ({"num_output": 4, "kernel_h": 3, "kernel_w": 2, "stride_h": 2, "stride_w": 1, "pad_h": 1,
      "pad_w": 0}, (2, 1), (1, 0), (1, 1), 1, (3, 2)),
    ({"num_output": 4, "kernel_size": [3, 2], "stride": [1, 3], "pad": [2, 1],
      "dilation": [2]}, (1, 3), (2, 1), (2, 2), 1, (3, 2)),
])
def test_convolution(params, stride, pad, dilation, group, kernel):
    x = randn(2, 4, 9, 8)
    w, b = randn(params["num_output"], 4 // group, *kernel), randn(params["num_output"])
    y = run_layer("Convolution", {"convolution_param": params}, {"data": x}, [w, b])
    close(y, ref_conv(x, w, b, stride, pad, dilation, group))


def test_convolution_without_bias():
    x, w = randn(1, 3, 6, 6), randn(5, 3, 2, 2)
    y = run_layer("Convolution", {"convolution_param": {"num_output": 5, "kernel_size": [2],
                                                        "bias_term": False}}, {"data": x}, [w])
    close(y, ref_conv(x, w, None, (1, 1), (0, 0), (1, 1), 1))


# -- Pooling --------------------------------------------------------------------------------------
def ref_pooled(size, k, s, p, ceil=True):
    span = size + 2 * p - k
    out = (-(-span // s) if ceil else span // s) + 1
    if p and (out - 1) * s >= size + p:
        out -= 1
    return out


def ref_pool(x, method, kernel, stride, pad, ceil=True):
    """pooling_layer.cpp Forward_cpu: MAX over the window clipped to the image; AVE sums the
    image part and divides by the window clipped to the padded extent."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    ho, wo = ref_pooled(h, kh, sh, ph, ceil), ref_pooled(w, kw, sw, pw, ceil)
    out = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            hs, ws = i * sh - ph, j * sw - pw
            he, we = min(hs + kh, h + ph), min(ws + kw, w + pw)
            pool_size = (he - hs) * (we - ws)
            window = x[:, :, max(hs, 0):min(he, h), max(ws, 0):min(we, w)].astype(np.float64)
            out[:, :, i, j] = window.max(axis=(2, 3)) if method == "MAX" \
                else window.sum(axis=(2, 3)) / pool_size
    return out


POOL_CASES = [  # (H, W, kernel, stride, pad)
    (7, 7, (3, 3), (2, 2), (0, 0)),     # exact division
    (6, 8, (3, 3), (2, 2), (0, 0)),     # ceil overhang, no pad
    (5, 5, (2, 2), (2, 2), (1, 1)),     # ceil then clip rule (3, not 4)
    (6, 6, (3, 3), (2, 2), (1, 1)),     # pad and ceil overhang
    (5, 5, (3, 3), (2, 2), (1, 1)),     # pad, exact
    (9, 7, (3, 2), (3, 2), (1, 1)),     # rectangular, stride 3
    (10, 10, (4, 4), (3, 3), (2, 2)),   # clip rule with stride 3
]


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("h, w, kernel, stride, pad", POOL_CASES)
def test_pooling(method, h, w, kernel, stride, pad):
    x = randn(2, 3, h, w) - 3.0   # mostly negative: padding must never win a MAX
    params = {"pool": method, "kernel_h": kernel[0], "kernel_w": kernel[1],
              "stride_h": stride[0], "stride_w": stride[1], "pad_h": pad[0], "pad_w": pad[1]}
    y = run_layer("Pooling", {"pooling_param": params}, {"data": x})
    close(y, ref_pool(x, method, kernel, stride, pad))


def test_pooling_sizes_by_hand():
    """Caffe sizes worked out on paper: 5/k2/s2/p1 -> 3 (clip), 6/k3/s2 -> 3 (ceil)."""
    x = randn(1, 1, 5, 6)
    y = run_layer("Pooling", {"pooling_param": {"kernel_size": 2, "stride": 2, "pad": 1}},
                  {"data": x})
    assert y.shape == (1, 1, 3, 4)
    z = run_layer("Pooling", {"pooling_param": {"kernel_size": 3, "stride": 2}},
                  {"data": randn(1, 1, 6, 6)})
    assert z.shape == (1, 1, 3, 3)


def test_pooling_ave_divisor_by_hand():
    """Ones, 3x3 input, k2 s2 p1: the corner window holds 1 real value over a divisor of 4;
    ceil gives 2x2 outputs whose last window ends exactly at the padded border."""
    y = run_layer("Pooling", {"pooling_param": {"pool": "AVE", "kernel_size": 2, "stride": 2,
                                                "pad": 1}}, {"data": np.ones((1, 1, 3, 3),
                                                                             np.float32)})
    close(y, np.array([[[[0.25, 0.5], [0.5, 1.0]]]]))


def test_pooling_floor_round_mode():
    x = randn(1, 2, 6, 6)
    y = run_layer("Pooling", {"pooling_param": {"kernel_size": 3, "stride": 2,
                                                "round_mode": "FLOOR"}}, {"data": x})
    close(y, ref_pool(x, "MAX", (3, 3), (2, 2), (0, 0), ceil=False))


@pytest.mark.parametrize("method, reduce", [("MAX", np.max), ("AVE", np.mean)])
def test_global_pooling(method, reduce):
    x = randn(2, 3, 5, 4)
    y = run_layer("Pooling", {"pooling_param": {"pool": method, "global_pooling": True}},
                  {"data": x})
    close(y, reduce(x, axis=(2, 3), keepdims=True))


# -- LRN -------------------------------------------------------------------------------------------
def ref_lrn_across(x, n, alpha, beta, k):
    x = x.astype(np.float64)
    c = x.shape[1]
    half = (n - 1) // 2
    scale = np.full_like(x, k)
    for ch in range(c):
        lo, hi = max(0, ch - half), min(c, ch + half + 1)
        scale[:, ch] += alpha / n * (x[:, lo:hi] ** 2).sum(axis=1)
    return x * scale ** -beta


def ref_lrn_within(x, n, alpha, beta):
    x = x.astype(np.float64)
    half = (n - 1) // 2
    _, _, h, w = x.shape
    sq = np.pad(x ** 2, ((0, 0), (0, 0), (half, half), (half, half)))
    total = np.zeros_like(x)
    for i in range(h):
        for j in range(w):
            total[:, :, i, j] = sq[:, :, i:i + n, j:j + n].sum(axis=(2, 3))
    return x * (1 + alpha / n ** 2 * total) ** -beta


def test_lrn_across_channels():
    x = randn(2, 7, 3, 4) * 3
    params = {"local_size": 5, "alpha": 0.5, "beta": 0.75, "k": 2.0}
    y = run_layer("LRN", {"lrn_param": params}, {"data": x})
    close(y, ref_lrn_across(x, 5, 0.5, 0.75, 2.0))


def test_lrn_within_channel_ignores_k():
    x = randn(2, 3, 6, 5) * 3
    params = {"local_size": 3, "alpha": 0.9, "beta": 0.6, "k": 7.0,
              "norm_region": "WITHIN_CHANNEL"}
    y = run_layer("LRN", {"lrn_param": params}, {"data": x})
    close(y, ref_lrn_within(x, 3, 0.9, 0.6))


# -- ReLU, Dropout, Split, Softmax, Concat ---------------------------------------------------------
@pytest.mark.parametrize("slope", [0.0, 0.1])
def test_relu(slope):
    x = randn(2, 3, 4, 4)
    y = run_layer("ReLU", {"relu_param": {"negative_slope": slope}} if slope else {},
                  {"data": x})
    close(y, np.maximum(x, 0) + slope * np.minimum(x, 0))


def test_dropout_is_identity_and_split_copies():
    x = randn(2, 5)
    close(run_layer("Dropout", {"dropout_param": {"dropout_ratio": 0.5}}, {"data": x}), x)
    a, b = run_layer("Split", {}, {"data": x}, tops=("a", "b"))
    close(a, x)
    close(b, x)


def ref_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("shape, params, axis", [
    ((2, 5, 3, 1), {}, 1),                # per location, as in SqueezeNet's prob
    ((2, 3, 4), {"axis": 2}, 2),
    ((2, 3, 4), {"axis": -2}, 1),
])
def test_softmax(shape, params, axis):
    x = randn(*shape) * 2
    y = run_layer("Softmax", {"softmax_param": params} if params else {}, {"data": x})
    close(y, ref_softmax(x.astype(np.float64), axis))


@pytest.mark.parametrize("params, axis", [({}, 1), ({"axis": 2}, 2), ({"axis": -1}, 3),
                                          ({"concat_dim": 2}, 2)])
def test_concat(params, axis):
    shapes = [[2, 3, 4, 5], [2, 3, 4, 5]]
    shapes[1][axis] = 2
    a, b = randn(*shapes[0]), randn(*shapes[1])
    y = run_layer("Concat", {"concat_param": params} if params else {}, {"a": a, "b": b})
    close(y, np.concatenate([a, b], axis=axis))


# -- Eltwise ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("params, reference", [
    ({}, lambda a, b, c: a + b + c),
    ({"operation": "SUM", "coeff": [1.0, -2.0, 0.5]}, lambda a, b, c: a - 2 * b + 0.5 * c),
    ({"operation": "PROD"}, lambda a, b, c: a * b * c),
    ({"operation": "MAX"}, lambda a, b, c: np.maximum(np.maximum(a, b), c)),
])
def test_eltwise(params, reference):
    a, b, c = randn(2, 3, 4), randn(2, 3, 4), randn(2, 3, 4)
    y = run_layer("Eltwise", {"eltwise_param": params} if params else {},
                  {"a": a, "b": b, "c": c})
    close(y, reference(a, b, c))


# -- BatchNorm, Scale ------------------------------------------------------------------------------
@pytest.mark.parametrize("factor", [0.0, 2.5])
def test_batch_norm(factor):
    x = randn(2, 4, 3, 3)
    mean_sum, var_sum = randn(4), np.abs(randn(4)) + 0.5
    y = run_layer("BatchNorm", {"batch_norm_param": {"eps": 1e-3}}, {"data": x},
                  [mean_sum, var_sum, [factor]])
    scale = 0.0 if factor == 0 else 1.0 / factor
    expected = (x - scale * mean_sum[:, None, None]) / np.sqrt(scale * var_sum[:, None, None]
                                                              + 1e-3)
    close(y, expected, tol=1e-4)


def test_scale_per_channel_with_bias():
    x, gamma, beta = randn(2, 3, 4, 5), randn(3), randn(3)
    y = run_layer("Scale", {"scale_param": {"bias_term": True}}, {"data": x}, [gamma, beta])
    close(y, x * gamma[:, None, None] + beta[:, None, None])


def test_scale_over_two_axes_without_bias():
    x, gamma = randn(2, 3, 4, 5), randn(3, 4)
    y = run_layer("Scale", {"scale_param": {"num_axes": 2}}, {"data": x}, [gamma])
    close(y, x * gamma[:, :, None])


def test_scale_two_bottoms_with_bias():
    x, gamma, beta = randn(1, 3, 4, 5), randn(1, 3), randn(1, 3)
    y = run_layer("Scale", {"scale_param": {"axis": 0, "bias_term": True}},
                  {"data": x, "gamma": gamma}, [beta])
    close(y, x * gamma[:, :, None, None] + beta[:, :, None, None])


def test_scale_by_a_computed_multiplier():
    """Squeeze-and-excitation style: x * mean_hw(x), the multiplier (N, C) made in the net."""
    x = randn(2, 3, 4, 5)
    layers = [
        Layer(name="squeeze", type="Pooling", bottoms=["data"], tops=["pooled"],
              params={"pooling_param": {"pool": "AVE", "global_pooling": True}}),
        Layer(name="flat", type="Flatten", bottoms=["pooled"], tops=["gate"]),
        Layer(name="excite", type="Scale", bottoms=["data", "gate"], tops=["y"],
              params={"scale_param": {"axis": 0}}),
    ]
    y = run_net(layers, {"data": x}, {})["y"]
    close(y, x * x.mean(axis=(2, 3), keepdims=True))


# -- InnerProduct, Flatten, Reshape ------------------------------------------------------------
@pytest.mark.parametrize("shape, params", [
    ((2, 3, 2, 2), {"num_output": 5}),
    ((2, 6), {"num_output": 4, "bias_term": False}),
    ((2, 3, 2, 2), {"num_output": 5, "transpose": True}),
    ((2, 3, 4, 2), {"num_output": 5, "axis": 2}),
    ((2, 3, 4), {"num_output": 3, "axis": -1, "transpose": True, "bias_term": False}),
])
def test_inner_product(shape, params):
    x = randn(*shape)
    axis = params.get("axis", 1) % len(shape)
    k, n = int(np.prod(shape[axis:])), params["num_output"]
    w = randn(k, n) if params.get("transpose") else randn(n, k)
    b = randn(n)
    blobs = [w, b] if params.get("bias_term", True) else [w]
    y = run_layer("InnerProduct", {"inner_product_param": params}, {"data": x}, blobs)
    flat = x.reshape(shape[:axis] + (k,)).astype(np.float64)
    expected = flat @ (w if params.get("transpose") else w.T)
    if params.get("bias_term", True):
        expected = expected + b
    close(y, expected)


@pytest.mark.parametrize("params, shape", [
    ({}, (2, 60)),
    ({"axis": 1, "end_axis": 2}, (2, 12, 5)),
    ({"axis": 2}, (2, 3, 20)),
    ({"axis": 0, "end_axis": 1}, (6, 4, 5)),
])
def test_flatten(params, shape):
    x = randn(2, 3, 4, 5)
    y = run_layer("Flatten", {"flatten_param": params} if params else {}, {"data": x})
    close(y, x.reshape(shape))


@pytest.mark.parametrize("params, shape", [
    ({"shape": {"dim": [0, -1]}}, (2, 60)),
    ({"shape": {"dim": [0, 0, -1, 2]}}, (2, 3, 10, 2)),
    ({"shape": {"dim": [-1]}, "axis": 1, "num_axes": 2}, (2, 12, 5)),
    ({"shape": {"dim": [0, -1]}, "axis": 1}, (2, 3, 20)),
    ({"shape": {"dim": [-1, 1]}, "axis": -2}, (2, 3, 4, 5, 1)),
    ({"shape": {"dim": [1]}, "axis": 4, "num_axes": 0}, (2, 3, 4, 5, 1)),
])
def test_reshape(params, shape):
    x = randn(2, 3, 4, 5)
    y = run_layer("Reshape", {"reshape_param": params}, {"data": x})
    close(y, x.reshape(shape))
