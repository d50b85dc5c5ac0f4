"""The help screen, drawn over a dimmed copy of the window (original-toolbox §2.12)."""
from __future__ import annotations

import numpy as np

from ..bindings import BASE_HELP_TAGS, CAFFEVIS_HELP_TAGS, binding
from ..text import Text, typeset

TITLE = "~ ~ ~ Deep Visualization Toolbox ~ ~ ~"
LABEL_WIDTH = 120


def draw(buffer: np.ndarray, pane, look, caffevis: bool = True) -> None:
    buffer[:] = (buffer * 0.7).astype(np.uint8)
    view = pane.view(buffer)
    view[:] = (view * 0.7).astype(np.uint8)
    style = look.help
    lines = [[Text(TITLE, style, width=pane.width, align="center")],
             [Text("", style)], [Text("Base keys", style)]]
    lines += [_key_line(tag, style) for tag in BASE_HELP_TAGS]
    if caffevis:
        nav = [binding(t).keys for t in ("sel_left", "sel_right", "sel_up", "sel_down")]
        fast = [binding(t).keys[0] for t in ("sel_left_fast", "sel_right_fast",
                                              "sel_up_fast", "sel_down_fast")]
        text = (f"Navigate with {','.join(k[0] for k in nav)} or {','.join(k[1] for k in nav)}. "
                f"Use {','.join(fast)} to move faster.")
        lines += [[Text("", style)], [Text("Caffevis keys", style)],
                  [Text("", style, width=LABEL_WIDTH, align="right"), Text(text, style)]]
        lines += [_key_line(tag, style) for tag in CAFFEVIS_HELP_TAGS]
    typeset(view, lines, *look.help_xy, line_spacing=look.help_line_spacing)


def _key_line(tag: str, style) -> list[Text]:
    b = binding(tag)
    return [Text(f"{','.join(b.keys):>10}:", style, width=LABEL_WIDTH, align="right"),
            Text(b.help, style)]
