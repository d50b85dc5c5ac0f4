"""The optimizer's options beyond the paper: random views (transforms) and preconditioners
(parameterizations), checked against their definitions; and presets in the model's units."""
from __future__ import annotations

import numpy as np
import pytest

from deepvis.errors import DeepvisError
from deepvis.optimize import params as P
from deepvis.optimize import precondition, transforms
from deepvis.optimize.lr import learning_rate
from deepvis.optimize.params import FindParams
from deepvis.optimize.space import pixel_space
from deepvis.preprocess import Preprocessing


def test_a_shift_is_pulled_back_by_its_exact_adjoint():
    rng = np.random.default_rng(0)
    x, g = rng.normal(size=(2, 3, 12, 10))
    view = transforms.View((3, -4), 1.0, 0.0)
    lhs = np.vdot(transforms.apply(x, view), g)
    rhs = np.vdot(x, transforms.pull_back(g, view))
    assert lhs == pytest.approx(rhs, rel=1e-12)


@pytest.mark.parametrize("zoom, angle", [(1.1, 0.0), (0.9, 0.0), (1.0, 8.0), (1.05, -5.0)])
def test_zoom_and_rotation_pull_back_approximates_the_adjoint(zoom, angle):
    """<A x, g> = <x, A^T g> for smooth x and g (bilinear weights make it approximate);
    the test images are smooth and vanish near the border, where reflection would fold."""
    yy, xx = np.mgrid[0:64, 0:64] / 63.0
    bump = np.exp(-((yy - 0.5) ** 2 + (xx - 0.5) ** 2) / 0.02)
    x = np.stack([bump * np.cos(3 * yy), bump, bump * np.sin(2 * xx)])
    g = np.stack([bump * xx, bump * yy, bump])
    view = transforms.View((0, 0), zoom, angle)
    lhs = np.vdot(transforms.apply(x, view), g)
    rhs = np.vdot(x, transforms.pull_back(g, view))
    assert lhs == pytest.approx(rhs, rel=0.01)


def test_views_come_from_the_units_own_generator_and_respect_the_bounds():
    p = FindParams(jitter=5, scale_jitter=0.1, rotate=10.0)
    a = [transforms.draw(np.random.default_rng(7), p) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(1)
    for _ in range(200):
        v = transforms.draw(rng, p)
        assert max(map(abs, v.shift)) <= 5 and 0.9 <= v.zoom <= 1.1 and abs(v.angle) <= 10
    assert not transforms.active(FindParams())


@pytest.mark.parametrize("color, param", [("decorrelated", "pixel"), ("rgb", "fourier"),
                                          ("decorrelated", "fourier")])
def test_preconditioners_are_symmetric_positive_definite(color, param):
    """L L^T is symmetric and positive definite: <P g, h> = <g, P h> and <P g, g> > 0."""
    p = FindParams(color_space=color, parameterization=param)
    rng = np.random.default_rng(2)
    g, h = rng.normal(size=(2, 3, 16, 20))
    to_rgb = (2, 0, 1)
    pg = precondition.precondition(g, p, to_rgb)
    assert np.vdot(pg, h) == pytest.approx(np.vdot(g, precondition.precondition(h, p, to_rgb)))
    assert np.vdot(pg, g) > 0


def test_colour_gain_follows_the_channel_order():
    """A BGR network gets the RGB gain with rows and columns swapped accordingly."""
    p = FindParams(color_space="decorrelated")
    g = np.zeros((3, 1, 1))
    g[0] = 1.0                                                  # network channel 0 = blue
    out = precondition.precondition(g, p, (2, 1, 0))[:, 0, 0]
    gain = precondition.color_gain()
    assert out == pytest.approx(gain[[2, 1, 0], 2])
    assert np.linalg.eigvalsh(gain).max() == pytest.approx(1.0)


def test_fourier_gain_favours_low_frequencies_and_keeps_white_noise_energy():
    gain = precondition.frequency_gain(32, 48)
    assert gain.mean() == pytest.approx(1.0)
    assert gain[0, 0] == gain[0, 1] > gain[0, 2] > gain[5, 5] > gain[-1, -1]
    p = FindParams(parameterization="fourier")
    n = np.arange(48)
    smooth = np.ones((3, 32, 48))
    rough = np.ones((3, 32, 48)) * np.cos(np.pi * 47 * (2 * n + 1) / 96)   # DCT-II basis 47
    assert np.linalg.norm(precondition.precondition(smooth, p, (0, 1, 2))) > \
        100 * np.linalg.norm(precondition.precondition(rough, p, (0, 1, 2)))


def test_extras_stay_out_of_the_original_listing_unless_on():
    assert "jitter" not in str(FindParams()) and "jitter" not in FindParams().as_dict()
    on = FindParams(jitter=4, parameterization="fourier")
    assert on.as_dict()["jitter"] == 4 and "parameterization: fourier" in str(on)
    assert "rotate" not in on.as_dict()


@pytest.mark.parametrize("field, value", [("jitter", -1), ("scale_jitter", 1.5),
                                          ("rotate", 200.0), ("color_space", "lab"),
                                          ("parameterization", "wavelet")])
def test_bad_extras_name_the_flag(field, value):
    with pytest.raises(DeepvisError, match="--" + field.replace("_", "-")):
        FindParams(**{field: value})


# -- presets in the model's units ----------------------------------------------------------

@pytest.mark.parametrize("name", ["paper1", "paper2", "paper3", "paper4", "robust", "none"])
def test_presets_on_scale_one_inputs_are_the_papers_values_exactly(name):
    assert P.resolve({}, name, input_scale=1.0) == P.resolve({}, name)
    assert P.resolve({}, name, input_scale=1.0)["lr_params"] == P.PRESETS[name]["lr_params"]


def test_presets_divide_their_step_sizes_by_the_input_scale():
    scale = 1 / 128
    assert P.resolve({}, "paper3", input_scale=scale)["lr_params"] == {"lr": 12800.0}
    paper1 = P.resolve({}, "paper1", input_scale=scale)["lr_params"]
    assert paper1 == {"max_lr": 12800.0, "desired_prog": 256.0}
    explicit = P.resolve({"lr_params": {"lr": 100.0}}, "paper3", input_scale=scale)
    assert explicit["lr_params"] == {"lr": 100.0}                    # flags stay literal
    assert P.PRESETS["paper3"]["lr_params"] == {"lr": 100.0}         # the table is untouched


@pytest.mark.parametrize("name", ["paper1", "paper2", "paper3", "paper4", "robust"])
@pytest.mark.parametrize("g2", [1e-6, 2e-4, 0.02, 0.5, 40.0])
def test_converted_presets_pick_the_papers_rate_divided_by_the_scale_at_any_gradient(name, g2):
    """Below and above the point where a progress policy reaches its cap."""
    scale = 1 / 128
    grad = np.full((3, 4, 4), np.sqrt(g2 / 48))
    paper, converted = P.resolve({}, name), P.resolve({}, name, input_scale=scale)
    lr_paper, _ = learning_rate(paper["lr_policy"], paper["lr_params"], grad, 0.5)
    lr_model, _ = learning_rate(converted["lr_policy"], converted["lr_params"], grad, 0.5)
    assert lr_model == pytest.approx(lr_paper / scale, rel=1e-12)


def test_progress01_rate_is_divided_by_the_scale_too():
    params = {"max_lr": 50.0, "early_prog": 0.3, "late_prog_mult": 0.1}
    converted = {key: value * 64 for key, value in params.items()}
    grad = np.full((3, 2, 2), 0.05)
    for obj in (0.1, 0.9, 0.999):
        assert learning_rate("progress01", converted, grad, obj)[0] == \
            pytest.approx(64 * learning_rate("progress01", params, grad, obj)[0], rel=1e-12)


def test_input_scale_is_one_number_per_model():
    def space(scale):
        pre = Preprocessing(channel_swap=None, mean=np.zeros(3), scale=np.asarray(scale),
                            input_size=(4, 4))
        return pixel_space(pre, (3, 4, 4))
    assert space(1.0).input_scale == 1.0
    assert space(1 / 128).input_scale == pytest.approx(1 / 128)
    std = np.array([58.395, 57.12, 57.375])
    assert space(1 / std).input_scale == pytest.approx(1 / np.exp(np.log(std).mean()))
