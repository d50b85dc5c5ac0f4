"""The original templates' control panes: every layer name is drawn whole inside its pane,
whichever layer is current and wherever the cursor is (the current name is bold)."""
import pathlib

import numpy as np
import pytest

from deepvis.caffe.parse import read_prototxt
from deepvis.caffe.plan import plan_net
from deepvis.settings import load_settings
from deepvis.toolbox.layout import panes_from_settings
from deepvis.toolbox.look import Look
from deepvis.toolbox.panes import control
from deepvis.toolbox.panes.control import pretty_name
from deepvis.toolbox.state import ToolboxState, layer_infos
from deepvis.toolbox.text import draw_placed

REPO = pathlib.Path(__file__).resolve().parent.parent
TEMPLATES = ["caffenet-yos", "bvlc-googlenet", "squeezenet"]


def template_session(original_models, name):
    settings = load_settings(original_models / f"settings_local.template-{name}.py")
    plan = plan_net(read_prototxt(REPO / "models" / name / "deploy.prototxt"))
    layers = layer_infos(plan.blobs, plan.shapes, float(settings["caffevis_layers_aspect_ratio"]),
                         settings.get("caffevis_filter_layers") or ())
    state = ToolboxState.from_settings(layers, settings)
    names = [pretty_name(info.name, settings.get("caffevis_layer_pretty_names")) for info in layers]
    return settings, state, names


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_layer_name_lies_inside_the_control_pane(original_models, name):
    settings, state, names = template_session(original_models, name)
    pane = panes_from_settings(settings)["caffevis_control"]
    look = Look.from_settings(settings)
    background = np.array(look.background, np.uint8)
    for layer_idx in range(len(state.layers)):
        for cursor in ("top", "bottom"):
            state.layer_idx, state.cursor_area = layer_idx, cursor
            placed = control.placements(pane.shape, state, names, look)
            assert [p.string.strip() for p in placed] == names
            for p in placed:
                top, left, bottom, right = p.box()
                assert 0 <= top and 0 <= left and bottom <= pane.height and right <= pane.width, \
                    (name, p.string, p.box())
    # the drawn pixels agree: a canvas larger than the pane has ink only inside the pane
    canvas = np.empty((pane.height + 40, pane.width + 40, 3), np.uint8)
    canvas[:] = background
    state.layer_idx, state.cursor_area = len(state.layers) - 1, "bottom"
    draw_placed(canvas, control.placements(pane.shape, state, names, look))
    ink = np.nonzero((canvas != background).any(axis=2))
    assert ink[0].max() < pane.height and ink[1].max() < pane.width
    assert ink[0].min() >= 0


def test_googlenet_list_wraps_like_the_screenshot(original_models):
    """All of GoogLeNet's names (filtered as the template says) fit its 125-px pane at the
    template's 0.85 font size, so no name has to shrink."""
    settings, state, names = template_session(original_models, "bvlc-googlenet")
    look = Look.from_settings(settings)
    placed = control.placements((125, 1200), state, names, look)
    assert all(p.style.scale == pytest.approx(0.85) for p in placed)
    assert len({p.y for p in placed}) <= 7
