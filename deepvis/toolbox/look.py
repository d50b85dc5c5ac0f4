"""The visual settings every pane reads, resolved once: colours as 0..255 RGB, fonts as
Styles, text locations as (x, y) (settings give (row, col))."""
from __future__ import annotations

from dataclasses import dataclass

from .text import Style, style_from_settings, to_255


def _xy(loc) -> tuple[int, int]:
    return int(loc[1]), int(loc[0])


@dataclass(frozen=True)
class Look:
    background: tuple
    stale: tuple
    background_01: tuple           # the same colours in [0, 1], for float tile data
    stale_01: tuple
    control: Style
    control_selected: Style
    control_cursor: Style
    control_bp: Style
    control_xy: tuple
    control_line_spacing: int
    status: Style
    status_xy: tuple
    status_line_spacing: int
    class_style: Style
    class_clr_0: tuple
    class_clr_1: tuple
    class_xy: tuple
    class_line_spacing: int
    label: Style
    label_xy: tuple
    help: Style
    help_xy: tuple
    help_line_spacing: int
    layer_cursor: tuple            # [0, 1] colours of tile frames and padding
    layer_back_background: tuple
    layer_back_sel: tuple
    blur_radius: float

    @classmethod
    def from_settings(cls, s) -> "Look":
        control = style_from_settings(s, "caffevis_control")
        return cls(
            background=to_255(s["window_background"]), stale=to_255(s["stale_background"]),
            background_01=tuple(s["window_background"]), stale_01=tuple(s["stale_background"]),
            control=control,
            control_selected=control.but(colour=to_255(s["caffevis_control_clr_selected"]),
                                         thick=int(s["caffevis_control_thick_selected"])),
            control_cursor=control.but(colour=to_255(s["caffevis_control_clr_cursor"]),
                                       thick=int(s["caffevis_control_thick_cursor"])),
            control_bp=control.but(colour=to_255(s["caffevis_control_clr_bp"]),
                                   thick=int(s["caffevis_control_thick_bp"])),
            control_xy=_xy(s["caffevis_control_loc"]),
            control_line_spacing=int(s["caffevis_control_line_spacing"]),
            status=style_from_settings(s, "caffevis_status"),
            status_xy=_xy(s["caffevis_status_loc"]),
            status_line_spacing=int(s["caffevis_status_line_spacing"]),
            class_style=style_from_settings(s, "caffevis_class", colour_key="clr_0"),
            class_clr_0=to_255(s["caffevis_class_clr_0"]),
            class_clr_1=to_255(s["caffevis_class_clr_1"]),
            class_xy=_xy(s["caffevis_class_loc"]),
            class_line_spacing=int(s["caffevis_class_line_spacing"]),
            label=style_from_settings(s, "caffevis_label"),
            label_xy=_xy(s["caffevis_label_loc"]),
            help=style_from_settings(s, "help"),
            help_xy=_xy(s["help_loc"]),
            help_line_spacing=int(s["help_line_spacing"]),
            layer_cursor=tuple(s["caffevis_layer_clr_cursor"]),
            layer_back_background=tuple(s["caffevis_layer_clr_back_background"]),
            layer_back_sel=tuple(s["caffevis_layer_clr_back_sel"]),
            blur_radius=float(s["caffevis_grad_norm_blur_radius"]),
        )
