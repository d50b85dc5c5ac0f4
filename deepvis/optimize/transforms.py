"""Transformation robustness (after the paper): each step the network sees a randomly
shifted, zoomed and rotated copy of the image, so only features that survive small
geometric changes are reinforced (Mordvintsev, Olah, Tyka 2015; Olah et al. 2017).

A view is `warp(roll(xx, shift))`; the gradient comes back through the adjoint of each
piece: the roll exactly, the zoom/rotation by warping with the inverse map and dividing
by the map's area change (the adjoint of bilinear resampling up to interpolation
weights). Off (all amounts 0) nothing is drawn and the loop is the original's.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class View:
    """One step's random view: an integer shift and an affine map about the centre."""

    shift: tuple[int, int]
    zoom: float
    angle: float            # degrees

    @property
    def warps(self) -> bool:
        return self.zoom != 1.0 or self.angle != 0.0

    def matrix(self, shape: tuple[int, int]) -> np.ndarray:
        """2x3 map from view coordinates to image coordinates (cv2's inverse-map convention):
        the view shows the image zoomed by `zoom` and rotated by `angle`."""
        h, w = shape
        return cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), self.angle, 1 / self.zoom)


IDENTITY = View((0, 0), 1.0, 0.0)


def active(p) -> bool:
    return bool(p.jitter or p.scale_jitter or p.rotate)


def draw(rng: np.random.Generator, p) -> View:
    """A view for FindParams `p` from the unit's own generator (so batches match runs alone)."""
    shift = tuple(int(v) for v in rng.integers(-p.jitter, p.jitter + 1, 2)) if p.jitter \
        else (0, 0)
    zoom = float(rng.uniform(1 - p.scale_jitter, 1 + p.scale_jitter)) if p.scale_jitter else 1.0
    angle = float(rng.uniform(-p.rotate, p.rotate)) if p.rotate else 0.0
    return View(shift, zoom, angle)


def apply(xx: np.ndarray, view: View) -> np.ndarray:
    """The (C, H, W) image as the network sees it this step (reflected borders)."""
    out = np.roll(xx, view.shift, axis=(1, 2))
    if view.warps:
        out = _warp(out, view.matrix(xx.shape[1:]), cv2.BORDER_REFLECT_101)
    return out


def pull_back(grad: np.ndarray, view: View) -> np.ndarray:
    """The gradient with respect to the view, carried back to the image."""
    out = np.asarray(grad, np.float64)
    if view.warps:
        forward = cv2.invertAffineTransform(view.matrix(grad.shape[1:]))
        out = _warp(out, forward, cv2.BORDER_CONSTANT) * view.zoom ** 2
    return np.roll(out, (-view.shift[0], -view.shift[1]), axis=(1, 2))


def _warp(x: np.ndarray, inverse_map: np.ndarray, border: int) -> np.ndarray:
    h, w = x.shape[1:]
    hwc = np.ascontiguousarray(x.transpose(1, 2, 0), np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    out = cv2.warpAffine(hwc, inverse_map, (w, h), flags=flags, borderMode=border)
    return out.reshape(h, w, -1).transpose(2, 0, 1)
