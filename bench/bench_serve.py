"""`deepvis serve` in headless Chromium: key-to-new-frame latency, frames per second with
deconv on for 1 and 4 pages, and memory with 4 pages; on EfficientNet-Lite0 and on CaffeNet
with synthetic weights.

Latency: a key pressed in the page (timed by the page from keydown) until the canvas holds
the first frame that shows it. FPS: distinct network results painted per second while each
page plays a video (c) with deconv on: every video frame needs forward + deconv + a redraw.
The video source reads at most 1 / input_updater_sleep_after_read_frame (20) frames a second.
Memory: this process's resident set (the server: model, every page's toolbox threads and
results) and the browser's, with 4 pages playing. Side by side, in the same run: the same
ToolboxApp with no page at all (keys from a script, frames only counted), the floor the
page's numbers stand on.

Run: nice python bench/bench_serve.py [--models lite0,caffenet] [--keys 30] [--seconds 8]
Targets: median latency under 100 ms with 1 page; each of 4 pages above half the FPS of 1.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np
import onnx

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from bench.bench_toolbox import test_image  # noqa: E402
from bench.common import synthetic_caffenet  # noqa: E402
from deepvis import load_model  # noqa: E402
from deepvis.web.server import Hub, ServerThread  # noqa: E402

DECONV_KEYS = {"lite0": "o*4 down b b b", "caffenet": "o*8 down right*10 down b b b"}


def make_video(path, frames: int, size: int = 256) -> None:
    base = cv2.resize(test_image(), (size, size))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20, (size, size))
    for k in range(frames):
        writer.write(np.roll(base, 3 * k, axis=1))
    writer.release()


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1600,1300", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def wait(drv, script, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = drv.execute_script("return " + script)
        if value:
            return value
        time.sleep(0.02)
    raise TimeoutError(script)


def press(drv, keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    named = {"down": Keys.ARROW_DOWN, "right": Keys.ARROW_RIGHT, "left": Keys.ARROW_LEFT,
             "up": Keys.ARROW_UP}
    from deepvis.toolbox.keys import parse_keys
    drv.execute_script("document.getElementById('frame').focus()")
    chain = ActionChains(drv)
    for name in parse_keys(keys):
        chain.send_keys(named.get(name, name))
    chain.perform()


def open_page(drv, url) -> None:
    drv.get(url)
    wait(drv, "deepvis.header && deepvis.header.settled")


def latency(drv, url, n: int) -> list[float]:
    """ms from keydown to the canvas showing the key, one key at a time (right / left)."""
    open_page(drv, url)
    press(drv, "down")
    wait(drv, "deepvis.header.keys == 1")
    for k in range(n):
        press(drv, "right" if k % 2 == 0 else "left")
        wait(drv, f"deepvis.header.keys == {k + 2}")
        time.sleep(0.15)
    return drv.execute_script("return deepvis.latencies")[1:]


def start_video(drv, url, keys: str) -> None:
    open_page(drv, url)
    press(drv, keys + " c")
    wait(drv, "deepvis.header.input.camera && deepvis.header.state.back == 'deconv'")


def fps_of(drv, since: float, until: float) -> float:
    stamps = drv.execute_script("return deepvis.netFrames")
    inside = [t for t in stamps if since <= t / 1000 <= until]
    return (len(inside) - 1) / (inside[-1] / 1000 - inside[0] / 1000) if len(inside) > 1 else 0.0


def rss_mb(pid="self", peak=False) -> float:
    field = "VmHWM" if peak else "VmRSS"
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def browser_rss_mb(drv) -> float:
    try:
        import psutil
    except ImportError:
        return float("nan")
    root = psutil.Process(drv.service.process.pid)
    total = 0
    for proc in root.children(recursive=True):
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total / 1024 ** 2


class ScriptedDisplay:
    """The window's core without any front end: keys from a script, frames only counted.
    The same ToolboxApp the page drives, so its numbers are the page's floor."""

    def __init__(self, app, keys, key_every: float, run_for: float):
        from deepvis.web.protocol import KEY_CODES
        self.app, self.codes = app, [KEY_CODES[k] for k in keys]
        self.key_every, self.started = key_every, time.monotonic()
        self.end, self.next_key = self.started + run_for, self.started + 1.0
        self.results: list[tuple[float, int]] = []

    def wait_key(self, ms):
        time.sleep(ms / 1000)
        now = time.monotonic()
        if self.codes and now >= self.next_key:
            self.next_key = now + self.key_every
            return self.codes.pop(0)
        return -1

    def show(self, image):
        results = self.app.shown_scene.results
        if results is not None and (not self.results or self.results[-1][1] != results.frame_id):
            self.results.append((time.time(), results.frame_id))

    def closed(self):
        return time.monotonic() > self.end

    def close(self):
        pass


def core(model, folder, video, keys, key_every, run_for):
    from deepvis.toolbox.app import ToolboxApp
    from deepvis.toolbox.inputs import StaticFiles
    from deepvis.toolbox.session import Session
    app = ToolboxApp(Session(model, StaticFiles(model.settings, folder)), device=str(video))
    display = ScriptedDisplay(app, keys, key_every, run_for)
    app.display_factory = lambda: display
    app.run()
    return app, display


def core_latency(model, folder, video, n: int) -> list[float]:
    """ms from a key to the core's frame showing it (no page): the window's own latency."""
    keys = ["down"] + ["right" if k % 2 == 0 else "left" for k in range(n)]
    app, _ = core(model, folder, video, keys, 0.15, 1.5 + 0.15 * (n + 2))
    return [1000 * t for t in app.key_latencies[1:]]


def core_fps(model, folder, video, name, args) -> float:
    from deepvis.toolbox.keys import parse_keys
    keys = parse_keys(DECONV_KEYS[name]) + ["c"]
    run_for = 1.0 + 0.05 * len(keys) + args.warmup + args.seconds
    _, display = core(model, folder, video, keys, 0.05, run_for)
    start = time.time() - args.seconds
    stamps = [t for t, _ in display.results if t >= start]
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0


def cpu_seconds(drv) -> tuple[float, float]:
    """CPU time used so far by this process (the server, all threads) and by the browser."""
    browser_cpu = float("nan")
    try:
        import psutil
        browser_cpu = 0.0
        for proc in psutil.Process(drv.service.process.pid).children(recursive=True):
            try:
                times = proc.cpu_times()
                browser_cpu += times.user + times.system
            except psutil.Error:
                pass
    except ImportError:
        pass
    return time.process_time(), browser_cpu


def bench_model(name, model, folder, video, args) -> dict:
    out = {}
    lat = core_latency(model, folder, video, args.keys)
    out["core (no page) latency median ms"] = statistics.median(lat)
    out["core (no page) latency worst ms"] = max(lat)
    out["core (no page) fps"] = core_fps(model, folder, video, name, args)
    hub = Hub(model, folder, device=str(video))
    server = ServerThread(hub)
    drv = browser()
    try:
        base_rss = rss_mb()
        lat = latency(drv, server.url, args.keys)
        out["page latency median ms"] = statistics.median(lat)
        out["page latency worst ms"] = max(lat)
        # one page playing the video with deconv on
        start_video(drv, server.url, DECONV_KEYS[name])
        time.sleep(args.warmup)
        t0, cpu0 = time.time(), cpu_seconds(drv)
        time.sleep(args.seconds)
        t1, cpu1 = time.time(), cpu_seconds(drv)
        fps1 = out["page fps, 1 page"] = fps_of(drv, t0, t1)
        frames = max(fps1 * (t1 - t0), 1e-9)
        server_ms = 1000 * (cpu1[0] - cpu0[0]) / frames
        browser_ms = 1000 * (cpu1[1] - cpu0[1]) / frames
        out["server CPU ms per frame, 1 page"] = server_ms
        out["browser CPU ms per frame, 1 page"] = browser_ms
        out["CPU ceiling fps, all pages together"] = \
            1000 * (os.cpu_count() or 1) / (server_ms + browser_ms)
        # four pages
        handles = []
        for _ in range(4):
            drv.switch_to.new_window("window")
            start_video(drv, server.url, DECONV_KEYS[name])
            handles.append(drv.current_window_handle)
        time.sleep(args.warmup)
        t0 = time.time()
        time.sleep(args.seconds)
        t1 = time.time()
        fps4 = []
        for handle in handles:
            drv.switch_to.window(handle)
            fps4.append(fps_of(drv, t0, t1))
        out["page fps, 4 pages"] = fps4
        out["pages open"] = len(hub.clients)
        out["server rss MB (model loaded, 0 pages)"] = base_rss
        out["server rss MB (4 pages playing)"] = rss_mb()
        out["server peak rss MB"] = rss_mb(peak=True)
        out["browser rss MB (5 windows)"] = browser_rss_mb(drv)
    finally:
        drv.quit()
        server.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="lite0,caffenet")
    parser.add_argument("--keys", type=int, default=30, help="keys timed for the latency")
    parser.add_argument("--seconds", type=float, default=8.0, help="FPS measuring window")
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()
    if not (shutil.which("chromium") or shutil.which("chromium-browser")) \
            or not shutil.which("chromedriver"):
        sys.exit("needs chromium and chromedriver (apt: chromium chromium-driver)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "inputs")
        os.mkdir(folder)
        cv2.imwrite(os.path.join(folder, "test.png"), cv2.cvtColor(test_image(), cv2.COLOR_RGB2BGR))
        frames = int(20 * (2 * args.warmup + 2 * args.seconds + 30))
        video = os.path.join(tmp, "clip.avi")
        make_video(video, frames)
        for name in args.models.split(","):
            if name == "lite0":
                model = load_model("efficientnet-lite0")
            else:
                path = os.path.join(tmp, "caffenet.onnx")
                onnx.save(synthetic_caffenet(), path)
                model = load_model(path)
            result = bench_model(name, model, folder, video, args)
            print(f"\n== {name} ({os.cpu_count()} cores)")
            for key, value in result.items():
                if isinstance(value, list):
                    value = ", ".join(f"{v:.1f}" for v in value)
                elif isinstance(value, float):
                    value = f"{value:.1f}"
                print(f"  {key:40s} {value}")
            one, four = result["page fps, 1 page"], result["page fps, 4 pages"]
            print(f"  targets: median latency < 100 ms: {result['page latency median ms'] < 100}; "
                  f"4 pages each > half of 1 page's FPS ({one / 2:.1f}): "
                  f"{all(f > one / 2 for f in four)}")
            del model


if __name__ == "__main__":
    main()
