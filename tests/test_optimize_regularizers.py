"""Each regularizer and learning-rate policy pinned to its definition on small arrays."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from deepvis.optimize import regularizers as R
from deepvis.optimize.lr import learning_rate
from deepvis.optimize.params import FindParams


def test_clip_keeps_pixels_in_0_255():
    mean = np.array([[[100.0]], [[10.0]]])          # (2, 1, 1)
    xx = np.array([[[200.0, -150.0, 5.0]], [[-20.0, 300.0, 0.0]]])
    got = R.clip_to_pixels(xx, mean)
    # pixel = xx + mean, clipped to [0, 255], minus mean again
    assert got.tolist() == [[[155.0, -100.0, 5.0]], [[-10.0, 245.0, 0.0]]]


def test_decay_shrinks_towards_zero_the_mean_image():
    xx = np.array([[[10.0, -4.0]]])
    assert R.decay(xx, 0.25).tolist() == [[[7.5, -3.0]]]
    assert R.decay(xx, 0).tolist() == xx.tolist()


@pytest.mark.parametrize("every, radius, expected", [
    (4, 1.0, [0, 4, 8]),          # iteration 0 blurs (the recorded std drop proves it)
    (3, 0.5, [0, 3, 6, 9]),
    (1, 0.3, list(range(10))),
    (0, 1.0, []),                 # blur_every 0: never
    (4, 0.0, []),                 # radius 0: never
])
def test_which_iterations_blur(every, radius, expected):
    assert [ii for ii in range(10) if R.blurs_at(ii, every, radius)] == expected


def test_blur_is_per_channel_gaussian_with_scipy_defaults():
    rng = np.random.RandomState(0)
    xx = rng.normal(0, 10, (3, 9, 11))
    got = R.blur(xx, 1.0)
    for c in range(3):
        np.testing.assert_array_equal(got[c], gaussian_filter(xx[c], 1.0))
    # a lone spike spreads with the reflect border: the kernel mass stays in the image
    spike = np.zeros((1, 9, 9))
    spike[0, 4, 4] = 1.0
    assert abs(R.blur(spike, 1.0).sum() - 1.0) < 1e-12
    # white noise of std 10 drops to about 2.8 (the recorded 9.97 -> 2.84 at iteration 1)
    noise = np.random.RandomState(0).normal(0, 10, (3, 227, 227))
    assert 2.7 < R.blur(noise, 1.0).std() < 2.95


def test_small_values_zeroed_strictly_below_percentile():
    xx = np.array([[[1.0, -2.0, 3.0, -4.0, 5.0]]])
    # percentile 50 of |xx| = 3 (linear interpolation); entries with |x| < 3 -> 0
    assert R.zero_small_values(xx, 50).tolist() == [[[0.0, 0.0, 3.0, -4.0, 5.0]]]
    # percentile 30 of [1..5] = 2.2 -> only 1 and -2 are below
    assert R.zero_small_values(xx, 30).tolist() == [[[0.0, 0.0, 3.0, -4.0, 5.0]]]
    # percentile 10 = 1.4 -> only 1
    assert R.zero_small_values(xx, 10).tolist() == [[[0.0, -2.0, 3.0, -4.0, 5.0]]]


def test_small_norm_zeroes_whole_pixels():
    # 2 channels, 1x4 pixels; pixel norms 5, 1, 13, 0
    xx = np.array([[[3.0, 1.0, 5.0, 0.0]], [[4.0, 0.0, 12.0, 0.0]]])
    assert R.pixel_norms(xx).tolist() == [[5.0, 1.0, 13.0, 0.0]]
    # percentile 50 of [0, 1, 5, 13] = 3 -> pixels with norm 1 and 0 are zeroed, both channels
    got = R.zero_small_norms(xx, 50)
    assert got.tolist() == [[[3.0, 0.0, 5.0, 0.0]], [[4.0, 0.0, 12.0, 0.0]]]
    # percentile 75 = 7 -> pixel 0 (norm 5) goes too
    assert R.zero_small_norms(xx, 75)[:, 0, 0].tolist() == [0.0, 0.0]


def test_contribution_sign_and_channel_sum():
    xx = np.array([[[2.0, -1.0, 3.0]], [[1.0, 1.0, -2.0]]])
    grad = np.array([[[1.0, 1.0, 1.0]], [[-1.0, 2.0, 1.0]]])
    # sum_c grad * (-xx): pixel 0: -(2) + (1) = -1; pixel 1: 1 - 2 = -1; pixel 2: -3 + 2 = -1
    # -> zeroing any of these pixels would change the objective by -1 (linearly)
    assert R.contribution(xx, grad).tolist() == [[-1.0, -1.0, -1.0]]
    xx = np.array([[[2.0, -1.0, 0.5, 4.0]]])
    grad = np.array([[[1.0, 1.0, 1.0, -1.0]]])
    benefit = R.contribution(xx, grad)
    assert benefit.tolist() == [[-2.0, 1.0, -0.5, 4.0]]
    # signed: percentile 50 of [-2, -0.5, 1, 4] = 0.25 -> pixels with benefit -2 and -0.5 go
    assert R.zero_small_benefit(xx, grad, 50).tolist() == [[[0.0, -1.0, 0.0, 4.0]]]
    # absolute: |b| = [2, 1, 0.5, 4], percentile 50 = 1.5 -> pixels with 1 and 0.5 go
    assert R.zero_small_abs_benefit(xx, grad, 50).tolist() == [[[2.0, 0.0, 0.0, 4.0]]]


def test_update_order_uses_pre_update_gradient_and_post_update_image():
    rng = np.random.RandomState(1)
    xx, grad = rng.normal(0, 5, (3, 6, 6)), rng.normal(0, 1, (3, 6, 6))
    p = FindParams(decay=0.1, blur_radius=0.7, blur_every=2, small_val_percentile=10,
                   small_norm_percentile=20, px_benefit_percentile=30,
                   px_abs_benefit_percentile=40, lr_params={"lr": 2.0})
    # by hand, in the order of the original's step 6
    expect = (xx + 2.0 * grad) * 0.9
    expect = np.stack([gaussian_filter(c, 0.7) for c in expect])
    a = np.abs(expect)
    expect = np.where(a < np.percentile(a, 10), 0, expect)
    n = np.sqrt((expect ** 2).sum(0))
    expect = expect * ~(n < np.percentile(n, 20))[None]
    b = (grad * -expect).sum(0)
    expect = expect * ~(b < np.percentile(b, 30))[None]
    b = np.abs((grad * -expect).sum(0))
    expect = expect * ~(b < np.percentile(b, 40))[None]
    np.testing.assert_array_equal(R.update(xx, grad, 2.0, 4, p), expect)
    # iteration 3 does not blur (3 % 2 != 0)
    no_blur = R.update(xx, grad, 2.0, 3, FindParams(decay=0.1, blur_radius=0.7, blur_every=2))
    np.testing.assert_array_equal(no_blur, (xx + 2.0 * grad) * 0.9)


def test_lr_constant():
    grad = np.ones((3, 2, 2))
    assert learning_rate("constant", {"lr": 100.0}, grad, 5.0) == (100.0, None)


def test_lr_progress_targets_desired_progress_capped_at_max_lr():
    grad = np.full((1, 2, 2), 0.5)          # |g|^2 = 1
    lr, predicted = learning_rate("progress", {"max_lr": 100.0, "desired_prog": 2.0}, grad, 0)
    assert (lr, predicted) == (2.0, 2.0)    # lr * |g|^2 = desired_prog
    lr, predicted = learning_rate("progress", {"max_lr": 1.5, "desired_prog": 2.0}, grad, 0)
    assert (lr, predicted) == (1.5, 1.5)    # capped


def test_lr_progress01_slows_near_one():
    grad = np.full((1, 1, 4), 0.5)          # |g|^2 = 1
    params = {"max_lr": 10.0, "early_prog": 0.2, "late_prog_mult": 0.5}
    # far from 1: min(0.2, 0.5 * (1 - 0.1) = 0.45) = 0.2
    assert learning_rate("progress01", params, grad, 0.1) == pytest.approx((0.2, 0.2))
    # near 1: min(0.2, 0.5 * (1 - 0.9) = 0.05) = 0.05
    assert learning_rate("progress01", params, grad, 0.9) == pytest.approx((0.05, 0.05))
