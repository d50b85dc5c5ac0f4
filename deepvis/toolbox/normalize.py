"""Turn a layer's activations or diffs into display values (original-toolbox §2.7)."""
from __future__ import annotations

import numpy as np

NEG_POS_COLOURS = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))   # negative red, positive green


def normalize_layer(data: np.ndarray, boost_indiv: float = 0.0, boost_gamma: float = 1.0,
                    neg_pos_colours=None) -> np.ndarray:
    """(C, H, W) -> [0, 1] over the whole layer, then per-channel boost and gamma.

    With `neg_pos_colours` (negative, positive) the result is (C, H, W, 3): each value's
    magnitude, relative to the largest, paints its sign's colour.
    """
    if not 0 <= boost_indiv <= 1:
        raise ValueError(f"boost_indiv must be in [0, 1], got {boost_indiv}")
    x = np.array(data, dtype=np.float32)
    if neg_pos_colours is not None:
        neg, pos = (np.asarray(c, np.float32) for c in neg_pos_colours)
        x /= max(x.max(), -x.min()) + 1e-10
        x = np.maximum(x, 0)[..., None] * pos + np.maximum(-x, 0)[..., None] * neg
    x -= x.min()
    x *= 1.0 / (x.max() + 1e-10)
    if boost_indiv > 0:
        peaks = x.reshape(len(x), -1).max(axis=1) + 1e-10
        x *= (peaks ** -boost_indiv).reshape((-1,) + (1,) * (x.ndim - 1))
    if boost_gamma != 1:
        x **= boost_gamma
    return x
