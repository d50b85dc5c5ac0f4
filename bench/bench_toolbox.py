"""Toolbox speed on CaffeNet (synthetic weights): frames per second of forward + deconv from
conv5 + drawing the whole window, and the main loop's worst key-to-redraw latency while the
network thread is busy with a stream of camera frames.

Run: python bench/bench_toolbox.py [--cores 2] [--frames 30] [--keys 60]
Targets: at least 8 frames per second; every key redrawn within 50 ms.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np
import onnx

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from bench.common import synthetic_caffenet  # noqa: E402
from deepvis import load_model  # noqa: E402
from deepvis.toolbox.app import ToolboxApp  # noqa: E402
from deepvis.toolbox.inputs import StaticFiles  # noqa: E402
from deepvis.toolbox.network import Request  # noqa: E402
from deepvis.toolbox.session import Session  # noqa: E402

BACK = ("conv5", 26, "deconv")
KEY_CYCLE = (0xff53, 0xff54, 0xff51, 0xff52, ord("t"), ord("m"))   # right down left up t m


def test_image(size: int = 400) -> np.ndarray:
    """An RGB photo-like frame without downloads: smooth colour fields and edges."""
    y, x = np.mgrid[0:size, 0:size] / size
    image = np.stack([128 + 100 * np.sin(7 * x + 3 * y), 128 + 100 * np.cos(5 * y - 2 * x),
                      128 + 90 * np.sin(11 * x * y)], axis=2)
    cv2.circle(image, (size // 3, 2 * size // 3), size // 8, (20, 20, 20), -1)
    cv2.rectangle(image, (size // 2, size // 5), (9 * size // 10, size // 2), (240, 200, 30), -1)
    return image.clip(0, 255).astype(np.uint8)


def frames_per_second(session, n: int) -> dict:
    """Each frame new (fresh noise), so every one needs forward + deconv + a full redraw."""
    rng = np.random.default_rng(0)
    base = test_image().astype(np.int16)
    state = session.state
    for tag in ["sel_right"] * 8 + ["sel_down"] + ["sel_right"] * 10 + ["sel_down"]:
        state.handle(tag)                                   # conv5, unit 26 (row 1, column 10)
    for tag in ("back_mode", "back_mode"):
        state.handle(tag)                                   # deconv
    assert state.back_key() == BACK, state.back_key()
    frames = [(base + rng.integers(-20, 20, base.shape)).clip(0, 255).astype(np.uint8)
              for _ in range(n + 2)]
    results, net, draw = None, [], []
    for i, frame in enumerate(frames):
        started = time.perf_counter()
        results = session.runner.run(Request(i, frame, BACK), results)
        middle = time.perf_counter()
        session.drawer.draw(session.scene(results, frame))
        if i >= 2:                                          # two warm-up frames
            net.append(middle - started)
            draw.append(time.perf_counter() - middle)
    total = sum(net) + sum(draw)
    return {"fps": n / total, "net_ms": 1000 * statistics.median(net),
            "draw_ms": 1000 * statistics.median(draw)}


class KeyDisplay:
    """Stands in for the window: a key every `interval` seconds once frames stream in."""

    def __init__(self, app, n_keys: int, interval: float):
        self.app, self.left, self.interval = app, n_keys, interval
        self.next_at = None
        self.sent = 0

    def wait_key(self, ms):
        time.sleep(ms / 1000)
        now = time.monotonic()
        if self.next_at is None:
            self.next_at = now + 1.0
            return ord("c")                                 # to the camera (a video file)
        if now < self.next_at or self.app.worker.results is None:
            return -1
        self.next_at = now + self.interval
        if self.sent == self.left:
            return ord("q")
        self.sent += 1
        return KEY_CYCLE[self.sent % len(KEY_CYCLE)]

    def show(self, image):
        pass

    def closed(self):
        return False

    def close(self):
        pass


def key_latency(model, folder, n_keys: int, interval: float) -> dict:
    video = os.path.join(folder, "stream.avi")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 20, (320, 240))
    rng = np.random.default_rng(1)
    base = cv2.resize(test_image(), (320, 240)).astype(np.int16)
    for _ in range(int(n_keys * interval * 25) + 100):
        writer.write((base + rng.integers(-20, 20, base.shape)).clip(0, 255).astype(np.uint8))
    writer.release()
    model.settings["caffevis_pause_after_keys"] = 0.0      # keep the network busy throughout
    session = Session(model, StaticFiles(model.settings, folder))
    for tag in ["sel_right"] * 8 + ["sel_down"] + ["sel_right"] * 10 + ["sel_down"] + \
            ["back_mode", "back_mode"]:
        session.state.handle(tag)
    app = ToolboxApp(session, device=video)
    app.display_factory = lambda: KeyDisplay(app, n_keys, interval)
    completions = []
    original = app._mark_dirty

    def counting():
        completions.append(time.monotonic())
        original()
    app.worker.on_result = counting
    started = time.monotonic()
    app.run()
    elapsed = time.monotonic() - started
    latencies = sorted(app.key_latencies[1:])               # [0]: the switch to the camera
    return {"worst_ms": 1000 * latencies[-1], "median_ms": 1000 * statistics.median(latencies),
            "keys": len(latencies), "net_results": len(completions),
            "net_fps": len(completions) / elapsed, "notice": app.fetcher.notice}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2, help="CPU cores to run on (default 2)")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--keys", type=int, default=60)
    parser.add_argument("--key-interval", type=float, default=0.12, metavar="S")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))[:args.cores]
        os.sched_setaffinity(0, cores)
    with tempfile.TemporaryDirectory() as folder:
        onnx_path = os.path.join(folder, "caffenet.onnx")
        onnx.save(synthetic_caffenet(), onnx_path)
        settings = os.path.join(folder, "toolbox.yaml")
        with open(settings, "w") as f:
            f.write(f"deepvis_model: {onnx_path}\ncaffevis_labels: imagenet-1k\n"
                    "caffevis_prob_layer: prob\ncaffevis_label_layers: [fc8, prob]\n"
                    "caffevis_layer_pretty_names: [[pool, p], [norm, n]]\n")
        cv2.imwrite(os.path.join(folder, "frame.png"), test_image())
        model = load_model(settings)
        fps = frames_per_second(Session(model, StaticFiles(model.settings, folder)), args.frames)
        lat = key_latency(model, folder, args.keys, args.key_interval)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"deepvis toolbox, synthetic CaffeNet, {len(os.sched_getaffinity(0))} CPU cores, "
          f"1-min load average {load:.1f}")
    print(f"{'measure':<52} {'value':>10} {'target':>8}")
    print(f"{'frames per second (forward + deconv conv5 + draw)':<52} {fps['fps']:>10.1f} "
          f"{'>= 8':>8}")
    print(f"{'  network ms per frame (median)':<52} {fps['net_ms']:>10.1f}")
    print(f"{'  drawing ms per frame (median)':<52} {fps['draw_ms']:>10.1f}")
    print(f"{'worst key-to-redraw ms, network busy':<52} {lat['worst_ms']:>10.1f} {'< 50':>8}")
    print(f"{'  median key-to-redraw ms':<52} {lat['median_ms']:>10.1f}")
    print(f"{'  keys / network results meanwhile':<52} "
          f"{lat['keys']:>4} / {lat['net_results']:<4} ({lat['net_fps']:.1f}/s)")
    if lat["notice"]:
        print(f"  input notice: {lat['notice']}")


if __name__ == "__main__":
    main()
