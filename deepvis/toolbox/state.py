"""The toolbox's user state and what each key does to it (original-toolbox §5).

Pure: no drawing, no threads, no network. The window holds a lock around `handle`; the
render command replays keys through the same method.

Decisions on the original's quirks (§12):
- An unhandled key leaves a pending redraw alone (the original cleared it, #10).
- `extra_msg` ("h for help") is set at start and on reset; the live window clears it once
  a frame has shown it, as the original (#9); a handled key clears it too, so `deepvis
  render` shows it only when no key came after the start or the last reset.
- Whether the back result is stale is not stored here: the frame compares the result the
  network produced with `back_key()` (see frame.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import DeepvisError
from .tiles import tile_grid

BACK_FILTERS = ("raw", "gray", "norm", "normblur")


@dataclass(frozen=True)
class LayerInfo:
    """One blob of the layer list: its per-image shape and tile grid."""
    name: str
    shape: tuple[int, ...]          # without the batch axis: (C, H, W) or (C,)
    rows: int
    cols: int

    @property
    def n_tiles(self) -> int:
        return self.shape[0]

    @property
    def isconv(self) -> bool:
        return len(self.shape) == 3


def layer_infos(blob_names, blob_shapes, aspect_ratio: float = 1.0,
                hidden=()) -> list[LayerInfo]:
    """The layer list: every blob but the first (the input), minus names containing a
    `hidden` substring (caffevis_filter_layers), and minus blobs that are neither (N, C)
    nor (N, C, H, W): an exporter's intermediate reshapes (group norm's (N, G, -1), say)
    have no units to show."""
    infos = []
    for name in list(blob_names)[1:]:
        if any(part in name for part in hidden):
            continue
        shape = tuple(blob_shapes[name][1:])
        if len(shape) not in (1, 3):
            continue
        rows, cols = tile_grid(shape[0], aspect_ratio)
        infos.append(LayerInfo(name, shape, rows, cols))
    if not infos:
        raise DeepvisError("the network has no blobs to show besides its input")
    return infos


class ToolboxState:
    """Selection, cursor, back-propagation and display modes."""

    def __init__(self, layers: list[LayerInfo], *, boost_indiv_choices=(0, .3, .5, .8, 1),
                 boost_indiv_default_idx: int = 0, boost_gamma_choices=(1, .7, .5, .3),
                 boost_gamma_default_idx: int = 0, fast_move_dist: int = 3,
                 init_show_label_predictions: bool = True, init_show_unit_jpgs: bool = True,
                 help_key: str = "h"):
        self.layers = list(layers)
        self.boost_indiv_choices = tuple(boost_indiv_choices)
        self.boost_gamma_choices = tuple(boost_gamma_choices)
        self._defaults = (boost_indiv_default_idx, boost_gamma_default_idx,
                          init_show_label_predictions, init_show_unit_jpgs)
        self.fast_move_dist = fast_move_dist
        self.help_key = help_key
        self.reset()

    @classmethod
    def from_settings(cls, layers, settings, help_key: str = "h") -> "ToolboxState":
        return cls(layers,
                   boost_indiv_choices=settings["caffevis_boost_indiv_choices"],
                   boost_indiv_default_idx=settings["caffevis_boost_indiv_default_idx"],
                   boost_gamma_choices=settings["caffevis_boost_gamma_choices"],
                   boost_gamma_default_idx=settings["caffevis_boost_gamma_default_idx"],
                   fast_move_dist=settings["caffevis_fast_move_dist"],
                   init_show_label_predictions=settings["caffevis_init_show_label_predictions"],
                   init_show_unit_jpgs=settings["caffevis_init_show_unit_jpgs"],
                   help_key=help_key)

    def reset(self) -> None:
        indiv_idx, gamma_idx, show_labels, show_jpgs = self._defaults
        self.layer_idx = 0
        self.boost_indiv_idx = indiv_idx
        self.boost_gamma_idx = gamma_idx
        self.cursor_area = "top"            # top: layer list, bottom: unit grid
        self.selected_unit = 0
        self.backprop_layer = self.layer
        self.backprop_unit = 0
        self.backprop_selection_frozen = False
        self.back_enabled = False
        self.back_mode = "grad"             # grad or deconv
        self.back_filt_mode = "raw"
        self.pattern_mode = False
        self.layers_pane_zoom_mode = 0      # 0 none, 1 selected unit, 2 back result
        self.layers_show_back = False
        self.show_label_predictions = show_labels
        self.show_unit_jpgs = show_jpgs
        self.extra_msg = f"{self.help_key} for help"

    # -- derived values ---------------------------------------------------------------
    @property
    def info(self) -> LayerInfo:
        return self.layers[self.layer_idx]

    @property
    def layer(self) -> str:
        return self.info.name

    @property
    def boost_indiv(self) -> float:
        return self.boost_indiv_choices[self.boost_indiv_idx]

    @property
    def boost_gamma(self) -> float:
        return self.boost_gamma_choices[self.boost_gamma_idx]

    def back_key(self) -> tuple[str, int, str] | None:
        """What the network must back-propagate now: (layer, unit, mode), or None."""
        if not self.back_enabled:
            return None
        return self.backprop_layer, self.backprop_unit, self.back_mode

    def back_status(self, result_current: bool) -> str:
        """disabled, stale or normal (§2.9); `result_current`: the network has produced the
        back result for `back_key()` on the current frame."""
        if (self.cursor_area == "top" and not self.backprop_selection_frozen) \
                or not self.back_enabled:
            return "disabled"
        return "normal" if result_current else "stale"

    # -- keys -------------------------------------------------------------------------
    def handle(self, tag: str | None) -> bool:
        """Apply the action `tag`; True when the tag is one of the state machine's."""
        action = _ACTIONS.get(tag)
        if action is None:
            return False
        self.extra_msg = ""
        action(self)
        self._clamp_and_follow()
        return True

    def point_at(self, layer_idx: int | None = None, unit: int | None = None) -> None:
        """A pointer's selection: a layer name puts the cursor on that layer (top), a unit
        tile selects that unit of the current layer (bottom)."""
        self.extra_msg = ""
        if layer_idx is not None:
            self.layer_idx = min(max(int(layer_idx), 0), len(self.layers) - 1)
            self.cursor_area = "top"
        if unit is not None:
            self.cursor_area, self.selected_unit = "bottom", int(unit)
        self._clamp_and_follow()

    def _move(self, direction: str, dist: int = 1) -> None:
        cols = self.info.cols
        if direction in ("left", "right"):
            step = -dist if direction == "left" else dist
            if self.cursor_area == "top":
                self.layer_idx = min(max(self.layer_idx + step, 0), len(self.layers) - 1)
            else:
                self.selected_unit += step
        elif direction == "down":
            if self.cursor_area == "top":
                self.cursor_area = "bottom"
            else:
                self.selected_unit += cols * dist
        elif self.cursor_area == "bottom":          # up; nothing happens at the top
            self.selected_unit -= cols * dist
            if self.selected_unit < 0:
                self.selected_unit += cols
                self.cursor_area = "top"

    def _select_layer(self, step: int) -> None:
        self.layer_idx = min(max(self.layer_idx + step, 0), len(self.layers) - 1)

    def _show_back(self) -> None:
        if self.pattern_mode:
            self.pattern_mode = False
        else:
            self.layers_show_back = not self.layers_show_back
        if self.layers_show_back and not self.back_enabled:
            self.back_enabled = True

    def _back_mode(self) -> None:
        if not self.back_enabled:
            self.back_enabled, self.back_mode = True, "grad"
        elif self.back_mode == "grad":
            self.back_mode = "deconv"
        else:
            self.back_enabled = False

    def _ez_back_mode_loop(self) -> None:
        """off -> grad/raw -> grad/norm -> deconv/raw -> off (the original's actual cycle)."""
        if not self.back_enabled:
            self.back_enabled, self.back_mode, self.back_filt_mode = True, "grad", "raw"
        elif (self.back_mode, self.back_filt_mode) == ("grad", "raw"):
            self.back_filt_mode = "norm"
        elif (self.back_mode, self.back_filt_mode) == ("grad", "norm"):
            self.back_mode, self.back_filt_mode = "deconv", "raw"
        else:
            self.back_enabled = False

    def _freeze_back_unit(self) -> None:
        self.backprop_selection_frozen = not self.backprop_selection_frozen
        if self.backprop_selection_frozen:
            self.backprop_layer, self.backprop_unit = self.layer, self.selected_unit

    def _zoom(self) -> None:
        self.layers_pane_zoom_mode = (self.layers_pane_zoom_mode + 1) % 3
        if self.layers_pane_zoom_mode == 2 and not self.back_enabled:
            self.layers_pane_zoom_mode = 0

    def _clamp_and_follow(self) -> None:
        self.selected_unit = min(max(self.selected_unit, 0), self.info.n_tiles - 1)
        if not self.backprop_selection_frozen:
            self.backprop_layer, self.backprop_unit = self.layer, self.selected_unit


def _next_index(attr: str, choices: str):
    def step(state: ToolboxState) -> None:
        setattr(state, attr, (getattr(state, attr) + 1) % len(getattr(state, choices)))
    return step


def _toggle(attr: str):
    def flip(state: ToolboxState) -> None:
        setattr(state, attr, not getattr(state, attr))
    return flip


def _cycle_filter(state: ToolboxState) -> None:
    state.back_filt_mode = BACK_FILTERS[(BACK_FILTERS.index(state.back_filt_mode) + 1)
                                        % len(BACK_FILTERS)]


_ACTIONS = {
    "reset_state": ToolboxState.reset,
    "sel_layer_left": lambda s: s._select_layer(-1),
    "sel_layer_right": lambda s: s._select_layer(1),
    "sel_left": lambda s: s._move("left"),
    "sel_right": lambda s: s._move("right"),
    "sel_down": lambda s: s._move("down"),
    "sel_up": lambda s: s._move("up"),
    "sel_left_fast": lambda s: s._move("left", s.fast_move_dist),
    "sel_right_fast": lambda s: s._move("right", s.fast_move_dist),
    "sel_down_fast": lambda s: s._move("down", s.fast_move_dist),
    "sel_up_fast": lambda s: s._move("up", s.fast_move_dist),
    "boost_individual": _next_index("boost_indiv_idx", "boost_indiv_choices"),
    "boost_gamma": _next_index("boost_gamma_idx", "boost_gamma_choices"),
    "pattern_mode": _toggle("pattern_mode"),
    "show_back": ToolboxState._show_back,
    "back_mode": ToolboxState._back_mode,
    "back_filt_mode": _cycle_filter,
    "ez_back_mode_loop": ToolboxState._ez_back_mode_loop,
    "freeze_back_unit": ToolboxState._freeze_back_unit,
    "zoom_mode": ToolboxState._zoom,
    "toggle_label_predictions": _toggle("show_label_predictions"),
    "toggle_unit_jpgs": _toggle("show_unit_jpgs"),
}
