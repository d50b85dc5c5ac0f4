"""debug_window_panes: each pane dimmed, outlined and labelled (original-toolbox §2.1)."""
from __future__ import annotations

import numpy as np

from ..text import Text, typeset

DEBUG_COLOUR = (255, 64, 64)


def draw(buffer: np.ndarray, panes, look) -> None:
    style = look.help.but(colour=DEBUG_COLOUR)
    for pane in panes.values():
        view = pane.view(buffer)
        view[:] = (view * 0.5).astype(np.uint8)
        items = [Text(f"{pane.name} |", style), Text(f"pos: {pane.i},{pane.j} |", style),
                 Text(f"shape: {pane.height},{pane.width}", style)]
        typeset(view, items, 5, 20, line_spacing=5, wrap=True)
        view[0], view[-1], view[:, 0], view[:, -1] = (DEBUG_COLOUR,) * 4
