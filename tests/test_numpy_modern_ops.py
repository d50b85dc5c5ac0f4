"""NumPy kernels of the ops modern exports add (smooth activations, PRelu, the sample
normalizations, ReduceMean's opset-18 form, Resize) against onnx's ReferenceEvaluator and
onnxruntime, plus hand-written formulas where the definition is the point."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erf

from deepvis.errors import UnsupportedError
from deepvis.exec.numpy_exec import NumpyExecutor

from .test_numpy_exec import F32, F64, I64, check, randn, single

WIDE = randn(4, 5, 6) * 4  # reaches both tails and every kink at +-3 and +-2.5

SMOOTH = {
    "Tanh": ({}, np.tanh),
    "Erf": ({}, erf),
    "Softplus": ({}, lambda x: np.log1p(np.exp(x))),
    "Softsign": ({}, lambda x: x / (1 + np.abs(x))),
    "Elu": ({"alpha": 0.7}, lambda x: np.where(x > 0, x, 0.7 * (np.exp(x) - 1))),
    "Selu": ({}, lambda x: 1.0507009873554805 * np.where(
        x > 0, x, 1.6732632423543772 * (np.exp(x) - 1))),
    "HardSigmoid": ({"alpha": 1 / 6, "beta": 0.5}, lambda x: np.clip(x / 6 + 0.5, 0, 1)),
    "HardSwish": ({}, lambda x: x * np.clip(x / 6 + 0.5, 0, 1)),
}


@pytest.mark.parametrize("op", SMOOTH)
@pytest.mark.parametrize("dtype", [F32, F64])
def test_smooth_activations(op, dtype):
    attrs, formula = SMOOTH[op]
    feeds = {"x": WIDE.astype(dtype)}
    reference = op not in ("Erf",) or dtype == F32  # onnx's Erf rounds through float32
    out = check(single(op, feeds, **attrs), feeds, reference=reference,
                ort=dtype == F32)["y"]
    np.testing.assert_allclose(out, formula(WIDE.astype(F64)), rtol=2e-6, atol=2e-6)


def test_softplus_and_elu_tails_stay_finite():
    feeds = {"x": np.array([-1000.0, -80.0, 0.0, 80.0, 1000.0], F32)}
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        softplus = NumpyExecutor(single("Softplus", feeds)).run(feeds)["y"]
        elu = NumpyExecutor(single("Elu", feeds)).run(feeds)["y"]
    np.testing.assert_allclose(softplus, [0.0, np.exp(-80.0), np.log(2.0), 80.0, 1000.0], rtol=1e-6)
    np.testing.assert_allclose(elu, [-1.0, -1.0, 0.0, 80.0, 1000.0], rtol=1e-6)


@pytest.mark.parametrize("slope_shape", [(1,), (5, 1, 1), (6,)])
def test_prelu(slope_shape):
    feeds = {"x": randn(2, 5, 3, 6)}
    slope = randn(*slope_shape)
    out = check(single("PRelu", feeds, {"s": slope}), feeds)["y"]
    np.testing.assert_allclose(out, np.where(feeds["x"] < 0, feeds["x"] * slope, feeds["x"]))


@pytest.mark.parametrize("axis", [-1, 2, 1])
def test_layer_normalization_with_statistics(axis):
    x = randn(2, 3, 4, 5) * 3 + 10  # a large mean: the variance must not cancel
    trailing = x.shape[axis:] if axis >= 0 else x.shape[axis:]
    feeds = {"x": x}
    consts = {"s": randn(*trailing), "b": randn(*trailing)}
    outputs = {"y": F32, "mean": F32, "inv_std": F32}
    out = check(single("LayerNormalization", feeds, consts, outputs=outputs, axis=axis,
                       epsilon=1e-3), feeds, rtol=2e-5)
    axes = tuple(range(axis % 4, 4))
    x64 = x.astype(F64)
    mean, var = x64.mean(axis=axes, keepdims=True), x64.var(axis=axes, keepdims=True)
    np.testing.assert_allclose(out["mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(out["inv_std"], 1 / np.sqrt(var + 1e-3), rtol=1e-5)


def test_layer_normalization_without_bias():
    feeds = {"x": randn(3, 7)}
    check(single("LayerNormalization", feeds, {"s": randn(7)}), feeds)


def test_instance_normalization():
    feeds = {"x": randn(2, 3, 5, 4) * 2 + 1}
    check(single("InstanceNormalization", feeds, {"s": randn(3), "b": randn(3)}, epsilon=1e-4),
          feeds)


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_group_normalization_per_channel(groups):
    x = randn(2, 4, 3, 5) * 2 + 1
    scale, bias = randn(4), randn(4)
    feeds = {"x": x}
    out = check(single("GroupNormalization", feeds, {"s": scale, "b": bias}, opset=21,
                       num_groups=groups, epsilon=1e-4), feeds)["y"]
    view = x.astype(F64).reshape(2, groups, -1)
    normed = ((view - view.mean(axis=2, keepdims=True))
              / np.sqrt(view.var(axis=2, keepdims=True) + 1e-4)).reshape(x.shape)
    np.testing.assert_allclose(out, normed * scale.reshape(-1, 1, 1) + bias.reshape(-1, 1, 1),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("axes,keepdims", [([2, 3], 1), ([-1], 0), (None, 1)])
def test_reduce_mean_axes_as_input_opset18(axes, keepdims):
    feeds = {"x": randn(2, 3, 4, 5)}
    consts = {"a": np.array(axes, I64)} if axes is not None else {}
    check(single("ReduceMean", feeds, consts, opset=18, keepdims=keepdims), feeds)


def _resize(feeds, scales=None, sizes=None, opset=17, **attrs):
    consts, names = {}, ["x", ""]
    if scales is not None:
        consts["scales"] = np.array(scales, F32)
        names.append("scales")
    if sizes is not None:
        consts["sizes"] = np.array(sizes, I64)
        names += [""] * (3 - len(names)) + ["sizes"]
    return single("Resize", feeds, consts, opset=opset, input_names=names, **attrs)


RESIZE = {
    "nearest-2x": dict(scales=[1, 1, 2, 2]),
    "nearest-ceil-asymmetric": dict(scales=[1, 1, 1.5, 2.5], nearest_mode="ceil",
                                    coordinate_transformation_mode="asymmetric"),
    "nearest-floor-down": dict(scales=[1, 1, 0.5, 0.75], nearest_mode="floor"),
    "nearest-prefer-ceil-sizes": dict(sizes=[2, 3, 9, 4], nearest_mode="round_prefer_ceil"),
    "linear-half-pixel": dict(scales=[1, 1, 2, 1.5], mode="linear"),
    "linear-pytorch-half-pixel-to-1": dict(sizes=[2, 3, 1, 7], mode="linear",
                                           coordinate_transformation_mode="pytorch_half_pixel"),
    "linear-align-corners": dict(sizes=[2, 3, 11, 3], mode="linear",
                                 coordinate_transformation_mode="align_corners"),
    "linear-down": dict(scales=[1, 1, 0.5, 0.6], mode="linear"),
    "cubic": dict(scales=[1, 1, 2, 1.5], mode="cubic"),
    "cubic-exclude-outside": dict(scales=[1, 1, 1.7, 2], mode="cubic", exclude_outside=1,
                                  cubic_coeff_a=-0.5),
    "linear-axes-opset18": dict(sizes=[8, 9], axes=[2, 3], mode="linear", opset=18),
}


@pytest.mark.parametrize("case", RESIZE)
def test_resize(case):
    feeds = {"x": randn(2, 3, 5, 6)}
    check(_resize(feeds, **RESIZE[case]), feeds)


def test_resize_nearest_copies_exact_values():
    x = randn(1, 2, 3, 3)
    out = NumpyExecutor(_resize({"x": x}, scales=[1, 1, 2, 2])).run({"x": x})["y"]
    np.testing.assert_array_equal(out, x.repeat(2, axis=2).repeat(2, axis=3))


def test_resize_refuses_what_it_does_not_model():
    feeds = {"x": randn(1, 1, 4, 4)}
    with pytest.raises(UnsupportedError, match="tf_crop_and_resize"):
        NumpyExecutor(_resize(feeds, scales=[1, 1, 2, 2],
                              coordinate_transformation_mode="tf_crop_and_resize"))
    model = _resize(feeds, scales=[1, 1, 0.5, 0.5], mode="linear", antialias=1, opset=18)
    with pytest.raises(Exception, match="antialias"):
        NumpyExecutor(model).run(feeds)
