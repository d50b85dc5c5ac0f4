"""The paper's image regularizers, one pure function each, on one (C, H, W) float64 image.

The image `xx` is mean-subtracted, in pixel units and the network's channel order (the
original's optimization variable), so "zero" means "the mean image". Percentiles are
NumPy's default (linear interpolation) over all entries or pixels, and every comparison
is a strict `<`, as in the original (original-toolbox §10.2 step 6, §12.8).
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

PIXEL_MIN, PIXEL_MAX = 0.0, 255.0


def clip_to_pixels(xx: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Keep xx + mean inside the valid pixel range [0, 255] (step 0 of every iteration)."""
    return np.minimum(PIXEL_MAX, np.maximum(PIXEL_MIN, xx + mean)) - mean


def decay(xx: np.ndarray, rate: float) -> np.ndarray:
    """L2 decay: shrink towards the mean image by the factor (1 - rate)."""
    return xx * (1 - rate)


def blurs_at(ii: int, blur_every: int, blur_radius: float) -> bool:
    """Whether iteration ii blurs: every blur_every-th one counting from 0, iteration 0 included."""
    return blur_every != 0 and blur_radius > 0 and ii % blur_every == 0


def blur(xx: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of each channel (SciPy's defaults: reflect border, truncate at 4 sigma).

    The original blurs channels 0..2 only; for 3-channel inputs this is the same.
    """
    return np.stack([gaussian_filter(channel, radius) for channel in xx])


def zero_small_values(xx: np.ndarray, percentile: float) -> np.ndarray:
    """Zero every entry whose |value| is below the percentile of |xx|."""
    magnitude = np.abs(xx)
    return np.where(magnitude < np.percentile(magnitude, percentile), 0.0, xx)


def zero_pixels(xx: np.ndarray, small: np.ndarray) -> np.ndarray:
    """Zero all channels of the pixels where the (H, W) mask is set."""
    return np.where(small[None], 0.0, xx)


def pixel_norms(xx: np.ndarray) -> np.ndarray:
    """(H, W) Euclidean norm across channels."""
    return np.sqrt((xx * xx).sum(axis=0))


def zero_small_norms(xx: np.ndarray, percentile: float) -> np.ndarray:
    """Zero the pixels whose channel norm is below the percentile of all pixel norms."""
    norms = pixel_norms(xx)
    return zero_pixels(xx, norms < np.percentile(norms, percentile))


def contribution(xx: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """(H, W) first-order change of the objective if each pixel were set to zero (the mean):
    the sum over channels of grad * (-xx)."""
    return (grad * -xx).sum(axis=0)


def zero_small_benefit(xx: np.ndarray, grad: np.ndarray, percentile: float) -> np.ndarray:
    """Zero the pixels whose contribution is below the percentile (signed)."""
    benefit = contribution(xx, grad)
    return zero_pixels(xx, benefit < np.percentile(benefit, percentile))


def zero_small_abs_benefit(xx: np.ndarray, grad: np.ndarray, percentile: float) -> np.ndarray:
    """Zero the pixels whose |contribution| is below the percentile of |contribution|."""
    benefit = np.abs(contribution(xx, grad))
    return zero_pixels(xx, benefit < np.percentile(benefit, percentile))


def update(xx: np.ndarray, grad: np.ndarray, lr: float, ii: int, p) -> np.ndarray:
    """Step 6 of the original loop for FindParams `p`: ascend, then each regularizer in order.

    `grad` is this iteration's gradient (before the update); the contribution regularizers
    use it with the already updated, decayed, blurred and pruned image.
    """
    xx = xx + lr * grad
    xx = decay(xx, p.decay)
    if blurs_at(ii, p.blur_every, p.blur_radius):
        xx = blur(xx, p.blur_radius)
    if p.small_val_percentile > 0:
        xx = zero_small_values(xx, p.small_val_percentile)
    if p.small_norm_percentile > 0:
        xx = zero_small_norms(xx, p.small_norm_percentile)
    if p.px_benefit_percentile > 0:
        xx = zero_small_benefit(xx, grad, p.px_benefit_percentile)
    if p.px_abs_benefit_percentile > 0:
        xx = zero_small_abs_benefit(xx, grad, p.px_abs_benefit_percentile)
    return xx
