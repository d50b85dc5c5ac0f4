"""The NumPy executor against onnx's ReferenceEvaluator, onnxruntime and hand-written NumPy.

onnxruntime (>= 1.21.1 CPU) is the documented reference (caffe-facts §5): where onnx's
ReferenceEvaluator disagrees with it, the test says so and compares with ORT and NumPy only.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from deepvis.errors import UnsupportedError
from deepvis.exec import make_executor
from deepvis.exec.numpy_exec import NumpyExecutor

try:
    import onnxruntime
except ImportError:  # the ORT comparison is skipped, the others still run
    onnxruntime = None

RNG = np.random.default_rng(20150706)
F32, F64, I64, BOOL = np.float32, np.float64, np.int64, np.bool_
_ELEM = {np.dtype(F32): TensorProto.FLOAT, np.dtype(F64): TensorProto.DOUBLE,
         np.dtype(I64): TensorProto.INT64, np.dtype(BOOL): TensorProto.BOOL,
         np.dtype(np.int32): TensorProto.INT32}


def randn(*shape, dtype=F32):
    return RNG.standard_normal(shape).astype(dtype)


def make_model(nodes, feeds: dict, outputs: dict, constants: dict | None = None, opset=17):
    """A model whose inputs are typed from `feeds`, outputs from `outputs` (name -> dtype)."""
    inputs = [helper.make_tensor_value_info(n, _ELEM[v.dtype], list(v.shape))
              for n, v in feeds.items()]
    outs = [helper.make_tensor_value_info(n, _ELEM[np.dtype(t)], None) for n, t in outputs.items()]
    inits = [numpy_helper.from_array(np.asarray(v), n) for n, v in (constants or {}).items()]
    graph = helper.make_graph(nodes, "test", inputs, outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def single(op, feeds, constants=None, outputs=None, out_dtype=None, opset=17, input_names=None,
           **attrs):
    """A one-node model; inputs are the feeds then the constants, in order, unless named."""
    names = input_names or list(feeds) + list(constants or {})
    outputs = outputs or {"y": out_dtype or next(iter(feeds.values())).dtype}
    node = helper.make_node(op, names, list(outputs), name=f"node/{op}", **attrs)
    return make_model([node], feeds, outputs, constants, opset)


def assert_close(ours, theirs, rtol, who):
    theirs = np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{who}: shape {ours.shape} != {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{who}: dtype {ours.dtype} != {theirs.dtype}"
    if ours.dtype.kind in "biu":
        np.testing.assert_array_equal(ours, theirs, err_msg=who)
        return
    scale = max(float(np.abs(theirs).max(initial=0.0)), 1e-30)
    err = float(np.abs(ours.astype(F64) - theirs.astype(F64)).max(initial=0.0))
    assert err <= rtol * scale, f"{who}: max error {err:.3g} > {rtol} * {scale:.3g}"


def check(model, feeds, rtol=1e-5, reference=True, ort=True):
    """Run on NumPy, ReferenceEvaluator and onnxruntime; return the NumPy results.

    `reference` may be False or the collection of outputs to compare with ReferenceEvaluator."""
    names = [o.name for o in model.graph.output]
    ours = NumpyExecutor(model).run(feeds)
    if reference:
        for name, value in zip(names, ReferenceEvaluator(model).run(None, feeds)):
            if reference is True or name in reference:
                assert_close(ours[name], value, rtol, f"reference {name}")
    if ort and onnxruntime is not None:
        session = onnxruntime.InferenceSession(model.SerializeToString(),
                                               providers=["CPUExecutionProvider"])
        for name, value in zip(names, session.run(None, feeds)):
            assert_close(ours[name], value, rtol, f"onnxruntime {name}")
    return ours


# ---------------------------------------------------------------- convolution
def case(x, w=None, **attrs):
    return {"x": x, "w": w, "attrs": attrs}


CONV_CASES = {
    "plain": case((2, 3, 9, 8), (4, 3, 3, 3)),
    "strided-asym-pads": case((2, 3, 11, 10), (5, 3, 3, 2), strides=[2, 3], pads=[1, 0, 2, 1]),
    "dilated": case((1, 2, 12, 12), (3, 2, 3, 3), dilations=[2, 3], pads=[2, 1, 0, 3]),
    "grouped": case((2, 4, 9, 9), (6, 2, 3, 3), group=2, strides=[2, 2], pads=[1, 1, 1, 1]),
    "depthwise": case((2, 4, 9, 9), (4, 1, 3, 3), group=4, strides=[2, 1], pads=[1, 0, 1, 2]),
    "depthwise-multiplier": case((1, 3, 7, 7), (6, 1, 3, 3), group=3),
    "1x1": case((2, 6, 5, 7), (4, 6, 1, 1)),
    "1x1-strided": case((2, 6, 5, 7), (4, 6, 1, 1), strides=[2, 2]),
    "1x1-padded-grouped": case((1, 6, 5, 5), (4, 3, 1, 1), group=2, pads=[1, 0, 0, 1]),
    "caffenet-conv1-like": case((1, 3, 35, 35), (8, 3, 11, 11), strides=[4, 4]),
    "same-upper": case((1, 2, 8, 7), (3, 2, 4, 3), auto_pad="SAME_UPPER", strides=[2, 2]),
    "1d": case((2, 3, 10), (4, 3, 3), pads=[2, 1]),
}


@pytest.mark.parametrize("case", CONV_CASES, ids=list(CONV_CASES))
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_conv(case, bias):
    spec = CONV_CASES[case]
    consts = {"w": randn(*spec["w"])}
    if bias:
        consts["b"] = randn(spec["w"][0])
    feeds = {"x": randn(*spec["x"])}
    check(single("Conv", feeds, consts, **spec["attrs"]), feeds)


def test_conv_and_transpose_in_one_image_chunks(monkeypatch):
    """Batches split into several im2col/col2im chunks (planes into one-plane blocks for
    depthwise) give the same result."""
    from deepvis.exec.numpy_ops import window
    x, dy = {"x": randn(3, 4, 7, 7)}, {"x": randn(3, 6, 4, 7)}
    attrs = dict(strides=[2, 1], pads=[1, 1, 0, 1])
    models = [(single("Conv", x, {"w": randn(6, 2, 3, 3), "b": randn(6)}, group=2, **attrs), x),
              (single("Conv", x, {"w": randn(4, 1, 3, 3)}, group=4, **attrs), x),
              (single("ConvTranspose", dy, {"w": randn(6, 2, 3, 3)}, group=2, **attrs), dy),
              (single("ConvTranspose", dy, {"w": randn(6, 1, 3, 3)}, group=6, **attrs), dy)]
    whole = [NumpyExecutor(model).run(feeds)["y"] for model, feeds in models]
    monkeypatch.setattr(window, "COLUMN_BUFFER_BYTES", 1)
    monkeypatch.setattr(window, "BLOCK_BYTES", 1)
    for (model, feeds), expected in zip(models, whole):
        out = check(model, feeds, reference=model.graph.node[0].op_type == "Conv")["y"]
        np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_conv_float64_stays_float64():
    feeds = {"x": randn(1, 2, 6, 6, dtype=F64)}
    out = check(single("Conv", feeds, {"w": randn(3, 2, 3, 3, dtype=F64)}, pads=[1, 1, 1, 1]),
                feeds, rtol=1e-12, ort=False)
    assert out["y"].dtype == F64


CONVT_CASES = {
    "plain": case((2, 4, 5, 6), (4, 3, 3, 3)),
    "strided-padded": case((2, 4, 5, 5), (4, 2, 3, 3), strides=[2, 2], pads=[1, 1, 1, 1]),
    "output-padding": case((1, 3, 4, 5), (3, 2, 3, 4), strides=[3, 2], pads=[1, 0, 1, 2],
                           output_padding=[2, 1]),
    "dilated": case((1, 2, 5, 5), (2, 3, 3, 2), dilations=[2, 3], strides=[2, 1],
                    pads=[0, 1, 2, 0]),
    "grouped": case((2, 4, 5, 5), (4, 3, 3, 3), group=2, strides=[2, 2], pads=[1, 1, 1, 1],
                    output_padding=[1, 1]),
    "depthwise": case((2, 3, 5, 4), (3, 1, 3, 3), group=3, strides=[2, 2], pads=[1, 0, 0, 1],
                      output_padding=[1, 0]),
    "caffenet-conv1-adjoint": case((1, 4, 7, 7), (4, 3, 11, 11), strides=[4, 4]),
    "1x1": case((2, 6, 4, 5), (6, 3, 1, 1)),
    "1x1-strided-grouped": case((2, 4, 4, 5), (4, 3, 1, 1), group=2, strides=[2, 3],
                                pads=[1, 0, 0, 2], output_padding=[1, 1]),
    "1d": case((2, 3, 6), (3, 2, 4), strides=[3], pads=[1, 2]),
}


@pytest.mark.parametrize("case", CONVT_CASES, ids=list(CONVT_CASES))
def test_conv_transpose(case):
    spec = CONVT_CASES[case]
    feeds = {"x": randn(*spec["x"])}
    group = spec["attrs"].get("group", 1)
    consts = {"w": randn(*spec["w"]), "b": randn(spec["w"][1] * group)}
    # ReferenceEvaluator splits grouped ConvTranspose weights by output instead of input
    # channels and misplaces the group outputs: grouped cases are checked against ORT and
    # against one ungrouped ConvTranspose per group (itself checked against the reference).
    out = check(single("ConvTranspose", feeds, consts, **spec["attrs"]), feeds,
                reference=group == 1)["y"]
    if group > 1:
        attrs = {k: v for k, v in spec["attrs"].items() if k != "group"}
        parts = []
        for x_g, w_g, b_g in zip(np.split(feeds["x"], group, axis=1),
                                 np.split(consts["w"], group), np.split(consts["b"], group)):
            model = single("ConvTranspose", {"x": x_g}, {"w": w_g, "b": b_g}, **attrs)
            parts.append(check(model, {"x": x_g})["y"])
        np.testing.assert_allclose(out, np.concatenate(parts, axis=1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [[7, 7], [8, 6], [9, 10]])
def test_conv_transpose_output_shape(shape):
    """Pads derived from output_shape (odd totals put the extra pad first, a negative total
    extends the end with zeros). ReferenceEvaluator cannot run these: ORT only."""
    feeds = {"x": randn(1, 2, 4, 4)}
    model = single("ConvTranspose", feeds, {"w": randn(2, 3, 3, 3)}, strides=[2, 2],
                   output_shape=shape)
    assert check(model, feeds, reference=False)["y"].shape == (1, 3, *shape)


@pytest.mark.parametrize("group", [1, 2])
def test_conv_transpose_is_conv_adjoint(group):
    """<conv(x), dy> == <x, convT(dy)> with Conv's own weights, as the gradient graphs need."""
    attrs = dict(strides=[3, 2], pads=[1, 2, 1, 0], dilations=[1, 2], group=group)
    x, w = randn(2, 4, 13, 12, dtype=F64), randn(6, 4 // group, 3, 3, dtype=F64)
    y = NumpyExecutor(single("Conv", {"x": x}, {"w": w}, **attrs)).run({"x": x})["y"]
    dy = randn(*y.shape, dtype=F64)
    # output_padding: rows of x after the last window (kernel 3, so extent 2*d + 1)
    s, d, p = attrs["strides"], attrs["dilations"], attrs["pads"]
    extra = [x.shape[2 + i] - ((y.shape[2 + i] - 1) * s[i] + 2 * d[i] + 1 - p[i] - p[i + 2])
             for i in range(2)]
    dx = NumpyExecutor(single("ConvTranspose", {"dy": dy}, {"w": w}, output_padding=extra,
                              **attrs)).run({"dy": dy})["y"]
    assert dx.shape == x.shape
    np.testing.assert_allclose(np.vdot(y, dy), np.vdot(x, dx), rtol=1e-10)


# ---------------------------------------------------------------- pooling
POOL_CASES = {
    "plain": case((2, 3, 9, 9), kernel_shape=[3, 3], strides=[2, 2]),
    "ceil": case((1, 2, 10, 11), kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
    "ceil-padded-clip": case((1, 2, 5, 5), kernel_shape=[2, 2], strides=[2, 2],
                             pads=[1, 1, 1, 1], ceil_mode=1),
    "asym-pads": case((2, 2, 8, 9), kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 2, 1]),
    "caffe-end-pads": case((1, 3, 12, 12), kernel_shape=[3, 3], strides=[2, 2],
                           pads=[1, 1, 2, 2]),
    "rect-stride1": case((1, 2, 6, 7), kernel_shape=[2, 3], pads=[1, 0, 0, 1]),
    "ceil-asym": case((1, 2, 9, 8), kernel_shape=[3, 2], strides=[3, 2], pads=[1, 0, 0, 1],
                      ceil_mode=1),
    "same-upper": case((1, 2, 7, 8), kernel_shape=[3, 3], strides=[2, 2],
                       auto_pad="SAME_UPPER"),
    "1d": case((2, 3, 11), kernel_shape=[3], strides=[2], pads=[1, 1]),
}


def naive_pool(x, kernel_shape, strides=(1, 1), pads=(0, 0, 0, 0), ceil_mode=0,
               count_include_pad=0, op="max"):
    """2-D pooling written straight from the spec, one output pixel at a time; in ceil mode
    a window may not start in the end pad (onnxruntime >= 1.21.1, caffe-facts §5.4)."""
    (kh, kw), (sh, sw) = kernel_shape, strides
    n, c, height, width = x.shape
    sizes = []
    for size, k, s, before, after in ((height, kh, sh, pads[0], pads[2]),
                                      (width, kw, sw, pads[1], pads[3])):
        span = size + before + after - k
        count = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (count - 1) * s >= size + before:
            count -= 1
        sizes.append(count)
    y = np.zeros((n, c, *sizes), F64)
    for oh in range(sizes[0]):
        for ow in range(sizes[1]):
            rows = [oh * sh - pads[0] + i for i in range(kh)]
            cols = [ow * sw - pads[1] + j for j in range(kw)]
            inside_r = [r for r in rows if 0 <= r < height]
            inside_c = [q for q in cols if 0 <= q < width]
            patch = x[:, :, inside_r][:, :, :, inside_c].astype(F64)
            if op == "max":
                y[:, :, oh, ow] = patch.max(axis=(2, 3))
                continue
            if count_include_pad:
                divisor = (sum(-pads[0] <= r < height + pads[2] for r in rows)
                           * sum(-pads[1] <= q < width + pads[3] for q in cols))
            else:
                divisor = len(inside_r) * len(inside_c)
            y[:, :, oh, ow] = patch.sum(axis=(2, 3)) / divisor
    return y.astype(x.dtype)


def _pool_reference_ok(case):
    """ReferenceEvaluator pools in ceil mode with a window starting in the end pad (it lacks
    the clip rule) and sizes SAME_UPPER ceil-style; ORT >= 1.21.1 is trusted there."""
    attrs = POOL_CASES[case]["attrs"]
    return not attrs.get("ceil_mode") and "auto_pad" not in attrs


@pytest.mark.parametrize("case", POOL_CASES, ids=list(POOL_CASES))
def test_max_pool(case):
    spec = POOL_CASES[case]
    feeds = {"x": randn(*spec["x"])}
    model = single("MaxPool", feeds, outputs={"y": F32, "i": I64}, **spec["attrs"])
    # ReferenceEvaluator's Indices are off when a begin pad meets a non-square kernel (it
    # even returns negative ones), so its indices are not compared; ORT's are, and each
    # index must point at its maximum.
    out = check(model, feeds, reference={"y"} if _pool_reference_ok(case) else False)
    np.testing.assert_array_equal(feeds["x"].ravel()[out["i"]], out["y"])
    if "auto_pad" not in spec["attrs"] and len(spec["x"]) == 4:
        np.testing.assert_array_equal(out["y"], naive_pool(feeds["x"], **spec["attrs"]))


def test_pools_one_plane_per_block(monkeypatch):
    from deepvis.exec.numpy_ops import window
    monkeypatch.setattr(window, "BLOCK_BYTES", 1)
    feeds = {"x": randn(2, 3, 9, 8)}
    attrs = dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 1])
    out = check(single("MaxPool", feeds, outputs={"y": F32, "i": I64}, **attrs), feeds,
                reference={"y"})
    np.testing.assert_array_equal(feeds["x"].ravel()[out["i"]], out["y"])
    check(single("AveragePool", feeds, **attrs), feeds)


def test_ceil_mode_clip_rule_output_size():
    """caffe-facts §5.4: H=5, k2, s2, p1, ceil -> 3 (not 4: no window may start in the end pad)."""
    feeds = {"x": randn(1, 1, 5, 5)}
    model = single("MaxPool", feeds, kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1],
                   ceil_mode=1)
    assert check(model, feeds, reference=False)["y"].shape == (1, 1, 3, 3)


def test_max_pool_dilated():
    feeds = {"x": randn(1, 2, 11, 10)}
    model = single("MaxPool", feeds, outputs={"y": F32, "i": I64}, kernel_shape=[3, 2],
                   dilations=[2, 3], pads=[1, 1, 2, 0])
    check(model, feeds)


def test_max_pool_indices_ties_and_batch_offsets():
    """Ties go to the first row-major maximum; indices include the n and c offsets."""
    x = RNG.integers(0, 3, size=(2, 3, 6, 6)).astype(F32)
    feeds = {"x": x}
    model = single("MaxPool", feeds, outputs={"y": F32, "i": I64}, kernel_shape=[3, 3],
                   strides=[2, 2], pads=[1, 1, 1, 1])
    out = check(model, feeds)
    n, c, oh, ow = 1, 2, 1, 2
    window = [(h, w) for h in range(oh * 2 - 1, oh * 2 + 2) for w in range(ow * 2 - 1, ow * 2 + 2)]
    first = max(window, key=lambda hw: (x[n, c][hw], -hw[0], -hw[1]))
    assert out["i"][n, c, oh, ow] == ((n * 3 + c) * 6 + first[0]) * 6 + first[1]
    np.testing.assert_array_equal(x.ravel()[out["i"]], out["y"])


def test_max_pool_storage_order_column_major():
    x = randn(1, 2, 5, 4)
    model = single("MaxPool", {"x": x}, outputs={"y": F32, "i": I64}, kernel_shape=[2, 2],
                   storage_order=1)
    out = check(model, {"x": x}, reference={"y"})  # the reference ignores storage_order
    plane = out["i"] % 20
    h, w = plane % 5, plane // 5
    np.testing.assert_array_equal(x[0][np.arange(2)[:, None, None], h[0], w[0]], out["y"][0])


@pytest.mark.parametrize("include_pad", [0, 1])
@pytest.mark.parametrize("case", POOL_CASES, ids=list(POOL_CASES))
def test_average_pool(case, include_pad):
    spec = POOL_CASES[case]
    feeds = {"x": randn(*spec["x"])}
    model = single("AveragePool", feeds, count_include_pad=include_pad, **spec["attrs"])
    out = check(model, feeds, reference=_pool_reference_ok(case))["y"]
    if "auto_pad" not in spec["attrs"] and len(spec["x"]) == 4:
        expected = naive_pool(feeds["x"], count_include_pad=include_pad, op="average",
                              **spec["attrs"])
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_average_pool_ceil_divisor_matches_caffe():
    """Caffe AVE (caffe-facts §1.2): pads count, the ceil overhang past the end pad does not."""
    x = np.arange(25, dtype=F32).reshape(1, 1, 5, 5)
    model = single("AveragePool", {"x": x}, kernel_shape=[3, 3], strides=[2, 2],
                   pads=[1, 1, 1, 1], count_include_pad=1, ceil_mode=1)
    y = check(model, {"x": x}, reference=False)["y"]
    assert y.shape == (1, 1, 3, 3)
    # output (2, 2) starts at padded row/col 4 = input 3; window rows 3..4 plus pad row 5 -> 3x3
    assert y[0, 0, 2, 2] == pytest.approx(x[0, 0, 3:5, 3:5].sum() / 9)
    # output (0, 0): rows/cols -1..1 with 5 pad cells, divisor still 9
    assert y[0, 0, 0, 0] == pytest.approx(x[0, 0, 0:2, 0:2].sum() / 9)


@pytest.mark.parametrize("op,function", [("GlobalAveragePool", np.mean), ("GlobalMaxPool", np.max)])
def test_global_pool(op, function):
    feeds = {"x": randn(2, 3, 5, 6)}
    out = check(single(op, feeds), feeds)
    expected = function(feeds["x"], axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(out["y"], expected, rtol=1e-6)


# ---------------------------------------------------------------- normalisation
@pytest.mark.parametrize("size,beta", [(5, 0.75), (4, 0.6), (3, 1.0)])
def test_lrn(size, beta):
    """ReferenceEvaluator's LRN loops over the batch size instead of the channels, so only
    onnxruntime and the spec formula written out here are used."""
    x = randn(2, 7, 4, 5)
    attrs = dict(size=size, alpha=0.02, beta=beta, bias=1.5)
    out = check(single("LRN", {"x": x}, **attrs), {"x": x}, reference=False,
                ort=size % 2 == 1)["y"]  # ORT's CPU kernel insists on an odd size
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    squares = np.stack([(x[:, max(0, c - lo):c + hi + 1].astype(F64) ** 2).sum(axis=1)
                        for c in range(7)], axis=1)
    expected = x / (1.5 + 0.02 / size * squares) ** beta
    np.testing.assert_allclose(out, expected, rtol=2e-6)


def test_batch_normalization():
    feeds = {"x": randn(2, 3, 4, 4)}
    consts = {"s": randn(3), "b": randn(3), "m": randn(3), "v": np.abs(randn(3)) + 0.1}
    check(single("BatchNormalization", feeds, consts, epsilon=1e-3), feeds)


@pytest.mark.parametrize("axis,opset", [(-1, 17), (1, 17), (0, 17), (1, 11), (2, 11)])
def test_softmax(axis, opset):
    feeds = {"x": randn(2, 3, 4) * 5}
    out = check(single("Softmax", feeds, axis=axis, opset=opset), feeds,
                reference=opset >= 13)  # the reference applies opset-13 semantics to opset 11
    summed = out["y"].reshape(int(np.prod(feeds["x"].shape[:axis])), -1).sum(axis=1) \
        if opset < 13 else out["y"].sum(axis=axis)
    np.testing.assert_allclose(summed, 1, rtol=1e-6)


# ---------------------------------------------------------------- linear algebra
@pytest.mark.parametrize("attrs", [{}, dict(transA=1), dict(transB=1, alpha=0.5, beta=2.0),
                                   dict(transA=1, transB=1, beta=0.0)])
def test_gemm(attrs):
    a = randn(4, 3) if not attrs.get("transA") else randn(3, 4)
    b = randn(3, 5) if not attrs.get("transB") else randn(5, 3)
    check(single("Gemm", {"a": a}, {"b": b, "c": randn(5)}, **attrs), {"a": a})


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 3, 4), (4, 2)), ((4,), (2, 4, 3)),
                                    ((2, 1, 3, 4), (3, 4, 2))])
def test_matmul(shapes):
    feeds = {"a": randn(*shapes[0]), "b": randn(*shapes[1])}
    check(single("MatMul", feeds), feeds)


# ---------------------------------------------------------------- element-wise
UNARY = {
    "Relu": randn(3, 4), "Sigmoid": randn(3, 4) * 30, "Sqrt": np.abs(randn(3, 4)),
    "Exp": randn(3, 4), "Neg": randn(3, 4), "Abs": randn(3, 4),
    "Sign": np.array([-2.0, 0.0, 3.5], F32), "Reciprocal": randn(3, 4) + 5,
    "Floor": randn(3, 4) * 3, "Ceil": randn(3, 4) * 3, "Not": np.array([True, False]),
    "Identity": randn(2, 2),
}


@pytest.mark.parametrize("op", UNARY)
def test_unary(op):
    feeds = {"x": UNARY[op]}
    check(single(op, feeds), feeds)


def test_leaky_relu():
    feeds = {"x": randn(3, 5)}
    out = check(single("LeakyRelu", feeds, alpha=0.2), feeds)["y"]
    x = feeds["x"]
    np.testing.assert_allclose(out, np.where(x > 0, x, 0.2 * x), rtol=1e-6)


@pytest.mark.parametrize("bounds", ["both", "min", "max", "none"])
def test_clip(bounds):
    feeds = {"x": randn(4, 5)}
    low, high = np.array(-0.5, F32), np.array(0.7, F32)
    names = {"both": ["x", "lo", "hi"], "min": ["x", "lo"], "max": ["x", "", "hi"], "none": ["x"]}
    check(single("Clip", feeds, {"lo": low, "hi": high}, input_names=names[bounds]), feeds)


def test_clip_legacy_attributes():
    feeds = {"x": randn(4, 5)}
    out = check(single("Clip", feeds, opset=6, min=-0.3, max=0.2), feeds)["y"]
    assert out.min() >= -0.3 and out.max() <= 0.2


BINARY = {
    "Add": (randn(2, 3, 4), randn(3, 1)), "Sub": (randn(2, 3), randn(3)),
    "Mul": (randn(4, 1), randn(1, 5)), "Div": (randn(3, 4), randn(4) + 5),
    "Pow": (np.abs(randn(3, 4)) + 0.1, randn(3, 4)), "Greater": (randn(3, 4), randn(4)),
    "Less": (randn(3, 4), randn(3, 1)), "Equal": (np.array([1, 2, 3]), np.array([1, 0, 3])),
    "GreaterOrEqual": (np.array([1.0, 2.0, 3.0], F32), np.array([2.0, 2.0, 2.0], F32)),
    "LessOrEqual": (np.array([1.0, 2.0, 3.0], F32), np.array([2.0, 2.0, 2.0], F32)),
    "And": (np.array([True, True, False, False]), np.array([True, False, True, False])),
    "Or": (np.array([True, True, False, False]), np.array([True, False, True, False])),
    "Max": (randn(3, 4), randn(4)), "Min": (randn(3, 4), randn(3, 1)),
}
_BOOL_RESULT = {"Greater", "Less", "Equal", "GreaterOrEqual", "LessOrEqual", "And", "Or"}


@pytest.mark.parametrize("op", BINARY)
def test_binary(op):
    a, b = BINARY[op]
    feeds = {"a": np.asarray(a), "b": np.asarray(b)}
    check(single(op, feeds, out_dtype=BOOL if op in _BOOL_RESULT else None), feeds)


@pytest.mark.parametrize("exponent", [2.0, 1.0, -1.0, 0.5, -0.5, 0.75, -0.75, 1.3])
@pytest.mark.parametrize("dtype", [F32, F64])
def test_pow_scalar_exponents(exponent, dtype):
    feeds = {"a": np.abs(randn(3, 4, dtype=dtype)) + 0.05}
    check(single("Pow", feeds, {"e": np.array(exponent, dtype)}), feeds)


def test_pow_integer_exponent():
    feeds = {"a": randn(3, 4)}
    check(single("Pow", feeds, {"e": np.array(3, I64)}), feeds)


def test_integer_div_truncates_and_mod_signs():
    a, b = np.array([7, -7, 7, -7], I64), np.array([2, 2, -2, -2], I64)
    assert check(single("Div", {"a": a, "b": b}), {"a": a, "b": b})["y"].tolist() == [3, -3, -3, 3]
    assert check(single("Mod", {"a": a, "b": b}), {"a": a, "b": b})["y"].tolist() == [1, 1, -1, -1]
    fa, fb = randn(3, 4) * 5, randn(4) + 3
    check(single("Mod", {"a": fa, "b": fb}, fmod=1), {"a": fa, "b": fb})


@pytest.mark.parametrize("op", ["Sum", "Max", "Min"])
def test_variadic(op):
    feeds = {"a": randn(2, 3, 4), "b": randn(3, 1), "c": randn(4)}
    check(single(op, feeds), feeds)


def test_where():
    feeds = {"c": randn(3, 4) > 0, "a": randn(3, 4), "b": randn(4)}
    check(single("Where", feeds, out_dtype=F32), feeds)


@pytest.mark.parametrize("x", [randn(2, 3, 4) > 0, randn(5), np.zeros((2, 0, 3), F32)],
                         ids=["bool", "float", "empty"])
def test_non_zero(x):
    """Indices (rank, count) in row-major order: the axes a gradient finds at run time."""
    check(single("NonZero", {"x": x}, out_dtype=I64), {"x": x})


@pytest.mark.parametrize("zero_first", [False, True])
def test_where_with_zero_branch_keeps_non_finite_semantics(zero_first):
    """The multiply shortcut for a zero branch must not turn a masked-out inf into NaN."""
    a = randn(2, 3, 4)
    a[0, 0, :2] = [np.inf, -np.inf]
    condition = randn(2, 3, 4) > 0
    condition[0, 0, :2] = zero_first
    feeds = {"c": condition, "a": a}
    names = ["c", "z", "a"] if zero_first else ["c", "a", "z"]
    out = check(single("Where", feeds, {"z": np.zeros((1, 1, 1, 1), F32)}, out_dtype=F32,
                       input_names=names), feeds)["y"]
    assert out.shape == (1, 2, 3, 4)
    assert (out[0, 0, 0, :2] == 0).all()
    finite = {"c": condition, "a": np.nan_to_num(a, posinf=1.0, neginf=-1.0)}
    out = check(single("Where", finite, {"z": np.array(0, F32)}, out_dtype=F32,
                       input_names=names), finite)["y"]
    np.testing.assert_array_equal(out, np.where(condition != zero_first, finite["a"], 0))


@pytest.mark.parametrize("to,dtype", [(TensorProto.INT64, I64), (TensorProto.BOOL, BOOL),
                                      (TensorProto.DOUBLE, F64), (TensorProto.FLOAT, F32)])
def test_cast(to, dtype):
    feeds = {"x": np.array([-2.7, -0.5, 0.0, 0.4, 3.9], F32)}
    check(single("Cast", feeds, out_dtype=dtype, to=to), feeds)


def test_dropout_inference_with_mask():
    feeds = {"x": randn(3, 4)}
    out = check(single("Dropout", feeds, {"r": np.array(0.5, F32)}, outputs={"y": F32, "m": BOOL}),
                feeds)
    np.testing.assert_array_equal(out["y"], feeds["x"])
    assert out["m"].all()


# ---------------------------------------------------------------- shapes and movement
@pytest.mark.parametrize("shape", [[0, -1], [2, 0, 2, -1], [-1], [5, 0, 4]])
def test_reshape(shape):
    feeds = {"x": randn(5, 2, 4)}
    check(single("Reshape", feeds, {"s": np.array(shape, I64)}), feeds)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_flatten(axis):
    feeds = {"x": randn(2, 3, 4)}
    check(single("Flatten", feeds, axis=axis), feeds)


def test_transpose_squeeze_unsqueeze_concat():
    x = randn(2, 1, 3, 1)
    check(single("Transpose", {"x": x}, perm=[2, 0, 3, 1]), {"x": x})
    check(single("Transpose", {"x": x}), {"x": x})
    check(single("Squeeze", {"x": x}, {"a": np.array([-1], I64)}), {"x": x})
    check(single("Squeeze", {"x": x}), {"x": x})
    check(single("Squeeze", {"x": x}, opset=11, axes=[1]), {"x": x})
    check(single("Unsqueeze", {"x": x}, {"a": np.array([0, -1], I64)}), {"x": x})
    check(single("Unsqueeze", {"x": x}, opset=11, axes=[2]), {"x": x})
    feeds = {"a": randn(2, 3), "b": randn(2, 1), "c": randn(2, 2)}
    check(single("Concat", feeds, axis=-1), feeds)


@pytest.mark.parametrize("sizes", [None, [1, 4, 2]])
def test_split(sizes):
    feeds = {"x": randn(3, 7)} if sizes else {"x": randn(3, 6)}
    consts = {"s": np.array(sizes, I64)} if sizes else {}
    outputs = {"p": F32, "q": F32, "r": F32}
    check(single("Split", feeds, consts, outputs=outputs, axis=1), feeds)


@pytest.mark.parametrize("starts,ends,axes,steps", [
    ([1, 0], [3, 10], [0, 1], [1, 2]), ([-1], [-100], [1], [-1]), ([2], [2 ** 62], [-1], [1]),
    ([0, 1], [1, -1], None, None)])
def test_slice(starts, ends, axes, steps):
    feeds = {"x": randn(4, 6)}
    consts = {"s": np.array(starts, I64), "e": np.array(ends, I64)}
    if axes is not None:
        consts["a"] = np.array(axes, I64)
        if steps is not None:
            consts["t"] = np.array(steps, I64)
    check(single("Slice", feeds, consts), feeds)


def test_expand_tile():
    feeds = {"x": randn(3, 1)}
    check(single("Expand", feeds, {"s": np.array([2, 1, 4], I64)}), feeds)
    check(single("Tile", feeds, {"r": np.array([2, 3], I64)}), feeds)


@pytest.mark.parametrize("mode,pads", [("constant", [1, 0, 2, 3]), ("constant", [-1, 1, 0, -2]),
                                       ("reflect", [1, 2, 1, 0]), ("edge", [0, 2, 1, 1])])
def test_pad(mode, pads):
    feeds = {"x": randn(3, 4)}
    consts = {"p": np.array(pads, I64), "v": np.array(1.5, F32)}
    names = ["x", "p", "v"] if mode == "constant" else ["x", "p"]
    # ReferenceEvaluator rejects negative pads (crops), which ONNX allows and ORT applies.
    out = check(single("Pad", feeds, consts, mode=mode, input_names=names), feeds,
                reference=min(pads) >= 0)["y"]
    if pads == [-1, 1, 0, -2]:  # drop row 0 and the last 2 columns, add a column in front
        x = feeds["x"]
        np.testing.assert_array_equal(out, np.hstack([np.full((2, 1), 1.5, F32), x[1:, :2]]))


def test_shape_size_constant_of_shape_range():
    x = randn(2, 3, 4)
    check(single("Shape", {"x": x}, out_dtype=I64), {"x": x})
    check(single("Shape", {"x": x}, out_dtype=I64, start=1, end=-1), {"x": x})
    check(single("Size", {"x": x}, out_dtype=I64), {"x": x})
    s = np.array([2, 3], I64)
    check(single("ConstantOfShape", {"s": s}, out_dtype=F32), {"s": s})
    check(single("ConstantOfShape", {"s": s}, out_dtype=I64,
                 value=numpy_helper.from_array(np.array([7], I64))), {"s": s})
    r = {"a": np.array(1.0, F32), "b": np.array(3.2, F32), "c": np.array(0.5, F32)}
    check(single("Range", r), r)
    r = {"a": np.array(10, I64), "b": np.array(1, I64), "c": np.array(-3, I64)}
    check(single("Range", r), r)


def test_constant_node_variants():
    feeds = {"x": randn(3)}
    for attrs, dtype in ((dict(value=numpy_helper.from_array(randn(3))), F32),
                         (dict(value_float=2.5), F32), (dict(value_ints=[1, 2, 3]), I64)):
        const = helper.make_node("Constant", [], ["k"], **attrs)
        cast = helper.make_node("Cast", ["k"], ["kc"], to=TensorProto.FLOAT)
        add = helper.make_node("Add", ["x", "kc"], ["y"])
        check(make_model([const, cast, add], feeds, {"y": F32, "k": dtype}), feeds)


# ---------------------------------------------------------------- gather / scatter / reduce
def test_gather_and_gather_elements():
    x = randn(4, 5)
    check(single("Gather", {"x": x}, {"i": np.array([[0, -1], [2, 2]], I64)}, axis=1), {"x": x})
    check(single("Gather", {"x": x}, {"i": np.array([3, 0], I64)}), {"x": x})
    idx = RNG.integers(-4, 4, size=(3, 5))
    check(single("GatherElements", {"x": x}, {"i": idx}, axis=0), {"x": x})


@pytest.mark.parametrize("reduction", ["add", "mul", "none"])
def test_scatter_elements_duplicates(reduction):
    data = randn(3, 5)
    if reduction == "none":  # duplicates are undefined without a reduction
        idx = np.array([[0, 1, 2, 3, 4], [4, 3, 2, 1, 0]], I64)
    else:
        idx = np.array([[0, 0, 4, -1, 2], [0, 4, 4, 4, 1]], I64)
    feeds = {"d": data, "u": randn(2, 5)}
    out = check(single("ScatterElements", feeds, {"i": idx}, input_names=["d", "i", "u"],
                       axis=1, reduction=reduction), feeds)["y"]
    if reduction == "add":
        expected = data.astype(F64)
        for r in range(2):
            for c in range(5):
                expected[r, idx[r, c] % 5] += feeds["u"][r, c]
        np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_max_pool_gradient_by_scatter_add():
    """The gradient recipe of caffe-facts §5.4: overlapping windows must accumulate."""
    x = randn(2, 3, 7, 7)
    flat = helper.make_node("Flatten", ["i"], ["fi"], axis=0)
    flat_dy = helper.make_node("Flatten", ["dy"], ["fdy"], axis=0)
    nodes = [helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[3, 3], strides=[2, 2]),
             flat, flat_dy,
             helper.make_node("Reshape", ["fi", "m1"], ["ri"]),
             helper.make_node("Reshape", ["fdy", "m1"], ["rdy"]),
             helper.make_node("ConstantOfShape", ["n"], ["z"],
                              value=numpy_helper.from_array(np.zeros(1, F32))),
             helper.make_node("ScatterElements", ["z", "ri", "rdy"], ["g"], axis=0,
                              reduction="add"),
             helper.make_node("Reshape", ["g", "xs"], ["dx"])]
    dy = np.ones((2, 3, 3, 3), F32)
    consts = {"m1": np.array([-1], I64), "n": np.array([x.size], I64),
              "xs": np.array(x.shape, I64)}
    out = check(make_model(nodes, {"x": x, "dy": dy}, {"dx": F32}, consts), {"x": x, "dy": dy})
    assert out["dx"].sum() == dy.sum()
    assert out["dx"].max() >= 1


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin"])
@pytest.mark.parametrize("axes,keepdims", [([1], 1), ([0, -1], 0), (None, 1), (None, 0)])
def test_reductions(op, axes, keepdims):
    feeds = {"x": randn(3, 4, 5)}
    if op == "ReduceSum":
        consts = {"a": np.array(axes, I64)} if axes is not None else {}
        model = single(op, feeds, consts, keepdims=keepdims)
    else:  # opset 17: axes is an attribute
        model = single(op, feeds, keepdims=keepdims, **({"axes": axes} if axes else {}))
    check(model, feeds)


def test_reduce_sum_noop_with_empty_axes_and_big_sum():
    feeds = {"x": randn(2, 3)}
    out = check(single("ReduceSum", feeds, noop_with_empty_axes=1), feeds)["y"]
    np.testing.assert_array_equal(out, feeds["x"])
    big = {"x": randn(64, 300, 40)}
    check(single("ReduceSum", big, {"a": np.array([1, 2], I64)}), big, rtol=1e-4)


@pytest.mark.parametrize("attrs", [dict(axis=1), dict(axis=0, keepdims=0),
                                   dict(axis=-1, select_last_index=1)])
def test_argmax(attrs):
    x = RNG.integers(0, 3, size=(3, 5)).astype(F32)  # many ties
    check(single("ArgMax", {"x": x}, out_dtype=I64, **attrs), {"x": x})


# ---------------------------------------------------------------- executor behaviour
def _branchy_model():
    """x -> Relu -> 'a'; x -> impossible Reshape -> 'bad'; 'a' -> Neg -> 'b'."""
    x = randn(2, 3)
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu"),
             helper.make_node("Neg", ["a"], ["b"], name="neg"),
             helper.make_node("Reshape", ["x", "shape"], ["bad"], name="impossible")]
    consts = {"shape": np.array([7, 5], I64)}
    return make_model(nodes, {"x": x}, {"a": F32, "b": F32, "bad": F32}, consts), x


def test_only_needed_nodes_run():
    model, x = _branchy_model()
    executor = NumpyExecutor(model)
    assert executor.input_names == ["x"]
    assert executor.output_names == ["a", "b", "bad"]
    out = executor.run({"x": x}, ["b"])
    assert list(out) == ["b"]
    np.testing.assert_array_equal(out["b"], -np.maximum(x, 0))
    with pytest.raises(RuntimeError, match="impossible"):
        executor.run({"x": x}, ["bad"])


def test_unsorted_nodes_and_outputs_are_private_copies():
    model, x = _branchy_model()
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(reversed(nodes))
    executor = make_executor(model, "numpy")
    first = executor.run({"x": x}, ["a", "b"])
    first["a"][...] = 99
    again = executor.run({"x": x}, ["b"])
    np.testing.assert_array_equal(again["b"], -np.maximum(x, 0))


def test_identity_of_constant_output_is_writable_copy():
    model = make_model([helper.make_node("Identity", ["k"], ["y"])], {}, {"y": F32},
                       {"k": np.ones(3, F32)})
    executor = NumpyExecutor(model)
    out = executor.run({})
    out["y"][0] = 5
    assert executor.run({})["y"].tolist() == [1, 1, 1]


def test_feed_errors():
    model, x = _branchy_model()
    executor = NumpyExecutor(model)
    with pytest.raises(ValueError, match="missing feed for graph input 'x'"):
        executor.run({}, ["a"])
    with pytest.raises(ValueError, match="unknown output"):
        executor.run({"x": x}, ["nope"])


def test_unsupported_op_named_at_construction():
    x = randn(2)
    model = make_model([helper.make_node("Hardmax", ["x"], ["y"], name="my/hardmax")],
                       {"x": x}, {"y": F32})
    with pytest.raises(UnsupportedError, match=r"'Hardmax'.*'my/hardmax'"):
        NumpyExecutor(model)


def test_unsupported_attribute_named_at_construction():
    x = randn(2, 2)
    model = single("Pad", {"x": x}, {"p": np.zeros(4, I64)}, mode="bogus")
    with pytest.raises(UnsupportedError, match="node/Pad.*'bogus'"):
        NumpyExecutor(model)


def test_constant_subgraph_folded():
    """Shape arithmetic on constants is evaluated once at construction."""
    x = randn(2, 6)
    nodes = [helper.make_node("Shape", ["k"], ["ks"]),
             helper.make_node("Concat", ["neg1", "ks"], ["target"], axis=0),
             helper.make_node("Reshape", ["x", "target"], ["y"])]
    model = make_model(nodes, {"x": x}, {"y": F32}, {"k": np.zeros(3, F32),
                                                      "neg1": np.array([-1], I64)})
    executor = NumpyExecutor(model)
    assert [s.op_type for s in executor._steps] == ["Reshape"]
    check(model, {"x": x})


def test_intermediates_freed_after_last_use():
    """A chain of ten 4 MB ops must not hold ten 4 MB tensors at once."""
    x = randn(1 << 20)
    names = ["x"] + [f"t{i}" for i in range(10)]
    nodes = [helper.make_node("Neg", [a], [b]) for a, b in zip(names, names[1:])]
    executor = NumpyExecutor(make_model(nodes, {"x": x}, {"t9": F32}))
    tracemalloc.start()
    try:
        executor.run({"x": x})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * x.nbytes


def test_path_with_external_data(tmp_path):
    x = randn(1, 2, 5, 5)
    model = single("Conv", {"x": x}, {"w": randn(3, 2, 3, 3)})
    expected = NumpyExecutor(model).run({"x": x})["y"]
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    assert (tmp_path / "weights.bin").is_file()
    np.testing.assert_array_equal(NumpyExecutor(path).run({"x": x})["y"], expected)


def test_runs_without_onnxruntime(tmp_path):
    model, _ = _branchy_model()
    onnx.save(model, str(tmp_path / "m.onnx"))
    script = textwrap.dedent("""
        import sys
        sys.modules["onnxruntime"] = None  # any import of it now raises ImportError
        import numpy as np
        from deepvis.exec import make_executor, ort_available
        assert not ort_available()
        out = make_executor(sys.argv[1], "numpy").run({"x": np.ones((2, 3), np.float32)}, ["b"])
        assert (out["b"] == -1).all()
        assert "onnxruntime" not in [m for m, v in sys.modules.items() if v is not None]
        print("ok")
    """)
    from tests.conftest import REPO
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "m.onnx")],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
