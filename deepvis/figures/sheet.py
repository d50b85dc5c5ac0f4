"""A labelled grid of pictures: row labels on the left, column titles on top, a caption
under each picture. White paper, black text, as a figure in a paper."""
from __future__ import annotations

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
LABEL_SCALE, CAPTION_SCALE = 0.5, 0.38
GAP = 4
INK = (0, 0, 0)


def text_width(text: str, scale: float) -> int:
    return cv2.getTextSize(text, FONT, scale, 1)[0][0]


def fit(text: str, width: int, scale: float) -> str:
    """Shorten `text` with a trailing '.' until it fits `width` pixels."""
    if text_width(text, scale) <= width:
        return text
    while len(text) > 1 and text_width(text + ".", scale) > width:
        text = text[:-1]
    return text + "."


def put(canvas, text: str, x: int, y: int, scale: float) -> None:
    cv2.putText(canvas, text, (x, y), FONT, scale, INK, 1, cv2.LINE_AA)


def draw_sheet(rows, tile: int, column_titles=None, title: str | None = None,
               caption_lines: int = 1) -> np.ndarray:
    """rows: [(label, [(image or None, [caption lines]), ...]), ...]; images RGB uint8 of
    any size, shown at tile x tile. Returns the sheet, RGB uint8."""
    line = int(round(22 * CAPTION_SCALE)) + 4
    label_w = max([text_width(label, LABEL_SCALE) for label, _ in rows] + [0]) + 2 * GAP
    columns = max((len(cells) for _, cells in rows), default=0)
    cell_w, cell_h = tile + GAP, tile + GAP + caption_lines * line
    top = GAP
    if title:
        top += 24
    if column_titles:
        top += line + GAP
    width = label_w + columns * cell_w + GAP
    height = top + len(rows) * cell_h + GAP
    canvas = np.full((height, width, 3), 255, np.uint8)
    if title:
        put(canvas, fit(title, width - 2 * GAP, LABEL_SCALE), GAP, GAP + 16, LABEL_SCALE)
    if column_titles:
        for c, text in enumerate(column_titles):
            put(canvas, fit(text, tile, CAPTION_SCALE), label_w + c * cell_w, top - GAP - 3,
                CAPTION_SCALE)
    for r, (label, cells) in enumerate(rows):
        y = top + r * cell_h
        put(canvas, label, GAP, y + tile // 2 + 5, LABEL_SCALE)
        for c, (image, captions) in enumerate(cells):
            x = label_w + c * cell_w
            if image is not None:
                canvas[y:y + tile, x:x + tile] = cv2.resize(
                    np.asarray(image, np.uint8), (tile, tile),
                    interpolation=cv2.INTER_AREA if image.shape[0] > tile else cv2.INTER_NEAREST)
            else:
                canvas[y:y + tile, x:x + tile] = 230
            for k, text in enumerate(captions[:caption_lines]):
                put(canvas, fit(text, tile, CAPTION_SCALE), x,
                    y + tile + (k + 1) * line - 2, CAPTION_SCALE)
    return canvas
