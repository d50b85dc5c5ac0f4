"""Image -> network input, as the toolbox does it (original-toolbox §6).

Frames are handled in RGB (the toolbox keeps its buffers RGB); the channel swap
then produces the order the network was trained on (BGR for Caffe models).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Preprocessing:
    input_size: tuple[int, int]                 # (H, W)
    channel_swap: tuple[int, ...] | None = None  # e.g. (2, 1, 0): RGB -> BGR
    mean: np.ndarray | None = None               # (C,) or (C, H, W), subtracted after the swap
    scale: float | np.ndarray = 1.0              # multiplied after mean; scalar or per channel
    stretch: bool = False                        # stretch (True) or centre-crop (False) to square

    def __post_init__(self):
        if self.mean is not None:
            mean = np.asarray(self.mean, np.float32)
            object.__setattr__(self, "mean", mean[:, None, None] if mean.ndim == 1 else mean)
        scale = np.asarray(self.scale, np.float32)
        object.__setattr__(self, "scale", float(scale) if scale.ndim == 0 else scale[:, None, None])

    @property
    def scaled(self) -> bool:
        return not (np.ndim(self.scale) == 0 and self.scale == 1.0)


def to_square(image: np.ndarray, stretch: bool) -> np.ndarray:
    """Centre-crop to the largest square, or leave for resize to stretch."""
    if stretch:
        return image
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[top:top + side, left:left + side]


def as_rgb(image: np.ndarray) -> np.ndarray:
    """BGR (cv2.imread order), BGRA or gray uint8 -> RGB."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def rgb_to_input(rgb: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """A square-ish RGB frame (H, W, 3), 0..255 -> network input (1, C, H, W) float32."""
    h, w = spec.input_size
    if rgb.shape[:2] != (h, w):
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)
    x = np.asarray(rgb, np.float32).transpose(2, 0, 1)
    if spec.channel_swap is not None:
        x = x[list(spec.channel_swap)]
    if spec.mean is not None:
        x = x - spec.mean
    if spec.scaled:
        x = x * np.float32(spec.scale) if np.ndim(spec.scale) == 0 else x * spec.scale
    return np.ascontiguousarray(x[None], dtype=np.float32)


def preprocess(image_bgr: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """A photo as cv2.imread returns it -> network input (1, C, H, W)."""
    return rgb_to_input(to_square(as_rgb(image_bgr), spec.stretch), spec)


def input_to_rgb(x: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """Inverse of rgb_to_input for one (C, H, W) input: back to RGB float pixels 0..255."""
    x = np.asarray(x, np.float32)
    if spec.scaled:
        x = x / (np.float32(spec.scale) if np.ndim(spec.scale) == 0 else spec.scale)
    if spec.mean is not None:
        x = x + spec.mean
    if spec.channel_swap is not None:
        x = x[np.argsort(spec.channel_swap)]
    return x.transpose(1, 2, 0)
