"""Parameterizations (after the paper): optimize the image through an invertible linear map
`xx = L(z)` instead of pixel by pixel (Olah, Mordvintsev, Schubert 2017, "Feature
Visualization", section "Preconditioning and parameterization").

A gradient step on z moves the image by `L(L^T(g))`, so for a linear, invertible L the
parameterization is the same as preconditioning the pixel gradient with `L L^T`, while
the image itself (and so clipping, decay and blur of the original loop) stays in pixels.
deepvis implements exactly that: two preconditioners, each `L L^T` of its map, applied
to the gradient.

- decorrelated colour: L is the square root of the ImageNet colour covariance (the
  eigen-decomposition AlexNet published for its lighting noise), so steps follow the
  colours natural images vary along; scaled so its largest eigenvalue is 1.
- fourier: L scales an orthonormal 2-D DCT basis by 1/frequency, so a step changes low
  frequencies far more than high ones (the 1/f spectrum of natural images); scaled so
  that a white-noise gradient keeps its energy on average.
"""
from __future__ import annotations

import functools

import numpy as np
from scipy.fft import dctn, idctn

COLOR_SPACES = ("rgb", "decorrelated")
PARAMETERIZATIONS = ("pixel", "fourier")

# RGB covariance of ImageNet pixels (values in 0..1): eigenvalues and eigenvectors (columns),
# as published with AlexNet's PCA lighting augmentation.
_EIGVAL = np.array([0.2175, 0.0188, 0.0045])
_EIGVEC = np.array([[-0.5675, 0.7192, 0.4009],
                    [-0.5808, -0.0045, -0.8140],
                    [-0.5836, -0.6948, 0.4203]])


def active(p) -> bool:
    return p.color_space != "rgb" or p.parameterization != "pixel"


def color_gain() -> np.ndarray:
    """L L^T of the colour map in RGB: the covariance divided by its largest eigenvalue."""
    gain = (_EIGVEC * _EIGVAL) @ _EIGVEC.T
    return gain / np.linalg.eigvalsh(gain).max()     # the published vectors have 4 digits


@functools.lru_cache(maxsize=8)
def frequency_gain(h: int, w: int) -> np.ndarray:
    """(H, W) gain of each DCT coefficient: (1 / f)^2, f in cycles per image, the DC term
    taking the lowest nonzero frequency's gain; normalized to mean 1."""
    fy = np.arange(h)[:, None] / 2.0
    fx = np.arange(w)[None, :] / 2.0
    f = np.maximum(np.hypot(fy, fx), 0.5)
    gain = 1.0 / f ** 2
    return gain / gain.mean()


def precondition(grad: np.ndarray, p, to_rgb: tuple[int, ...]) -> np.ndarray:
    """`L L^T grad` for FindParams `p` on one (C, H, W) gradient in network channel order."""
    out = np.asarray(grad, np.float64)
    if p.parameterization == "fourier":
        gain = frequency_gain(*out.shape[1:])
        out = idctn(dctn(out, axes=(1, 2), norm="ortho") * gain, axes=(1, 2), norm="ortho")
    if p.color_space == "decorrelated" and out.shape[0] == 3:
        order = list(np.argsort(to_rgb))           # RGB channel of each network channel
        gain = color_gain()[np.ix_(order, order)]
        out = np.einsum("ij,jhw->ihw", gain, out)
    return out
