"""Per-unit montages and the per-layer sprite sheet the toolbox's jpgvis pane reads.

A unit's `<layer>_<unit:04d>_montage.jpg` is square: 2x2 quadrants, each a 3x3 grid of
optimized images with 1-pixel lines between them, inside a 3-pixel border. The toolbox
shows quadrant 2 (lower left), cutting rows [half+3, 2*half-3) and columns [3, half-3)
(original-toolbox §3.4), which is exactly that quadrant's grid. `whole_layer.jpg` is a
square grid of ceil(sqrt(C))^2 equal cells, one image per unit in row-major order (§2.6).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

BORDER = 3          # the toolbox's small padding 1 + large padding 2
LINE = 1            # between the images of a 3x3 grid
GRID = 3
BACKGROUND = (51, 51, 51)   # window_background (.2, .2, .2), so lines read as thin dark rules
SHOWN_CORNER = 2


def grid_side(tile: int) -> int:
    return GRID * tile + (GRID - 1) * LINE


def montage_side(tile: int) -> int:
    return 2 * (grid_side(tile) + 2 * BORDER)


def unit_montage(quadrants, tile: int) -> np.ndarray:
    """quadrants: four entries (0 top-left, 1 top-right, 2 lower-left, 3 lower-right), each
    None (left as background) or up to 9 (tile, tile, 3) uint8 RGB images in row-major order."""
    side = montage_side(tile)
    half = side // 2
    canvas = np.empty((side, side, 3), np.uint8)
    canvas[:] = BACKGROUND
    for corner, images in enumerate(quadrants):
        if images is None:
            continue
        top, left = (corner // 2) * half + BORDER, (corner % 2) * half + BORDER
        for k, image in enumerate(images):
            r, c = divmod(k, GRID)
            y, x = top + r * (tile + LINE), left + c * (tile + LINE)
            canvas[y:y + tile, x:x + tile] = image
    return canvas


def montage_corner(montage: np.ndarray, corner: int = SHOWN_CORNER) -> np.ndarray:
    """The grid of one quadrant, cut as the toolbox's loader cuts corner 2."""
    half = montage.shape[0] // 2
    top, left = (corner // 2) * half, (corner % 2) * half
    return montage[top + BORDER:top + half - BORDER, left + BORDER:left + half - BORDER]


def grid_image(grid: np.ndarray, k: int) -> np.ndarray:
    """Image k (row-major) of a 3x3 grid cut by montage_corner."""
    tile = (grid.shape[0] - (GRID - 1) * LINE) // GRID
    r, c = divmod(k, GRID)
    y, x = r * (tile + LINE), c * (tile + LINE)
    return grid[y:y + tile, x:x + tile]


def sprite_sheet(images, cell: int) -> np.ndarray:
    """One image per unit on a square grid of ceil(sqrt(C)) cells a side; empty cells black."""
    n = len(images)
    side = math.ceil(math.sqrt(n))
    sheet = np.zeros((side * cell, side * cell, 3), np.uint8)
    for k, image in enumerate(images):
        r, c = divmod(k, side)
        if image.shape[:2] != (cell, cell):
            image = cv2.resize(image, (cell, cell), interpolation=cv2.INTER_AREA)
        sheet[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = image
    return sheet
