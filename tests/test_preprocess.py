"""Preprocessing against hand-computed values (original-toolbox §6)."""
import numpy as np
import pytest

from deepvis.preprocess import Preprocessing, input_to_rgb, preprocess, rgb_to_input, to_square


def test_centre_crop_keeps_the_middle_square():
    image = np.arange(6 * 10).reshape(6, 10)
    square = to_square(image, stretch=False)
    assert square.shape == (6, 6)
    assert (square == image[:, 2:8]).all()
    assert to_square(image, stretch=True) is image


def test_swap_mean_scale_in_the_documented_order():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 20, 30           # R, G, B
    spec = Preprocessing(input_size=(2, 2), channel_swap=(2, 1, 0), mean=(1, 2, 3), scale=0.5)
    x = rgb_to_input(rgb, spec)
    assert x.shape == (1, 3, 2, 2) and x.dtype == np.float32
    # BGR after the swap, then minus (1,2,3) per channel, then times 0.5
    assert np.allclose(x[0, :, 0, 0], [(30 - 1) * 0.5, (20 - 2) * 0.5, (10 - 3) * 0.5])


def test_per_pixel_mean_and_round_trip():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (4, 4, 3)).astype(np.uint8)
    mean = rng.normal(100, 5, (3, 4, 4)).astype(np.float32)
    spec = Preprocessing(input_size=(4, 4), channel_swap=(2, 1, 0), mean=mean, scale=2.0)
    x = rgb_to_input(rgb, spec)
    assert np.allclose(x[0, 0], (rgb[..., 2] - mean[0]) * 2.0)
    assert np.allclose(input_to_rgb(x[0], spec), rgb, atol=1e-4)


def test_gray_and_bgra_photos_become_three_channels():
    spec = Preprocessing(input_size=(8, 8))
    gray = np.full((16, 32), 77, np.uint8)
    assert preprocess(gray, spec).shape == (1, 3, 8, 8)
    assert np.allclose(preprocess(gray, spec), 77)
    bgra = np.zeros((8, 8, 4), np.uint8)
    bgra[..., 0] = 200                                              # blue
    x = preprocess(bgra, spec)                                       # no swap: RGB order
    assert np.allclose(x[0, 2], 200) and np.allclose(x[0, :2], 0)


@pytest.mark.parametrize("stretch", [False, True])
def test_stretch_mode_changes_what_reaches_the_network(stretch):
    image = np.zeros((10, 20, 3), np.uint8)
    image[:, :5] = 255                                               # a white left quarter
    x = preprocess(image, Preprocessing(input_size=(10, 10), stretch=stretch))
    # Stretching keeps the white quarter (columns 0..2); cropping cuts it away entirely.
    assert (x[0, 0, :, 0].mean() > 200) == stretch


def test_per_channel_scale_as_torchvision_models_expect():
    rgb = np.full((2, 2, 3), 200, np.uint8)
    spec = Preprocessing(input_size=(2, 2), mean=(100, 50, 0), scale=(0.5, 0.25, 0.125))
    x = rgb_to_input(rgb, spec)
    assert np.allclose(x[0, :, 1, 1], [50, 37.5, 25])
    assert np.allclose(input_to_rgb(x[0], spec), rgb)
