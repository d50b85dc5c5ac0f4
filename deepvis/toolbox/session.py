"""A toolbox session: the model, its layer list, the state, the frame drawer and the
network runner; and the synchronous replay of keys behind `deepvis render`."""
from __future__ import annotations

import pathlib

from ..errors import DeepvisError
from .bindings import BASE_TAGS, binding, tag_for
from .frame import FrameDrawer, Scene
from .inputs import StaticFiles, no_camera_notice
from .network import NetRunner, Request
from .state import ToolboxState, layer_infos


class Session:
    """What the live window and `deepvis render` share."""

    def __init__(self, model, static: StaticFiles, cache=None):
        settings = model.settings
        self.model = model
        self.settings = settings
        self.static = static
        layer_list = layer_infos(model.blob_names, model.blob_shapes,
                                 float(settings["caffevis_layers_aspect_ratio"]),
                                 settings.get("caffevis_filter_layers") or ())
        self.state = ToolboxState.from_settings(layer_list, settings,
                                                help_key=binding("help_mode").keys[0])
        self.drawer = FrameDrawer.for_model(model, layer_list, cache, siamese=static.siamese)
        self.runner = NetRunner(model, siamese=static.siamese)
        self.help_mode = False
        self.debug_level = 0

    def request(self, frame_id: int, frame) -> Request:
        """What the network must compute for this frame and the current state."""
        state = self.state
        diff_layer = state.layer if state.layers_show_back and not state.pattern_mode else None
        return Request(frame_id, frame, state.back_key(), diff_layer)

    def scene(self, results, frame, fps: float = 0.0, notice: str = "") -> Scene:
        return Scene(self.state, results, frame, fps, self.help_mode, notice)


def static_files_for(settings, path, listdir_order: bool = False) -> StaticFiles:
    """An image file (shown alone) or a folder of images (navigated with e / w)."""
    path = pathlib.Path(path)
    if path.is_dir():
        return StaticFiles(settings, path, listdir_order=listdir_order)
    if not path.is_file():
        raise DeepvisError(f"input {path} does not exist")
    return StaticFiles(settings, path.parent, files=[path.name])


def replay(session: Session, keys) -> Scene:
    """Apply each key as the window would, running the network work the worker would do
    after each one; return the scene the window would finally show (FPS aside)."""
    frame_id = 0
    _, frame = session.static.load()
    results = session.runner.run(session.request(frame_id, frame))
    notice = ""
    for key in keys:
        tag = tag_for(key)
        if tag == "quit":
            break
        if tag in BASE_TAGS:
            if tag == "help_mode":
                session.help_mode = not session.help_mode
            elif tag == "debug_level":
                session.debug_level = (session.debug_level + 1) % 3
            elif tag == "toggle_input_mode":
                notice = no_camera_notice(None)
            elif tag in ("static_file_increment", "static_file_decrement", "stretch_mode"):
                if tag == "stretch_mode":
                    session.static.stretch = not session.static.stretch
                step = {"static_file_increment": 1, "static_file_decrement": -1}.get(tag, 0)
                _, frame = session.static.load(step)
                frame_id += 1
        else:
            session.state.handle(tag)
        request = session.request(frame_id, frame)
        if not session.runner.up_to_date(request, results):
            results = session.runner.run(request, results)
    return session.scene(results, frame, notice=notice)
