"""MAXES from the original's find_max_acts.py output (a pickled NetMaxTracker).

The tracker keeps, per layer, `max_vals` (C, N) sorted ascending (best last) and
`max_locs` (C, N, 4) of (image index, image class, i, j) for conv layers, (C, N, 2) for FC
layers, -1 where no image filled a slot. The image names are not in the pickle: they come
from the file list find_max_acts.py read (`filename label` lines, names relative to its
datadir). The result is a MAXES file like find-maxes writes, best first, with the
original's framing recorded, so crop-max-patches renders the original's crops.
"""
from __future__ import annotations

import pathlib

import numpy as np

from ..errors import DeepvisError, FormatError
from .framing import Framing
from .images import ImageList
from .store import Maxes
from .tracker import EMPTY, TopTable


def read_file_list(path, datadir=None) -> ImageList:
    """The original's file list: `filename label` a line (split on whitespace)."""
    path = pathlib.Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DeepvisError(f"cannot read the file list {path}: {exc}") from None
    names, labels = [], []
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DeepvisError(f"{path}:{number}: expected `filename label`, got {line!r}")
        names.append(parts[0])
        labels.append(int(parts[1]))
    root = pathlib.Path(datadir) if datadir is not None else path.parent
    return ImageList(root.resolve(), tuple(names), np.asarray(labels, np.int64))


def tracker_tables(tracker: dict, where: str) -> dict[str, TopTable]:
    """Per-layer tables, best first, from a NetMaxTracker as original_pickles reads it."""
    if not isinstance(tracker, dict) or tracker.get("__class__") != "NetMaxTracker":
        raise FormatError(f"{where}: not a pickled NetMaxTracker")
    trackers = tracker.get("max_trackers")
    if not isinstance(trackers, dict):
        raise FormatError(f"{where}: the NetMaxTracker was never updated (no max_trackers)")
    order = [l for l in tracker.get("layers", []) if l in trackers] + \
        [l for l in trackers if l not in tracker.get("layers", [])]
    tables = {}
    for layer in order:
        mt = trackers[layer]
        try:
            vals = np.asarray(mt["max_vals"], np.float64)
            locs = np.asarray(mt["max_locs"], np.int64)
        except (KeyError, TypeError, ValueError):
            raise FormatError(f"{where}: layer {layer!r} is not a MaxTracker") from None
        if vals.ndim != 2 or locs.shape[:2] != vals.shape or locs.shape[2:] not in ((4,), (2,)):
            raise FormatError(f"{where}: layer {layer!r} has max_vals {vals.shape} and "
                              f"max_locs {locs.shape}")
        vals, locs = vals[:, ::-1], locs[:, ::-1]                 # best first
        image = locs[..., 0].copy()
        filled = image >= 0
        values = np.where(filled, vals, -np.inf).astype(np.float32)
        if locs.shape[2] == 4:
            y, x = np.where(filled, locs[..., 2], EMPTY), np.where(filled, locs[..., 3], EMPTY)
        else:
            y = x = np.full(image.shape, EMPTY, np.int64)
        tables[layer] = TopTable(values, np.where(filled, image, EMPTY),
                                 np.ascontiguousarray(y), np.ascontiguousarray(x))
    return tables


def tracker_to_maxes(tracker: dict, images: ImageList, where: str) -> Maxes:
    tables = tracker_tables(tracker, where)
    for layer, table in tables.items():
        top = int(table.image_index.max(initial=-1))
        if top >= len(images):
            raise DeepvisError(f"{where}: layer {layer!r} names image {top}, but the file list "
                               f"has {len(images)} images (is it the list find_max_acts used?)")
    info = {"model": "original find_max_acts.py", "converted_from": str(where),
            "top": int(next(iter(tables.values())).top) if tables else 0,
            "layers": list(tables), "image_count": len(images),
            "framing": Framing("squash").as_dict()}
    return Maxes(tables, images, {}, info)
