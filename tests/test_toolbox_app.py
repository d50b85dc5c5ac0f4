"""The live window: its main loop with a scripted display, and the real OpenCV window under
Xvfb driven by xdotool, compared with what `deepvis render` draws for the same keys."""
import ctypes
import ctypes.util
import os
import pathlib
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from deepvis import load_model
from deepvis.toolbox.app import ToolboxApp
from deepvis.toolbox.inputs import InputFetcher, StaticFiles
from deepvis.toolbox.keys import parse_keys
from deepvis.toolbox.lifeline import Lifeline
from deepvis.toolbox.panes.status import status_text
from deepvis.toolbox.session import Session, replay, static_files_for

REPO = pathlib.Path(__file__).resolve().parent.parent
CODES = {"left": 0xff51, "up": 0xff52, "right": 0xff53, "down": 0xff54, "esc": 27}


@pytest.fixture(scope="module")
def lite():
    return load_model("efficientnet-lite0")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    skdata = pytest.importorskip("skimage.data")
    folder = tmp_path_factory.mktemp("images")
    cv2.imwrite(str(folder / "a_cat.png"), cv2.cvtColor(skdata.chelsea(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / "b_coffee.png"), cv2.cvtColor(skdata.coffee(), cv2.COLOR_RGB2BGR))
    return folder


class ScriptedDisplay:
    """Stands in for the OpenCV window: plays keys once the app has settled, records frames."""

    def __init__(self, app, keys):
        self.app, self.keys = app, list(keys)
        self.shown = []
        self.pressed = self.seen = 0             # keys given, keys a shown frame followed
        self.closed_at_end = False

    def settled(self) -> bool:
        app = self.app
        request = app._request()
        return (request is not None and self.shown and self.seen == self.pressed
                and not app.fetcher.pending()
                and app.fetcher.frame()[0] == request.frame_id
                and app.session.runner.up_to_date(request, app.worker.results)
                and self.shown[-1][1] is app.worker.results and app.worker.fps() == 0
                and self.shown[-1][2] == 0)

    def wait_key(self, ms):
        time.sleep(ms / 1000)
        if not self.settled():
            return -1
        key = self.keys.pop(0) if self.keys else "q"
        self.pressed += 1
        return CODES.get(key, ord(key[0]) if len(key) == 1 else -1)

    def show(self, image):
        self.shown.append((image.copy(), self.app.worker.results, self.app.worker.fps()))
        self.seen = self.pressed

    def closed(self):
        return False

    def close(self):
        self.closed_at_end = True


def test_main_loop_matches_replay_and_stops_cleanly(lite, images):
    keys = ["o", "o", "down", "right", "b", "b", "b", "e", "h"]
    session = Session(lite, StaticFiles(lite.settings, images))
    app = ToolboxApp(session)
    holder = {}
    app.display_factory = lambda: holder.setdefault("d", ScriptedDisplay(app, keys))
    started = time.monotonic()
    app.run()
    display = holder["d"]
    assert time.monotonic() - started < 60
    assert display.closed_at_end and not display.keys
    assert not any(t.is_alive() for t in (app.fetcher, app.worker, app.jpg_loader))
    assert len(app.key_latencies) == len(keys)          # q quits before a redraw
    expected_session = Session(lite, StaticFiles(lite.settings, images))
    scene = replay(expected_session, keys)
    assert np.array_equal(display.shown[-1][0], expected_session.drawer.draw(scene))
    assert app.worker.results.back == ("block02", 1, "deconv")


def test_h_for_help_is_shown_on_the_first_draw_only(lite, images):
    from deepvis.toolbox.panes import status as status_pane

    session = Session(lite, StaticFiles(lite.settings, images))
    app = ToolboxApp(session)
    holder = {}
    # f (freeze the camera) is a base key: it redraws without touching the state
    app.display_factory = lambda: holder.setdefault("d", ScriptedDisplay(app, ["f"]))
    app.run()
    shown = holder["d"].shown
    pane = session.drawer.panes["caffevis_status"]
    look = session.drawer.look

    def status_pixels(text):
        view = np.zeros((pane.height, pane.width, 3), np.uint8)
        status_pane.draw(view, text, look)
        return view
    first, last = (pane.view(image) for image in (shown[0][0], shown[-1][0]))
    assert len(shown) >= 2
    assert np.array_equal(first, status_pixels("fwd stem:0 | Back: off | Boost: 0/1 | "
                                                "h for help"))
    assert np.array_equal(last, status_pixels("fwd stem:0 | Back: off | Boost: 0/1"))


def wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_capture_device_frames_then_its_end_on_the_status_line(lite, images, tmp_path):
    video = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for k in range(4):
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[:, :32] = (40 + 40 * k, 0, 0)           # BGR: blue on the left half
        writer.write(frame)
    writer.release()
    lifeline = Lifeline()
    fetcher = InputFetcher(StaticFiles(lite.settings, images), lifeline, video, sleep=0.01)
    fetcher.bind_camera()
    assert fetcher.capture is not None and fetcher.notice == ""
    fetcher.start()
    try:
        wait_for(lambda: fetcher.frame()[1] is not None)
        fetcher.toggle_camera()
        wait_for(lambda: fetcher.frame()[1].shape == (48, 48, 3))
        camera = fetcher.frame()[1]                    # centre crop, stretched, not mirrored
        assert camera[:, :8, 2].min() > 200 and camera[:, -8:].max() < 10
        wait_for(lambda: "ended" in fetcher.notice)    # the clip runs out: back to the files
        wait_for(lambda: fetcher.frame()[1].shape == (300, 300, 3))   # the cat again
        assert not fetcher.camera_mode
    finally:
        lifeline.stop()
        fetcher.join(5)
    assert not fetcher.is_alive()
    broken = InputFetcher(StaticFiles(lite.settings, images), Lifeline(), str(tmp_path / "no.avi"))
    broken.bind_camera()
    assert broken.capture is None and "failed to open" in broken.notice
    broken.toggle_camera()
    assert not broken.camera_mode and "not available" in broken.notice
    status = status_text(Session(lite, StaticFiles(lite.settings, images)).state,
                         notice=broken.notice)
    assert status.endswith("| capture device " + str(tmp_path / "no.avi") + " is not available")


# -- the real window under Xvfb ------------------------------------------------------------
def _gui_backend() -> bool:
    info = cv2.getBuildInformation()
    gui = info.split("GUI:", 1)[1].splitlines()[0].strip() if "GUI:" in info else "NONE"
    return gui not in ("", "NONE")


needs_x = pytest.mark.skipif(
    not (shutil.which("Xvfb") and shutil.which("xdotool") and ctypes.util.find_library("X11")
         and _gui_backend()),
    reason="needs Xvfb, xdotool, libX11 and an OpenCV build with a GUI backend")


@pytest.fixture
def x_display():
    """$DISPLAY when set, else a private Xvfb on a free display number (-displayfd)."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    read_end, write_end = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0",
                               "1600x1000x24", "-nolisten", "tcp"], pass_fds=(write_end,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        with os.fdopen(read_end) as announced:
            number = announced.readline().strip()
        assert number, "Xvfb did not start"
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


def screenshot(display: str) -> np.ndarray:
    """The X root window as BGR uint8, read with XGetImage (24-bit TrueColor)."""
    x11 = ctypes.CDLL(ctypes.util.find_library("X11"))
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XDefaultRootWindow.restype = ctypes.c_ulong
    x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    x11.XDisplayWidth.argtypes = x11.XDisplayHeight.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x11.XGetImage.restype = ctypes.c_void_p
    x11.XGetImage.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_int,
                              ctypes.c_uint, ctypes.c_uint, ctypes.c_ulong, ctypes.c_int]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]

    class XImage(ctypes.Structure):
        _fields_ = [(n, ctypes.c_int) for n in ("width", "height", "xoffset", "format")] + \
                   [("data", ctypes.c_void_p)] + \
                   [(n, ctypes.c_int) for n in ("byte_order", "bitmap_unit", "bitmap_bit_order",
                                                "bitmap_pad", "depth", "bytes_per_line",
                                                "bits_per_pixel")]

    handle = x11.XOpenDisplay(display.encode())
    assert handle, f"cannot open X display {display}"
    try:
        width, height = x11.XDisplayWidth(handle, 0), x11.XDisplayHeight(handle, 0)
        pointer = x11.XGetImage(handle, x11.XDefaultRootWindow(handle), 0, 0, width, height,
                                0xFFFFFFFF, 2)                          # ZPixmap
        image = ctypes.cast(pointer, ctypes.POINTER(XImage)).contents
        assert image.bits_per_pixel == 32 and image.byte_order == 0   # BGRX, little-endian
        raw = ctypes.string_at(image.data, image.bytes_per_line * height)
    finally:
        x11.XCloseDisplay(handle)
    rows = np.frombuffer(raw, np.uint8).reshape(height, -1)[:, :4 * width]
    return rows.reshape(height, width, 4)[..., :3].copy()


def xdotool(display, *args, timeout=30):
    return subprocess.run(["xdotool", *args], env=dict(os.environ, DISPLAY=display), check=True,
                          capture_output=True, text=True, timeout=timeout).stdout


@needs_x
def test_real_window_shows_the_rendered_frame(x_display, images, lite, tmp_path):
    env = dict(os.environ, DISPLAY=x_display, PYTHONPATH=str(REPO))
    window = subprocess.Popen([sys.executable, "-m", "deepvis.cli", "toolbox", "--model",
                               "efficientnet-lite0", "--input-dir", str(images),
                               "--capture-device", "none"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        wid = xdotool(x_display, "search", "--sync", "--name", "Deep Visualization Toolbox",
                      timeout=120).split()[0]
        time.sleep(1.0)
        xdotool(x_display, "windowfocus", "--sync", wid)
        # X keysyms; shift+t is the capital T (per-channel boost)
        xdotool(x_display, "key", "--delay", "60", "o", "o", "o", "Down", "Right", "Right",
                "Down", "Left", "b", "b", "b", "shift+t", "e")
        session = Session(lite, static_files_for(lite.settings, images))
        expected = session.drawer.draw(replay(session, parse_keys("o o o down right right "
                                                                  "down left b b b T e")))
        template = cv2.cvtColor(expected, cv2.COLOR_RGB2BGR)
        deadline, shots = time.monotonic() + 90, []
        while len(shots) < 3 or not all(np.array_equal(s, shots[-1]) for s in shots[-3:]):
            # until unchanged for 3 s: the network is done and its FPS (shown for 2 s) gone
            assert time.monotonic() < deadline, "the window never settled"
            time.sleep(1.5)
            shots.append(screenshot(x_display))
        shot = shots[-1]
        scores = cv2.matchTemplate(shot, template, cv2.TM_CCORR_NORMED)
        _, best, _, (x, y) = cv2.minMaxLoc(scores)
        found = shot[y:y + template.shape[0], x:x + template.shape[1]].astype(int)
        assert best > 0.99 and np.abs(found - template).mean() < 1.0
        xdotool(x_display, "key", "q")
        assert window.wait(30) == 0
    finally:
        if window.poll() is None:
            window.kill()
        output = window.communicate()[0]
    assert "Running toolbox" in output
