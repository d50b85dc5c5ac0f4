"""The back pane: grad or deconv of the selected unit at the input (original §2.9).

Decision on quirk #13: in siamese mode each half of a 6-channel gradient goes through the
filter on its own, in every filter mode, and the halves sit side by side at half width.
"""
from __future__ import annotations

import numpy as np

from ...vis.back import back_image
from ..fit import paste_fit, resize_to_fit
from ..paint import fill


def draw(view, scene, ctx) -> None:
    state, look = scene.state, ctx.look
    status = state.back_status(ctx.back_current(scene))
    if status == "disabled":
        fill(view, look.background)
    elif status == "stale":
        fill(view, look.stale)
    else:
        fill(view, look.background)
        paste_fit(view, back_display(scene.results.grad, state.back_filt_mode, ctx.channel_swap,
                                     look.blur_radius, view.shape[:2]))


def back_display(grad: np.ndarray, filt: str, channel_swap, blur_radius: float,
                 pane_shape) -> np.ndarray:
    """The filtered gradient as a [0, 1] RGB image (two halves for a 6-channel input)."""
    if grad.shape[0] == 6:
        swap = channel_swap[:3] if channel_swap is not None and len(channel_swap) == 6 else None
        height, width = pane_shape
        halves = [resize_to_fit(back_image(half, filt, swap, blur_radius), height, width // 2)
                  for half in (grad[:3], grad[3:])]
        rows = min(h.shape[0] for h in halves)
        return np.concatenate([h[:rows] for h in halves], axis=1)
    return back_image(grad, filt, channel_swap, blur_radius)
