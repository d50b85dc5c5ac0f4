"""File locks: two processes never write one output at once, and caches are made once."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from deepvis import locks
from deepvis.cli import main
from deepvis.maxes.checkpoint import checkpoint_path
from deepvis.maxes.store import read_maxes
from tests.test_maxes_images import photo_set

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = "efficientnet-lite0"

HOLD = """
import sys, time
from deepvis import locks
with locks.{kind}(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold_in_another_process(kind, path, seconds):
    proc = subprocess.Popen([sys.executable, "-c", HOLD.format(kind=kind), str(path),
                             str(seconds)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_an_output_held_by_another_process_is_refused_at_once(tmp_path):
    out = tmp_path / "maxes.npz"
    proc = hold_in_another_process("exclusive_output", out, 30)
    try:   # the holder keeps it 30 s: waiting for it would end without Busy
        with pytest.raises(locks.Busy, match=f"another deepvis process is writing {out}"):
            with locks.exclusive_output(out):
                pass
    finally:
        proc.kill()
        proc.wait()
    with locks.exclusive_output(out):          # the kernel dropped the killed holder's lock
        pass
    assert list(tmp_path.iterdir()) == []      # no lock file beside the output


def test_a_cache_entry_held_by_another_process_is_waited_for(tmp_path):
    entry = tmp_path / "model.onnx"
    proc = hold_in_another_process("shared_cache_entry", entry, 1.5)
    lines = []
    started = time.monotonic()
    with locks.shared_cache_entry(entry, "converting", say=lines.append):
        waited = time.monotonic() - started
    proc.wait()
    assert waited > 0.5 and lines == [f"deepvis: waiting for another deepvis process "
                                      f"converting {entry} ..."]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return photo_set(tmp_path_factory.mktemp("photos"), count=24)


def find_maxes_args(photos, out, *extra):
    return ["find-maxes", MODEL, "--images", str(photos), "--layers", "stem,head",
            "--top", "3", "-o", str(out), *extra]


def test_two_find_maxes_on_one_output_never_kill_each_other(photos, tmp_path, capsys):
    """The issue's case: the second run used to delete the first's checkpoint temporary and
    the first died. Now the second stops at once (with or without --force) and the first
    ends with exactly the result of a run alone."""
    alone = tmp_path / "alone.npz"
    assert main(find_maxes_args(photos, alone, "--batch-size", "4")) == 0
    expected = read_maxes(alone)

    out = tmp_path / "shared.npz"
    first = subprocess.Popen(
        [sys.executable, "-m", "deepvis.cli",
         *find_maxes_args(photos, out, "--batch-size", "1", "--checkpoint-every", "1")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ckpt = checkpoint_path(out)
    deadline = time.monotonic() + 120
    while not ckpt.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first.poll() is None, "the first run ended before the second could start"
    capsys.readouterr()
    for extra in ((), ("--force",)):          # --force does not take another run's output
        assert main(find_maxes_args(photos, out, "--batch-size", "2", *extra)) == 1
        err = capsys.readouterr().err
        assert f"another deepvis process is finding maxes into {out}" in err
    assert first.poll() is None and ckpt.exists()   # still running, its checkpoint intact
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert "Traceback" not in err
    got = read_maxes(out)
    for layer, table in expected.tables.items():
        assert got.tables[layer].equals(table), layer
    assert not ckpt.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone.npz", "shared.npz"]
    # once the first is done, a second run is refused only because the output exists
    assert main(find_maxes_args(photos, out)) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
