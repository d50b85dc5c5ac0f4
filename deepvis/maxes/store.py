"""MAXES files: what `find-maxes` writes and `crop-max-patches` reads.

An uncompressed NumPy .npz (read it with `np.load(path)`; no pickled objects, so
allow_pickle=False works). Keys:

- `format`: "deepvis-maxes/1".
- `info`: JSON text: model, settings, backend, top N, layers, image count, and `framing`
  (how photos became inputs, see deepvis.maxes.framing; crop-max-patches reuses it).
- `layers`: (L,) str, the scanned layers in the order asked for.
- `images`: (M,) str, every listed image; the position is the image index.
- `image_root`: str, the folder `images` are relative to (absolute paths stay absolute).
- `image_class`: (M,) int64, labels from a list file, -1 where none was given.
- `skipped_index`: (K,) int64 ascending, images that could not be read;
  `skipped_reason`: (K,) str, why.
- per layer L: `L/values` (C, N) float32, for each channel its N best values, best first
  (-inf in slots no image filled); `L/image_index` (C, N) int64 (-1 in unfilled slots);
  `L/y`, `L/x` (C, N) int64, where in the blob the maximum was (-1 for FC layers).
  Ranks follow (value desc, image index asc, y asc, x asc).

A checkpoint (`MAXES.checkpoint`) is the same plus `fingerprint` (the run it belongs
to) and `done` ((R, 2) int64 image index ranges [start, end) already scanned).
"""
from __future__ import annotations

import json
import pathlib
import zipfile
from dataclasses import dataclass, field

import numpy as np

from ..errors import FormatError
from ..fileio import save_npz
from .images import ImageList
from .tracker import TopTable

FORMAT = "deepvis-maxes/1"
TABLE_FIELDS = ("values", "image_index", "y", "x")


@dataclass
class Maxes:
    tables: dict[str, TopTable]           # layer -> table, in the order scanned
    images: ImageList
    skipped: dict[int, str] = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def to_arrays(maxes: Maxes) -> dict[str, np.ndarray]:
    skipped = sorted(maxes.skipped.items())
    arrays = {
        "format": np.asarray(FORMAT),
        "info": np.asarray(json.dumps(maxes.info, sort_keys=True)),
        "layers": np.asarray(list(maxes.tables), dtype=str),
        "images": np.asarray(maxes.images.paths, dtype=str),
        "image_root": np.asarray(str(maxes.images.root)),
        "image_class": np.asarray(maxes.images.labels, np.int64),
        "skipped_index": np.asarray([i for i, _ in skipped], np.int64),
        "skipped_reason": np.asarray([why for _, why in skipped], dtype=str),
    }
    for layer, table in maxes.tables.items():
        for name, array in zip(TABLE_FIELDS, table.arrays()):
            arrays[f"{layer}/{name}"] = array
    return arrays


def from_arrays(data) -> Maxes:
    try:
        if str(data["format"]) != FORMAT:
            raise FormatError(f"unknown maxes format {str(data['format'])!r}; expected {FORMAT}")
        layers = [str(name) for name in data["layers"]]
        tables = {layer: TopTable(*(np.asarray(data[f"{layer}/{name}"]) for name in TABLE_FIELDS))
                  for layer in layers}
        images = ImageList(pathlib.Path(str(data["image_root"])),
                           tuple(str(p) for p in data["images"]),
                           np.asarray(data["image_class"], np.int64))
        skipped = {int(i): str(why)
                   for i, why in zip(data["skipped_index"], data["skipped_reason"])}
        info = json.loads(str(data["info"]))
    except KeyError as exc:
        raise FormatError(f"not a deepvis maxes file: missing {exc}") from None
    except (TypeError, ValueError, IndexError) as exc:  # arrays of the wrong kind or shape
        raise FormatError(f"a damaged deepvis maxes file: {exc}") from None
    return Maxes(tables, images, skipped, info)


def write_maxes(path, maxes: Maxes, overwrite: bool = False) -> None:
    save_npz(path, to_arrays(maxes), overwrite=overwrite)


def read_npz(path) -> dict[str, np.ndarray]:
    """Every array of an .npz, loaded now (no pickles) so the file can be replaced later."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise FormatError(f"{path} does not exist") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, NotImplementedError,
            MemoryError) as exc:
        raise FormatError(f"{path} is not a readable .npz file: {exc}") from exc


def read_maxes(path) -> Maxes:
    data = read_npz(path)
    try:
        maxes = from_arrays(data)
    except FormatError as exc:
        raise FormatError(f"{path}: {exc}") from None
    check_maxes(maxes, path)
    return maxes


def check_maxes(maxes: Maxes, source) -> None:
    """Refuse tables no scan could have written (a crafted or damaged file): mismatched
    shapes, image indices outside the listing, filled slots without a value."""
    count = len(maxes.images.paths)
    if np.shape(maxes.images.labels) != (count,):
        raise FormatError(f"{source}: {count} images but {np.size(maxes.images.labels)} labels")
    for index in maxes.skipped:
        if not 0 <= index < count:
            raise FormatError(f"{source}: skipped image {index} is not among its {count} images")
    if not isinstance(maxes.info, dict):
        raise FormatError(f"{source}: 'info' is not a JSON object")
    for layer, table in maxes.tables.items():
        what = f"{source}: layer {layer!r}"
        arrays = table.arrays()
        shape = np.shape(arrays[0])
        if len(shape) != 2 or 0 in shape or any(np.shape(a) != shape for a in arrays):
            raise FormatError(f"{what}: tables must all be (channels, N) with N >= 1, got "
                              f"{[np.shape(a) for a in arrays]}")
        if arrays[0].dtype.kind != "f" or any(a.dtype.kind not in "iu" for a in arrays[1:]):
            raise FormatError(f"{what}: values must be float and indices integers")
        index, y, x = table.image_index, table.y, table.x
        if ((index < -1) | (index >= count)).any():
            raise FormatError(f"{what}: an image index is outside 0..{count - 1}")
        if ((y < -1) | (x < -1)).any():
            raise FormatError(f"{what}: a location is negative")
        empty = index == -1
        if (empty != np.isneginf(table.values)).any() or np.isnan(table.values).any():
            raise FormatError(f"{what}: filled slots must have a value and empty ones -inf")
