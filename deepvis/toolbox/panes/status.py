"""The status line (original-toolbox §2.5): one line, segments joined by spaces."""
from __future__ import annotations

from ..paint import fill
from ..text import Text, typeset


def status_text(state, fps: float = 0.0, notice: str = "") -> str:
    mode = "pattern" if state.pattern_mode else ("back" if state.layers_show_back else "fwd")
    parts = [mode, f"{state.layer}:{state.selected_unit} |"]
    if state.back_enabled:
        parts.append("Back: " + ("deconv" if state.back_mode == "deconv" else "bprop"))
        parts.append(f"(from {state.backprop_layer}_{state.backprop_unit}, "
                     f"disp {state.back_filt_mode})")
    else:
        parts.append("Back: off")
    parts += ["|", f"Boost: {state.boost_indiv:g}/{state.boost_gamma:g}"]
    if fps > 0:
        parts.append(f"| FPS: {fps:.1f}")
    for message in (state.extra_msg, notice):
        if message:
            parts.append(f"| {message}")
    return " ".join(parts)


def draw(view, text: str, look) -> None:
    fill(view, look.background)
    typeset(view, [Text(text, look.status)], *look.status_xy,
            line_spacing=look.status_line_spacing)
