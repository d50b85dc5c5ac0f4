"""Where frames come from: static image files or a capture device (original-toolbox §3.6).

Decisions on quirks: a directory is listed in sorted order (#12), so the window,
`deepvis render` and tests see the same sequence, except with an original settings_local.py,
where it is os.listdir's order as in the original; camera frames are mirrored and
contrast-stretched as in the original (#20) and then stored as uint8; a video file (a path
as `input_updater_capture_device`) is stretched but not mirrored.
"""
from __future__ import annotations

import os
import re
import threading

import cv2
import numpy as np

from ..errors import DeepvisError
from ..preprocess import as_rgb, to_square
from ..readers import read_image

MODES = ("directory", "image_list", "siamese_image_list")


def list_static_files(mode: str, directory, regexp: str = r".*\.(jpg|jpeg|png)$",
                      ignore_case: bool = True, list_file=None,
                      listdir_order: bool = False) -> list:
    """File names (pairs in siamese mode), relative to `directory`, in display order."""
    if mode == "directory":
        from ..settings.schema import safe_match
        try:
            names = os.listdir(directory)
        except OSError as exc:
            raise DeepvisError(f"cannot list static_files_dir {directory}: {exc.strerror}") \
                from None
        files = [n for n in names if safe_match(regexp, n, ignore_case)]
        if not listdir_order:
            files.sort()
    elif mode in ("image_list", "siamese_image_list"):
        try:
            with open(list_file, encoding="utf-8") as f:
                rows = [re.split(r"[ ,\t]+", line.strip()) for line in f if line.strip()]
        except OSError as exc:
            raise DeepvisError(f"cannot read static_files_input_file {list_file}: "
                               f"{exc.strerror}") from None
        if mode == "image_list":
            files = [row[0] for row in rows]
        else:
            bad = [row for row in rows if len(row) < 2]
            if bad:
                raise DeepvisError(f"{list_file}: siamese_image_list needs two files a line, "
                                   f"got {' '.join(bad[0])!r}")
            files = [(row[0], row[1]) for row in rows]
    else:
        raise DeepvisError(f"static_files_input_mode must be one of {', '.join(MODES)}, "
                           f"got {mode!r}")
    if not files:
        where = directory if mode == "directory" else list_file
        raise DeepvisError(f"no input images in {where} (static_files_input_mode {mode})")
    return files


def read_rgb_file(path) -> np.ndarray:
    """An image file as 3-channel RGB uint8 (gray and alpha converted), read as `forward`
    reads it (deepvis.readers: the same limits and the same 16-bit conversion)."""
    return as_rgb(read_image(path))


def camera_frame(bgr: np.ndarray, mirror: bool = True) -> np.ndarray:
    """A captured frame -> RGB uint8: 3 channels, mirrored, contrast-stretched, square."""
    if bgr.ndim == 2:
        bgr = bgr[..., None]
    if bgr.shape[2] == 1:
        bgr = np.repeat(bgr, 3, axis=2)
    rgb = bgr[..., 2::-1].astype(np.float32)
    if mirror:
        rgb = rgb[:, ::-1]
    rgb -= rgb.min()
    rgb *= 255.0 / (rgb.max() + 1e-6)
    return to_square(rgb.astype(np.uint8), stretch=False)


class StaticFiles:
    """The static-file side of the input: current file, navigation, crop or stretch."""

    def __init__(self, settings, directory=None, files=None, listdir_order: bool = False):
        self.fixed_files = list(files) if files is not None else None
        self.listdir_order = listdir_order
        self.mode = settings["static_files_input_mode"]
        self.directory = os.fspath(directory or settings["static_files_dir"])
        self.regexp = settings["static_files_regexp"]
        self.ignore_case = bool(settings["static_files_ignore_case"])
        self.list_file = settings["static_files_input_file"]
        self.stretch = bool(settings["static_file_stretch_mode"])
        self.index = 0
        self.name = None

    @property
    def siamese(self) -> bool:
        return self.mode == "siamese_image_list"

    def files(self) -> list:
        if self.fixed_files is not None:
            return self.fixed_files
        return list_static_files(self.mode, self.directory, self.regexp, self.ignore_case,
                                 self.list_file, self.listdir_order)

    def load(self, step: int = 0):
        """Move by `step` files (wrapping) and read the current one: (name, frame)."""
        files = self.files()
        self.index = (self.index + step) % len(files)
        self.name = files[self.index]
        if self.siamese:
            frame = tuple(self._read(n) for n in self.name)
        else:
            frame = self._read(self.name)
        return self.name, frame

    def _read(self, name) -> np.ndarray:
        return to_square(read_rgb_file(os.path.join(self.directory, name)), self.stretch)


def no_camera_notice(device) -> str:
    if device is None:
        return "no camera: set input_updater_capture_device"
    return f"capture device {device} is not available"


def open_capture(device):
    """cv2.VideoCapture on a camera index or a video file; None when it does not open."""
    if isinstance(device, str) and device.isdigit():
        device = int(device)
    capture = cv2.VideoCapture(device)
    if not capture.isOpened():
        capture.release()
        return None
    return capture


class InputFetcher(threading.Thread):
    """Produces frames for the window: static files on request, or the camera's stream.
    The main loop polls `frame()`; a new index means a new frame."""

    def __init__(self, static: StaticFiles, lifeline, device=None, sleep: float = 0.05,
                 heartbeat: float = 15.0):
        super().__init__(name="deepvis-input", daemon=True)
        self.static, self.lifeline, self.sleep = static, lifeline, sleep
        self.heartbeat = heartbeat
        self.device = device
        self.capture = None
        self.notice = ""            # shown on the status line: camera failures and ends
        self.camera_mode = False
        self.freeze = False
        self._lock = threading.RLock()
        self._index, self._frame = -1, None
        self._pending_step = 0
        self._reload = True
        self._last_camera_frame = None

    def bind_camera(self) -> None:
        """Open the capture device (from the main thread, as OpenCV prefers)."""
        if self.device is None:
            return
        self.capture = open_capture(self.device)
        if self.capture is None:
            self.notice = f"capture device {self.device} failed to open"

    def frame(self):
        with self._lock:
            return self._index, self._frame

    def pending(self) -> bool:
        """A static file is still to be loaded (a key asked for it)."""
        with self._lock:
            return bool(self._pending_step or (self._reload and not self.camera_mode))

    # -- base keys ----------------------------------------------------------------
    def step(self, amount: int) -> None:
        """Next/previous static file; from camera mode, back to static files first."""
        with self._lock:
            if self.camera_mode:
                self.camera_mode = False
                self._reload = True
            else:
                self._pending_step += amount

    def go_to(self, index: int) -> None:
        """Show static file `index` (wrapping), leaving camera mode (the page's thumbnails)."""
        with self._lock:
            self.camera_mode = False
            self._pending_step = index - self.static.index
            self._reload = True

    def toggle_camera(self) -> None:
        with self._lock:
            if self.camera_mode:
                self.camera_mode, self._reload = False, True
            elif self.capture is None:
                self.notice = no_camera_notice(self.device)
            else:
                self.camera_mode, self._reload = True, True

    def toggle_stretch(self) -> bool:
        with self._lock:
            self.static.stretch = not self.static.stretch
            self._reload = True
            return self.static.stretch

    def toggle_freeze(self) -> None:
        with self._lock:
            self.freeze = not self.freeze

    # -- thread -------------------------------------------------------------------
    def run(self) -> None:
        try:
            while self.lifeline.alive(self.heartbeat):
                if self.camera_mode:
                    self._camera_once()
                else:
                    self._static_once()
                self.lifeline.sleep(self.sleep)
        finally:
            if self.capture is not None:
                self.capture.release()

    def _publish(self, frame) -> None:
        with self._lock:
            self._index += 1
            self._frame = frame

    def _static_once(self) -> None:
        with self._lock:
            step, self._pending_step = self._pending_step, 0
            if not (step or self._reload):
                return
            self._reload = False
            try:
                _, frame = self.static.load(step)
            except DeepvisError as exc:
                self.notice = str(exc)
                return
            self._publish(frame)

    def _camera_once(self) -> None:
        if self.freeze and self._last_camera_frame is not None:
            with self._lock:
                if self._reload:        # back from static files: show the frozen frame
                    self._reload = False
                    self._publish(self._last_camera_frame)
            return
        self._reload = False
        ok, bgr = self.capture.read()
        if not ok or bgr is None:
            with self._lock:
                self.notice = f"capture device {self.device} ended or failed; static files"
                self.camera_mode, self._reload = False, True
                self.capture.release()
                self.capture = None
            return
        mirror = not (isinstance(self.device, str) and not self.device.isdigit())
        self._last_camera_frame = camera_frame(bgr, mirror=mirror)
        self._publish(self._last_camera_frame)
