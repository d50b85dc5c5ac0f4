"""Binary Caffe files: .caffemodel (a NetParameter) and .binaryproto (one BlobProto).

Files are memory-mapped read-only and decoded in place; blob arrays are read-only
float32 views of the mapping (it stays open while any of them is alive), so loading
a 240 MB model costs no second copy.
"""
from __future__ import annotations

import mmap
import os

import numpy as np

from deepvis.caffe.wire import WireReader
from deepvis.errors import FormatError

_LEGACY_DIMS = ("num", "channels", "height", "width")


def map_file(path) -> mmap.mmap:
    """The whole file, mapped read-only; FormatError naming it when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                raise FormatError(f"{path}: file is empty")
            return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as error:
        raise FormatError(f"{path}: cannot read: {error.strerror or error}") from None


def decode_caffemodel(path) -> dict:
    """The NetParameter message dict of a binary .caffemodel."""
    return WireReader(map_file(path), str(path)).decode("NetParameter")


def read_binaryproto(path) -> np.ndarray:
    """A mean file: legacy blobs keep their 4-D (num, channels, height, width) shape."""
    blob = WireReader(map_file(path), str(path)).decode("BlobProto")
    if not any(key in blob for key in ("data", "double_data")):
        raise FormatError(f"{path}: no blob data; not a .binaryproto mean file")
    return blob_array(blob, str(path))


def blob_array(blob: dict, where: str) -> np.ndarray:
    """A BlobProto dict as a float32 array of its stored shape (double_data preferred)."""
    if any(key in blob for key in _LEGACY_DIMS):
        shape = tuple(blob.get(key, 0) for key in _LEGACY_DIMS)
    else:
        shape = tuple(blob.get("shape", {}).get("dim", []))
    if any(d < 0 for d in shape):
        raise FormatError(f"{where}: negative blob dimension in {shape}")
    values = blob.get("double_data")
    if values is None or len(values) == 0:
        values = blob.get("data", np.empty(0, np.float32))
    values = np.asarray(values).astype(np.float32, copy=False)
    if values.size != int(np.prod(shape, dtype=np.int64)):
        raise FormatError(f"{where}: blob shape {shape} needs {int(np.prod(shape))} values, "
                          f"the file holds {values.size}")
    return values.reshape(shape)
