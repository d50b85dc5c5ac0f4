"""The whole optimizer loop against a slow, literal NumPy transcription of the original's.

The network is a tiny conv -> ReLU -> fc graph whose forward pass and gradient the test
computes itself in NumPy; its preprocessing has a channel swap, a per-channel mean and a
scale, so the pixel-space mapping (network input = xx * scale, gradient * scale) is
exercised too.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

import deepvis
from deepvis.graph import meta
from deepvis.graph.builder import GraphBuilder
from deepvis.optimize import results as R
from deepvis.optimize.loop import optimize
from deepvis.optimize.params import FindParams
from deepvis.optimize.space import pixel_space

C, H, W, K, UNITS = 3, 6, 6, 4, 5
MEAN = np.array([100.0, 120.0, 90.0])
SCALE = 0.02
DEAD_UNIT = 4


def weights():
    rng = np.random.RandomState(0)
    w1 = rng.normal(0, 0.5, (K, C, 3, 3)).astype(np.float32)
    b1 = rng.normal(0, 0.1, K).astype(np.float32)
    w2 = rng.normal(0, 0.2, (UNITS, K * H * W)).astype(np.float32)
    w2[DEAD_UNIT] = 0                      # its gradient is exactly zero
    b2 = rng.normal(0, 0.1, UNITS).astype(np.float32)
    return w1, b1, w2, b2


def build_tiny(path):
    w1, b1, w2, b2 = weights()
    g = GraphBuilder("tiny")
    g.input("data", ["N", C, H, W])
    pre = g.node("Conv", ["data", g.initializer(w1, "w1"), g.initializer(b1, "b1")],
                 ["conv/pre"], pads=[1, 1, 1, 1])
    conv = g.node("Relu", [pre], ["conv"])
    flat = g.node("Flatten", [conv], axis=1)
    g.node("Gemm", [flat, g.initializer(w2, "w2"), g.initializer(b2, "b2")], ["fc"], transB=1)
    g.output("conv")
    g.output("fc")
    preprocess = {"channel_swap": [2, 1, 0], "mean": MEAN.tolist(), "scale": SCALE,
                  "input_size": [H, W]}
    model = g.build(meta.encode(blobs=["data", "conv", "fc"], seeds={"conv": "conv/pre"},
                                preprocess=preprocess))
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture(scope="module", params=["ort", "numpy"])
def tiny(request, tmp_path_factory):
    path = build_tiny(tmp_path_factory.mktemp("tiny") / "tiny.onnx")
    return deepvis.load_model(str(path), backend=request.param, speed_over_memory=True)


def numpy_net(x, unit):
    """fc activations and d fc[unit] / d input for one (C, H, W) input, by hand, float64."""
    w1, b1, w2, b2 = (np.asarray(a, np.float64) for a in weights())
    xp = np.pad(np.asarray(x, np.float64), ((0, 0), (1, 1), (1, 1)))
    pre = np.zeros((K, H, W)) + b1[:, None, None]
    for a in range(3):
        for b in range(3):
            pre += np.einsum("oc,chw->ohw", w1[:, :, a, b], xp[:, a:a + H, b:b + W])
    acts = w2 @ np.maximum(pre, 0).ravel() + b2
    dpre = w2[unit].reshape(K, H, W) * (pre > 0)
    dxp = np.zeros_like(xp)
    for a in range(3):
        for b in range(3):
            dxp[:, a:a + H, b:b + W] += np.einsum("oc,ohw->chw", w1[:, :, a, b], dpre)
    return acts, dxp[:, 1:-1, 1:-1]


def reference_run(p: FindParams):
    """The original GradientOptimizer loop, step by step, in plain NumPy."""
    mean = np.broadcast_to(MEAN[:, None, None], (C, H, W))
    np.random.seed(p.rand_seed)
    if p.start_at == "mean_plus_rand":
        x0 = np.random.normal(0, 10, (C, H, W))
    elif p.start_at == "randu":
        x0 = np.random.uniform(0, 255, (C, H, W)) - mean
    else:
        x0 = np.zeros((C, H, W))
    xx = x0.copy()
    rec = {"obj": [], "idxmax": [], "norm": [], "dist": [], "std": []}
    best_obj = best_ii = majority_ii = meta_result = None
    for ii in range(p.max_iter):
        xx = np.minimum(255.0, np.maximum(0.0, xx + mean)) - mean
        acts, grad_in = numpy_net((xx * SCALE).astype(np.float32), p.push_channel)
        obj = acts[p.push_channel]
        idx = int(np.argmax(acts))
        rec["obj"].append(obj)
        rec["idxmax"].append((idx, 0, 0))
        rec["norm"].append(np.sqrt((xx ** 2).sum()))
        rec["dist"].append(np.sqrt(((xx - x0) ** 2).sum()))
        rec["std"].append(xx.std())
        if idx == p.push_channel and majority_ii is None:
            majority_ii = ii
        if best_obj is None or obj > best_obj:
            best_obj, best_ii, best_xx = obj, ii, xx.copy()
        grad = grad_in * SCALE
        if np.sqrt((grad ** 2).sum()) == 0:
            meta_result = "Metaresult: grad 0 failure"
            break
        if p.lr_policy == "constant":
            lr = p.lr_params["lr"]
        else:
            desired = p.lr_params.get("desired_prog")
            if p.lr_policy == "progress01":
                desired = min(p.lr_params["early_prog"], p.lr_params["late_prog_mult"] * (1 - obj))
            lr = min(p.lr_params["max_lr"], desired / (grad ** 2).sum())
        if ii < p.max_iter - 1:
            xx = xx + lr * grad
            xx = xx * (1 - p.decay)
            if p.blur_every != 0 and p.blur_radius > 0 and ii % p.blur_every == 0:
                for c in range(3):
                    xx[c] = gaussian_filter(xx[c], p.blur_radius)
            if p.small_val_percentile > 0:
                small = np.abs(xx) < np.percentile(np.abs(xx), p.small_val_percentile)
                xx = xx - xx * small
            if p.small_norm_percentile > 0:
                norms = np.sqrt((xx ** 2).sum(0))
                xx = xx - xx * (norms < np.percentile(norms, p.small_norm_percentile))
            if p.px_benefit_percentile > 0:
                ben = (grad * -xx).sum(0)
                xx = xx - xx * (ben < np.percentile(ben, p.px_benefit_percentile))
            if p.px_abs_benefit_percentile > 0:
                ben = np.abs((grad * -xx).sum(0))
                xx = xx - xx * (ben < np.percentile(ben, p.px_abs_benefit_percentile))
    if meta_result is None:
        meta_result = ("Metaresult: majority success" if majority_ii is not None
                       else "Metaresult: majority failure")
    return rec, best_ii, best_xx, majority_ii, meta_result, xx


CASES = [
    dict(push_channel=1, decay=0.05, blur_radius=0.6, blur_every=3, small_norm_percentile=30,
         lr_policy="progress", lr_params={"max_lr": 5000.0, "desired_prog": 0.5}, max_iter=14),
    dict(push_channel=2, start_at="randu", rand_seed=3, small_val_percentile=15,
         px_benefit_percentile=20, px_abs_benefit_percentile=25, decay=0.0,
         lr_params={"lr": 300.0}, max_iter=12),
    dict(push_channel=0, start_at="mean", decay=0.01, blur_radius=1.0, blur_every=2,
         lr_policy="progress01", lr_params={"max_lr": 3000.0, "early_prog": 0.3,
                                            "late_prog_mult": 0.5}, max_iter=10),
]


@pytest.mark.parametrize("case", CASES, ids=["progress-norm", "randu-benefit", "progress01"])
def test_loop_matches_literal_numpy_loop(tiny, case):
    p = FindParams(push_layer="fc", **case)
    space = pixel_space(tiny.preprocessing, (C, H, W))
    got = optimize(tiny, [p], space, progress=False)[0]
    rec, best_ii, best_xx, majority_ii, meta_result, last_xx = reference_run(p)
    assert got.ii == list(range(p.max_iter))
    assert got.idxmax == rec["idxmax"]
    for key in ("obj", "norm", "dist", "std"):
        np.testing.assert_allclose(getattr(got, key), rec[key], rtol=2e-4, atol=1e-4,
                                   err_msg=key)
    assert got.best_ii == best_ii and getattr(got, "majority_ii", None) == majority_ii
    assert got.meta_result == meta_result
    np.testing.assert_allclose(got.best_xx, best_xx, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(got.last_xx, last_xx, rtol=1e-3, atol=1e-3)
    # the last iteration only evaluates: last_xx is the clipped image it saw
    assert ((got.last_xx + space.mean >= 0) & (got.last_xx + space.mean <= 255)).all()


def test_batch_equals_single_runs_and_failures_stay_local(tiny):
    space = pixel_space(tiny.preprocessing, (C, H, W))
    base = dict(push_layer="fc", decay=0.02, blur_radius=0.5, blur_every=2,
                small_norm_percentile=10, lr_params={"lr": 200.0})
    params = [FindParams(push_channel=u, rand_seed=s, max_iter=m, **base)
              for u, s, m in ((0, 0, 9), (DEAD_UNIT, 1, 9), (2, 2, 5), (1, 3, 9))]
    batch = optimize(tiny, params, space, progress=False)
    for p, got in zip(params, batch):
        alone = optimize(tiny, [p], space, progress=False)[0]
        assert got.ii == alone.ii and got.meta_result == alone.meta_result
        if tiny.backend == "ort":  # onnxruntime graphs give an image the same bits at any batch
            assert got.obj == alone.obj
            np.testing.assert_array_equal(got.last_xx, alone.last_xx)
        else:  # BLAS picks its kernels by matrix size: equal to rounding only
            np.testing.assert_allclose(got.obj, alone.obj, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(got.last_xx, alone.last_xx, rtol=1e-4, atol=1e-3)
    dead = batch[1]
    assert dead.meta_result == R.GRAD_ZERO and dead.ii == [0]
    assert len(batch[2].ii) == 5 and len(batch[0].ii) == 9


class Faulty:
    """The tiny model, but unit 3's objective turns NaN and unit 2's gradient infinite
    from the third call on (a model that overflows for some images)."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def forward_backward(self, x, blob, seed, mode, blobs=()):
        grad, values = self.model.forward_backward(x, blob, seed, mode, blobs)
        self.calls += 1
        if self.calls >= 3:
            values = {blob: values[blob].copy()}
            values[blob][seed[:, 3] != 0, 3] = np.nan
            grad = grad.copy()
            grad[seed[:, 2] != 0] = np.inf
        return grad, values


def test_non_finite_objective_or_gradient_stops_only_that_unit(tiny):
    space = pixel_space(tiny.preprocessing, (C, H, W))
    params = [FindParams(push_layer="fc", push_channel=u, lr_params={"lr": 100.0}, max_iter=6)
              for u in (3, 0, 2)]
    nan_obj, good, inf_grad = optimize(Faulty(tiny), params, space, progress=False)
    assert nan_obj.meta_result == R.NONFINITE_OBJECTIVE and nan_obj.ii == [0, 1]
    assert inf_grad.meta_result == R.NONFINITE_GRADIENT and inf_grad.ii == [0, 1, 2]
    assert good.ii == list(range(6)) and np.isfinite(good.obj).all()
    assert good.meta_result in (R.MAJORITY_SUCCESS, R.MAJORITY_FAILURE)
    alone = optimize(tiny, params[1:2], space, progress=False)[0].obj
    if tiny.backend == "ort":
        assert good.obj == alone
    else:
        np.testing.assert_allclose(good.obj, alone, rtol=1e-5, atol=1e-6)
