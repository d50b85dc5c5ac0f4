"""Rendered frames, checked from their pixels: embedded EfficientNet-Lite0 and a CaffeNet
with synthetic weights (original-toolbox §2)."""

import cv2
import numpy as np
import pytest

from deepvis import load_model
from deepvis.cli import main as cli
from deepvis.settings import load_settings
from deepvis.toolbox.keys import parse_keys
from deepvis.toolbox.layout import panes_from_settings
from deepvis.toolbox.look import Look
from deepvis.toolbox.panes.aux import top_classes
from deepvis.toolbox.session import Session, replay, static_files_for
from deepvis.toolbox.text import to_255, typeset
from tests.fixtures_caffenet import synthetic_caffenet_onnx

BG = (51, 51, 51)                 # window_background (.2,.2,.2) as stored in uint8
CURSOR = (127, 255, 127)          # caffevis_layer_clr_cursor (.5,1,.5)
PANES = {name: pane for name, pane in panes_from_settings(load_settings()).items()}


@pytest.fixture(scope="module")
def cat(tmp_path_factory):
    skdata = pytest.importorskip("skimage.data")
    path = tmp_path_factory.mktemp("inputs") / "cat.png"
    cv2.imwrite(str(path), cv2.cvtColor(skdata.chelsea(), cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def lite():
    return load_model("efficientnet-lite0")


@pytest.fixture(scope="module")
def caffenet(tmp_path_factory):
    folder = tmp_path_factory.getbasetemp() / "synthetic-caffenet"
    folder.mkdir(exist_ok=True)
    onnx_path = synthetic_caffenet_onnx(folder)
    settings = folder / "toolbox.yaml"
    settings.write_text(f"deepvis_model: {onnx_path}\ncaffevis_labels: imagenet-1k\n"
                        "caffevis_label_layers: [fc8, prob]\ncaffevis_prob_layer: prob\n"
                        "caffevis_layer_pretty_names: [[pool, p], [norm, n]]\n")
    return load_model(str(settings))


def render(model, image, keys=""):
    session = Session(model, static_files_for(model.settings, image))
    scene = replay(session, parse_keys(keys))
    return session.drawer.draw(scene), session, scene


def region(frame, name):
    return PANES[name].view(frame)


def bands(mask_1d):
    """(start, stop) of each run of True."""
    edges = np.diff(np.concatenate([[0], mask_1d.astype(int), [0]]))
    return list(zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]))


def tile_cells(layers_pane, pad=BG):
    """Rows and columns of tiles found in the pixels: separators are lines of pad colour
    (or of the background beyond the grid)."""
    is_pad = (layers_pane == pad).all(axis=2) | (layers_pane == BG).all(axis=2)
    rows, cols = bands(~is_pad.all(axis=1)), bands(~is_pad.all(axis=0))
    filled = [(r, c) for r, (r0, r1) in enumerate(rows) for c, (c0, c1) in enumerate(cols)
              if not is_pad[r0:r1, c0:c1].all()]
    return rows, cols, filled


def outlined_unit(layers_pane, n_cols, colour=CURSOR):
    ys, xs = np.nonzero((layers_pane == colour).all(axis=2))
    rows, cols, _ = tile_cells(layers_pane)
    row = next(i for i, (a, b) in enumerate(rows) if a <= ys.mean() < b)
    col = next(i for i, (a, b) in enumerate(cols) if a <= xs.mean() < b)
    assert len(cols) == n_cols
    return row * n_cols + col


def text_rows(pane, background=BG):
    return bands((pane != background).any(axis=(1, 2)))


# -- embedded model ----------------------------------------------------------------------
def test_default_frame_size_tiles_and_top5(lite, cat):
    frame, session, scene = render(lite, cat)
    assert frame.shape == (930, 1500, 3) and frame.dtype == np.uint8
    rows, cols, filled = tile_cells(region(frame, "caffevis_layers"))
    assert len(filled) == lite.blob_shapes["stem"][1] == 32          # first layer: stem
    assert (len(rows), len(cols)) == (6, 6)
    # the aux pane: five lines, exactly the top-5 of an independent forward pass
    aux = region(frame, "caffevis_aux")
    assert len(text_rows(aux)) == 5
    probs = lite.forward(lite.preprocess(cv2.imread(str(cat))), ["prob"])["prob"][0]
    top5 = np.argsort(probs)[::-1][:5]
    look = Look.from_settings(lite.settings)
    lines = top_classes(probs, lite.labels, look)
    assert [line[0].string for line in lines] == \
        [f"{probs[i]:.2f} {lite.labels[i]}" for i in top5]
    expected = np.empty_like(aux)
    expected[:] = BG
    typeset(expected, lines, *look.class_xy, line_spacing=look.class_line_spacing)
    assert np.array_equal(aux, expected)
    # input pane: the centre-cropped image resized to 300x300
    rgb = cv2.cvtColor(cv2.imread(str(cat)), cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    square = rgb[:, (w - h) // 2:(w - h) // 2 + h]
    assert np.array_equal(region(frame, "input"), cv2.resize(square, (300, 300)))


def test_outline_follows_the_arrow_keys(lite, cat):
    frame, session, _ = render(lite, cat, "o*4 down right right down")   # block04: 40 units
    layers = region(frame, "caffevis_layers")
    rows, cols, filled = tile_cells(layers)
    assert len(filled) == 40 and session.state.layer == "block04"
    assert outlined_unit(layers, len(cols)) == len(cols) + 2 == session.state.selected_unit
    frame, _, _ = render(lite, cat, "o*4 down right right down left up")
    assert outlined_unit(region(frame, "caffevis_layers"), len(cols)) == 1
    # the aux pane zooms into the selected unit: no more text, an image
    assert len(text_rows(region(frame, "caffevis_aux"))) == 1


def test_back_pane_grad_then_deconv(lite, cat):
    off, _, _ = render(lite, cat, "o*3 down")
    grad, _, g_scene = render(lite, cat, "o*3 down b")
    deconv, session, d_scene = render(lite, cat, "o*3 down b b b")
    assert (g_scene.results.back, d_scene.results.back) == \
        (("block03", 0, "grad"), ("block03", 0, "deconv"))
    assert (region(off, "caffevis_back") == BG).all()
    for frame in (grad, deconv):
        pane = region(frame, "caffevis_back").astype(float)
        assert pane.std() > 3 and abs(pane.mean() - 127) < 30      # raw: centred on mid-gray
    assert np.abs(region(grad, "caffevis_back").astype(int)
                  - region(deconv, "caffevis_back")).mean() > 2
    status = region(deconv, "caffevis_status")
    assert len(text_rows(status)) == 1


def test_help_appears_and_disappears(lite, cat):
    plain, _, _ = render(lite, cat, "down")
    shown, _, _ = render(lite, cat, "down h")
    hidden, _, _ = render(lite, cat, "down h h")
    assert np.array_equal(plain, hidden)
    assert not np.array_equal(plain, shown)
    corner = shown[:40, :40].astype(int)            # outside the help pane: 0.7 x the frame
    assert np.abs(corner - (plain[:40, :40] * 0.7).astype(int)).max() <= 1
    white = (shown == 255).all(axis=2)
    assert white[65:65 + 799, 105:105 + 1290].sum() > 2000 and white.sum() == \
        white[65:65 + 799, 105:105 + 1290].sum()


def test_missing_jpgvis_files_leave_plain_background(lite, cat, tmp_path):
    frame, session, _ = render(lite, cat, "down")
    assert (region(frame, "caffevis_jpgvis") == BG).all()        # nothing found: nothing drawn
    assert (region(render(lite, cat, "")[0], "caffevis_jpgvis") == BG).all()   # cursor on top
    # some files present: those are stacked from the top, the rest is background
    unit_dir = tmp_path / "unit_jpg_vis"
    max_im = np.zeros((90, 90, 3), np.uint8)
    max_im[:, :, 2] = 200
    (unit_dir / "max_im" / "stem").mkdir(parents=True)
    cv2.imwrite(str(unit_dir / "max_im" / "stem" / "stem_0001.jpg"), max_im)
    montage = np.zeros((40, 40, 3), np.uint8)
    montage[20:, :20, 1] = 220                     # the lower-left quadrant is green
    (unit_dir / "regularized_opt" / "stem").mkdir(parents=True)
    cv2.imwrite(str(unit_dir / "regularized_opt" / "stem" / "stem_0001_montage.png"), montage)
    (unit_dir / "regularized_opt" / "stem" / "stem_0001_montage.png").rename(
        unit_dir / "regularized_opt" / "stem" / "stem_0001_montage.jpg")
    settings = tmp_path / "s.yaml"
    settings.write_text(f"caffevis_unit_jpg_dir: {unit_dir}\ncaffevis_jpgvis_layers: [stem]\n")
    model = load_model("efficientnet-lite0", settings=str(settings))
    pane = region(render(model, cat, "down right")[0], "caffevis_jpgvis")
    top, middle, bottom = pane[:300], pane[300:600], pane[600:]
    assert top[:, :, 1].mean() > 150 and top[:, :, 0].mean() < 40   # green montage corner
    assert middle[:, :, 0].mean() > 150 and middle[:, :, 1].mean() < 40   # the red max image
    assert (bottom == BG).all()
    # only the max image: it comes first, as the original stacked whatever it found
    (unit_dir / "regularized_opt" / "stem" / "stem_0001_montage.jpg").unlink()
    model = load_model("efficientnet-lite0", settings=str(settings))
    pane = region(render(model, cat, "down right")[0], "caffevis_jpgvis")
    assert pane[:300, :, 0].mean() > 150 and (pane[300:] == BG).all()


def test_pattern_mode_tiles_the_sprite_sheet(lite, cat, tmp_path):
    unit_dir = tmp_path / "jpgs"
    (unit_dir / "regularized_opt" / "stem").mkdir(parents=True)
    cells = np.zeros((6, 6, 20, 20, 3), np.uint8)               # 32 units -> 6x6 cells
    for k in range(32):
        cells[k // 6, k % 6] = (8 * k, 255 - 8 * k, 128)
    sheet = cells.transpose(0, 2, 1, 3, 4).reshape(120, 120, 3)
    cv2.imwrite(str(unit_dir / "regularized_opt" / "stem" / "whole_layer.png"),
                cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    (unit_dir / "regularized_opt" / "stem" / "whole_layer.png").rename(
        unit_dir / "regularized_opt" / "stem" / "whole_layer.jpg")
    settings = tmp_path / "s.yaml"
    settings.write_text(f"caffevis_unit_jpg_dir: {unit_dir}\ncaffevis_jpgvis_layers: [stem]\n")
    model = load_model("efficientnet-lite0", settings=str(settings))
    frame, session, _ = render(model, cat, "s down right")
    layers = region(frame, "caffevis_layers")
    rows, cols, filled = tile_cells(layers)
    assert len(filled) == 32
    r0, r1 = rows[0]
    c0, c1 = cols[5]
    assert np.abs(layers[(r0 + r1) // 2, (c0 + c1) // 2].astype(int) - (40, 215, 128)).max() <= 6
    aux = region(frame, "caffevis_aux")                         # unit 1 enlarged
    assert np.abs(aux[150, 150].astype(int) - (8, 247, 128)).max() <= 6
    assert region(frame, "caffevis_status")[..., 0].any()
    blank, _, _ = render(lite, cat, "s down")                   # no sprite sheet: black tiles
    rows, cols, filled = tile_cells(region(blank, "caffevis_layers"))
    (a, b), (c, d) = rows[1], cols[1]
    inside = region(blank, "caffevis_layers")[a + 2:b - 2, c + 2:d - 2]
    assert len(filled) == 32 and (inside == 0).all()


def test_zoom_and_layer_back_view(lite, cat):
    frame, session, _ = render(lite, cat, "o down right z")     # zoom into block01 unit 1
    layers = region(frame, "caffevis_layers")
    assert not (layers == CURSOR).all(axis=2).any()             # no grid, no outline
    assert (layers[:870, :870] != BG).any(axis=2).mean() > 0.99
    frame, session, scene = render(lite, cat, "o*5 down d u u a")   # diff at block03
    assert scene.results.diff_key == ("block03", ("block05", 0, "grad"))
    layers = region(frame, "caffevis_layers")
    back_pad = to_255(lite.settings["caffevis_layer_clr_back_background"])
    rows, cols, filled = tile_cells(layers, pad=back_pad)
    assert len(filled) == 24
    assert (layers[..., 0] > layers[..., 2] + 50).any() and (layers[..., 1] > 200).any()


def test_render_command_writes_the_frame(lite, cat, tmp_path, capsys):
    out = tmp_path / "frame.png"
    args = ["render", "--model", "efficientnet-lite0", "--input", str(cat),
            "--keys", "o down b", "--out", str(out)]
    assert cli(args) == 0
    written = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    assert np.array_equal(written, render(lite, cat, "o down b")[0])
    assert cli(args) == 1 and "exists" in capsys.readouterr().err
    assert cli(args[:-4] + ["--keys", "pg-up", "--out", str(tmp_path / "x.png")]) == 1


# -- CaffeNet with synthetic weights -----------------------------------------------------------
def test_caffenet_conv1_and_fc6_tiles(caffenet, cat):
    frame, _, _ = render(caffenet, cat, "down")
    rows, cols, filled = tile_cells(region(frame, "caffevis_layers"))
    assert (len(rows), len(cols), len(filled)) == (10, 10, 96)
    frame, session, _ = render(caffenet, cat, "o*10 down")      # fc6: 4096 units, 3x3 tiles
    assert session.state.layer == "fc6"
    rows, cols, filled = tile_cells(region(frame, "caffevis_layers"))
    # 64 x 64 = 4096 cells, none blank; an FC tile is one flat colour, which can by chance
    # equal the background (value 51), so a few are not told apart from it
    assert (len(rows), len(cols)) == (64, 64) and len(filled) > 4096 - 64


def test_caffenet_conv5_deconv_and_outline(caffenet, cat):
    grad, _, _ = render(caffenet, cat, "o*8 down right*10 down b")
    frame, session, scene = render(caffenet, cat, "o*8 down right*10 down b b b")
    assert session.state.layer == "conv5" and scene.results.back == ("conv5", 26, "deconv")
    layers = region(frame, "caffevis_layers")
    rows, cols, filled = tile_cells(layers)
    assert (len(rows), len(cols), len(filled)) == (16, 16, 256)
    assert outlined_unit(layers, 16) == 26
    back = region(frame, "caffevis_back").astype(int)
    assert back.std() > 1 and not (back == back[0, 0]).all()
    assert not np.array_equal(back, region(grad, "caffevis_back"))
    control = region(frame, "caffevis_control")
    assert (control == 255).all(axis=2).any()                   # the current layer in bold white
