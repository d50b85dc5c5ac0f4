"""Typesetting: strings with their own font, colour and thickness, on lines that may wrap
(original-toolbox §2.2).

Text keeps the original's metrics on any OpenCV. OpenCV 2.x-4.x measured a Hershey string
`cap * scale + (thick + 1) // 2` pixels tall (cap 13 for COMPLEX_SMALL, 9 for PLAIN, 21 for
the others), rounded half to even; OpenCV 5 draws other glyphs, taller at the same scale
(22 px against 14 for COMPLEX_SMALL at scale 1). So every style is drawn at the scale the
installed OpenCV's getTextSize says gives the original's height, and lines advance by that
height: heights and line spacing are the original's, widths the installed font's. On
OpenCV 4 the calibrated scale is the requested one and pixels are the original's.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import cv2
import numpy as np


@dataclass(frozen=True)
class Style:
    face: int = cv2.FONT_HERSHEY_COMPLEX_SMALL
    scale: float = 1.0
    colour: tuple = (204, 204, 204)   # 0..255 RGB (the window buffer is RGB)
    thick: int = 1

    def but(self, **changes) -> "Style":
        return replace(self, **changes)


@dataclass(frozen=True)
class Text:
    string: str
    style: Style
    width: int | None = None          # a fixed field width, else the text's own
    align: str = "left"               # left, right or center inside `width`


def style_from_settings(settings, prefix: str, colour_key: str = "clr") -> Style:
    """The Style of `<prefix>_face/_fsize/_<colour_key>/_thick`; a font size nobody set
    follows global_font_size, as the original's defaults do."""
    size_key = f"{prefix}_fsize"
    scale = float(settings[size_key])
    explicit = getattr(settings, "explicit", frozenset(settings))
    if size_key not in explicit:
        scale *= float(settings.get("global_font_size", 1.0))
    return Style(face=font_face(settings[f"{prefix}_face"]), scale=scale,
                 colour=to_255(settings[f"{prefix}_{colour_key}"]),
                 thick=int(settings[f"{prefix}_thick"]))


def font_face(name) -> int:
    if isinstance(name, int):
        return name
    face = getattr(cv2, str(name), None)
    if not isinstance(face, int) or not str(name).startswith("FONT_"):
        raise ValueError(f"unknown OpenCV font {name!r}; use e.g. FONT_HERSHEY_COMPLEX_SMALL")
    return face


def to_255(colour) -> tuple[int, ...]:
    """A [0, 1] RGB setting as 0..255 ints, truncated as a uint8 buffer would store it."""
    return tuple(int(c * 255) for c in colour)


# Cap heights of the Hershey faces at scale 1 in OpenCV 2.x-4.x (measured with getTextSize).
REFERENCE_CAP = {cv2.FONT_HERSHEY_COMPLEX_SMALL: 13, cv2.FONT_HERSHEY_PLAIN: 9}
DEFAULT_CAP = 21


def reference_height(face: int, scale: float, thick: int) -> int:
    """The height OpenCV 4's getTextSize gives a string in this font (any string)."""
    cap = REFERENCE_CAP.get(face & 15, DEFAULT_CAP)
    return max(1, round(cap * scale + (thick + 1) // 2))


def installed_height(face: int, scale: float, thick: int) -> int:
    return cv2.getTextSize("Ag", face, scale, thick)[0][1]


@functools.lru_cache(maxsize=256)
def render_scale(face: int, scale: float, thick: int) -> float:
    """The scale at which the installed OpenCV draws this style at the original's height:
    `scale` itself where the metrics agree (OpenCV 4), else the largest scale that gives the
    reference height (found by bisection from the ratio of the two heights)."""
    want = reference_height(face, scale, thick)
    if scale <= 0 or installed_height(face, scale, thick) == want:
        return scale
    lo, hi = 0.0, 2.0 * scale * want / max(1, installed_height(face, scale, thick))
    while installed_height(face, hi, thick) <= want:
        lo, hi = hi, 2 * hi
    for _ in range(40):                     # largest scale whose height is <= want
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if installed_height(face, mid, thick) <= want else (lo, mid)
    return lo if lo > 0 else scale


def text_size(string: str, style: Style) -> tuple[int, int]:
    """(width on the installed OpenCV, the original's height) of `string` as drawn."""
    scale = render_scale(style.face, style.scale, style.thick)
    (w, _), _ = cv2.getTextSize(string, style.face, scale, style.thick)
    return w, reference_height(style.face, style.scale, style.thick)


def descent(style: Style) -> int:
    """Pixels the installed font may reach below the baseline (g, p, y)."""
    scale = render_scale(style.face, style.scale, style.thick)
    return cv2.getTextSize("gpy", style.face, scale, style.thick)[1]


@dataclass(frozen=True)
class Placed:
    """One string where `typeset` draws it: x of its left edge, y of its baseline."""
    string: str
    style: Style
    x: int
    y: int
    width: int
    height: int

    def box(self) -> tuple[int, int, int, int]:
        """(top, left, bottom, right), bottom and right exclusive: where its ink can be."""
        return self.y - self.height, self.x, self.y + descent(self.style) + 1, \
            self.x + self.width


def layout(lines, x: int, y: int, right_edge: int, line_spacing: int = 0, wrap: bool = False,
           between: str = " ") -> tuple[list[Placed], int]:
    """Where `typeset` puts each string, and the y after the last line (see typeset)."""
    if lines and isinstance(lines[0], Text):
        lines = [lines]
    queue = [list(line) for line in lines]
    placed = []
    while queue:
        line = queue.pop(0)
        cursor, tallest = x, 0
        for i, item in enumerate(line):
            string = item.string + (between if i < len(line) - 1 else "")
            w, h = text_size(string, item.style)
            left = cursor
            if item.width is not None and item.align == "right":
                left += item.width - w
            elif item.width is not None and item.align == "center":
                left += (item.width - w) // 2
            if wrap and i > 0 and left + w > right_edge:
                queue.insert(0, line[i:])
                break
            placed.append(Placed(string, item.style, left, y, w, h))
            tallest = max(tallest, h)
            cursor += w if item.width is None else item.width
        y += tallest + line_spacing
    return placed, y


def draw_placed(image: np.ndarray, placed) -> None:
    for p in placed:
        cv2.putText(image, p.string, (p.x, p.y), p.style.face,
                    render_scale(p.style.face, p.style.scale, p.style.thick),
                    p.style.colour, p.style.thick)


def typeset(image: np.ndarray, lines, x: int, y: int, line_spacing: int = 0,
            wrap: bool = False, between: str = " ") -> int:
    """Draw `lines` (a list of lines, each a list of Text; a flat list is one line) with the
    first baseline at y. Strings on a line are joined by `between`; with `wrap`, a string
    that would cross the right edge starts a new line. Each line advances y by its tallest
    string plus `line_spacing`. Returns the y after the last line."""
    placed, y = layout(lines, x, y, image.shape[1], line_spacing, wrap, between)
    draw_placed(image, placed)
    return y


def fit_layout(lines, x: int, y: int, shape, line_spacing: int = 0, wrap: bool = True,
               between: str = " ", min_factor: float = 0.4) -> list[Placed]:
    """layout() of `lines` in a pane of `shape` (rows, cols); when the text would run past
    the bottom, every style is made smaller (5% a step) until it fits, so nothing is cut."""
    factor = 1.0
    while True:
        scaled = lines if factor == 1.0 else _rescaled(lines, factor)
        placed, _ = layout(scaled, x, y, shape[1], line_spacing, wrap, between)
        if all(p.box()[2] <= shape[0] and p.box()[3] <= shape[1] for p in placed) \
                or factor <= min_factor:
            return placed
        factor *= 0.95


def _rescaled(lines, factor: float):
    if lines and isinstance(lines[0], Text):
        lines = [lines]
    return [[replace(t, style=t.style.but(scale=t.style.scale * factor)) for t in line]
            for line in lines]
