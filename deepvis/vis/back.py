"""How the back pane shows a gradient at the input (original-toolbox §2.9).

Input: the derivative at the network input for one image, (C, H, W), in the
network's channel order. Output: an (H, W, 3) float image in [0, 1], RGB.
"""
from __future__ import annotations

import cv2
import numpy as np

FILTERS = ("raw", "gray", "norm", "normblur")


def to_rgb_hwc(grad_chw: np.ndarray, channel_swap) -> np.ndarray:
    """Undo the channel swap so colours read as RGB; the mean is not added back. A gray
    input's gradient shows gray; of an RGBA (or wider) input's, the RGB channels show."""
    hwc = np.asarray(grad_chw, np.float32).transpose(1, 2, 0)
    if channel_swap is not None:
        hwc = hwc[..., np.argsort(channel_swap)]
    if hwc.shape[2] == 1:
        return np.repeat(hwc, 3, axis=2)
    return hwc[..., :3]


def centred(x: np.ndarray) -> np.ndarray:
    """Zero -> mid-gray 0.5; the larger side of the range reaches 0 or 1."""
    return x / (max(2 * x.max(), -2 * x.min()) + 1e-10) + 0.5


def min_max(x: np.ndarray) -> np.ndarray:
    x = x - x.min()
    return x / (x.max() + 1e-10)


def gray3(x: np.ndarray) -> np.ndarray:
    return np.repeat(x[..., None], 3, axis=2)


def back_image(grad_chw: np.ndarray, mode: str = "raw", channel_swap=None,
               blur_radius: float = 4.0) -> np.ndarray:
    """One of the toolbox's four back filters: raw, gray, norm, normblur."""
    hwc = to_rgb_hwc(grad_chw, channel_swap)
    if mode == "raw":
        return centred(hwc)
    if mode == "gray":
        return gray3(centred(hwc.mean(axis=2)))
    if mode in ("norm", "normblur"):
        norm = np.sqrt((hwc ** 2).sum(axis=2)).astype(np.float32)
        if mode == "normblur":
            norm = cv2.GaussianBlur(norm, (0, 0), blur_radius)
        return gray3(min_max(norm))
    raise ValueError(f"unknown back filter {mode!r}; choose one of {', '.join(FILTERS)}")
