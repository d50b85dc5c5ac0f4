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


# The help texts are the original's own, word for word: the help screen reads as it did.
BASE_BINDINGS = (
    Binding("freeze_cam", ("f",), "Freeze or unfreeze camera capture"),
    Binding("toggle_input_mode", ("c",), "Toggle between camera and static files"),
    Binding("static_file_increment", ("e", "pgdn"), "Load next static file"),
    Binding("static_file_decrement", ("w", "pgup"), "Load previous static file"),
    Binding("help_mode", ("h",), "Toggle this help screen"),
    Binding("stretch_mode", ("0",), "Toggle between cropping and stretching static files to "
                                    "be square"),
    Binding("debug_level", ("5",), "Cycle debug level between 0 (quiet), 1 (some timing info) "
                                   "and 2 (all timing info)"),
    Binding("quit", ("q",), "Quit"),
)

CAFFEVIS_BINDINGS = (
    Binding("reset_state", ("esc",), "Reset: turn off backprop, reset to layer 0, unit 0, "
                                     "default boost."),
    Binding("sel_left", ("left", "j"), ""),
    Binding("sel_right", ("right", "l"), ""),
    Binding("sel_down", ("down", "k"), ""),
    Binding("sel_up", ("up", "i"), ""),
    Binding("sel_left_fast", ("J",), ""),
    Binding("sel_right_fast", ("L",), ""),
    Binding("sel_down_fast", ("K",), ""),
    Binding("sel_up_fast", ("I",), ""),
    Binding("sel_layer_left", ("u", "U"), "Select previous layer without moving cursor"),
    Binding("sel_layer_right", ("o", "O"), "Select next layer without moving cursor"),
    Binding("zoom_mode", ("z",), "Cycle zooming through {currently selected unit, backprop "
                                 "results, none}"),
    Binding("pattern_mode", ("s",), "Toggle overlay of preferred input pattern (regularized "
                                    "optimized images)"),
    Binding("ez_back_mode_loop", ("b",), "Cycle through a few common backprop/deconv modes"),
    Binding("freeze_back_unit", ("d",), "Freeze the bprop/deconv origin to be the currently "
                                        "selected unit"),
    Binding("show_back", ("a",), "Toggle between showing forward activations and back/deconv "
                                 "diffs"),
    Binding("back_mode", ("n",), "(expert) Change back mode directly."),
    Binding("back_filt_mode", ("m",), "(expert) Change back output filter directly."),
    Binding("boost_gamma", ("t",), "Boost contrast using gamma correction"),
    Binding("boost_individual", ("T",), "Boost contrast by scaling each channel to use more of "
                                        "its individual range"),
    Binding("toggle_label_predictions", ("8",), "Turn on or off display of prob label values"),
    Binding("toggle_unit_jpgs", ("9",), "Turn on or off display of loaded jpg visualization"),
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
