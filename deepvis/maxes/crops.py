"""Tiles and montages of the per-unit jpgs (original-toolbox §8, §10.3, §2.11).

Every crop of a layer is shown on a tile the size of the layer's receptive field (at
most the image). A crop cut short by the image border is smaller and sits on the fill;
as in the original's crop_max_patches, it goes against the bottom (right) edge of the
tile when the region starts at the image's top (left) edge, otherwise against the top
(left), so the missing part is on the side where the image ended. Nine tiles, best
first in reading order, make a 3x3 montage separated by thin dark lines, the layout
the toolbox's jpgvis pane shows.
"""
from __future__ import annotations

import numpy as np

from ..vis.back import centred, gray3, min_max, to_rgb_hwc

GRID = 3
LINE = 1              # pixels of dark line between montage tiles
LINE_VALUE = 32
GRAY = 128            # fill of a tile outside the crop, and of an empty tile


def placement(region, tile_hw) -> tuple[slice, slice]:
    """Where in a tile of size tile_hw the crop of `region` ((y0, y1), (x0, x1)) goes."""
    out = []
    for (lo, hi), size in zip(region, tile_hw):
        n = hi - lo
        out.append(slice(size - n, size) if lo == 0 else slice(0, n))
    return tuple(out)


def region_slices(region) -> tuple[slice, slice]:
    (y0, y1), (x0, x1) = region
    return slice(y0, y1), slice(x0, x1)


def to_uint8(unit_float: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8, rounded."""
    return np.clip(np.rint(np.asarray(unit_float) * 255.0), 0, 255).astype(np.uint8)


def image_tile(rgb: np.ndarray, region, tile_hw) -> np.ndarray:
    """The pixels a unit saw (rgb: the whole network input as RGB 0..255), on gray."""
    tile = np.full((*tile_hw, 3), GRAY, np.uint8)
    patch = np.clip(np.rint(rgb[region_slices(region)]), 0, 255).astype(np.uint8)
    tile[placement(region, tile_hw)] = patch
    return tile


def gradient_tiles(grad_chw: np.ndarray, region, tile_hw, channel_swap=None):
    """(signed, norm) tiles of an input derivative over the unit's region.

    signed: colours with zero at mid-gray, scaled so the larger side reaches 0 or 1 (the
    original's deconv_*.png); norm: the per-pixel channel norm, min-max scaled
    (deconvnorm_*.png). Both are normalised over the whole tile, zero fill included.
    """
    (y0, y1), (x0, x1) = region
    hwc = to_rgb_hwc(np.asarray(grad_chw)[:, y0:y1, x0:x1], channel_swap)
    canvas = np.zeros((*tile_hw, 3), np.float32)
    canvas[placement(region, tile_hw)] = hwc
    norm = np.sqrt((canvas ** 2).sum(axis=2))
    return to_uint8(centred(canvas)), to_uint8(gray3(min_max(norm)))


def empty_tile(tile_hw) -> np.ndarray:
    return np.full((*tile_hw, 3), GRAY, np.uint8)


def montage(tiles, tile_hw, grid: int = GRID) -> np.ndarray:
    """grid x grid tiles (row-major; missing ones are empty) with dark lines between them."""
    h, w = tile_hw
    out = np.full((*montage_size(tile_hw, grid), 3), LINE_VALUE, np.uint8)
    tiles = list(tiles)[:grid * grid]
    tiles += [empty_tile(tile_hw)] * (grid * grid - len(tiles))
    for k, tile in enumerate(tiles):
        r, c = divmod(k, grid)
        top, left = r * (h + LINE), c * (w + LINE)
        out[top:top + h, left:left + w] = tile
    return out


def montage_size(tile_hw, grid: int = GRID) -> tuple[int, int]:
    return tuple(grid * s + (grid - 1) * LINE for s in tile_hw)
