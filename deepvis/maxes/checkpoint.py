"""Resumable scans: the state of a run so far, saved so that a kill at any instant loses
at most the work since the last save and never changes the final result.

The state is the exact top-N tables of the images scanned so far, which index ranges
those are, and the files skipped. It is written to a temporary file and moved over the
checkpoint in one step (os.replace), so a kill -9 leaves the previous or the new
checkpoint, never a torn one. A restart with the same command loads it and scans only
the ranges not yet done; because merging tables is exact, the result is bit-identical
to an uninterrupted run. A fingerprint of what determines the result (model file,
layers, top N, image list) keeps a checkpoint from being resumed by a different run.
"""
from __future__ import annotations

import hashlib
import json
import pathlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import DeepvisError
from .images import ImageList
from .store import Maxes, check_maxes, from_arrays, read_npz, to_arrays
from .tracker import TopTable, empty_table, merge
from ..fileio import remove_stale_temporaries, save_npz


class Coverage:
    """A set of image indices kept as sorted, disjoint, non-adjacent ranges [start, end)."""

    def __init__(self, ranges=()):
        self.ranges: list[tuple[int, int]] = []
        for start, end in ranges:
            self.add(start, end)

    def add(self, start: int, end: int) -> None:
        if end <= start:
            return
        keep = []
        for a, b in self.ranges:
            if b < start or a > end:
                keep.append((a, b))
            else:
                start, end = min(a, start), max(b, end)
        keep.append((start, end))
        self.ranges = sorted(keep)

    def remaining(self, total: int) -> list[tuple[int, int]]:
        """The ranges of [0, total) not covered."""
        out, at = [], 0
        for a, b in self.ranges:
            if a > at:
                out.append((at, min(a, total)))
            at = max(at, b)
        if at < total:
            out.append((at, total))
        return [(a, b) for a, b in out if b > a]

    def count(self) -> int:
        return sum(b - a for a, b in self.ranges)

    def as_array(self) -> np.ndarray:
        return np.asarray(self.ranges, np.int64).reshape(-1, 2)


@dataclass
class ScanState:
    """Tables of the images in `done`, plus the files among them that were skipped."""
    tables: dict[str, TopTable]
    done: Coverage = field(default_factory=Coverage)
    skipped: dict[int, str] = field(default_factory=dict)

    @classmethod
    def empty(cls, channels: dict[str, int], top: int) -> "ScanState":
        return cls({layer: empty_table(c, top) for layer, c in channels.items()})

    def absorb(self, other: "ScanState") -> None:
        """Add the results of a disjoint set of images (a batch or a partition)."""
        for layer, table in other.tables.items():
            self.tables[layer] = merge(self.tables[layer], table)
        for start, end in other.done.ranges:
            self.done.add(start, end)
        self.skipped.update(other.skipped)


def fingerprint(model_file, images: ImageList, **settings) -> str:
    """sha256 over the model file's bytes, the image list and the settings that shape the
    result (layers, top N, ...); batch size and worker count are not among them."""
    digest = hashlib.sha256()
    if model_file is not None and pathlib.Path(model_file).is_file():
        with open(model_file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                digest.update(chunk)
    digest.update(json.dumps({"root": str(images.root), "paths": list(images.paths),
                              "labels": images.labels.tolist(), **settings},
                             sort_keys=True).encode())
    return digest.hexdigest()


def checkpoint_path(output) -> pathlib.Path:
    output = pathlib.Path(output)
    return output.with_name(output.name + ".checkpoint")


def save_checkpoint(path, state: ScanState, images: ImageList, info: dict, digest: str) -> None:
    arrays = to_arrays(Maxes(state.tables, images, state.skipped, info))
    arrays.update(fingerprint=np.asarray(digest), done=state.done.as_array())
    save_npz(path, arrays, overwrite=True)


def load_checkpoint(path, digest: str, channels: dict | None = None,
                    top: int | None = None) -> ScanState | None:
    """The saved state, None when there is none; an error when it is another run's, or
    when it is impossible (progress beyond the listing, tables of images not scanned,
    other layers, channel counts or top N than `channels` and `top`)."""
    path = pathlib.Path(path)
    remove_temporaries(path)
    if not path.exists():
        return None
    data = read_npz(path)
    if str(data.get("fingerprint")) != digest:
        raise DeepvisError(f"{path} is the checkpoint of a different run (other model, layers, "
                           "top N or image list); pass --force to discard it and start over")
    try:
        maxes = from_arrays(data)
    except DeepvisError as exc:
        raise DeepvisError(f"{path}: {exc}; pass --force to discard it") from None
    check_maxes(maxes, path)
    done = np.asarray(data.get("done", np.zeros((0, 2), np.int64)))
    total = len(maxes.images)
    if done.dtype.kind not in "iu" or done.ndim != 2 or done.shape[1:] != (2,) or \
            ((done[:, 0] < 0) | (done[:, 1] > total) | (done[:, 0] >= done[:, 1])).any():
        raise DeepvisError(f"{path}: its progress ('done' ranges) is impossible for "
                           f"{total} images; pass --force to discard it")
    coverage = Coverage(map(tuple, done.tolist()))
    scanned = np.zeros(total + 1, bool)
    for start, end in coverage.ranges:
        scanned[start:end] = True
    used = np.concatenate([t.image_index.ravel() for t in maxes.tables.values()] +
                          [np.asarray(list(maxes.skipped), np.int64)])
    if (~scanned[used[used >= 0]]).any():
        raise DeepvisError(f"{path}: its tables hold images it has not scanned; pass --force "
                           "to discard it")
    if channels is not None and ({k: t.values.shape[0] for k, t in maxes.tables.items()}
                                 != dict(channels) or
                                 any(t.top != top for t in maxes.tables.values())):
        raise DeepvisError(f"{path}: its tables do not match the layers' channels or the top "
                           "N of this run; pass --force to discard it")
    return ScanState(maxes.tables, coverage, maxes.skipped)


def discard_checkpoint(path) -> None:
    path = pathlib.Path(path)
    path.unlink(missing_ok=True)
    remove_temporaries(path)


def remove_temporaries(path) -> None:
    """Temporary files a killed atomic write of `path` left behind (see fileio.atomic_path);
    those of a process still running are left alone."""
    remove_stale_temporaries(path)
