"""Fill an image region with one colour, fast.

Assigning a 3-tuple to an (H, W, 3) array makes NumPy loop over 3 values at a time, which
costs tens of milliseconds for a window; broadcasting a whole row of the colour does not.
"""
from __future__ import annotations

import numpy as np


def fill(image: np.ndarray, colour) -> None:
    """Set every pixel of `image` (..., W, C) to `colour` (C values)."""
    row = np.tile(np.asarray(colour, image.dtype), (image.shape[-2], 1))
    image[...] = row
