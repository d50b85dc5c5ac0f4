"""One browser: its own ToolboxApp (state, input fetcher, network worker, jpg loader and
main loop, as the window has), whose display is this page.

Threads: the app's main loop runs in a thread of its own and talks to the server's event
loop only through `inbox` (keys and actions, in order) and `latest` (the newest frame,
replaced whole: a slow page skips frames instead of queueing them).
"""
from __future__ import annotations

import os
import queue
import secrets
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import DeepvisError
from ..names import file_name
from ..toolbox.app import ToolboxApp
from ..toolbox.fit import to_uint8
from ..toolbox.jpgs import SECTIONS
from ..toolbox.normalize import normalize_layer
from ..toolbox.panes.back import back_display
from ..toolbox.panes.status import status_text
from ..toolbox.session import Session
from . import geometry
from .inputs import ClientInputs, display_name
from .protocol import ChooseInput, Key, Pointer, ProtocolError

POLL_MS = 10          # the main loop's idle wait for a key: short enough to pick up results
BUSY_S = 0.25         # after a key, wait only as long as the window would (main_loop_sleep_ms)
MAX_PENDING = 256     # keys and actions waiting for the main loop


@dataclass(frozen=True, eq=False)
class Snapshot:
    """A frame as shown, with what the page and the pointer need to know about it."""
    image: np.ndarray
    header: dict
    panels: dict = field(default_factory=dict)       # name -> (key, make the RGB image)
    grid: geometry.TileGrid | None = None
    boxes: tuple = ()
    layer_idx: int = 0
    layer: str = ""
    blob: np.ndarray | None = None                  # the current layer's activations


class WebDisplay:
    """ToolboxApp's display for a page: keys come from the inbox, frames go to `latest`."""

    def __init__(self, client: "Client"):
        self.client = client
        self._last_input = 0.0

    def wait_key(self, ms: int) -> int:
        idle = time.monotonic() - self._last_input > BUSY_S
        try:
            item = self.client.inbox.get(timeout=max(ms, POLL_MS if idle else 0) / 1000)
        except queue.Empty:
            return -1
        self._last_input = time.monotonic()
        if isinstance(item, int):
            self.client.keys_handled += 1
            return item
        try:
            item(self.client.app)
        except (DeepvisError, ValueError) as exc:   # e.g. an upload over the limit
            self.client.app.fetcher.notice = str(exc)
        return -1

    def show(self, rgb) -> None:
        self.client.publish(rgb)

    def closed(self) -> bool:
        return self.client.closing.is_set()

    def close(self) -> None:
        pass


class Client:
    """A page's toolbox session over the hub's shared model and jpg cache."""

    def __init__(self, hub, notify=lambda: None):
        self.id = secrets.token_urlsafe(12)
        self.hub = hub
        self.notify = notify                     # thread-safe: a new snapshot is there
        self.inputs = ClientInputs(hub.model.settings, hub.input_dir)
        self.session = Session(hub.model, self.inputs, cache=hub.jpg_cache)
        self.display = WebDisplay(self)
        self.app = ToolboxApp(self.session, display_factory=lambda: self.display,
                              device=hub.device)
        self.inbox: queue.Queue = queue.Queue(MAX_PENDING)
        self.closing = threading.Event()
        self.ended = threading.Event()
        self.error = ""
        self.keys_handled = 0
        self.latest: Snapshot | None = None     # newest frame drawn
        self.shown: Snapshot | None = None      # newest frame sent: what the pointer is on
        self._seq = 0
        self._units_cache: tuple = (None, {})
        self.thread = threading.Thread(target=self._run, name=f"deepvis-page-{self.id[:6]}",
                                       daemon=True)

    # -- lifetime ----------------------------------------------------------------------
    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.closing.set()

    def _run(self) -> None:
        try:
            self.app.run()
        except DeepvisError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a page's failure must not stop the server
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ended.set()
            self.notify()

    # -- from the server's event loop ----------------------------------------------------
    def handle(self, message) -> dict | None:
        """Act on a parsed message; a reply for the page, or None."""
        if isinstance(message, Key):
            self._put(message.code)
        elif isinstance(message, ChooseInput):
            count = len(self.inputs.files())
            if message.index >= count:
                raise ProtocolError(f"input {message.index} does not exist ({count} inputs)")
            self._put(lambda app: app.fetcher.go_to(message.index))
        elif isinstance(message, Pointer):
            return self._pointer(message)
        return None

    def add_upload(self, label: str, rgb: np.ndarray) -> None:
        """Keep the image for this page and show it (UploadError when there is no room)."""
        self.inputs.check_room()

        def add(app):
            app.fetcher.go_to(self.inputs.add_upload(label, rgb))
        self._put(add)

    def _put(self, item) -> None:
        try:
            self.inbox.put_nowait(item)
        except queue.Full:
            raise ProtocolError("too many keys waiting; slow down") from None

    def _pointer(self, pointer: Pointer) -> dict | None:
        snap = self.shown or self.latest
        if snap is None:
            return None
        idx = geometry.layer_at(snap.boxes, pointer.x, pointer.y)
        hit = snap.grid.unit_at(pointer.x, pointer.y) if snap.grid is not None else None
        if pointer.action == "click":
            if idx is not None:
                self._put(lambda app: app.change_state(lambda s: s.point_at(layer_idx=idx)))
            elif hit is not None:
                self._put(lambda app: app.change_state(
                    lambda s: s.point_at(layer_idx=snap.layer_idx, unit=hit[0])))
            return None
        if idx is not None:
            text = f"layer {self.session.state.layers[idx].name}: click to select"
        elif hit is not None:
            text = _unit_text(snap, *hit)
        else:
            text = ""
        return {"type": "hover", "text": text}

    # -- from the app's main loop thread ------------------------------------------------
    def publish(self, rgb: np.ndarray) -> None:
        app, session = self.app, self.session
        state, scene = session.state, app.shown_scene
        results = scene.results if scene is not None else None
        index, _ = app.fetcher.frame()
        settled = (self.inbox.empty() and not app.fetcher.pending() and results is not None
                   and results.frame_id == index and scene.fps == 0
                   and session.runner.up_to_date(session.request(index, None), results))
        self._seq += 1
        header = {
            "type": "frame", "seq": self._seq, "width": rgb.shape[1], "height": rgb.shape[0],
            "keys": self.keys_handled, "settled": bool(settled),
            "net_frame": None if results is None else results.frame_id,
            "status": status_text(state, scene.fps if scene else 0.0,
                                  scene.notice if scene else ""),
            "state": {"layer": state.layer, "layer_idx": state.layer_idx,
                      "unit": state.selected_unit, "cursor": state.cursor_area,
                      "back": state.back_mode if state.back_enabled else "off",
                      "filter": state.back_filt_mode, "help": session.help_mode},
            "input": {"index": self.inputs.index, "name": display_name(self.inputs.name),
                      "camera": app.fetcher.camera_mode},
            "units": self._unit_urls(state),
        }
        blob = results.blobs.get(state.layer) if results is not None else None
        self.latest = Snapshot(rgb, header, self._panels(state, scene), 
                               geometry.tile_grid(state, session.drawer),
                               tuple(geometry.layer_boxes(state, session.drawer)),
                               state.layer_idx, state.layer, blob)
        self.notify()

    def _panels(self, state, scene) -> dict:
        """The full-resolution panels, as name -> (key, make): the encoder thread calls
        make() only when the key differs from what the page has (the app's loop only
        notes what they would show)."""
        results = scene.results if scene is not None else None
        panels = {}
        if results is not None and state.layer in results.blobs and state.info.isconv:
            layer, unit = state.layer, state.selected_unit
            indiv, gamma = state.boost_indiv, state.boost_gamma
            panels["activation"] = (("activation", results, layer, unit, indiv, gamma),
                                    lambda: to_uint8(normalize_layer(
                                        results.blobs[layer], indiv, gamma)[unit]))
        if results is not None and results.grad is not None \
                and results.back == state.back_key():
            drawer, filt = self.session.drawer, state.back_filt_mode
            panels["back"] = (("back", results, filt), lambda: to_uint8(back_display(
                results.grad, filt, drawer.channel_swap, drawer.look.blur_radius,
                drawer.panes["caffevis_back"].shape)))
        return panels

    def _unit_urls(self, state) -> dict:
        """URLs of the unit's full-size jpgvis files that exist (served from the
        unit_jpg_vis folder only)."""
        if state.cursor_area != "bottom":
            return {}
        key = (state.layer, state.selected_unit)
        if self._units_cache[0] == key:
            return self._units_cache[1]
        jpgs = self.session.drawer.jpgs
        urls = {}
        if jpgs.has_layer(state.layer):
            source = file_name(jpgs.source_layer(state.layer))   # as the jpgvis pane reads
            for folder, pattern in SECTIONS:
                rel = f"{folder}/{source}/{pattern.format(layer=source, unit=state.selected_unit)}"
                if os.path.isfile(os.path.join(jpgs.unit_dir, rel)):
                    urls[folder] = "files/units/" + rel
        self._units_cache = (key, urls)
        return urls


def _unit_text(snap: Snapshot, unit: int, where) -> str:
    text = f"{snap.layer} unit {unit}"
    blob = snap.blob
    if blob is None:
        return text
    values = np.asarray(blob[unit])
    if values.ndim == 0:
        return f"{text}: activation {geometry.describe(values)}"
    if where is not None:
        text += f" at ({where[0]}, {where[1]}): activation {geometry.describe(values[where])},"
    return f"{text} max {geometry.describe(values.max())}"
