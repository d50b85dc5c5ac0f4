"""The layers pane: every channel of the current layer, tiled (original-toolbox §2.6)."""
from __future__ import annotations

import math

import numpy as np

from ..fit import paste_fit, resize_to_fit
from ..paint import fill
from ..normalize import NEG_POS_COLOURS, normalize_layer
from ..text import Text, typeset
from ..tiles import as_tile_stack, make_tiles


def draw(view, scene, ctx) -> np.ndarray:
    """Draw the pane; return the per-unit images at full resolution (the aux pane zooms
    into one of them)."""
    state, look = scene.state, ctx.look
    info = state.info
    highres = None
    if state.pattern_mode:
        sprites = ctx.jpgs.sprites(state.layer, info.n_tiles)
        if sprites is not None:
            highres = sprites
            display = _subsample(sprites, view.shape[:2], info.rows, info.cols)
        else:
            display = np.zeros(_tile_shape(info.shape), np.float32)
    elif state.layers_show_back:
        status = state.back_status(ctx.diff_current(scene))
        if status == "disabled":
            display = _flat(info.shape, look.background_01)
        elif status == "stale":
            display = _flat(info.shape, look.stale_01)
        else:
            display = normalize_layer(_tiled_shape(scene.results.diff), state.boost_indiv,
                                      state.boost_gamma, NEG_POS_COLOURS)
    else:
        data = scene.results.blobs[state.layer] if scene.results is not None \
            else np.zeros(info.shape, np.float32)
        display = normalize_layer(_tiled_shape(data), state.boost_indiv, state.boost_gamma)
    stack = as_tile_stack(display.astype(np.float32) / 255 if display.dtype == np.uint8
                          else display)
    pad = look.layer_back_background if state.layers_show_back and not state.pattern_mode \
        else look.background_01
    highlights = {}
    if state.cursor_area == "bottom":
        highlights[state.selected_unit] = look.layer_cursor
    if state.backprop_selection_frozen and state.layer == state.backprop_layer:
        highlights[state.backprop_unit] = look.layer_back_sel
    tiles = make_tiles(stack, info.rows, info.cols, pad, highlights)
    if highres is None:
        highres = stack
    fill(view, look.background)
    if state.layers_pane_zoom_mode == 1:
        paste_fit(view, highres[state.selected_unit])
    elif state.layers_pane_zoom_mode == 2:
        fitted = resize_to_fit(tiles, *view.shape[:2])
        view[:fitted.shape[0], :fitted.shape[1]] = 0
    else:
        paste_fit(view, tiles)
    if ctx.labels and state.layer in ctx.label_layers and state.cursor_area == "bottom" \
            and state.selected_unit < len(ctx.labels):
        typeset(view, [Text(ctx.labels[state.selected_unit], look.label)], *look.label_xy)
    return highres


def _tile_shape(shape) -> tuple:
    return tuple(shape) if len(shape) == 3 else (shape[0], 1, 1)


def _tiled_shape(data: np.ndarray) -> np.ndarray:
    """FC blobs (C,) become (C, 1, 1)."""
    return data.reshape(_tile_shape(data.shape))


def _flat(shape, colour) -> np.ndarray:
    tiles = np.empty(_tile_shape(shape) + (3,), np.float32)
    fill(tiles, colour)
    return tiles


def _subsample(sprites: np.ndarray, pane_shape, rows: int, cols: int) -> np.ndarray:
    """Keep every ds-th pixel so each tile keeps room for its 1-px frame."""
    ds = max(math.ceil(sprites.shape[1] / (pane_shape[0] // rows - 2)),
             math.ceil(sprites.shape[2] / (pane_shape[1] // cols - 2)))
    return sprites[:, ::ds, ::ds] if ds > 1 else sprites
