"""FindParams, presets, literal parsing, FindResults listing and the montage geometry."""
from __future__ import annotations

import numpy as np
import pytest

from deepvis.cli import build_parser
from deepvis.commands.optimize import find_values
from deepvis.errors import DeepvisError
from deepvis.optimize import montage as M
from deepvis.optimize import params as P
from deepvis.optimize.params import FindParams
from deepvis.optimize.results import FindResults, info_text, output_prefix, py2_str


def parse(*argv):
    return build_parser().parse_args(["optimize", *argv])


def test_defaults_are_the_original_command_lines():
    values = find_values(parse(), "fc8", None)
    assert values == dict(P.CLI_DEFAULTS)
    assert values["lr_params"] == {"lr": 1} and values["push_dir"] == 1
    assert values["max_iter"] == 500 and values["push_channel"] == 130


def test_preset_then_explicit_flags_win():
    values = find_values(parse("--preset", "paper3"), "fc8", "paper3")
    assert (values["decay"], values["blur_radius"], values["blur_every"]) == (0.0001, 1.0, 4)
    assert values["lr_policy"] == "constant" and values["lr_params"] == {"lr": 100.0}
    assert values["max_iter"] == 1000
    args = parse("--preset", "paper3", "--decay", "0", "--max-iter", "7",
                 "--lr-params", "{'lr': 3}")
    values = find_values(args, "fc8", args.preset)
    assert (values["decay"], values["max_iter"], values["lr_params"]) == (0.0, 7, {"lr": 3})
    assert values["blur_radius"] == 1.0            # untouched preset value stays


@pytest.mark.parametrize("name, table_row", [
    ("paper1", (0, 0.5, 4, 50, 0)), ("paper2", (0.3, 0, 0, 20, 0)),
    ("paper3", (0.0001, 1.0, 4, 0, 0)), ("paper4", (0, 0.5, 4, 0, 90)),
])
def test_presets_match_the_documented_recipes(name, table_row):
    p = FindParams(**P.resolve({}, name))
    assert (p.decay, p.blur_radius, p.blur_every, p.small_norm_percentile,
            p.px_abs_benefit_percentile) == table_row


def test_flamingo_preset_is_the_recorded_run():
    p = FindParams(**P.resolve({"push_layer": "fc8"}, "flamingo"))
    assert p.push_unit == (130, 0, 0) and p.rand_seed == 0 and p.max_iter == 1000
    assert (p.decay, p.blur_radius, p.blur_every, p.lr_params) == (0.0001, 1.0, 4, {"lr": 100.0})


@pytest.mark.parametrize("flag, value", [
    ("--lr-params", "{'lr': 1"), ("--lr-params", "__import__('os')"),
    ("--push-spatial", "(1, 2"), ("--lr-params", "[1, 2]"), ("--push-spatial", "(1, 2, 3)"),
])
def test_bad_literal_names_the_flag(flag, value):
    with pytest.raises(DeepvisError, match=flag):
        find_values(parse(flag, value), "fc8", None)


def test_lr_params_missing_key_names_policy_and_key():
    values = find_values(parse("--lr-policy", "progress", "--lr-params", "{'max_lr': 1}"),
                         "fc8", None)
    with pytest.raises(DeepvisError, match="desired_prog"):
        FindParams(**values)


def test_push_spatial_none_is_0_0_and_push_dir_must_be_positive():
    assert find_values(parse("--push-spatial", "None"), "fc8", None)["push_spatial"] == (0, 0)
    assert find_values(parse("--push-spatial", "(6,6)"), "fc8", None)["push_spatial"] == (6, 6)
    with pytest.raises(DeepvisError, match="push-dir"):
        FindParams(**find_values(parse("--push-dir", "-1"), "fc8", None))
    assert find_values(parse("--push-dir", "2"), "fc8", None)["push_dir"] == 2.0


def test_units_lists_and_ranges():
    assert P.parse_units("130") == [130]
    assert P.parse_units("0-3") == [0, 1, 2, 3]
    assert P.parse_units("1,130,285") == [1, 130, 285]
    assert P.parse_units(" 5-6 , 9") == [5, 6, 9]
    for bad in ("5-3", "a", "1,,2", "-1", "1,1"):
        with pytest.raises(DeepvisError, match="--push-channel"):
            P.parse_units(bad)


def test_params_listing_is_the_originals():
    p = FindParams(**P.resolve({"push_layer": "fc8"}, "flamingo"))
    text = str(p)
    lines = text.splitlines()
    assert lines[0] == "FindParams:"
    assert "                    blur_every: 4" in lines
    assert "                         decay: 0.0001" in lines
    assert "                     lr_params: {'lr': 100.0}" in lines
    assert "                     push_unit: (130, 0, 0)" in lines
    assert "                      push_dir: 1" in lines
    assert "                   blur_radius: 1.0" in lines
    keys = [line.split(":")[0].strip() for line in lines[1:]]
    assert keys == sorted(keys) and len(keys) == 17


def test_results_listing_format():
    r = FindResults()
    x0 = np.arange(12.0).reshape(3, 2, 2) + 0.5
    for ii in range(6):
        r.update((1, 0, 0), ii, np.float32(ii * 1.3054321), (1 if ii > 2 else 0, 0, 0),
                 x0 * (ii + 1), x0)
    r.finish()
    text = str(r)
    assert text.startswith("FindResults:\n")
    assert "                            ii: [0, 1, ..., 4, 5]" in text
    assert "                           obj: [0.0, 1.30543, ..., 5.22173, 6.52716]" in text
    assert "                         ismax: [False, False, ..., True, True]" in text
    assert "                        idxmax: [(0, 0, 0), (0, 0, 0), ..., (1, 0, 0), (1, 0, 0)]" \
        in text
    assert "                       best_xx: (3, 2, 2) array [3.0, 9.0, ...]" in text
    assert "                   majority_ii: 3" in text
    assert "                   meta_result: Metaresult: majority success" in text
    assert py2_str(3413.050523661234) == "3413.05052366"
    assert py2_str(np.float32(71.186447)) == "71.1864"
    whole = info_text(FindParams(), r)
    assert whole == f"{FindParams()}\n\n{r}\n"
    assert "\n\n\nFindResults:" in whole           # two empty lines between the blocks


def test_output_prefix_template():
    p = FindParams(push_layer="fc8", push_channel=130).as_dict()
    template = "%(p.push_layer)s_%(p.push_channel)04d_%(p.rand_seed)d"
    assert output_prefix("optimize_results/opt", template, p) == "optimize_results/opt_fc8_0130_0_"
    with pytest.raises(KeyError):
        output_prefix("o", "%(r.best_ii)d", p)
    assert output_prefix("o", "%(r.best_ii)d", p, {"best_ii": 9}) == "o_9_"
    with pytest.raises(DeepvisError, match="output-template"):
        output_prefix("o", "%(p.nope)s", p)


def test_montage_quadrant_two_is_what_the_toolbox_cuts():
    tile = 5
    images = [np.full((tile, tile, 3), 10 * (k + 1), np.uint8) for k in range(9)]
    montage = M.unit_montage([None, None, images, None], tile)
    side = montage.shape[0]
    assert montage.shape == (side, side, 3) and side % 2 == 0
    half = side // 2
    cut = montage[half + 3:2 * half - 3, 3:half - 3]        # the toolbox's corner-2 crop
    assert cut.shape == (3 * tile + 2, 3 * tile + 2, 3)
    for k in range(9):
        r, c = divmod(k, 3)
        np.testing.assert_array_equal(cut[r * (tile + 1):r * (tile + 1) + tile,
                                          c * (tile + 1):c * (tile + 1) + tile], images[k])
        np.testing.assert_array_equal(M.grid_image(M.montage_corner(montage), k), images[k])
    # the separating lines and the empty quadrants are background
    assert (cut[tile, :] == M.BACKGROUND).all()
    assert (montage[:half, :] == M.BACKGROUND).all()


def test_sprite_sheet_is_a_square_grid_in_row_major_order():
    images = [np.full((4, 4, 3), k, np.uint8) for k in range(5)]
    sheet = M.sprite_sheet(images, 4)
    assert sheet.shape == (12, 12, 3)                        # ceil(sqrt(5)) = 3 cells a side
    assert sheet[0, 4, 0] == 1 and sheet[4, 0, 0] == 3 and sheet[4, 4, 0] == 4
    assert (sheet[8:, :] == 0).all()


@pytest.mark.parametrize("swap, mean, scale", [
    ((2, 1, 0), [104.0, 117.0, 123.0], 1.0),          # Caffe: xx is the network input itself
    (None, [127.0, 127.0, 127.0], 1 / 128),            # EfficientNet-Lite
    ((0, 1, 2), [123.7, 116.3, 103.5], [1 / 58.4, 1 / 57.1, 1 / 57.4]),   # per channel
])
def test_pixel_space_is_the_models_preprocessing(swap, mean, scale):
    from deepvis.preprocess import Preprocessing, rgb_to_input
    from deepvis.optimize.space import pixel_space

    spec = Preprocessing(input_size=(4, 5), channel_swap=swap, mean=np.array(mean), scale=scale)
    space = pixel_space(spec, (3, 4, 5))
    rgb = np.random.RandomState(0).uniform(0, 255, (4, 5, 3)).astype(np.float32)
    xx = rgb.transpose(2, 0, 1)[list(swap or (0, 1, 2))] - np.array(mean)[:, None, None]
    np.testing.assert_allclose(space.to_input(xx), rgb_to_input(rgb, spec)[0], rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(space.rgb(xx) + space.mean_rgb(), rgb, atol=1e-4)
    if scale == 1.0:
        assert space.to_input(xx).tobytes() == xx.astype(np.float32).tobytes()
        assert space.to_rgb == (2, 1, 0)
    # d/dxx of f(xx * scale) = f'(input) * scale
    grad_input = np.ones((3, 4, 5), np.float32)
    np.testing.assert_allclose(space.grad_to_pixels(grad_input),
                               np.broadcast_to(np.reshape(scale, (-1, 1, 1)), (3, 4, 5)))
    # clipping keeps xx + mean inside [0, 255]
    assert (space.clip(np.full((3, 4, 5), 500.0)) + space.mean).max() == 255
