"""On the embedded EfficientNet-Lite0: each preset leaves the mean image and finds a
flamingo, and a batch of 8 units gives, unit for unit, the results of 8 runs alone."""
from __future__ import annotations

import numpy as np
import pytest

import deepvis
from deepvis.optimize import FindParams, optimize, pixel_space
from deepvis.optimize.params import resolve

FLAMINGO = 130
# Test-only iteration count (the presets run 200..1000): enough for every preset to make
# lite0 see a flamingo, few enough for the test's time budget.
PRESET_ITERS = 75
PRESETS = ("paper1", "paper2", "paper3", "paper4", "robust")
# What every preset must achieve in PRESET_ITERS steps from the same start (measured: the
# flamingo logit rises by 10.4 (paper4) to 34 (paper1), from -0.4 or 0.1): a rise of OBJ_RISE, and
# an image whose strongest pixel is OFF_MEAN levels off the mean image (measured 72 (paper3)
# to 128; before the progress presets' desired_prog was converted too, paper1 and paper4
# stayed at 6.0 and 4.7).
OBJ_RISE = 7.0
OFF_MEAN = 50.0


@pytest.fixture(scope="module")
def lite0():
    return deepvis.load_model("efficientnet-lite0", backend="ort", speed_over_memory=True)


@pytest.fixture(scope="module")
def space(lite0):
    return pixel_space(lite0.preprocessing, lite0.input_shape[1:])


def test_every_preset_leaves_the_mean_and_makes_lite0_see_a_flamingo(lite0, space):
    """The presets in lite0's units (its input is pixels / 128: learning rates x128)."""
    params = [FindParams(**resolve({"push_layer": "fc", "max_iter": PRESET_ITERS}, name,
                                   input_scale=space.input_scale))
              for name in PRESETS]
    assert all(p.push_channel == FLAMINGO for p in params)
    results = optimize(lite0, params, space, progress=False)
    for name, r in zip(PRESETS, results):
        assert r.meta_result == "Metaresult: majority success", name
        assert r.best_obj - r.obj[0] >= OBJ_RISE, (name, r.obj[0], r.best_obj)
        assert np.abs(r.best_xx).max() >= OFF_MEAN, name
        # the image the run outputs (the original saves the best one, `_best_X.jpg`)
        x = space.to_input(r.best_xx)[None]
        assert lite0.forward(x, ["prob"])["prob"][0].argmax() == FLAMINGO, name
        # the saved image is a valid picture: xx + mean inside [0, 255]
        pixels = r.best_xx + space.mean
        assert pixels.min() >= 0 and pixels.max() <= 255


def test_batch_of_8_equals_8_runs_alone(lite0, space):
    paper1 = resolve({"push_layer": "fc", "max_iter": 3}, "paper1")
    robust = resolve({"push_layer": "fc", "max_iter": 3}, "robust")      # random views too
    params = [FindParams(**dict(paper1 if seed % 2 else robust, push_channel=unit,
                                rand_seed=seed))
              for seed, unit in enumerate((1, 130, 285, 330, 533, 779, 999, 0))]
    batch = optimize(lite0, params, space, progress=False)
    for p, together in zip(params, batch):
        alone = optimize(lite0, [p], space, progress=False)[0]
        assert together.obj == alone.obj, p.push_channel
        assert together.idxmax == alone.idxmax and together.norm == alone.norm
        np.testing.assert_array_equal(together.last_xx, alone.last_xx)
        np.testing.assert_array_equal(together.best_xx, alone.best_xx)
