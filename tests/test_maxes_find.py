"""find-maxes end to end on efficientnet-lite0: the tables against a brute-force ranking,
identical across batch sizes, skipped files listed, and kill -9 + restart exactness."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from deepvis.cli import main
from deepvis.maxes.checkpoint import checkpoint_path, load_checkpoint
from deepvis.maxes.store import read_maxes
from deepvis.maxes.tracker import EMPTY
from tests.test_maxes_images import photo_set

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = "efficientnet-lite0"
LAYERS = "stem,block05,head,pool"   # conv layers at three depths and an FC one
TOP = 5


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = photo_set(tmp_path_factory.mktemp("photos"), count=20)
    (folder / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return folder


@pytest.fixture(scope="module")
def model():
    import deepvis
    return deepvis.load_model(MODEL)


def find_maxes(photos, out, *extra):
    args = ["find-maxes", MODEL, "--images", str(photos), "--layers", LAYERS, "--top", str(TOP),
            "-o", str(out), *extra]
    assert main(args) == 0
    return read_maxes(out)


def brute_force(model, maxes, layer):
    """Every image forwarded alone; each channel's entries sorted by (-value, image)."""
    rows = None
    for index in range(len(maxes.images)):
        image = cv2.imread(str(maxes.images.file(index)), cv2.IMREAD_UNCHANGED)
        if image is None:
            continue
        blob = model.forward(model.preprocess(image), blobs=[layer])[layer][0]
        rows = rows or [[] for _ in range(len(blob))]
        for c, channel in enumerate(blob):
            flat = np.atleast_1d(channel).ravel()
            k = int(np.argmax(flat))
            y, x = divmod(k, channel.shape[-1]) if channel.ndim == 2 else (EMPTY, EMPTY)
            rows[c].append((-float(flat[k]), index, y, x))
    return [sorted(r)[:TOP] for r in rows]


def test_tables_match_a_brute_force_ranking_and_list_skipped_files(photos, model, tmp_path):
    maxes = find_maxes(photos, tmp_path / "m.npz", "--batch-size", "7")
    assert list(maxes.tables) == LAYERS.split(",")
    assert len(maxes.images) == 21
    assert [maxes.images.paths[i] for i in maxes.skipped] == ["b/broken.jpg"]
    assert "OpenCV" in next(iter(maxes.skipped.values()))
    for layer in ("stem", "pool"):
        t = maxes.tables[layer]
        expected = brute_force(model, maxes, layer)
        got = [[(-float(t.values[c, r]), int(t.image_index[c, r]), int(t.y[c, r]),
                 int(t.x[c, r])) for r in range(TOP)] for c in range(len(expected))]
        assert got == expected, layer
    assert maxes.tables["head"].values.shape == (1280, TOP)


def test_tables_are_identical_across_batch_sizes(photos, tmp_path):
    runs = [find_maxes(photos, tmp_path / f"m{b}.npz", "--batch-size", str(b),
                       "--decode-threads", str(b % 3)) for b in (1, 5, 32)]
    for other in runs[1:]:
        for layer in runs[0].tables:
            assert runs[0].tables[layer].equals(other.tables[layer]), layer
        assert other.skipped == runs[0].skipped


def test_existing_output_and_foreign_checkpoints_are_refused(photos, tmp_path, capsys):
    out = tmp_path / "m.npz"
    two = tmp_path / "two.txt"
    two.write_text("".join(f"{f}\n" for f in sorted((photos / "a").iterdir())[:2]))
    find_maxes(two, out)
    args = ["find-maxes", MODEL, "--images", str(two), "--layers", "stem", "-o", str(out)]
    assert main(args) == 1
    assert "--force" in capsys.readouterr().err
    checkpoint_path(out).write_bytes(out.read_bytes())   # a checkpoint of another run
    assert main(args) == 1
    assert "different run" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    assert not checkpoint_path(out).exists()
    assert list(read_maxes(out).tables) == ["stem"]


def test_kill_9_at_any_moment_then_restart_gives_the_uninterrupted_result(photos, tmp_path):
    expected = find_maxes(photos, tmp_path / "whole.npz", "--batch-size", "3")
    out = tmp_path / "killed.npz"
    command = [sys.executable, "-m", "deepvis.cli", "find-maxes", MODEL, "--images", str(photos),
               "--layers", LAYERS, "--top", str(TOP), "-o", str(out), "--batch-size", "1",
               "--checkpoint-every", "1"]
    ckpt = checkpoint_path(out)
    rng = np.random.default_rng(0)
    kills = 0
    for _ in range(3):
        proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        before = ckpt.stat().st_mtime_ns if ckpt.exists() else None
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if ckpt.exists() and ckpt.stat().st_mtime_ns != before:
                time.sleep(rng.uniform(0, 0.1))    # somewhere after a new checkpoint
                break
            time.sleep(0.01)
        if proc.poll() is not None:
            break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if not ckpt.exists():   # it finished (and removed its checkpoint) before the kill
            assert out.exists()
            break
        kills += 1
        state = load_checkpoint(ckpt, digest_of(ckpt))
        assert state is not None and state.done.ranges[0][0] == 0
    assert kills >= 1
    if ckpt.exists() or not out.exists():   # unless the last start ran to the end by itself
        subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    got = read_maxes(out)
    for layer in expected.tables:
        assert got.tables[layer].equals(expected.tables[layer]), layer
    assert got.skipped == expected.skipped
    assert not ckpt.exists()


def test_a_checkpoint_holds_the_exact_tables_of_the_images_done(photos, tmp_path):
    """Stop a run after a few batches (as a kill would), then compare its checkpoint
    with a run over exactly those images."""
    from deepvis.commands import find_maxes as command

    out = tmp_path / "m.npz"
    original = command.PeriodicSaver.tick
    calls = []

    def tick_then_stop(self):
        original(self)
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt

    command.PeriodicSaver.tick = tick_then_stop
    try:
        assert main(["find-maxes", MODEL, "--images", str(photos), "--layers", LAYERS,
                     "--top", str(TOP), "-o", str(out), "--batch-size", "3",
                     "--checkpoint-every", "2"]) == 130
    finally:
        command.PeriodicSaver.tick = original
    state = load_checkpoint(checkpoint_path(out), digest_of(checkpoint_path(out)))
    assert state.done.ranges == [(0, 12)]
    listing = tmp_path / "first12.txt"
    maxes = read_maxes(tmp_path / "m.npz.checkpoint")
    listing.write_text("".join(str(maxes.images.file(i)) + "\n" for i in range(12)))
    part = find_maxes(listing, tmp_path / "part.npz", "--batch-size", "12")
    for layer in part.tables:
        assert state.tables[layer].equals(part.tables[layer]), layer


def digest_of(ckpt):
    with np.load(ckpt) as data:
        return str(data["fingerprint"])
