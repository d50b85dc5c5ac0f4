"""Typesetting: strings with their own font, colour and thickness, on lines that may wrap
(original-toolbox §2.2).

OpenCV's Hershey fonts changed in OpenCV 5 (other glyphs and metrics), so pixels match the
original only with OpenCV 4; positions, sizes and wrapping follow the same rules either way.
"""
from __future__ import annotations

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


def text_size(string: str, style: Style) -> tuple[int, int]:
    (w, h), _ = cv2.getTextSize(string, style.face, style.scale, style.thick)
    return w, h


def typeset(image: np.ndarray, lines, x: int, y: int, line_spacing: int = 0,
            wrap: bool = False, between: str = " ") -> int:
    """Draw `lines` (a list of lines, each a list of Text; a flat list is one line) with the
    first baseline at y. Strings on a line are joined by `between`; with `wrap`, a string
    that would cross the right edge starts a new line. Returns the y after the last line."""
    if lines and isinstance(lines[0], Text):
        lines = [lines]
    queue = [list(line) for line in lines]
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
            if wrap and i > 0 and left + w > image.shape[1]:
                queue.insert(0, line[i:])
                break
            cv2.putText(image, string, (left, y), item.style.face, item.style.scale,
                        item.style.colour, item.style.thick)
            tallest = max(tallest, h)
            cursor += w if item.width is None else item.width
        y += tallest + line_spacing
    return y
