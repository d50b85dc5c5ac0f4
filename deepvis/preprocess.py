"""Image -> network input, as the toolbox does it (original-toolbox §6).

Frames are handled in RGB (the toolbox keeps its buffers RGB). In order:
  1. geometry: centre-crop the largest region of the input's aspect ratio (a square for a
     square input) and resize to it; or stretch the whole frame (`stretch`); or resize the
     shorter side to `resize_shorter` and cut the input size from the centre (torchvision's
     "resize 256, centre crop 224");
  2. colour: RGB as it is, gray (ITU-R 601 luma, what cv2 computes) for 1-channel inputs, or
     RGBA (alpha 255 where the photo has none) for 4-channel ones; channels beyond those are 0;
  3. the channel swap (BGR for Caffe models), the mean, the scale.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .errors import DeepvisError


@dataclass(frozen=True)
class Preprocessing:
    input_size: tuple[int, int]                 # (H, W)
    channel_swap: tuple[int, ...] | None = None  # e.g. (2, 1, 0): RGB -> BGR
    mean: np.ndarray | None = None               # (C,) or (C, H, W), subtracted after the swap
    scale: float | np.ndarray = 1.0              # multiplied after mean; scalar or per channel
    stretch: bool = False                        # stretch (True) or centre-crop (False) to aspect
    color: str = "rgb"                           # gray, rgb or rgba: what a photo becomes
    channels: int = 3                            # the network's input channels
    resize_shorter: int | None = None            # resize the shorter side, then centre-crop

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


def to_aspect(image: np.ndarray, hw) -> np.ndarray:
    """Centre-crop the largest region with the aspect ratio of `hw` (H, W)."""
    h, w = image.shape[:2]
    want_h, want_w = hw
    if h * want_w > w * want_h:      # too tall: keep the width
        crop_h, crop_w = max(1, round(w * want_h / want_w)), w
    else:
        crop_h, crop_w = h, max(1, round(h * want_w / want_h))
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    return image[top:top + crop_h, left:left + crop_w]


def fit_frame(image: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """A frame of any size -> exactly the input's (H, W), as `spec` says (module docstring)."""
    h, w = spec.input_size
    if spec.resize_shorter:
        ih, iw = image.shape[:2]
        ratio = spec.resize_shorter / min(ih, iw)
        rh, rw = max(h, round(ih * ratio)), max(w, round(iw * ratio))
        image = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_LINEAR)
        top, left = int(round((rh - h) / 2)), int(round((rw - w) / 2))
        return image[top:top + h, left:left + w]
    if not spec.stretch:
        image = to_aspect(image, (h, w))
    if image.shape[:2] != (h, w):
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    return image


def to_channels(frame: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """An RGB frame (H, W, 3) -> (H, W, channels): gray, RGB or RGBA, then zero channels.
    A frame that already has the input's channel count (a siamese pair) is left alone."""
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.shape[2] == spec.channels:
        return frame
    if frame.shape[2] == 4 and spec.color == "rgba":
        pass                                             # RGBA with the photo's own alpha
    elif frame.shape[2] != 3:
        raise DeepvisError(f"a frame of {frame.shape[2]} channels cannot feed a "
                           f"{spec.channels}-channel input")
    elif spec.color == "gray":
        frame = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)[:, :, None]
    elif spec.color == "rgba":
        alpha = np.full(frame.shape[:2] + (1,), 255, frame.dtype)
        frame = np.concatenate([frame, alpha], axis=2)
    extra = spec.channels - frame.shape[2]
    if extra > 0:
        frame = np.concatenate([frame, np.zeros(frame.shape[:2] + (extra,), frame.dtype)], 2)
    return frame[:, :, :spec.channels]


def as_rgb(image: np.ndarray) -> np.ndarray:
    """BGR (cv2.imread order), BGRA or gray uint8 -> RGB."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def rgb_to_input(rgb: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """An RGB frame (H, W, 3) of any size, 0..255 -> network input (1, C, H, W) float32."""
    pixels = to_channels(fit_frame(rgb, spec), spec)
    x = np.asarray(pixels, np.float32).transpose(2, 0, 1)
    if spec.channel_swap is not None:
        x = x[list(spec.channel_swap)]
    if spec.mean is not None:
        x = x - spec.mean
    if spec.scaled:
        x = x * np.float32(spec.scale) if np.ndim(spec.scale) == 0 else x * spec.scale
    return np.ascontiguousarray(x[None], dtype=np.float32)


def preprocess(image_bgr: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """A photo as cv2.imread returns it -> network input (1, C, H, W)."""
    if spec.color == "rgba" and image_bgr.ndim == 3 and image_bgr.shape[2] == 4:
        return rgb_to_input(as_rgba(image_bgr), spec)
    return rgb_to_input(as_rgb(image_bgr), spec)


def as_rgba(image_bgra: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image_bgra, cv2.COLOR_BGRA2RGBA)


def input_to_rgb(x: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """Inverse of rgb_to_input for one (C, H, W) input: back to RGB float pixels 0..255."""
    x = np.asarray(x, np.float32)
    if spec.scaled:
        x = x / (np.float32(spec.scale) if np.ndim(spec.scale) == 0 else spec.scale)
    if spec.mean is not None:
        x = x + spec.mean
    if spec.channel_swap is not None:
        x = x[np.argsort(spec.channel_swap)]
    if x.shape[0] == 1:             # gray: shown as gray RGB
        x = np.repeat(x, 3, axis=0)
    return x[:3].transpose(1, 2, 0)  # RGB; alpha and further channels are not shown
