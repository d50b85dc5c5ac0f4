"""Pure drawing pieces: tile grids, normalisation, resize-to-fit, text, layout, pictures."""
import numpy as np
import pytest

from deepvis.errors import DeepvisError
from deepvis.settings import load_settings
from deepvis.vis.back import back_image
from deepvis.toolbox import jpgs
from deepvis.toolbox.fit import paste_fit, resize_to_fit, to_uint8
from deepvis.toolbox.inputs import list_static_files
from deepvis.toolbox.layout import help_pane, panes_from_settings, window_shape
from deepvis.toolbox.normalize import NEG_POS_COLOURS, normalize_layer
from deepvis.toolbox.panes import input as input_pane
from deepvis.toolbox.panes.back import back_display
from deepvis.toolbox.panes.control import pretty_name
from deepvis.toolbox.panes.status import status_text
from deepvis.toolbox.state import LayerInfo, ToolboxState
from deepvis.toolbox.text import Style, Text, text_size, to_255, typeset
from deepvis.toolbox.tiles import as_tile_stack, make_tiles, tile_grid


@pytest.mark.parametrize("n, aspect, grid", [
    (96, 1.0, (10, 10)), (256, 1.0, (16, 16)), (384, 1.0, (20, 20)), (4096, 1.0, (64, 64)),
    (1000, 1.0, (32, 32)), (512, 1200 / 775, (18, 29)), (1, 1.0, (1, 1)), (7, 1.0, (3, 3)),
])
def test_tile_grid_matches_the_originals_table(n, aspect, grid):
    assert tile_grid(n, aspect) == grid


def test_make_tiles_pads_frames_and_trims():
    stack = np.ones((5, 2, 3, 3), np.float32) * np.arange(5)[:, None, None, None]
    pad = (0.5, 0.25, 0.125)
    image = make_tiles(stack, 2, 3, pad, highlights={4: (1.0, 0.0, 0.0)})
    assert image.shape == (2 * 4 - 1, 3 * 5 - 1, 3)
    # tile k's pixels at rows 1+4*r, cols 1+5*c
    for k in range(5):
        r, c = divmod(k, 3)
        assert (image[1 + 4 * r:3 + 4 * r, 1 + 5 * c:4 + 5 * c] == k).all()
    assert tuple(image[0, 0]) == pad and tuple(image[4, 14 - 1]) == pad   # blank 6th tile
    assert tuple(image[4, 6]) == (1, 0, 0)                                 # unit 4's frame, top
    assert tuple(image[6, 5]) == (1, 0, 0)                                 # its left side
    with pytest.raises(ValueError):
        make_tiles(stack, 1, 3, pad)


def test_fc_tiles_grow_to_3x3_and_gray_becomes_colour():
    stack = as_tile_stack(np.arange(4, dtype=np.float32).reshape(4, 1, 1))
    assert stack.shape == (4, 3, 3, 3) and (stack[2] == 2).all()


def test_normalize_global_then_boosts():
    x = np.array([[[0.0, 1.0]], [[2.0, 4.0]]], np.float32)        # (C=2, 1, 2)
    np.testing.assert_allclose(normalize_layer(x), x / 4, atol=1e-6)
    boosted = normalize_layer(x, boost_indiv=1.0)
    np.testing.assert_allclose(boosted.reshape(2, -1).max(axis=1), [1, 1], atol=1e-5)
    half = normalize_layer(x, boost_indiv=0.5)                    # peak -> peak ** 0.5
    np.testing.assert_allclose(half[0].max(), 0.25 ** 0.5, atol=1e-5)
    np.testing.assert_allclose(normalize_layer(x, boost_gamma=0.5), (x / 4) ** 0.5, atol=1e-6)
    with pytest.raises(ValueError):
        normalize_layer(x, boost_indiv=2)


def test_normalize_colours_signs():
    x = np.array([[[-2.0, 0.0, 1.0]]], np.float32)
    out = normalize_layer(x, neg_pos_colours=NEG_POS_COLOURS)
    np.testing.assert_allclose(out[0, 0], [[1, 0, 0], [0, 0, 0], [0, 0.5, 0]], atol=1e-6)


def test_resize_to_fit():
    img = np.zeros((10, 20, 3), np.float32)
    img[:, :10] = 0.999
    out = resize_to_fit(img, 100, 100)                            # grows x5, nearest
    assert out.shape == (50, 100, 3) and out.dtype == np.uint8
    assert set(np.unique(out)) == {0, 254}                        # 0.999 * 255 truncated
    assert resize_to_fit(img, None, 5).shape == (2, 5, 3)
    assert resize_to_fit(img, 40, None).shape == (40, 80, 3)
    assert to_uint8(np.uint8([7]))[0] == 7
    pane = np.full((30, 30, 3), 9, np.uint8)
    paste_fit(pane, np.ones((10, 20, 3), np.float32))
    assert (pane[:15] == 255).all() and (pane[15:] == 9).all()


def test_typeset_wraps_aligns_and_returns_the_next_baseline():
    style = Style()
    w, h = text_size("ab ", style)
    img = np.zeros((80, 2 * w + 5, 3), np.uint8)
    y = typeset(img, [Text("ab", style)] * 3, 0, 20, line_spacing=4, wrap=True)
    assert y == 20 + 2 * (h + 4)                                  # third string wrapped
    right = np.zeros((40, 300, 3), np.uint8)
    typeset(right, [[Text("x", style, width=120, align="right")]], 0, 30)
    cols = np.nonzero(right.any(axis=(0, 2)))[0]
    assert 100 < cols.min() and cols.max() < 121
    assert to_255((0.2, 0.3, 1)) == (51, 76, 255)


def test_layout_from_settings_and_scale():
    s = load_settings()
    panes = panes_from_settings(s)
    assert window_shape(panes) == (930, 1500)
    assert help_pane(s, (930, 1500)) == help_pane(s, (930, 1500))
    hp = help_pane(s, (930, 1500))
    assert (hp.i, hp.j, hp.height, hp.width) == (65, 105, 799, 1290)
    s["global_scale"] = 0.9
    assert window_shape(panes_from_settings(s)) == (837, 1350)
    s["window_panes"] = (("input", (0, 0, 10, 10)), ("caffevis_layers", (0, 10, 10, 20)))
    s["global_scale"] = 1.0
    assert window_shape(panes_from_settings(s)) == (10, 30)
    for bad in ((("input", (0, 0, 1)),), (("input", (0, 0, 1, 1)), ("input", (0, 0, 1, 1))),
                (("aux", (0, 0, 1, 1)),)):
        s["window_panes"] = bad
        with pytest.raises(DeepvisError):
            panes_from_settings(s)


def test_pretty_names_and_status_line():
    rule = [["pool", "p"], ["norm", "n"]]
    assert [pretty_name(n, rule) for n in ("conv1", "pool1", "norm2")] == ["conv1", "p1", "n2"]
    assert pretty_name("conv1", {"conv1": "c1"}) == "c1"
    s = ToolboxState([LayerInfo("conv5", (256, 13, 13), 16, 16)])
    assert status_text(s) == "fwd conv5:0 | Back: off | Boost: 0/1 | h for help"
    for tag in ("sel_down", "sel_right", "back_mode", "back_mode", "boost_gamma"):
        s.handle(tag)
    assert status_text(s, fps=0.84, notice="camera ended") == \
        "fwd conv5:1 | Back: deconv (from conv5_1, disp raw) | Boost: 0/0.7 | FPS: 0.8 | " \
        "camera ended"
    s.handle("show_back")
    assert status_text(s).startswith("back conv5:1")


def test_fifo_cache_evicts_oldest_first():
    cache = jpgs.FifoCache(250)
    for k in range(3):
        cache.set(k, np.zeros(100, np.uint8))
    cache.get(1)                                                  # a get does not refresh
    assert cache.get(0) is None and cache.get(1) is not None and cache.nbytes == 200
    cache.set(3, np.zeros(100, np.uint8))
    assert cache.get(1) is None and len(cache) == 2


def test_montage_corner_and_sprites():
    montage = np.zeros((20, 20, 3), np.uint8)
    montage[10:20, 0:10] = 7
    corner = jpgs.crop_to_corner(montage, 2)
    assert corner.shape == (4, 4, 3) and (corner == 7).all()
    sheet = np.kron(np.arange(9, dtype=np.uint8).reshape(3, 3), np.ones((2, 2), np.uint8))
    sprites = jpgs.split_sprites(np.repeat(sheet[..., None], 3, axis=2), 8)
    assert sprites.shape == (8, 2, 2, 3) and [int(s[0, 0, 0]) for s in sprites] == list(range(8))
    with pytest.raises(ValueError):
        jpgs.split_sprites(np.zeros((7, 7, 3), np.uint8), 8)


def test_static_file_lists(tmp_path):
    for name in ("b.JPG", "a.png", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    assert list_static_files("directory", tmp_path) == ["a.png", "b.JPG"]
    assert list_static_files("directory", tmp_path, ignore_case=False) == ["a.png"]
    lst = tmp_path / "list.txt"
    lst.write_text("x.jpg 3\n\n y.jpg,z.jpg\n")
    assert list_static_files("image_list", tmp_path, list_file=lst) == ["x.jpg", "y.jpg"]
    assert list_static_files("siamese_image_list", tmp_path, list_file=lst) == \
        [("x.jpg", "3"), ("y.jpg", "z.jpg")]
    with pytest.raises(DeepvisError, match="no input images"):
        list_static_files("directory", tmp_path, regexp=r".*\.gif$")
    with pytest.raises(DeepvisError, match="static_files_input_mode"):
        list_static_files("camera", tmp_path)


def test_siamese_input_and_back_panes_split_in_halves():
    left = np.zeros((40, 40, 3), np.uint8)
    right = np.full((40, 40, 3), 200, np.uint8)
    pane = np.full((30, 31, 3), 7, np.uint8)
    input_pane.draw(pane, (left, right), siamese=True)
    assert (pane[:, :15] == 0).all() and (pane[:, 15:30] == 200).all()
    assert (pane[:, 30] == 7).all()
    grad = np.zeros((6, 8, 8), np.float32)
    grad[0:3, :, :4] = 1.0                             # first image: left half positive
    grad[3:6, :, 4:] = -1.0                            # second image: right half negative
    shown = back_display(grad, "raw", None, 4.0, (16, 32))
    assert shown.shape == (16, 32, 3)
    for half, image in ((shown[:, :16], grad[:3]), (shown[:, 16:], grad[3:])):
        np.testing.assert_array_equal(half, resize_to_fit(back_image(image, "raw"), 16, 16))
    assert shown[0, 0, 0] == 255 and shown[0, 31, 0] == 0
