"""Tile a layer's channels into one image (original-toolbox §2.6 steps 2, 6-9).

Decision on quirk #11: like the original, the last pixel row and column of the grid are
trimmed, so the bottom/right frame of the last tile row/column is cut.
"""
from __future__ import annotations

import math

import numpy as np

from .paint import fill


def tile_grid(n_tiles: int, aspect_ratio: float = 1.0) -> tuple[int, int]:
    """(rows, cols) for n tiles, cols = ceil(sqrt(n * aspect)), filled row-major."""
    cols = int(math.ceil(math.sqrt(n_tiles * aspect_ratio)))
    return int(math.ceil(n_tiles / cols)), cols


def as_tile_stack(display: np.ndarray) -> np.ndarray:
    """(C, H, W) gray or (C, H, W, 3) colour in [0, 1] -> (C, H, W, 3); 1x1 tiles become 3x3
    so a highlight frame stays in proportion."""
    if display.ndim == 3:
        display = display[..., None]
    if display.shape[3] == 1:
        display = np.repeat(display, 3, axis=3)
    if display.shape[1:3] == (1, 1):
        display = np.repeat(np.repeat(display, 3, axis=1), 3, axis=2)
    return display


def make_tiles(stack: np.ndarray, rows: int, cols: int, pad_colour,
               highlights: dict[int, tuple] | None = None) -> np.ndarray:
    """Pad each (H, W, 3) tile by one pixel, frame highlighted tiles in their colour, lay
    them out row-major and trim the last pixel row and column."""
    n, h, w, c = stack.shape
    if n > rows * cols:
        raise ValueError(f"{rows} rows x {cols} columns cannot hold {n} tiles")
    grid = np.empty((rows * cols, h + 2, w + 2, c), stack.dtype)
    fill(grid, pad_colour)
    grid[:n, 1:-1, 1:-1] = stack
    for unit, colour in (highlights or {}).items():
        frame = grid[unit]
        frame[0], frame[-1], frame[:, 0], frame[:, -1] = colour, colour, colour, colour
    image = grid.reshape(rows, cols, h + 2, w + 2, c).transpose(0, 2, 1, 3, 4)
    image = image.reshape(rows * (h + 2), cols * (w + 2), c)
    return image[:-1, :-1]
