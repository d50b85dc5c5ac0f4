"""Which key does what: the original toolbox's bindings, as data (original-toolbox §4).

Tags name actions; the window (base tags) or the state machine (caffevis tags) acts on
them. Every key name is bound to at most one tag.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Binding:
    tag: str
    keys: tuple[str, ...]
    help: str


BASE_BINDINGS = (
    Binding("freeze_cam", ("f",), "Freeze or unfreeze the camera image"),
    Binding("toggle_input_mode", ("c",), "Switch between the camera and static files"),
    Binding("static_file_increment", ("e", "pgdn"), "Next static file"),
    Binding("static_file_decrement", ("w", "pgup"), "Previous static file"),
    Binding("help_mode", ("h",), "Show or hide this help"),
    Binding("stretch_mode", ("0",), "Stretch static files to a square instead of cropping"),
    Binding("debug_level", ("5",), "Cycle the debug level: 0 quiet, 1 some timing, 2 all timing"),
    Binding("quit", ("q",), "Quit"),
)

CAFFEVIS_BINDINGS = (
    Binding("reset_state", ("esc",), "Reset: back off, first layer, unit 0, default boosts"),
    Binding("sel_left", ("left", "j"), ""),
    Binding("sel_right", ("right", "l"), ""),
    Binding("sel_down", ("down", "k"), ""),
    Binding("sel_up", ("up", "i"), ""),
    Binding("sel_left_fast", ("J",), ""),
    Binding("sel_right_fast", ("L",), ""),
    Binding("sel_down_fast", ("K",), ""),
    Binding("sel_up_fast", ("I",), ""),
    Binding("sel_layer_left", ("u", "U"), "Previous layer, cursor stays where it is"),
    Binding("sel_layer_right", ("o", "O"), "Next layer, cursor stays where it is"),
    Binding("zoom_mode", ("z",), "Zoom cycle: selected unit, back result, none"),
    Binding("pattern_mode", ("s",), "Show each unit's optimized input pattern instead of "
                                    "its activation"),
    Binding("ez_back_mode_loop", ("b",), "Cycle common back modes: grad, grad norm, deconv, off"),
    Binding("freeze_back_unit", ("d",), "Freeze the grad/deconv origin at the selected unit"),
    Binding("show_back", ("a",), "Layers pane: forward activations or back/deconv diffs"),
    Binding("back_mode", ("n",), "(expert) Next back mode: grad, deconv, off"),
    Binding("back_filt_mode", ("m",), "(expert) Next back filter: raw, gray, norm, normblur"),
    Binding("boost_gamma", ("t",), "Next gamma for more contrast"),
    Binding("boost_individual", ("T",), "Next per-channel boost: stretch each unit to its "
                                        "own range"),
    Binding("toggle_label_predictions", ("8",), "Show or hide the top-5 class list"),
    Binding("toggle_unit_jpgs", ("9",), "Show or hide the per-unit images"),
)

BINDINGS = BASE_BINDINGS + CAFFEVIS_BINDINGS
BASE_TAGS = frozenset(b.tag for b in BASE_BINDINGS)

# The help screen lists these, in this order; the arrow tags share one line.
BASE_HELP_TAGS = ("help_mode", "freeze_cam", "toggle_input_mode", "static_file_increment",
                  "static_file_decrement", "stretch_mode", "quit")
CAFFEVIS_HELP_TAGS = ("sel_layer_left", "sel_layer_right", "zoom_mode", "pattern_mode",
                      "ez_back_mode_loop", "freeze_back_unit", "show_back", "back_mode",
                      "back_filt_mode", "boost_gamma", "boost_individual", "reset_state")


def _key_index(bindings) -> dict[str, str]:
    index: dict[str, str] = {}
    for binding in bindings:
        for key in binding.keys:
            if key in index:
                raise ValueError(f"key {key!r} cannot be bound to {binding.tag!r}: it is "
                                 f"already bound to {index[key]!r}")
            index[key] = binding.tag
    return index


_TAG_OF_KEY = _key_index(BINDINGS)
_BY_TAG = {b.tag: b for b in BINDINGS}


def tag_for(key: str | None) -> str | None:
    return _TAG_OF_KEY.get(key) if key is not None else None


def binding(tag: str) -> Binding:
    return _BY_TAG[tag]
