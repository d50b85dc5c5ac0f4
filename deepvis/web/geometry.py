"""What is under the pointer: a layer name in the control pane, or a unit tile (and the
position in its map) in the layers pane.

The layers pane tiles a (C, h, w) stack into cells of (h + 2, w + 2) pixels, trims the last
row and column, and scales the result to fit the pane (toolbox/tiles.py, fit.py); a
TileGrid inverts that arithmetic for one frame. Layer names are where the control pane
places them (panes/control.placements).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..toolbox.panes import control
from ..toolbox.panes.layers import _subsample


@dataclass(frozen=True)
class TileGrid:
    top: int                  # the layers pane's origin in the frame
    left: int
    n: int                    # tiles
    rows: int
    cols: int
    tile_h: int               # one tile's pixels in the tiled image, before scaling
    tile_w: int
    map_h: int                # the unit's activation map (1 x 1 for a vector blob)
    map_w: int
    shown_h: int              # the tiled image's size in the pane
    shown_w: int

    @property
    def image_h(self) -> int:
        return self.rows * (self.tile_h + 2) - 1

    @property
    def image_w(self) -> int:
        return self.cols * (self.tile_w + 2) - 1

    def unit_at(self, x: int, y: int):
        """(unit, map row, map column) under frame pixel (x, y), or None. The map position
        is None on a tile's frame."""
        px, py = x - self.left, y - self.top
        if not (0 <= px < self.shown_w and 0 <= py < self.shown_h):
            return None
        sx = int(px * self.image_w / self.shown_w)
        sy = int(py * self.image_h / self.shown_h)
        row, oy = divmod(sy, self.tile_h + 2)
        col, ox = divmod(sx, self.tile_w + 2)
        unit = row * self.cols + col
        if unit >= self.n:
            return None
        oy, ox = oy - 1, ox - 1
        if not (0 <= oy < self.tile_h and 0 <= ox < self.tile_w):
            return unit, None
        return unit, (oy * self.map_h // self.tile_h, ox * self.map_w // self.tile_w)


    def centre(self, unit: int) -> tuple[int, int]:
        """Frame pixel (x, y) at the middle of a unit's tile (where a click selects it)."""
        row, col = divmod(unit, self.cols)
        sx = col * (self.tile_w + 2) + 1 + self.tile_w / 2
        sy = row * (self.tile_h + 2) + 1 + self.tile_h / 2
        return (self.left + int(sx * self.shown_w / self.image_w),
                self.top + int(sy * self.shown_h / self.image_h))


def tile_grid(state, drawer) -> TileGrid | None:
    """The current layer's grid as the layers pane draws it; None when it shows no grid
    (zoomed into one unit or the back result)."""
    if state.layers_pane_zoom_mode != 0:
        return None
    pane = drawer.panes["caffevis_layers"]
    info = state.info
    map_h, map_w = info.shape[1:] if info.isconv else (1, 1)
    tile_h, tile_w = (map_h, map_w) if (map_h, map_w) != (1, 1) else (3, 3)
    if state.pattern_mode:
        sprites = drawer.jpgs.sprites(state.layer, info.n_tiles)
        if sprites is not None:
            shown = _subsample(sprites, pane.shape, info.rows, info.cols)
            tile_h, tile_w = shown.shape[1:3]
    image_h = info.rows * (tile_h + 2) - 1
    image_w = info.cols * (tile_w + 2) - 1
    scale = min(pane.height / image_h, pane.width / image_w)
    shown_w, shown_h = max(1, int(image_w * scale)), max(1, int(image_h * scale))
    return TileGrid(pane.i, pane.j, info.n_tiles, info.rows, info.cols, tile_h, tile_w,
                    map_h, map_w, shown_h, shown_w)


def layer_boxes(state, drawer) -> list[tuple[int, int, int, int]]:
    """(top, left, bottom, right) in frame pixels of each layer's name, in layer order."""
    pane = drawer.panes["caffevis_control"]
    placed = control.placements(pane.shape, state, drawer.pretty_names, drawer.look)
    return [(pane.i + t, pane.j + l, pane.i + b, pane.j + r)
            for t, l, b, r in (p.box() for p in placed)]


def layer_at(boxes, x: int, y: int, slack: int = 2):
    """The index of the name under (x, y), a few pixels of slack around each name."""
    for idx, (top, left, bottom, right) in enumerate(boxes):
        if top - slack <= y < bottom + slack and left - slack <= x < right + slack:
            return idx
    return None


def describe(value) -> str:
    """A number for the hover line: 4 significant digits."""
    if value is None or not math.isfinite(float(value)):
        return str(value)
    return f"{float(value):.4g}"
