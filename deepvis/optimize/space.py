"""The optimizer's image space: pixel units, mean subtracted, in the network's channel order.

The original optimized the Caffe network input itself: BGR pixels 0..255 minus the mean.
deepvis keeps that variable `xx` and puts the rest of the model's preprocessing (its
`scale`) between `xx` and the network, so the network input is `xx * scale`. With scale 1
(Caffe models) this is exactly the original; on any other model (EfficientNet-Lite:
(pixel - 127) / 128) decay still shrinks towards the mean image, clipping still keeps
`xx + mean` in [0, 255], and the gradient is taken with respect to pixels, so the
paper's hyperparameters keep their meaning.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DeepvisError
from . import regularizers


@dataclass(frozen=True)
class PixelSpace:
    mean: np.ndarray            # (C, H, W) float64, network channel order, pixel units
    scale: np.ndarray           # float64, () or (C, 1, 1): network input = xx * scale
    to_rgb: tuple[int, ...]     # channel permutation, network order -> RGB (for images)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.mean.shape

    @property
    def input_scale(self) -> float:
        """One number for the model's input scale (the geometric mean over channels), the
        factor the presets' learning-rate parameters are divided by (params.preset_values)."""
        scale = np.abs(np.ravel(self.scale))
        if np.all(scale == scale[0]):
            return float(scale[0])                  # exact, so scale 1 leaves presets exact
        return float(np.exp(np.mean(np.log(scale))))

    def clip(self, xx: np.ndarray) -> np.ndarray:
        return regularizers.clip_to_pixels(xx, self.mean)

    def to_input(self, xx: np.ndarray) -> np.ndarray:
        """(C, H, W) xx -> float32 network input (the original stored data as float32)."""
        return np.asarray(xx * self.scale, np.float32)

    def grad_to_pixels(self, grad_input: np.ndarray) -> np.ndarray:
        """Derivative wrt the network input -> derivative wrt xx (chain rule through scale)."""
        return np.asarray(grad_input, np.float64) * self.scale

    def rgb(self, xx: np.ndarray) -> np.ndarray:
        """(C, H, W) in network order -> (H, W, C) RGB, as the original saved its images."""
        return np.asarray(xx)[list(self.to_rgb)].transpose(1, 2, 0)

    def mean_rgb(self) -> np.ndarray:
        return self.rgb(self.mean)


def pixel_space(preprocessing, input_chw, mean="model", to_rgb=None) -> PixelSpace:
    """The space for a model's `Preprocessing`.

    `mean`: "model" takes the model's own; None means no mean (zeros); an array (per
    channel, or (C, H, W)) overrides it. `to_rgb` defaults to the inverse of the model's
    channel swap (so (2, 1, 0) for Caffe's BGR models, identity for RGB models).
    """
    c, h, w = (int(n) for n in input_chw)
    if isinstance(mean, str) and mean == "model":
        mean = preprocessing.mean
    try:
        mean = np.zeros((c, h, w)) if mean is None else np.asarray(mean, np.float64)
    except (ValueError, TypeError):
        raise DeepvisError(f"--mean: expected numbers, got {mean!r}") from None
    if mean.ndim == 1:
        mean = mean[:, None, None]
    try:
        mean = np.ascontiguousarray(np.broadcast_to(mean, (c, h, w)), dtype=np.float64)
    except ValueError:
        raise DeepvisError(f"--mean: a mean of shape {mean.shape} does not fit the network "
                           f"input {(c, h, w)}") from None
    scale = np.asarray(preprocessing.scale, np.float64)
    if scale.ndim == 1:
        scale = scale[:, None, None]
    if to_rgb is None:
        swap = preprocessing.channel_swap
        to_rgb = tuple(int(i) for i in np.argsort(swap)) if swap is not None else tuple(range(c))
    to_rgb = tuple(to_rgb)
    if sorted(to_rgb) != list(range(c)):
        raise DeepvisError(f"--channel-swap-to-rgb must be a permutation of the {c} input "
                           f"channels, got {to_rgb}")
    return PixelSpace(mean=mean, scale=scale, to_rgb=to_rgb)
