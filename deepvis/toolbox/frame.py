"""Draw one whole window frame from the state and the network's results.

The live window and `deepvis render` both call `FrameDrawer.draw`, so they produce the
same pixels for the same scene. The frame is always drawn whole (the original redrew panes
into a persistent buffer); the window buffer is RGB, reversed to BGR only for display.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DeepvisError
from ..names import short_names
from .jpgs import FifoCache, UnitJpgs
from .layout import help_pane, panes_from_settings, window_shape
from .look import Look
from .paint import fill
from .panes import aux, back, control, debug, help as help_pane_drawer, input as input_pane
from .panes import jpgvis, layers, status
from .panes.control import pretty_name


@dataclass
class Scene:
    """Everything one frame shows."""
    state: object                   # ToolboxState
    results: object = None          # NetResults for the current frame, or None
    frame: object = None            # the input frame (RGB uint8), a pair in siamese mode
    fps: float = 0.0
    help_mode: bool = False
    notice: str = ""                # input problems (camera failed, video ended)


class FrameDrawer:
    """Window geometry, looks and model facts, fixed for a session."""

    def __init__(self, settings, layer_list, labels=None, channel_swap=None, blob_names=(),
                 cache: FifoCache | None = None, siamese: bool = False):
        self.settings = settings
        self.look = Look.from_settings(settings)
        self.panes = panes_from_settings(settings)
        self.shape = window_shape(self.panes)
        self.help = help_pane(settings, self.shape)
        rule = settings.get("caffevis_layer_pretty_names")
        # without a rule, exporter paths (/layer1/layer1.0/conv1/Conv_output_0) are shortened
        # to their module (layer1.0.conv1); the status line keeps the full name
        self.pretty_names = ([pretty_name(info.name, rule) for info in layer_list] if rule
                             else short_names([info.name for info in layer_list]))
        self.labels = labels
        self.label_layers = set(settings.get("caffevis_label_layers") or ())
        prob = settings.get("caffevis_prob_layer")
        self.prob_layer = prob if prob in blob_names else None
        self.channel_swap = channel_swap
        self.siamese = siamese
        if cache is None:
            cache = FifoCache(settings["caffevis_jpg_cache_size"])
        if cache.max_bytes < 10 * 1024 ** 2:
            raise DeepvisError("caffevis_jpg_cache_size must be at least 10 MiB")
        self.jpgs = UnitJpgs(settings, cache, self.look.background, self.look.stale)

    @classmethod
    def for_model(cls, model, layer_list, cache=None, siamese=False) -> "FrameDrawer":
        return cls(model.settings, layer_list, model.labels, model.preprocessing.channel_swap,
                   model.blob_names, cache, siamese)

    # -- is the network's back result the one the state asks for? ---------------------
    @staticmethod
    def back_current(scene: Scene) -> bool:
        results = scene.results
        return results is not None and results.grad is not None \
            and results.back == scene.state.back_key()

    @staticmethod
    def diff_current(scene: Scene) -> bool:
        results, state = scene.results, scene.state
        return results is not None and results.diff is not None \
            and results.diff_key == (state.layer, state.back_key())

    # -- drawing -----------------------------------------------------------------------
    def draw(self, scene: Scene) -> np.ndarray:
        """The whole window as an RGB uint8 array of `self.shape`."""
        buffer = np.empty(self.shape + (3,), np.uint8)
        fill(buffer, self.look.background)
        panes = self.panes
        input_pane.draw(panes["input"].view(buffer), scene.frame, self.siamese)
        if "caffevis_layers" in panes:
            self._draw_caffevis(buffer, scene)
        if self.settings.get("debug_window_panes"):
            debug.draw(buffer, panes, self.look)
        if scene.help_mode:
            help_pane_drawer.draw(buffer, self.help, self.look)
        return buffer

    def _draw_caffevis(self, buffer, scene: Scene) -> None:
        panes = self.panes
        if "caffevis_control" in panes:
            control.draw(panes["caffevis_control"].view(buffer), scene.state, self.pretty_names,
                         self.look)
        if "caffevis_status" in panes:
            status.draw(panes["caffevis_status"].view(buffer),
                        status.status_text(scene.state, scene.fps, scene.notice), self.look)
        highres = layers.draw(panes["caffevis_layers"].view(buffer), scene, self)
        if "caffevis_aux" in panes:
            aux.draw(panes["caffevis_aux"].view(buffer), scene, self, highres)
        if "caffevis_back" in panes:
            back.draw(panes["caffevis_back"].view(buffer), scene, self)
            if scene.state.layers_pane_zoom_mode == 2:
                back.draw(panes["caffevis_layers"].view(buffer), scene, self)
        if "caffevis_jpgvis" in panes:
            jpgvis.draw(panes["caffevis_jpgvis"].view(buffer), scene, self)
