"""The state machine, key by key (original-toolbox §5), and the layer list."""
import pytest

from deepvis.errors import DeepvisError
from deepvis.toolbox.state import LayerInfo, ToolboxState, layer_infos


def layers():
    # conv: 10 channels -> 3 rows x 4 cols; fc: 7 -> 3 x 3; prob: 5 -> 2 x 3
    return [LayerInfo("conv", (10, 5, 5), 3, 4), LayerInfo("fc", (7,), 3, 3),
            LayerInfo("prob", (5,), 2, 3)]


def state():
    return ToolboxState(layers())


def press(s, *tags):
    return [s.handle(t) for t in tags]


def test_initial_values():
    s = state()
    assert (s.layer, s.layer_idx, s.selected_unit, s.cursor_area) == ("conv", 0, 0, "top")
    assert (s.back_enabled, s.back_mode, s.back_filt_mode) == (False, "grad", "raw")
    assert (s.boost_indiv, s.boost_gamma) == (0, 1)
    assert (s.pattern_mode, s.layers_pane_zoom_mode, s.layers_show_back) == (False, 0, False)
    assert s.show_label_predictions and s.show_unit_jpgs
    assert s.extra_msg == "h for help" and s.back_key() is None


def test_layer_keys_clamp_and_keep_the_unit():
    s = state()
    press(s, "sel_layer_left")
    assert s.layer_idx == 0
    press(s, "sel_down", "sel_right", "sel_right", "sel_right", "sel_right", "sel_right")
    assert s.selected_unit == 5
    press(s, "sel_layer_right")
    assert (s.layer, s.selected_unit) == ("fc", 5)           # kept
    press(s, "sel_layer_right")
    assert (s.layer, s.selected_unit) == ("prob", 4)         # clamped to 5 units
    press(s, "sel_layer_right")
    assert s.layer == "prob"


def test_arrows_at_the_top_move_between_layers():
    s = state()
    press(s, "sel_right")
    assert (s.layer, s.cursor_area) == ("fc", "top")
    press(s, "sel_right_fast")
    assert s.layer == "prob"                                 # 1 + 3 clamped
    press(s, "sel_left_fast")
    assert s.layer == "conv"
    press(s, "sel_up")
    assert (s.layer, s.cursor_area) == ("conv", "top")       # nothing above the list


def test_arrows_in_the_grid_walk_the_units_row_major():
    s = state()
    press(s, "sel_down_fast")                                # from the top: just go down
    assert (s.cursor_area, s.selected_unit) == ("bottom", 0)
    press(s, "sel_down")
    assert s.selected_unit == 4                              # one row of 4 columns
    press(s, "sel_right", "sel_right_fast")
    assert s.selected_unit == 8
    press(s, "sel_left")
    assert s.selected_unit == 7
    press(s, "sel_down_fast")
    assert s.selected_unit == 9                              # 7 + 12 clamped to 10 units
    press(s, "sel_up")
    assert (s.selected_unit, s.cursor_area) == (5, "bottom")
    press(s, "sel_up")
    assert (s.selected_unit, s.cursor_area) == (1, "bottom")
    press(s, "sel_up")                                       # 1 - 4 < 0: + 4, back to the list
    assert (s.selected_unit, s.cursor_area) == (1, "top")
    press(s, "sel_down", "sel_right", "sel_up_fast")         # 2 - 12 + 4 < 0: clamped to 0
    assert (s.selected_unit, s.cursor_area) == (0, "top")
    press(s, "sel_down", "sel_left")
    assert s.selected_unit == 0                              # clamped at 0


def test_boost_keys_cycle_their_choices():
    s = state()
    press(s, *["boost_individual"] * 3)
    assert s.boost_indiv == 0.8
    press(s, *["boost_individual"] * 2)
    assert s.boost_indiv == 0
    press(s, "boost_gamma", "boost_gamma")
    assert s.boost_gamma == 0.5
    press(s, "boost_gamma", "boost_gamma")
    assert s.boost_gamma == 1


def test_back_mode_key_cycles_grad_deconv_off():
    s = state()
    press(s, "back_mode")
    assert s.back_key() == ("conv", 0, "grad")
    press(s, "back_mode")
    assert s.back_key() == ("conv", 0, "deconv")
    press(s, "back_mode")
    assert s.back_key() is None and s.back_mode == "deconv"


def test_ez_back_mode_loop_is_the_four_state_cycle():
    s = state()
    seen = []
    for _ in range(4):
        press(s, "ez_back_mode_loop")
        seen.append((s.back_enabled, s.back_mode, s.back_filt_mode))
    assert seen == [(True, "grad", "raw"), (True, "grad", "norm"), (True, "deconv", "raw"),
                    (False, "deconv", "raw")]
    press(s, "back_mode", "back_filt_mode", "ez_back_mode_loop")  # grad + gray: any other -> off
    assert not s.back_enabled


def test_back_filter_cycles_without_enabling_back():
    s = state()
    modes = []
    for _ in range(4):
        press(s, "back_filt_mode")
        modes.append(s.back_filt_mode)
    assert modes == ["gray", "norm", "normblur", "raw"] and not s.back_enabled


def test_show_back_enables_back_and_leaves_pattern_mode_first():
    s = state()
    press(s, "show_back")
    assert s.layers_show_back and s.back_enabled and s.back_mode == "grad"
    press(s, "show_back")
    assert not s.layers_show_back and s.back_enabled
    press(s, "pattern_mode")
    assert s.pattern_mode
    press(s, "show_back")
    assert not s.pattern_mode and not s.layers_show_back


def test_pattern_and_toggle_keys():
    s = state()
    press(s, "pattern_mode", "toggle_label_predictions", "toggle_unit_jpgs")
    assert s.pattern_mode and not s.show_label_predictions and not s.show_unit_jpgs
    press(s, "pattern_mode", "toggle_label_predictions", "toggle_unit_jpgs")
    assert not s.pattern_mode and s.show_label_predictions and s.show_unit_jpgs


def test_zoom_skips_mode_2_without_back():
    s = state()
    zooms = []
    for _ in range(3):
        press(s, "zoom_mode")
        zooms.append(s.layers_pane_zoom_mode)
    assert zooms == [1, 0, 1]
    press(s, "back_mode", "zoom_mode")
    assert s.layers_pane_zoom_mode == 2
    press(s, "back_mode", "back_mode")                       # back off: mode 2 stays (#16)
    assert s.layers_pane_zoom_mode == 2 and not s.back_enabled


def test_backprop_unit_follows_the_selection_unless_frozen():
    s = state()
    press(s, "back_mode", "sel_down", "sel_right", "sel_right")
    assert s.back_key() == ("conv", 2, "grad")
    press(s, "freeze_back_unit", "sel_right", "sel_layer_right")
    assert s.back_key() == ("conv", 2, "grad") and (s.layer, s.selected_unit) == ("fc", 3)
    assert s.back_status(result_current=True) == "normal"
    press(s, "freeze_back_unit")                             # unfrozen: follows again
    assert s.back_key() == ("fc", 3, "grad")


def test_back_status():
    s = state()
    assert s.back_status(True) == "disabled"
    press(s, "back_mode")
    assert s.back_status(True) == "disabled"                 # cursor in the layer list
    press(s, "freeze_back_unit")
    assert s.back_status(True) == "normal" and s.back_status(False) == "stale"
    press(s, "freeze_back_unit", "sel_down")
    assert s.back_status(False) == "stale"


def test_reset_restores_everything_and_the_help_message():
    s = state()
    press(s, "sel_layer_right", "sel_down", "sel_right", "back_mode", "back_mode",
          "freeze_back_unit", "boost_gamma", "boost_individual", "zoom_mode", "pattern_mode",
          "toggle_unit_jpgs", "toggle_label_predictions", "back_filt_mode")
    assert s.extra_msg == ""
    press(s, "reset_state")
    fresh = state()
    assert vars(s) == vars(fresh)


def test_unknown_tags_and_base_tags_are_not_handled():
    s = state()
    assert press(s, None, "quit", "help_mode", "bogus") == [False] * 4
    assert s.extra_msg == "h for help"                       # kept until a handled key
    assert press(s, "sel_down") == [True] and s.extra_msg == ""


def test_layer_list_drops_the_input_and_filtered_names():
    names = ["data", "conv1", "conv1_split_0", "fc", "prob"]
    shapes = {"data": (1, 3, 8, 8), "conv1": (1, 96, 4, 4), "conv1_split_0": (1, 96, 4, 4),
              "fc": (1, 4096), "prob": (1, 1000)}
    infos = layer_infos(names, shapes, 1.0, hidden=["_split_"])
    assert [i.name for i in infos] == ["conv1", "fc", "prob"]
    assert [(i.rows, i.cols) for i in infos] == [(10, 10), (64, 64), (32, 32)]
    assert infos[0].isconv and not infos[1].isconv and infos[1].n_tiles == 4096
    wide = layer_infos(["data", "x"], {"data": (1, 3, 8, 8), "x": (1, 512, 2, 2)}, 1200 / 775)
    assert (wide[0].rows, wide[0].cols) == (18, 29)          # GoogLeNet's inception_4b/output
    mixed = layer_infos(["data", "seq", "x"], {"data": (1, 3, 8, 8), "seq": (1, 4, 5),
                                               "x": (1, 8)})
    assert [i.name for i in mixed] == ["x"]                   # (N, G, -1) reshapes are skipped
    with pytest.raises(DeepvisError, match="no blobs to show"):
        layer_infos(["data", "seq"], {"data": (1, 3, 8, 8), "seq": (1, 4, 5)})
