"""The live window's main loop (original-toolbox §3.1).

Keys are read and handled here, and the frame is redrawn here; the network and the jpg
loading run in their own threads and only ever hand over finished results, so a key is
never held up by a forward or backward pass. Quitting stops and joins every thread.
"""
from __future__ import annotations

import threading
import time

import cv2

from ..errors import DeepvisError
from .bindings import BASE_TAGS, tag_for
from .inputs import InputFetcher
from .jpgs import JpgLoader
from .keys import MODIFIERS, KeyReader
from .lifeline import Lifeline
from .worker import Worker

WINDOW_NAME = "Deep Visualization Toolbox"


class HighguiDisplay:
    """The OpenCV window. Codes come from waitKeyEx, which keeps arrow keys' high bits."""

    def __init__(self, name: str = WINDOW_NAME):
        self.name = name
        cv2.namedWindow(name, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)

    def show(self, rgb) -> None:
        cv2.imshow(self.name, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def wait_key(self, ms: int) -> int:
        return cv2.waitKeyEx(ms)

    def closed(self) -> bool:
        return cv2.getWindowProperty(self.name, cv2.WND_PROP_VISIBLE) < 1

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.name)
            cv2.waitKey(1)
        except cv2.error:           # the user already closed it
            pass


class ToolboxApp:
    """One live session: window, input fetcher, network worker and jpg loader."""

    def __init__(self, session, display_factory=HighguiDisplay, device=None):
        self.session = session
        s = session.settings
        self.display_factory = display_factory
        self.lifeline = Lifeline(float(s["caffevis_heartbeat_required"]))
        self.fetcher = InputFetcher(session.static, self.lifeline, device,
                                    float(s["input_updater_sleep_after_read_frame"]),
                                    float(s["input_updater_heartbeat_required"]))
        self.worker = Worker(session.runner, self._request, self._mark_dirty, self.lifeline,
                             float(s["caffevis_pause_after_keys"]),
                             float(s["caffevis_frame_wait_sleep"]))
        self.jpg_loader = JpgLoader(session.drawer.jpgs, self._mark_dirty, self.lifeline,
                                    float(s["caffevis_jpg_load_sleep"]))
        self.keys = KeyReader()
        self.key_latencies: list[float] = []     # seconds from key to the frame showing it
        self.frames_shown = 0
        self._lock = threading.Lock()            # the state and the frame the worker reads
        self._dirty = threading.Event()
        self._worker_frame = None                # (frame id, frame)
        self.shown_scene = None
        self._quit = False

    # -- called from the worker thread ----------------------------------------------
    def _request(self):
        with self._lock:
            if self._worker_frame is None:
                return None
            return self.session.request(*self._worker_frame)

    def _mark_dirty(self) -> None:
        self._dirty.set()

    # -- called from the main loop's thread (a display's wait_key) --------------------
    def change_state(self, change) -> None:
        """Apply `change(state)` as a key would, for front ends with more than keys (the
        web page's mouse): under the state lock, the network paused as after a key, and
        the frame redrawn."""
        self.worker.key_pressed()
        with self._lock:
            change(self.session.state)
        self._dirty.set()

    # -- main loop ------------------------------------------------------------------
    def run(self) -> None:
        s = self.session.settings
        try:
            self.session.static.files()          # fail before opening the window
            have_files = True
        except DeepvisError as exc:
            if self.fetcher.device is None:
                raise DeepvisError(f"{exc}; give a folder of images (deepvis toolbox "
                                   "--input-dir DIR) or a camera (--capture-device)") from None
            have_files = False
        self.fetcher.bind_camera()
        if not have_files:                       # no images: the camera or nothing
            if self.fetcher.capture is None:
                raise DeepvisError(self.fetcher.notice)
            self.fetcher.camera_mode = True
        display = self.display_factory()
        threads = (self.fetcher, self.worker, self.jpg_loader)
        for thread in threads:
            thread.start()
        print(f"Running toolbox. Push {self.session.state.help_key} for help or q to quit.")
        try:
            self._loop(display, s)
        finally:
            self.lifeline.stop()
            for thread, timeout in zip(threads, (1.0, 3.0, 1.0)):
                thread.join(timeout)
            display.close()
        alive = [t.name for t in threads if t.is_alive()]
        if alive:
            raise DeepvisError(f"threads did not stop: {', '.join(alive)}")

    def _loop(self, display, s) -> None:
        pause_handle = int(s["keypress_pause_handle_iterations"])
        pause_redraw = int(s["keypress_pause_redraw_iterations"])
        redraw_every = int(s["redraw_at_least_every"])
        sleep_ms = max(1, int(s["main_loop_sleep_ms"]))
        print_dots = bool(s["print_dots"])
        ii, since_key, since_redraw = 0, 999, 999
        redraw, shown_fps, last_index, frame = True, 0.0, None, None
        results, pending_keys = None, []
        while not self._quit:
            self.lifeline.beat()
            code = display.wait_key(sleep_ms)
            if code not in (-1, 255):
                since_key = 0
                pending_keys.append(time.monotonic())
                redraw |= self._handle_key(code)
            index, new_frame = self.fetcher.frame()
            if index != last_index and new_frame is not None:
                last_index, frame, redraw = index, new_frame, True
            if last_index is not None and (ii == 0 or since_key >= pause_handle):
                with self._lock:
                    if self._worker_frame is None or self._worker_frame[0] != last_index:
                        self._worker_frame = (last_index, frame)
            if self._dirty.is_set() or self.worker.results is not results:
                self._dirty.clear()
                redraw = True
            fps = self.worker.fps()
            redraw |= (fps == 0) != (shown_fps == 0)     # let a stale FPS disappear
            if redraw and (since_key >= pause_redraw or since_redraw >= redraw_every):
                results = self.worker.results
                started = time.monotonic()
                notice = self.fetcher.notice or self.worker.error
                scene = self.session.scene(results, frame, fps, notice)
                image = self.session.drawer.draw(scene)
                self.shown_scene = scene         # what the display shows (the page's hover)
                display.show(image)
                if scene.state.extra_msg:        # "h for help": drawn once, as the original
                    with self._lock:
                        scene.state.extra_msg = ""
                now = time.monotonic()
                if self.session.debug_level >= 1:
                    print(f"draw + show: {1000 * (now - started):.1f} ms")
                self.key_latencies += [now - t for t in pending_keys]
                pending_keys.clear()
                self.frames_shown += 1
                shown_fps, redraw, since_redraw = fps, False, 0
            if display.closed():
                break
            ii, since_key, since_redraw = ii + 1, since_key + 1, since_redraw + 1
            if print_dots and ii % 2 == 0:
                print(".", end="", flush=True)

    def _handle_key(self, code: int) -> bool:
        """Apply one key; True when the frame must be redrawn."""
        name = self.keys.name(code)
        tag = tag_for(name)
        self.worker.key_pressed()
        if self.session.debug_level >= 2:
            print(f"key {code:#x}: {name} -> {tag}")
        if tag in BASE_TAGS:
            return self._base_key(tag)
        with self._lock:
            handled = self.session.state.handle(tag)
        if not handled and name not in MODIFIERS:
            what = "no known key" if name is None else (
                f"key {name!r}, bound to nothing" if tag is None else f"key {name!r} ({tag})")
            print(f"deepvis toolbox: key code {code} ({code:#x}): {what}")
        return handled

    def _base_key(self, tag: str) -> bool:
        session, fetcher = self.session, self.fetcher
        if tag == "quit":
            self._quit = True
        elif tag == "help_mode":
            session.help_mode = not session.help_mode
        elif tag == "freeze_cam":
            fetcher.toggle_freeze()
        elif tag == "toggle_input_mode":
            fetcher.toggle_camera()
        elif tag == "static_file_increment":
            fetcher.step(1)
        elif tag == "static_file_decrement":
            fetcher.step(-1)
        elif tag == "stretch_mode":
            print(f"Stretch mode is now {fetcher.toggle_stretch()}")
        elif tag == "debug_level":
            session.debug_level = (session.debug_level + 1) % 3
        return True
