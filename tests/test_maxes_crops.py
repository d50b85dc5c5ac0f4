"""crop-max-patches: tile placement and montages by hand, then the jpg tree of a
synthetic CaffeNet checked against independent crops and a direct deconv."""
from __future__ import annotations

import cv2
import numpy as np
import onnx
import pytest

from deepvis.cli import main
from deepvis.maxes import crops
from deepvis.maxes.receptive import RegionComputer
from deepvis.maxes.store import read_maxes
from deepvis.preprocess import input_to_rgb
from tests.test_maxes_images import photo_set
from tests.test_maxes_receptive import slim_caffenet


def test_a_crop_cut_by_the_top_or_left_border_sits_at_the_bottom_or_right():
    tile = (10, 8)
    assert crops.placement(((0, 6), (3, 11)), tile) == (slice(4, 10), slice(0, 8))
    assert crops.placement(((5, 15), (0, 5)), tile) == (slice(0, 10), slice(3, 8))
    assert crops.placement(((20, 24), (2, 9)), tile) == (slice(0, 4), slice(0, 7))


def test_image_tiles_hold_the_region_pixels_on_gray():
    rgb = np.arange(20 * 30 * 3, dtype=np.float32).reshape(20, 30, 3) % 251
    tile = crops.image_tile(rgb, ((0, 4), (25, 30)), (7, 7))
    np.testing.assert_array_equal(tile[3:, :5], rgb[0:4, 25:30].astype(np.uint8))
    assert (tile[:3] == crops.GRAY).all() and (tile[:, 5:] == crops.GRAY).all()


def test_gradient_tiles_put_zero_at_gray_and_scale_by_the_larger_side():
    grad = np.zeros((3, 6, 6), np.float32)
    grad[:, 2, 3] = [0.0, -2.0, 4.0]            # BGR order in the network
    signed, norm = crops.gradient_tiles(grad, ((1, 5), (1, 5)), (4, 4), channel_swap=(2, 1, 0))
    assert (signed[0, 0] == 128).all()
    # RGB after undoing the swap: (4, -2, 0) -> 4/8 + .5, -2/8 + .5, .5
    assert signed[1, 2].tolist() == [255, 64, 128]
    assert norm[1, 2].tolist() == [255] * 3 and norm[0, 0].tolist() == [0] * 3


def test_montages_are_three_by_three_tiles_with_dark_lines():
    tiles = [np.full((5, 4, 3), 10 * k, np.uint8) for k in range(7)]
    grid = crops.montage(tiles, (5, 4))
    assert grid.shape == (*crops.montage_size((5, 4)), 3) == (17, 14, 3)
    assert (grid[6:11, 5:9] == 40).all()         # tile 4: row 1, column 1
    assert (grid[5] == crops.LINE_VALUE).all() and (grid[:, 4] == crops.LINE_VALUE).all()
    assert (grid[12:, 10:] == crops.GRAY).all()  # ninth tile missing


@pytest.fixture(scope="module")
def caffenet(tmp_path_factory):
    path = tmp_path_factory.mktemp("caffenet") / "caffenet.onnx"
    onnx.save(slim_caffenet(), str(path))
    return path


@pytest.fixture(scope="module")
def rendered(caffenet, tmp_path_factory):
    folder = tmp_path_factory.mktemp("crops")
    photos = photo_set(folder / "photos", count=12, side=160)
    maxes = folder / "maxes.npz"
    assert main(["find-maxes", str(caffenet), "--images", str(photos), "--layers", "conv5,fc6",
                 "-o", str(maxes), "--framing", "square"]) == 0
    out = folder / "jpg"
    assert main(["crop-max-patches", str(caffenet), str(maxes), "-o", str(out),
                 "--units", "0-1,3", "--batch-size", "9", "--backprop", "--crops", "natural"]) == 0
    import deepvis
    return deepvis.load_model(str(caffenet)), read_maxes(maxes), out


def test_the_jpg_tree_has_the_names_and_montage_sizes_the_toolbox_loads(rendered):
    _, _, out = rendered
    for layer, unit, side in (("conv5", 0, 163), ("conv5", 1, 163), ("fc6", 3, 227)):
        for folder in ("max_im", "max_deconv", "max_bp"):
            image = cv2.imread(str(out / folder / layer / f"{layer}_{unit:04d}.jpg"))
            assert image is not None and image.shape == (3 * side + 2, 3 * side + 2, 3)
    assert sorted(p.name for p in (out / "max_im" / "conv5").iterdir()) == \
        ["conv5_0000.jpg", "conv5_0001.jpg", "conv5_0003.jpg"]


def test_crops_lie_in_the_image_and_hold_the_pixels_around_the_max(rendered):
    model, maxes, out = rendered
    rc = RegionComputer(model.graph)
    table = maxes.tables["conv5"]
    for unit in (0, 1):
        for rank in range(9):
            image, y, x = (int(a[unit, rank]) for a in (table.image_index, table.y, table.x))
            (y0, y1), (x0, x1) = region = rc.region("conv5", y, x)
            assert 0 <= y0 < y1 <= 227 and 0 <= x0 < x1 <= 227
            centre = (y * 16 - 64 + 81, x * 16 - 64 + 81)   # middle of the 163-pixel field
            assert y0 <= centre[0] < y1 and x0 <= centre[1] < x1
            pixels = input_to_rgb(model.preprocess(cv2.imread(str(maxes.images.file(image))))[0],
                                  model.preprocessing)
            crop = cv2.imread(str(out / "conv5" / f"unit_{unit:04d}" /
                                  f"maxim_{rank:03d}.png"))[:, :, ::-1]
            assert crop.shape == (163, 163, 3)
            np.testing.assert_array_equal(crop[crops.placement(region, (163, 163))],
                                          np.clip(np.rint(pixels[y0:y1, x0:x1]), 0, 255))


@pytest.mark.parametrize("mode,name", [("deconv", "deconv"), ("grad", "backprop")])
def test_gradient_tiles_are_the_backward_seeded_at_the_max_and_vanish_outside_the_field(
        rendered, mode, name):
    model, maxes, out = rendered
    table = maxes.tables["conv5"]
    image, y, x = (int(a[1, 0]) for a in (table.image_index, table.y, table.x))
    xin = model.preprocess(cv2.imread(str(maxes.images.file(image))))
    seed = np.zeros((1, *model.blob_shapes["conv5"][1:]), np.float32)
    seed[0, 1, y, x] = 1
    grad = model.backward(xin, "conv5", seed, mode=mode)[0]
    (y0, y1), (x0, x1) = region = RegionComputer(model.graph).region("conv5", y, x)
    outside = np.abs(grad).sum(axis=0)
    outside[y0:y1, x0:x1] = 0
    assert outside.max() == 0 and np.abs(grad).max() > 0
    rgb = grad[::-1, y0:y1, x0:x1].transpose(1, 2, 0)       # BGR network input -> RGB
    expected = np.full((163, 163, 3), 0.5, np.float32)
    expected[crops.placement(region, (163, 163))] = rgb / (2 * np.abs(rgb).max()) + 0.5
    tile = cv2.imread(str(out / "conv5" / "unit_0001" / f"{name}_000.png"))[:, :, ::-1]
    assert np.abs(tile.astype(int) - np.rint(expected * 255)).max() <= 1


def test_info_files_list_the_table(rendered):
    _, maxes, out = rendered
    lines = (out / "fc6" / "unit_0003" / "info.txt").read_text().splitlines()
    table = maxes.tables["fc6"]
    assert lines[0].startswith("# is_conv val image_idx")
    first = lines[1].split()
    assert first[:3] == ["0", f"{table.values[3, 0]:.6f}", str(table.image_index[3, 0])]
    assert first[-1] == maxes.images.paths[table.image_index[3, 0]] and len(lines) == 10


def test_existing_jpgs_are_not_overwritten_without_force(rendered, caffenet, capsys):
    _, maxes, out = rendered
    maxes_file = out.parent / "maxes.npz"
    args = ["crop-max-patches", str(caffenet), str(maxes_file), "-o", str(out), "--units", "0",
            "--layers", "conv5"]
    assert main(args) == 1
    assert "--force" in capsys.readouterr().err


def test_unit_lists_parse_ranges_and_reject_units_outside_the_layer():
    from deepvis.commands.crop_max_patches import parse_units
    from deepvis.errors import DeepvisError

    assert parse_units("3,0-2, 2", 5) == [0, 1, 2, 3]
    assert parse_units(None, 3) == [0, 1, 2]
    for bad in ("4", "2-1", "x"):
        with pytest.raises(DeepvisError):
            parse_units(bad, 4)


def test_the_toolbox_jpgvis_pane_shows_the_montages(rendered):
    jpgs = pytest.importorskip("deepvis.toolbox.jpgs")
    from deepvis.toolbox.fit import resize_to_fit

    _, _, out = rendered
    pane = jpgs.assemble(str(out), "conv5", 1, (600, 200), True, (0, 0, 0), (255, 255, 255))
    assert pane.shape == (600, 200, 3)
    # no optimized image yet: the two montages stack from the top, as the original's loader did
    for k, folder in ((0, "max_im"), (1, "max_deconv")):
        montage = jpgs.read_rgb(str(out / folder / "conv5" / "conv5_0001.jpg"))
        fitted = resize_to_fit(montage, 200, 200)
        np.testing.assert_array_equal(pane[200 * k:200 * k + fitted.shape[0], :fitted.shape[1]],
                                      fitted)
    assert (pane[400:] == 0).all()                       # the rest: plain background


# -- the original's framing and crops, the defaults for Caffe models ----------------------

def numpy_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize with pixel centres at +0.5 and edges clamped, in float64."""
    def axis(n_out, n_in):
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, pos - lo
    y0, y1, fy = axis(height, image.shape[0])
    x0, x1, fx = axis(width, image.shape[1])
    im = image.astype(np.float64)
    top = im[y0][:, x0] * (1 - fx)[None, :, None] + im[y0][:, x1] * fx[None, :, None]
    bottom = im[y1][:, x0] * (1 - fx)[None, :, None] + im[y1][:, x1] * fx[None, :, None]
    return top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]


def squash_227_numpy(path, mean_bgr) -> np.ndarray:
    """The original find_max_acts input, by hand: RGB photo squashed to 256x256, rows and
    columns 14..240, BGR, minus the mean: (3, 227, 227)."""
    rgb = cv2.imread(str(path))[:, :, ::-1]
    crop = numpy_bilinear(rgb, 256, 256)[14:241, 14:241]
    return crop[:, :, ::-1].transpose(2, 0, 1) - np.asarray(mean_bgr)[:, None, None]


@pytest.fixture(scope="module")
def original_way(tmp_path_factory):
    """find-maxes and crop-max-patches with their defaults on a Caffe model whose graph
    records a per-channel mean, as the original templates of GoogLeNet and SqueezeNet."""
    from deepvis.caffe.convert import net_to_onnx
    from deepvis.caffe.parse import parse_prototxt_text
    from deepvis.resources import models_dir
    import re

    folder = tmp_path_factory.mktemp("original-way")
    text = (models_dir() / "caffenet-yos" / "deploy.prototxt").read_text()
    text = re.sub(r"num_output: (\d+)", lambda m: f"num_output: {int(m[1]) // 16}", text)
    path = folder / "caffenet.onnx"
    onnx.save(net_to_onnx(parse_prototxt_text(text), None, random_weights_seed=0,
                          preprocess={"mean": [104.0, 117.0, 123.0]}), str(path))
    photos = photo_set(folder / "photos", count=6, side=180)
    maxes = folder / "maxes.npz"
    assert main(["find-maxes", str(path), "--images", str(photos), "--layers", "conv5",
                 "--top", "3", "-o", str(maxes)]) == 0
    out = folder / "jpg"
    assert main(["crop-max-patches", str(path), str(maxes), "-o", str(out), "--units", "0,2"]) == 0
    import deepvis
    return deepvis.load_model(str(path)), read_maxes(maxes), out, path


def test_the_find_maxes_input_of_a_caffe_model_is_squash_256_then_centre_227(original_way):
    from deepvis.maxes.framing import default_framing
    model, maxes, _, _ = original_way
    assert maxes.info["framing"] == {"how": "squash", "side": 256}
    prep = default_framing(model).preprocessor(model)
    for index in range(len(maxes.images)):
        path = maxes.images.file(index)
        ours = prep(cv2.imread(str(path)))[0]
        expected = squash_227_numpy(path, [104, 117, 123])
        assert ours.shape == expected.shape == (3, 227, 227)
        assert np.abs(ours - expected).max() <= 1.0      # OpenCV's 8-bit resize rounds
    # the recorded maxima are those of that input
    table = maxes.tables["conv5"]
    image, y, x = (int(a[0, 0]) for a in (table.image_index, table.y, table.x))
    blob = model.forward(prep(cv2.imread(str(maxes.images.file(image)))), ["conv5"])["conv5"]
    assert blob[0, 0, y, x] == pytest.approx(float(table.values[0, 0]), rel=1e-5)


def test_original_crops_are_the_mean_subtracted_input_centred_at_gray(original_way):
    from deepvis.maxes.framing import default_framing
    model, maxes, out, _ = original_way
    prep = default_framing(model).preprocessor(model)
    rc = RegionComputer(model.graph)
    table = maxes.tables["conv5"]
    assert not (out / "crops").exists()                           # the original's layout
    for unit in (0, 2):
        for rank in range(3):
            image, y, x = (int(a[unit, rank]) for a in (table.image_index, table.y, table.x))
            blob = prep(cv2.imread(str(maxes.images.file(image))))[0]     # BGR, mean removed
            region = rc.region("conv5", y, x)
            (y0, y1), (x0, x1) = region
            canvas = np.zeros((163, 163, 3), np.float64)
            canvas[crops.placement(region, (163, 163))] = \
                blob[::-1, y0:y1, x0:x1].transpose(1, 2, 0)
            expected = canvas / (max(2 * canvas.max(), -2 * canvas.min()) + 1e-10) + 0.5
            crop = cv2.imread(str(out / "conv5" / f"unit_{unit:04d}" / f"maxim_{rank:03d}.png"))
            assert np.abs(crop[:, :, ::-1].astype(int) - np.rint(expected * 255)).max() <= 1


def test_the_do_flags_write_only_the_chosen_files(original_way, tmp_path):
    model, maxes, _, path = original_way
    out = tmp_path / "jpg"
    maxes_file = out.parent / "maxes.npz"
    from deepvis.maxes.store import write_maxes
    write_maxes(maxes_file, maxes)
    assert main(["crop-max-patches", str(path), str(maxes_file), "-o", str(out), "--units", "1",
                 "--do-deconv-norm", "--do-info"]) == 0
    assert sorted(p.name for p in (out / "conv5" / "unit_0001").iterdir()) == \
        ["deconvnorm_000.png", "deconvnorm_001.png", "deconvnorm_002.png", "info.txt"]
    assert sorted(p.name for p in out.iterdir()) == ["conv5"]          # no montages
    assert main(["crop-max-patches", str(path), str(maxes_file), "-o", str(out / "info-only"),
                 "--units", "1", "--do-info"]) == 0
    assert [p.name for p in (out / "info-only" / "conv5" / "unit_0001").iterdir()] == ["info.txt"]
