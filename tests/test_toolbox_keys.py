"""Key codes, key names and the original's bindings."""
import pytest

from deepvis.toolbox import bindings
from deepvis.toolbox.keys import KeyReader, key_name, parse_keys


@pytest.mark.parametrize("code, name", [
    (ord("a"), "a"), (ord("T"), "T"), (ord("5"), "5"), (27, "esc"), (13, "enter"), (10, "enter"),
    (0xff51, "left"), (0xff52, "up"), (0xff53, "right"), (0xff54, "down"),   # X11 (GTK, Qt)
    (0xff55, "pgup"), (0xff56, "pgdn"),
    (0xf700, "up"), (0xf701, "down"), (0xf702, "left"), (0xf703, "right"),   # macOS
    (0xf72c, "pgup"), (0xf72d, "pgdn"),
    (0x250000, "left"), (0x280000, "down"),                                  # Windows
    (0x100000 | ord("j"), "j"),          # high bits (modifier flags) are masked off for letters
    (0xffe1, "shift"), (0xffe4, "ctrl"),
])
def test_codes_map_to_names(code, name):
    assert key_name(code) == name


def test_wider_masks_win_and_unknown_codes_have_no_name():
    # 0xff51's low byte is 'Q': the 16-bit pattern must be tried first.
    assert key_name(0xff51) == "left" and key_name(ord("Q")) == "Q"
    assert key_name(0xffff) is None and key_name(0x1b00) is None


def test_reader_restores_capitals_after_shift_only_for_the_next_letter():
    reader = KeyReader()
    names = [reader.name(c) for c in (0xffe1, ord("j"), ord("j"), 0xffe2, ord("L"), 0xffe1,
                                      0xff51, ord("t"))]
    assert names == ["shift", "J", "j", "shift", "L", "shift", "left", "t"]


def test_parse_keys():
    assert parse_keys("o*3 down, right*2 b esc bb") == \
        ["o", "o", "o", "down", "right", "right", "b", "esc", "b", "b"]
    assert parse_keys("") == [] and parse_keys(None) == []
    for bad in ("pg-up", "right*x", "é"):
        with pytest.raises(ValueError):
            parse_keys(bad)


def test_bindings_are_the_originals():
    expected = {
        "freeze_cam": ("f",), "toggle_input_mode": ("c",), "static_file_increment": ("e", "pgdn"),
        "static_file_decrement": ("w", "pgup"), "help_mode": ("h",), "stretch_mode": ("0",),
        "debug_level": ("5",), "quit": ("q",), "reset_state": ("esc",),
        "sel_left": ("left", "j"), "sel_right": ("right", "l"), "sel_down": ("down", "k"),
        "sel_up": ("up", "i"), "sel_left_fast": ("J",), "sel_right_fast": ("L",),
        "sel_down_fast": ("K",), "sel_up_fast": ("I",), "sel_layer_left": ("u", "U"),
        "sel_layer_right": ("o", "O"), "zoom_mode": ("z",), "pattern_mode": ("s",),
        "ez_back_mode_loop": ("b",), "freeze_back_unit": ("d",), "show_back": ("a",),
        "back_mode": ("n",), "back_filt_mode": ("m",), "boost_gamma": ("t",),
        "boost_individual": ("T",), "toggle_label_predictions": ("8",), "toggle_unit_jpgs": ("9",),
    }
    assert {b.tag: b.keys for b in bindings.BINDINGS} == expected
    assert bindings.tag_for("pgdn") == "static_file_increment"
    assert bindings.tag_for("x") is None and bindings.tag_for(None) is None
    # every key the help lists has a help text; 5, 8 and 9 are not listed (as the original)
    listed = bindings.BASE_HELP_TAGS + bindings.CAFFEVIS_HELP_TAGS
    assert all(bindings.binding(t).help for t in listed)
    assert not {"debug_level", "toggle_label_predictions", "toggle_unit_jpgs"} & set(listed)


def test_a_key_bound_twice_is_refused():
    dup = (bindings.Binding("one", ("x",), ""), bindings.Binding("two", ("y", "x"), ""))
    with pytest.raises(ValueError, match="already bound to 'one'"):
        bindings._key_index(dup)
