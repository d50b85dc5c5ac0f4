"""Coverage of scanned ranges, the MAXES file format, and checkpoint round trips."""
from __future__ import annotations

import json
import os
import pathlib

import numpy as np
import pytest

from deepvis.errors import DeepvisError, FormatError
from deepvis.maxes.checkpoint import (Coverage, ScanState, load_checkpoint, remove_temporaries,
                                      save_checkpoint)
from deepvis.maxes.images import ImageList
from deepvis.maxes.store import Maxes, read_maxes, write_maxes
from deepvis.maxes.tracker import image_maxima


def test_coverage_merges_ranges_and_lists_what_remains():
    done = Coverage([(5, 8), (0, 2)])
    done.add(2, 3)          # touches (0, 2): merged
    done.add(7, 12)         # overlaps (5, 8)
    assert done.ranges == [(0, 3), (5, 12)]
    assert done.remaining(15) == [(3, 5), (12, 15)]
    assert done.count() == 10
    assert Coverage().remaining(4) == [(0, 4)] and Coverage([(0, 4)]).remaining(4) == []


def small_state():
    rng = np.random.default_rng(0)
    state = ScanState.empty({"conv": 3, "fc": 2}, top=4)
    state.absorb(ScanState({"conv": image_maxima(rng.normal(size=(5, 3, 2, 3)), np.arange(5)),
                            "fc": image_maxima(rng.normal(size=(5, 2)), np.arange(5))},
                           Coverage([(0, 6)]), {5: "broken"}))
    return state


def images():
    return ImageList(pathlib.Path("photos"), tuple(f"{i}.jpg" for i in range(8)),
                     np.array([3, -1, 0, 1, 2, 3, 4, 5], np.int64))


def test_the_maxes_file_is_a_plain_npz_with_the_documented_keys(tmp_path):
    state = small_state()
    path = tmp_path / "m.npz"
    write_maxes(path, Maxes(state.tables, images(), state.skipped, {"top": 4}))
    with np.load(path, allow_pickle=False) as data:
        assert str(data["format"]) == "deepvis-maxes/1"
        assert data["layers"].tolist() == ["conv", "fc"]
        assert data["conv/values"].dtype == np.float32 and data["conv/values"].shape == (3, 4)
        assert data["fc/image_index"].dtype == np.int64 and (data["fc/y"] == -1).all()
        assert data["images"].tolist()[7] == "7.jpg" and data["image_class"][0] == 3
        assert data["skipped_index"].tolist() == [5]
        assert data["skipped_reason"].tolist() == ["broken"]
        assert json.loads(str(data["info"])) == {"top": 4}
    back = read_maxes(path)
    assert all(back.tables[k].equals(state.tables[k]) for k in state.tables)
    assert back.images.paths == images().paths and back.skipped == {5: "broken"}


def test_a_checkpoint_round_trips_and_is_refused_by_another_run(tmp_path):
    state = small_state()
    path = tmp_path / "m.npz.checkpoint"
    save_checkpoint(path, state, images(), {}, "abc")
    back = load_checkpoint(path, "abc")
    assert back.done.ranges == [(0, 6)] and back.skipped == {5: "broken"}
    assert all(back.tables[k].equals(state.tables[k]) for k in state.tables)
    with pytest.raises(DeepvisError, match="different run"):
        load_checkpoint(path, "xyz")
    assert load_checkpoint(tmp_path / "none.checkpoint", "abc") is None


def test_a_torn_temporary_file_is_ignored_and_removed(tmp_path):
    import subprocess
    import sys

    from deepvis import fileio

    path = tmp_path / "m.npz.checkpoint"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()   # a finished process
    stale = tmp_path / f".m.npz.checkpoint.{fileio._HOST}-{gone}-0123abcd.part.checkpoint"
    stale.write_bytes(b"half a zip")
    running = tmp_path / f".m.npz.checkpoint.{fileio._HOST}-{os.getppid()}-0123abcd.part.checkpoint"
    running.write_bytes(b"another process is writing this one")
    assert load_checkpoint(path, "abc") is None and not stale.exists()
    assert running.exists()                      # a live writer's file is left alone
    running.unlink()
    path.write_bytes(b"not a zip")
    with pytest.raises(FormatError):
        load_checkpoint(path, "abc")
    remove_temporaries(path)
    assert path.exists()
