"""Writes binary Caffe files for tests, with its own tiny protobuf encoder.

Independent of deepvis's reader (own field numbers, own V1 type table), so a
write -> read round trip checks the reader rather than agreeing with itself.
Usable by any test that needs synthetic weights, e.g.::

    rng = np.random.default_rng(0)
    write_caffemodel(tmp_path / "w.caffemodel",
                     [("conv1", "Convolution", [rng.standard_normal((96, 3, 11, 11)),
                                                rng.standard_normal(96)])],
                     fmt="v1", legacy_dims=True)
"""
from __future__ import annotations

import os
import struct
import tempfile

import numpy as np

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5

# V2 type string -> caffe.proto V1LayerParameter.LayerType value
V1_TYPE_CODES = {
    "Accuracy": 1, "BNLL": 2, "Concat": 3, "Convolution": 4, "Data": 5, "Dropout": 6,
    "EuclideanLoss": 7, "Flatten": 8, "ImageData": 12, "InnerProduct": 14, "LRN": 15,
    "Pooling": 17, "ReLU": 18, "Sigmoid": 19, "Softmax": 20, "SoftmaxWithLoss": 21,
    "Split": 22, "TanH": 23, "Eltwise": 25, "Power": 26, "Slice": 33, "AbsVal": 35,
    "Deconvolution": 39,
}
# V2 type string -> V0 (pre-2014) type string
V0_TYPE_NAMES = {
    "Convolution": "conv", "InnerProduct": "innerproduct", "Pooling": "pool", "ReLU": "relu",
    "LRN": "lrn", "Dropout": "dropout", "Softmax": "softmax", "Data": "data",
    "Concat": "concat", "SoftmaxWithLoss": "softmax_loss", "Accuracy": "accuracy",
}


# -- encoder -------------------------------------------------------------------------------
def varint(value: int) -> bytes:
    value &= (1 << 64) - 1            # negative numbers: 10-byte two's complement
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def int_field(number: int, value: int) -> bytes:
    return key(number, VARINT) + varint(int(value))


def float_field(number: int, value: float) -> bytes:
    return key(number, FIXED32) + struct.pack("<f", value)


def double_field(number: int, value: float) -> bytes:
    return key(number, FIXED64) + struct.pack("<d", value)


def bytes_field(number: int, payload: bytes) -> bytes:
    return key(number, LEN) + varint(len(payload)) + payload


def string_field(number: int, text: str) -> bytes:
    return bytes_field(number, text.encode("utf-8"))


def packed_ints(number: int, values) -> bytes:
    return bytes_field(number, b"".join(varint(int(v)) for v in values))


def packed_floats(number: int, values, dtype="<f4") -> bytes:
    return bytes_field(number, np.ascontiguousarray(values, dtype).tobytes())


def unpacked_floats(number: int, values, dtype="<f4") -> bytes:
    """One tagged fixed-width value per element, built with NumPy for big arrays."""
    dtype = np.dtype(dtype)
    tag = key(number, FIXED64 if dtype.itemsize == 8 else FIXED32)
    flat = np.ascontiguousarray(values, dtype).ravel()
    rows = np.empty((flat.size, len(tag) + dtype.itemsize), np.uint8)
    rows[:, :len(tag)] = np.frombuffer(tag, np.uint8)
    rows[:, len(tag):] = flat.view(np.uint8).reshape(flat.size, dtype.itemsize)
    return rows.tobytes()


# -- Caffe messages ------------------------------------------------------------------------
def blob_proto(array, legacy_dims: bool = False, packed: bool = True,
               double: bool = False) -> bytes:
    """A BlobProto. legacy_dims: num/channels/height/width with dims aligned to the END."""
    array = np.asarray(array)
    if legacy_dims:
        if array.ndim > 4:
            raise ValueError(f"legacy dims hold at most 4 axes, got {array.shape}")
        dims = (1,) * (4 - array.ndim) + array.shape
        out = b"".join(int_field(n, d) for n, d in zip((1, 2, 3, 4), dims))
    else:
        out = bytes_field(7, packed_ints(1, array.shape))
    number, dtype = (8, "<f8") if double else (5, "<f4")
    encode = packed_floats if packed else unpacked_floats
    return out + encode(number, array, dtype)


def layer_message(name: str, type_: str, arrays, fmt: str = "v2", legacy_dims: bool = False,
                  packed: bool = True) -> bytes:
    """One layer as the payload of NetParameter field 100 (v2) or 2 (v1, v0)."""
    blobs = [blob_proto(a, legacy_dims, packed) for a in arrays]
    if fmt == "v2":
        return (string_field(1, name) + string_field(2, type_)
                + b"".join(bytes_field(7, b) for b in blobs))
    if fmt == "v1":
        return (string_field(4, name) + int_field(5, V1_TYPE_CODES[type_])
                + b"".join(bytes_field(6, b) for b in blobs))
    if fmt == "v0":
        v0 = (string_field(1, name) + string_field(2, V0_TYPE_NAMES[type_])
              + b"".join(bytes_field(50, b) for b in blobs))
        return bytes_field(1, v0)
    raise ValueError(f"unknown format {fmt!r}")


def net_message(layers, fmt: str = "v2", legacy_dims: bool = False, packed: bool = True,
                name: str = "synthetic") -> bytes:
    number = 100 if fmt == "v2" else 2
    return string_field(1, name) + b"".join(
        bytes_field(number, layer_message(n, t, arrays, fmt, legacy_dims, packed))
        for n, t, arrays in layers)


# -- files ---------------------------------------------------------------------------------
def write_bytes(path, data: bytes, overwrite: bool = False) -> None:
    """Atomic write: a temp file in the same folder, then os.replace."""
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_caffemodel(path, layers, fmt: str = "v2", legacy_dims: bool = False,
                     packed: bool = True, name: str = "synthetic",
                     overwrite: bool = False) -> None:
    """layers: [(name, V2 type string, [arrays])]; fmt "v2" (field 100, BlobShape),
    "v1" (field 2, enum types) or "v0" (V1 wrapping V0 layers)."""
    write_bytes(path, net_message(layers, fmt, legacy_dims, packed, name), overwrite)


def write_binaryproto(path, array, legacy_dims: bool = True, double: bool = False,
                      overwrite: bool = False) -> None:
    """A mean file; legacy_dims=True is how Caffe's ImageNet mean is stored."""
    write_bytes(path, blob_proto(array, legacy_dims, double=double), overwrite)
