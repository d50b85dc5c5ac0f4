"""Top-N tables: for every unit of a layer, the N images that excite it most.

As the original's MaxTracker (original-toolbox §10.3): each image contributes one
entry per channel, its spatial maximum (the first in row-major order when several
positions tie). Entries are ranked by (value desc, image index asc); as an image has
one entry per channel, that is a total order (the location never has to break a tie),
so the top N of any set of images is one well-defined table: merging the tables of
disjoint image sets in any grouping or order gives the table of their union, bit for
bit. That is what makes batches, checkpoints and Dask partitions exact. Unfilled slots
rank after every image, NaN maxima never enter, and -0.0 counts as 0.0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EMPTY = -1   # image index (and y, x) of a slot no image has filled yet; its value is -inf


@dataclass
class TopTable:
    """Rows are channels, columns ranks (0 = best). y and x are -1 for FC units."""
    values: np.ndarray        # (C, N) float32
    image_index: np.ndarray   # (C, N) int64
    y: np.ndarray             # (C, N) int64
    x: np.ndarray             # (C, N) int64

    @property
    def top(self) -> int:
        return self.values.shape[1]

    def equals(self, other: "TopTable") -> bool:
        return all(np.array_equal(a, b) for a, b in zip(self.arrays(), other.arrays()))

    def arrays(self) -> tuple[np.ndarray, ...]:
        return self.values, self.image_index, self.y, self.x


def empty_table(channels: int, top: int) -> TopTable:
    fill = np.full((channels, top), EMPTY, np.int64)
    return TopTable(np.full((channels, top), -np.inf, np.float32), fill, fill.copy(), fill.copy())


def image_maxima(blob: np.ndarray, image_index: np.ndarray) -> TopTable:
    """One entry per (channel, image): the image's spatial maximum; a table (C, B), unsorted.

    blob is (B, C, H, W) for conv units or (B, C) for FC units.
    """
    blob = np.asarray(blob)
    if blob.ndim == 2:
        return maxima_table(blob, None, 0, image_index)
    if blob.ndim != 4:
        raise ValueError(f"expected a (B, C) or (B, C, H, W) blob, got shape {blob.shape}")
    flat = blob.reshape(*blob.shape[:2], -1)
    where = flat.argmax(axis=2)
    values = np.take_along_axis(flat, where[:, :, None], axis=2)[:, :, 0]
    return maxima_table(values, where, blob.shape[3], image_index)


def maxima_table(values: np.ndarray, flat_index: np.ndarray | None, width: int,
                 image_index: np.ndarray) -> TopTable:
    """A (C, B) table from per-image maxima (B, C) and their row-major positions in a map
    `width` wide (None for FC units)."""
    batch, channels = values.shape
    images = np.broadcast_to(np.asarray(image_index, np.int64)[None, :], (channels, batch)).copy()
    rows = np.ascontiguousarray(values.T, np.float32)   # channel rows, contiguous for merges
    if flat_index is None:
        none = np.full((channels, batch), EMPTY, np.int64)
        return TopTable(rows, images, none, none.copy())
    where = np.ascontiguousarray(flat_index.T, np.int64)
    return TopTable(rows, images, where // width, where % width)


def rank_keys(values: np.ndarray, images: np.ndarray) -> np.ndarray:
    """uint64 keys whose ascending order is the rank order: the high 32 bits the value
    (descending), the low 32 bits the image index (ascending; -1, unfilled, last).
    NaN gets the largest key, after unfilled slots, so it never enters a table."""
    bits = (np.asarray(values, np.float32) + np.float32(0)).view(np.uint32)  # -0.0 -> 0.0
    # IEEE floats order as sign-magnitude integers: flip all bits of negatives and the
    # sign bit of positives, then invert for descending; done in one xor.
    flip = (bits >> np.uint32(31)) * np.uint32(0x7FFFFFFF) ^ np.uint32(0x7FFFFFFF)
    keys = (bits ^ flip).astype(np.uint64) << np.uint64(32)
    keys |= images.astype(np.uint64) & np.uint64(0xFFFFFFFF)
    keys[np.isnan(values)] = np.iinfo(np.uint64).max
    return keys


def merge(a: TopTable, b: TopTable, top: int | None = None) -> TopTable:
    """The best `top` entries (default a's N) of both tables, in rank order.

    When `a` is already a ranked table of `top` entries (the running table of a scan),
    only the channels where some entry of `b` beats a's last one are re-sorted.
    """
    top = a.top if top is None else top
    keys_a = rank_keys(a.values, a.image_index)
    keys_b = rank_keys(b.values, b.image_index)
    if a.top == top and top > 0 and b.top > 0 and (keys_a[:, 1:] >= keys_a[:, :-1]).all():
        rows = np.flatnonzero(keys_b.min(axis=1) < keys_a[:, -1])
        if len(rows) < len(keys_a) // 2:
            out = TopTable(*(arr.copy() for arr in a.arrays()))
            part = _merge_rows(TopTable(*(arr[rows] for arr in a.arrays())),
                               TopTable(*(arr[rows] for arr in b.arrays())),
                               keys_a[rows], keys_b[rows], top)
            for dst, src in zip(out.arrays(), part.arrays()):
                dst[rows] = src
            return out
    return _merge_rows(a, b, keys_a, keys_b, top)


def _merge_rows(a: TopTable, b: TopTable, keys_a, keys_b, top: int) -> TopTable:
    joined = [np.concatenate(pair, axis=1) for pair in zip(a.arrays(), b.arrays())]
    order = np.argsort(np.concatenate([keys_a, keys_b], axis=1), axis=1, kind="stable")
    return TopTable(*(np.take_along_axis(arr, order[:, :top], axis=1) for arr in joined))


def merge_all(tables, top: int) -> TopTable:
    """Merge any number of tables (at least one) of the same channels."""
    tables = list(tables)
    out = empty_table(tables[0].values.shape[0], 0)
    for table in tables:
        out = merge(out, table, top)
    return out
