"""Back-pane filters against their definitions (original-toolbox §2.9)."""
import cv2
import numpy as np
import pytest

from deepvis.vis.back import back_image


def test_raw_maps_zero_to_mid_gray_and_undoes_the_swap():
    g = np.zeros((3, 2, 2), np.float32)
    g[0, 0, 0] = 4.0           # network channel 0 = blue for a BGR net
    g[2, 1, 1] = -1.0          # network channel 2 = red
    img = back_image(g, "raw", channel_swap=(2, 1, 0))
    assert img.shape == (2, 2, 3)
    assert np.isclose(img[0, 0, 2], 4 / 8 + 0.5)      # blue lands in RGB channel 2, max -> 1.0
    assert np.isclose(img[1, 1, 0], -1 / 8 + 0.5)     # red lands in channel 0
    assert np.isclose(img[0, 1, 1], 0.5)


def test_gray_averages_channels_then_centres():
    g = np.stack([np.full((2, 2), v, np.float32) for v in (1, 2, 6)])
    g[:, 0, 0] = 0
    img = back_image(g, "gray")
    assert np.allclose(img[0, 0], 0.5) and np.allclose(img[1, 1], 3 / 6 + 0.5)
    assert np.allclose(img[..., 0], img[..., 2])


@pytest.mark.parametrize("mode", ["norm", "normblur"])
def test_norm_filters_span_zero_to_one(mode):
    rng = np.random.default_rng(0)
    g = rng.normal(size=(3, 40, 40)).astype(np.float32)
    img = back_image(g, mode, blur_radius=4.0)
    assert np.isclose(img.min(), 0) and np.isclose(img.max(), 1, atol=1e-6)
    norm = np.sqrt((g ** 2).sum(0))
    if mode == "norm":
        assert np.allclose(img[..., 0], (norm - norm.min()) / (norm.max() - norm.min()), atol=1e-6)
    else:
        blurred = cv2.GaussianBlur(norm.astype(np.float32), (0, 0), 4.0)
        assert np.allclose(img[..., 1], (blurred - blurred.min()) / (blurred.max() - blurred.min()),
                           atol=1e-5)
        def roughness(a):
            return np.abs(np.diff(a[..., 0], axis=1)).mean()
        assert roughness(img) < roughness(back_image(g, "norm")) / 3   # blur smooths


def test_unknown_filter_is_named():
    with pytest.raises(ValueError, match="'sharp'"):
        back_image(np.zeros((3, 2, 2)), "sharp")
