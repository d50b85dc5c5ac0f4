"""The aux pane: the selected unit enlarged, or the top-5 classes (original §2.10)."""
from __future__ import annotations

import numpy as np

from ..fit import paste_fit
from ..paint import fill
from ..text import Text, typeset


def draw(view, scene, ctx, highres) -> None:
    state, look = scene.state, ctx.look
    fill(view, look.background)
    if state.cursor_area == "bottom":
        paste_fit(view, highres[state.selected_unit])
    elif ctx.labels and state.show_label_predictions and ctx.prob_layer \
            and scene.results is not None:
        typeset(view, top_classes(scene.results.blobs[ctx.prob_layer], ctx.labels, look),
                *look.class_xy, line_spacing=look.class_line_spacing)


def top_classes(probs: np.ndarray, labels, look, k: int = 5) -> list[list[Text]]:
    """One line per class, "0.27 Egyptian cat", greener the more probable."""
    flat = np.asarray(probs, np.float64).reshape(-1)
    lines = []
    for idx in np.argsort(-flat, kind="stable")[:k]:
        p = flat[idx]
        colour = tuple(int(min(255, max(0, c1 * p + c0 * (1 - p))))
                       for c0, c1 in zip(look.class_clr_0, look.class_clr_1))
        label = labels[idx] if idx < len(labels) else str(idx)
        lines.append([Text(f"{p:.2f} {label}", look.class_style.but(colour=colour))])
    return lines
