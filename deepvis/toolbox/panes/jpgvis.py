"""The jpgvis pane: the unit's optimized image, top-9 images and their deconv (§2.11)."""
from __future__ import annotations

from ..paint import fill


def draw(view, scene, ctx) -> None:
    state, look = scene.state, ctx.look
    fill(view, look.background)
    if state.cursor_area != "bottom" or not state.show_unit_jpgs:
        return
    image = ctx.jpgs.unit_images(state.layer, state.selected_unit, view.shape[:2])
    if image is None:
        fill(view, look.stale)        # still loading
    else:
        view[:image.shape[0], :image.shape[1]] = image
