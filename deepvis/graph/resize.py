"""ONNX Resize as one interpolation matrix per axis, shared by the NumPy kernel and the
gradient rule (Resize is linear in its input, so its gradient is the transposed matrices).

Output position o of an axis maps to input coordinate x by the coordinate transformation
mode; `nearest` then takes one input element (by nearest_mode), `linear` the two around x
and `cubic` the four, with Keys' kernel of parameter `cubic_coeff_a`. Taps outside the input
take the edge element, or with exclude_outside are dropped and the rest renormalized.
Antialiased downscaling and tf_crop_and_resize are refused.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import UnsupportedError

MODES = ("nearest", "linear", "cubic")
TRANSFORMS = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric")
NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def check_attributes(attrs: dict, where: str) -> None:
    """Refuse what the matrices do not model, before anything runs."""
    mode = attrs.get("mode", "nearest")
    transform = attrs.get("coordinate_transformation_mode", "half_pixel")
    if mode not in MODES:
        raise UnsupportedError(f"{where}: Resize mode {mode!r}")
    if transform not in TRANSFORMS:
        raise UnsupportedError(f"{where}: Resize coordinate_transformation_mode {transform!r}")
    if attrs.get("nearest_mode", "round_prefer_floor") not in NEAREST:
        raise UnsupportedError(f"{where}: Resize nearest_mode {attrs['nearest_mode']!r}")
    if attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        raise UnsupportedError(f"{where}: Resize keep_aspect_ratio_policy "
                               f"{attrs['keep_aspect_ratio_policy']!r}")


def output_geometry(in_shape, scales=None, sizes=None, axes=None):
    """(output shape, per-axis scale) from the scales or sizes input (absent: None or empty)."""
    rank = len(in_shape)
    axes = list(range(rank)) if axes is None else [a % rank for a in axes]
    out, factor = list(in_shape), [1.0] * rank
    if sizes is not None and np.size(sizes):
        for axis, size in zip(axes, np.ravel(sizes)):
            out[axis] = int(size)
            factor[axis] = int(size) / in_shape[axis]
    elif scales is not None and np.size(scales):
        for axis, scale in zip(axes, np.ravel(scales)):
            factor[axis] = float(scale)
            out[axis] = int(math.floor(in_shape[axis] * float(scale)))
    else:
        raise ValueError("Resize needs scales or sizes")
    return out, factor


def axis_matrix(in_len: int, out_len: int, scale: float, attrs: dict) -> np.ndarray:
    """(out_len, in_len) float64 matrix M with y = M x along one axis."""
    mode = attrs.get("mode", "nearest")
    if mode != "nearest" and attrs.get("antialias", 0) and scale < 1:
        raise UnsupportedError("Resize with antialias when downscaling")
    x = _source_coordinates(in_len, out_len, scale,
                            attrs.get("coordinate_transformation_mode", "half_pixel"))
    matrix = np.zeros((out_len, in_len))
    rows = np.arange(out_len)
    if mode == "nearest":
        index = _nearest(x, attrs.get("nearest_mode", "round_prefer_floor"))
        matrix[rows, np.clip(index, 0, in_len - 1)] = 1.0
        return matrix
    base = np.floor(x)
    ratio = x - base
    if mode == "linear":
        offsets, weights = [0, 1], [1 - ratio, ratio]
    else:
        a = attrs.get("cubic_coeff_a", -0.75)
        offsets = [-1, 0, 1, 2]
        weights = [_keys(ratio + 1, a), _keys(ratio, a), _keys(1 - ratio, a), _keys(2 - ratio, a)]
    exclude = bool(attrs.get("exclude_outside", 0))
    total = np.zeros(out_len)
    for offset, weight in zip(offsets, weights):
        index = base.astype(np.int64) + offset
        inside = (index >= 0) & (index < in_len)
        if exclude:
            weight = np.where(inside, weight, 0.0)
        np.add.at(matrix, (rows, np.clip(index, 0, in_len - 1)), weight)
        total += weight
    if exclude:
        matrix /= total[:, None]
    return matrix


def _source_coordinates(in_len, out_len, scale, transform) -> np.ndarray:
    o = np.arange(out_len, dtype=np.float64)
    if transform == "align_corners":
        return np.zeros(out_len) if out_len == 1 else o * (in_len - 1) / (out_len - 1)
    if transform == "asymmetric":
        return o / scale
    if transform == "pytorch_half_pixel" and out_len <= 1:
        return np.zeros(out_len)
    return (o + 0.5) / scale - 0.5


def _nearest(x: np.ndarray, mode: str) -> np.ndarray:
    if mode == "round_prefer_floor":
        index = np.ceil(x - 0.5)
    elif mode == "round_prefer_ceil":
        index = np.floor(x + 0.5)
    elif mode == "floor":
        index = np.floor(x)
    else:
        index = np.ceil(x)
    return index.astype(np.int64)


def _keys(t, a):
    """Keys' cubic convolution kernel at distance |t| <= 2."""
    t = np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, far)
