"""The original toolbox's pickles: read without running them, converted to deepvis files.

The pickles are written here the way the original's scripts wrote them: instances of
classes of the same names and modules (max_tracker.NetMaxTracker, ...), at pickle
protocol 2 (Python 2's highest), holding NumPy arrays.
"""
from __future__ import annotations

import os
import pickle
import sys
import types

import numpy as np
import pytest

from deepvis.cli import main
from deepvis.errors import FormatError
from deepvis.maxes.store import read_maxes
from deepvis.original_pickles import load, loads


@pytest.fixture
def original_classes(monkeypatch):
    """Plain classes named as the original's, importable for pickle.dumps only."""
    made = {}
    for module, names in (("max_tracker", ("NetMaxTracker", "MaxTracker")),
                          ("gradient_optimizer", ("FindParams", "FindResults"))):
        mod = types.ModuleType(module)
        for name in names:
            cls = type(name, (object,), {"__module__": module})
            setattr(mod, name, cls)
            made[name] = cls
        monkeypatch.setitem(sys.modules, module, mod)
    return made


def net_max_tracker(classes):
    """conv5: 3 channels, top 4, one slot never filled; fc8: 2 channels (FC locations)."""
    conv = classes["MaxTracker"]()
    conv.is_conv, conv.n_top = True, 4
    conv.max_vals = np.array([[1.0, 2.0, 3.0, 4.0], [-np.inf, 0.5, 0.7, 0.9],  # -1e99 in f4
                              [5.0, 6.0, 7.0, 8.0]], np.float32)      # ascending, best last
    conv.max_locs = -np.ones((3, 4, 4), int)
    for c in range(3):
        for k in range(4):
            if conv.max_vals[c, k] > -1e30:
                conv.max_locs[c, k] = (10 * c + k, 7, c, k + 1)   # image, class, i, j
    fc = classes["MaxTracker"]()
    fc.is_conv, fc.n_top = False, 4
    fc.max_vals = np.array([[0.1, 0.2, 0.3, 0.4], [1.1, 1.2, 1.3, 1.4]], np.float32)
    fc.max_locs = np.array([[(k, 3) for k in range(4)], [(20 + k, 4) for k in range(4)]])
    nmt = classes["NetMaxTracker"]()
    nmt.layers, nmt.is_conv, nmt.init_done, nmt.n_top = ["conv5", "fc8"], [True, False], True, 4
    nmt.initial_val = -1e99
    nmt.max_trackers = {"conv5": conv, "fc8": fc}
    return nmt


def test_a_net_max_tracker_converts_to_maxes(original_classes, tmp_path):
    pkl = tmp_path / "maxes.pkl"
    pkl.write_bytes(pickle.dumps(net_max_tracker(original_classes), protocol=2))
    names = [f"n{i:02d}/img_{i}.JPEG" for i in range(30)]
    (tmp_path / "list.txt").write_text("".join(f"{n} {i % 5}\n" for i, n in enumerate(names)))
    out = tmp_path / "maxes.npz"
    assert main(["convert-original", str(pkl), "-o", str(out), "--file-list",
                 str(tmp_path / "list.txt"), "--datadir", str(tmp_path / "images")]) == 0
    maxes = read_maxes(out)
    assert list(maxes.tables) == ["conv5", "fc8"]
    conv = maxes.tables["conv5"]
    np.testing.assert_array_equal(conv.values[2], [8, 7, 6, 5])          # best first
    np.testing.assert_array_equal(conv.image_index[2], [23, 22, 21, 20])
    np.testing.assert_array_equal(conv.y[2], [2, 2, 2, 2])
    np.testing.assert_array_equal(conv.x[2], [4, 3, 2, 1])
    assert conv.values[1, 3] == -np.inf and conv.image_index[1, 3] == -1 and conv.y[1, 3] == -1
    fc = maxes.tables["fc8"]
    np.testing.assert_array_equal(fc.image_index[1], [23, 22, 21, 20])
    assert (fc.y == -1).all() and (fc.x == -1).all()
    assert maxes.images.paths == tuple(names)
    assert maxes.images.root == (tmp_path / "images").resolve()
    assert maxes.images.labels.tolist() == [i % 5 for i in range(30)]
    assert maxes.info["framing"]["how"] == "squash"


class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.mkdir, (self.target,)


def test_a_pickle_with_any_other_global_is_refused_before_it_runs(original_classes, tmp_path):
    nmt = net_max_tracker(original_classes)
    nmt.extra = _Payload(str(tmp_path / "made-by-the-pickle"))
    with pytest.raises(FormatError, match="refused global posix.mkdir|refused global os.mkdir"):
        loads(pickle.dumps(nmt, protocol=2))
    assert not (tmp_path / "made-by-the-pickle").exists()
    for payload in (pickle.dumps(print), pickle.dumps(np.load),
                    pickle.dumps(types.SimpleNamespace(a=1))):
        with pytest.raises(FormatError, match="refused global"):
            loads(payload)
    with pytest.raises(FormatError, match="objects are refused"):
        loads(pickle.dumps(np.array([None, 1], dtype=object), protocol=2))
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps(nmt, protocol=2))
    assert main(["convert-original", str(bad), "-o", str(tmp_path / "x.npz"),
                 "--file-list", str(bad)]) == 1
    assert not (tmp_path / "x.npz").exists()


def optimize_info(classes, trimmed: bool):
    p = classes["FindParams"]()
    p.push_layer, p.push_channel, p.push_unit, p.max_iter = "fc8", 130, (130, 0, 0), 1000
    p.lr_params, p.decay = {"lr": 100.0}, 0.0001
    r = classes["FindResults"]()
    r.ii, r.obj = [0, 1, 2], [np.float32(-1.3), np.float32(-0.75), np.float32(0.5)]
    r.idxmax, r.ismax = [(330, 0, 0), (533, 0, 0), (130, 0, 0)], [False, False, True]
    r.best_obj, r.best_ii, r.meta_result = np.float32(0.5), 2, "Metaresult: majority success"
    xx = np.random.default_rng(0).normal(size=(3, 227, 227))
    r.best_xx = "Trimmed (3, 227, 227) array [...]" if trimmed else xx
    return (p, r), xx


@pytest.mark.parametrize("trimmed", [True, False])
def test_optimize_info_pickles_convert_to_plain_dicts(original_classes, tmp_path, trimmed):
    info, xx = optimize_info(original_classes, trimmed)
    pkl = tmp_path / ("info.pkl" if trimmed else "info_big.pkl")
    pkl.write_bytes(pickle.dumps(info, protocol=2))
    out = tmp_path / "converted.pkl"
    assert main(["convert-original", str(pkl), "-o", str(out)]) == 0
    with open(out, "rb") as f:
        params, results = pickle.load(f)          # plain pickle: no deepvis classes inside
    assert params["max_iter"] == 1000 and params["push_unit"] == (130, 0, 0)
    assert results["idxmax"][2] == (130, 0, 0) and results["obj"][2] == pytest.approx(0.5)
    if not trimmed:
        np.testing.assert_array_equal(results["best_xx"], xx)
    assert main(["convert-original", str(pkl), "-o", str(tmp_path / "c.json")]) == 0
    assert '"max_iter": 1000' in (tmp_path / "c.json").read_text()
    assert load(pkl)[0]["__class__"] == "FindParams"


def py2_array_pickle(array: np.ndarray) -> bytes:
    """The bytes Python 2's cPickle (protocol 2) wrote for a small NumPy array: raw data
    and dtype codes as Python 2 str (SHORT_BINSTRING), not bytes."""
    def s(text: bytes) -> bytes:
        return b"U" + bytes([len(text)]) + text
    dtype = array.dtype.str[1:].encode()
    return (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x00cnumpy\nndarray\nq\x01K\x00\x85"
            + s(b"b") + b"\x87R(K\x01K" + bytes([array.size]) + b"\x85cnumpy\ndtype\n"
            + s(dtype) + b"K\x00K\x01\x87R(K\x03" + s(b"<")
            + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89" + s(array.tobytes()) + b"tb.")


def test_python2_array_pickles_load():
    array = np.array([1.5, -2.0, 3.25], np.float32)
    np.testing.assert_array_equal(loads(py2_array_pickle(array)), array)


def test_a_converted_original_run_renders_like_a_deepvis_run(original_classes, tmp_path):
    """find-maxes on a small Caffe net, the same tables written as the original's tracker
    pickle (ascending, (image, class, i, j) locations) with its file list, converted back:
    the tables are equal and crop-max-patches writes the same files from both."""
    import re

    import onnx

    from deepvis.caffe.convert import net_to_onnx
    from deepvis.caffe.parse import parse_prototxt_text
    from deepvis.resources import models_dir
    from tests.test_maxes_images import photo_set

    text = (models_dir() / "caffenet-yos" / "deploy.prototxt").read_text()
    text = re.sub(r"num_output: (\d+)", lambda m: f"num_output: {int(m[1]) // 16}", text)
    net = tmp_path / "net.onnx"
    onnx.save(net_to_onnx(parse_prototxt_text(text), None, random_weights_seed=0,
                          preprocess={"mean": [104.0, 117.0, 123.0]}), str(net))
    photos = photo_set(tmp_path / "photos", count=5, side=150)
    names = sorted(p.relative_to(photos).as_posix() for p in photos.rglob("*.*"))
    listing = photos / "list.txt"          # names relative to the list's folder, the datadir
    listing.write_text("".join(f"{n} {k}\n" for k, n in enumerate(names)))
    ours = tmp_path / "ours.npz"
    assert main(["find-maxes", str(net), "--images", str(listing), "--layers",
                 "conv5,fc6", "--top", "3", "-o", str(ours)]) == 0
    found = read_maxes(ours)
    nmt = original_classes["NetMaxTracker"]()
    nmt.layers, nmt.max_trackers = ["conv5", "fc6"], {}
    for layer, table in found.tables.items():
        mt = original_classes["MaxTracker"]()
        conv = (table.y >= 0).any()
        labels = found.images.labels[table.image_index]
        parts = [table.image_index, labels] + ([table.y, table.x] if conv else [])
        mt.max_vals = table.values[:, ::-1].copy()
        mt.max_locs = np.stack(parts, axis=2)[:, ::-1].copy()
        nmt.max_trackers[layer] = mt
    pkl = tmp_path / "nmt.pkl"
    pkl.write_bytes(pickle.dumps(nmt, protocol=2))
    converted = tmp_path / "converted.npz"
    assert main(["convert-original", str(pkl), "-o", str(converted), "--file-list",
                 str(listing)]) == 0
    back = read_maxes(converted)
    assert all(back.tables[l].equals(found.tables[l]) for l in found.tables)
    outs = []
    for maxes in (ours, converted):
        out = tmp_path / f"jpg-{maxes.stem}"
        assert main(["crop-max-patches", str(net), str(maxes), "-o", str(out), "--units", "0",
                     "--image-root", str(photos)]) == 0
        outs.append({p.relative_to(out).as_posix(): p.read_bytes()
                     for p in out.rglob("*") if p.is_file()})
    assert outs[0].keys() == outs[1].keys() and len(outs[0]) > 10
    assert all(outs[0][k] == outs[1][k] for k in outs[0])
