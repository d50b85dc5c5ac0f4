"""Top-N tables: per-image spatial maxima and exact, order-independent merging."""
from __future__ import annotations

import numpy as np
import pytest

from deepvis.maxes.tracker import EMPTY, empty_table, image_maxima, merge, merge_all


def brute_force(blobs: np.ndarray, top: int):
    """Reference: for each channel, every image's first row-major maximum, ranked by
    (value desc, image asc), written with Python loops."""
    n, c = blobs.shape[:2]
    rows = []
    for ch in range(c):
        entries = []
        for img in range(n):
            m = blobs[img, ch]
            if m.ndim == 2:
                best = max(m.ravel())
                pos = list(m.ravel()).index(best)
                y, x = divmod(pos, m.shape[1])
            else:
                best, y, x = m, EMPTY, EMPTY
            entries.append((-float(best), img, y, x))
        entries.sort()
        entries += [(np.inf, EMPTY, EMPTY, EMPTY)] * top
        rows.append(entries[:top])
    values = np.array([[-e[0] for e in row] for row in rows], np.float32)
    ints = [np.array([[e[k] for e in row] for row in rows], np.int64) for k in (1, 2, 3)]
    return values, *ints


def tied_blobs(rng, shape):
    """Small integer values, so ties within and across images are everywhere."""
    return rng.integers(0, 4, size=shape).astype(np.float32)


def table_of(blobs, start, top):
    return merge(empty_table(blobs.shape[1], top),
                 image_maxima(blobs, np.arange(start, start + len(blobs))))


def test_image_maxima_takes_the_first_row_major_maximum():
    blob = np.zeros((1, 2, 3, 4), np.float32)
    blob[0, 0, 1, 3] = blob[0, 0, 2, 0] = 5   # tie: (1, 3) comes first in row-major order
    blob[0, 1, 2, 2] = -1
    blob[0, 1] -= 3                           # all negative; the max is -3 first at (0, 0)
    blob[0, 1, 2, 2] = -4
    t = image_maxima(blob, np.array([7]))
    assert t.values[:, 0].tolist() == [5, -3]
    assert t.image_index[:, 0].tolist() == [7, 7]
    assert (t.y[:, 0].tolist(), t.x[:, 0].tolist()) == ([1, 0], [3, 0])


@pytest.mark.parametrize("shape", [(23, 5, 3, 4), (23, 6)])
def test_merging_any_partition_in_any_order_equals_the_brute_force_ranking(shape):
    rng = np.random.default_rng(0)
    blobs = tied_blobs(rng, shape)
    top = 9
    expected = brute_force(blobs, top)
    for trial in range(5):
        cuts = np.sort(rng.choice(np.arange(1, len(blobs)), size=trial + 1, replace=False))
        pieces = [(a, b) for a, b in zip([0, *cuts], [*cuts, len(blobs)])]
        tables = [table_of(blobs[a:b], a, top) for a, b in pieces]
        order = rng.permutation(len(tables))
        got = merge_all([tables[i] for i in order], top)
        for a, b in zip(got.arrays(), expected):
            np.testing.assert_array_equal(a, b)


def test_batches_merged_one_by_one_equal_one_merge_of_everything():
    rng = np.random.default_rng(1)
    blobs = tied_blobs(rng, (17, 4, 2, 2))
    running = empty_table(4, 5)
    for start in range(0, 17, 3):
        part = blobs[start:start + 3]
        running = merge(running, image_maxima(part, np.arange(start, start + len(part))))
    assert running.equals(table_of(blobs, 0, 5))


def test_equal_values_rank_earlier_images_first_and_unfilled_slots_are_marked():
    blobs = np.full((3, 1, 2, 2), 2.0, np.float32)
    t = table_of(blobs, 10, top=5)
    assert t.image_index[0].tolist() == [10, 11, 12, EMPTY, EMPTY]
    assert t.values[0, 3] == -np.inf and t.y[0, 4] == EMPTY


def test_fc_units_have_no_location():
    t = image_maxima(np.array([[1.0, 2.0]], np.float32), np.array([3]))
    assert t.y.tolist() == [[EMPTY], [EMPTY]] and t.values[:, 0].tolist() == [1.0, 2.0]


def test_nan_never_enters_and_negative_zero_ties_with_zero():
    blobs = np.array([[[[np.nan]]], [[[0.0]]], [[[-0.0]]], [[[-1.0]]]], np.float32)
    t = table_of(blobs, 0, top=4)
    assert t.image_index[0].tolist() == [1, 2, 3, EMPTY]
    later = merge(t, image_maxima(np.full((1, 1, 1, 1), np.nan, np.float32), np.array([9])))
    assert later.equals(t)


def test_only_channels_a_batch_can_change_are_re_sorted_and_the_rest_stay_exact():
    rng = np.random.default_rng(2)
    blobs = tied_blobs(rng, (40, 64, 2, 2)) * rng.uniform(0.5, 1.0, (1, 64, 1, 1))
    running = table_of(blobs[:30], 0, 6)
    for start in range(30, 40, 2):    # small batches: most channels keep their table
        running = merge(running, image_maxima(blobs[start:start + 2],
                                              np.arange(start, start + 2)))
    assert running.equals(table_of(blobs, 0, 6))
