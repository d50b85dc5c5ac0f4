"""Scale an image into a pane keeping its aspect ratio (original-toolbox §2.8)."""
from __future__ import annotations

import cv2
import numpy as np


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float in [0, 1] -> uint8 by x 255 and truncation; uint8 passes through."""
    if image.dtype == np.uint8:
        return image
    if image.dtype.kind != "f":
        raise TypeError(f"expected uint8 or float image data, got {image.dtype}")
    return (image * 255).astype(np.uint8)


def resize_to_fit(image: np.ndarray, height: int | None, width: int | None) -> np.ndarray:
    """Largest size that fits (height, width); nearest neighbour when growing, bilinear when
    shrinking. A None bound leaves the other one to decide."""
    image = to_uint8(image)
    h, w = image.shape[:2]
    if height is None:
        scale = width / w
    elif width is None:
        scale = height / h
    else:
        scale = min(height / h, width / w)
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    if size == (w, h):
        return image
    interpolation = cv2.INTER_NEAREST if scale > 1 else cv2.INTER_LINEAR
    out = cv2.resize(image, size, interpolation=interpolation)
    return out.reshape(out.shape[:2] + image.shape[2:])


def paste_fit(pane: np.ndarray, image: np.ndarray) -> None:
    """Resize `image` to fit `pane` and write it at the top-left; the rest is left as is."""
    fitted = resize_to_fit(image, pane.shape[0], pane.shape[1])
    if fitted.ndim == 2:
        fitted = fitted[..., None]
    pane[:fitted.shape[0], :fitted.shape[1]] = fitted
