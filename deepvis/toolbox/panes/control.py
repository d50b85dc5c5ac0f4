"""The control pane: every layer's short name, the current one highlighted (§2.4)."""
from __future__ import annotations

from ..paint import fill
from ..text import Text, draw_placed, fit_layout


def draw(view, state, pretty_names, look) -> None:
    fill(view, look.background)
    draw_placed(view, placements(view.shape[:2], state, pretty_names, look))


def placements(shape, state, pretty_names, look):
    """Where each layer name goes: wrapped as the original, and made smaller only if the
    list would otherwise run out of the pane (every name stays visible)."""
    items = []
    for idx, (info, pretty) in enumerate(zip(state.layers, pretty_names)):
        frozen_here = state.backprop_selection_frozen and info.name == state.backprop_layer
        style = look.control_bp if frozen_here else look.control
        if idx == state.layer_idx:
            if state.cursor_area == "top":
                style = look.control_cursor
            elif not frozen_here:
                style = look.control_selected
        items.append(Text(pretty, style))
    return fit_layout(items, *look.control_xy, shape, line_spacing=look.control_line_spacing)


def pretty_name(name: str, rule) -> str:
    """caffevis_layer_pretty_names: [old, new] replacements in order, or (the original's
    older form) a dict of whole names."""
    if isinstance(rule, dict):
        return rule.get(name, name)
    for old, new in rule or ():
        name = name.replace(old, new)
    return name
