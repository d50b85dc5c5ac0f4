"""torch's legacy (pre-1.6, non-zip) `torch.save` format, read without torch.

Layout: pickles of the magic number, the protocol version and a system-info
dict; the object pickle, whose storages are persistent ids; a pickle of the
storage keys; then, per key in that order, an int64 element count and the raw
elements.
"""
from __future__ import annotations

import collections
import pathlib
import struct

import numpy as np

from ..errors import FormatError
from .restricted import materialize_all, storage_ref, unpickle

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
ZIP_MAGIC = b"PK\x03\x04"


def load_legacy(path) -> collections.OrderedDict:
    """State dict (name -> ndarray) of a legacy-format torch file."""
    path = pathlib.Path(path)
    source = str(path)
    with open(path, "rb") as f:
        if f.read(4) == ZIP_MAGIC:
            raise FormatError(f"{source}: is a zip-format torch file, not the legacy format "
                              "(read it with deepvis.torchfile.load)")
        f.seek(0)
        _read_header(f, source)
        roots: dict[str, object] = {}
        state = unpickle(f, source, lambda pid: _storage(pid, roots, source))
        keys = unpickle(f, source)
        if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
            raise FormatError(f"{source}: storage key list is malformed")
        storages = {key: _read_storage(f, key, roots, source) for key in keys}
    return materialize_all(state, storages, source)


def _read_header(f, source: str) -> None:
    if unpickle(f, source) != MAGIC_NUMBER:
        raise FormatError(f"{source}: not a torch file (wrong magic number)")
    version = unpickle(f, source)
    if version != PROTOCOL_VERSION:
        raise FormatError(f"{source}: unsupported torch protocol version {version!r}")
    info = unpickle(f, source)
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise FormatError(f"{source}: only little-endian torch files are supported")


def _storage(pid, roots: dict, source: str):
    """Persistent id ('storage', type, key, location, numel, view) -> StorageRef."""
    if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
        raise FormatError(f"unsupported persistent id {str(pid)[:80]}")
    _, storage_type, key, _location, numel, view = pid
    root = storage_ref(storage_type, key, numel)
    if roots.setdefault(key, root) != root:
        raise FormatError(f"storage {key!r} is described twice, differently")
    return storage_ref(storage_type, key, numel, view) if view is not None else root


def _read_storage(f, key: str, roots: dict, source: str) -> np.ndarray:
    if key not in roots:
        raise FormatError(f"{source}: storage {key!r} is listed but no tensor uses it")
    root = roots[key]
    head = f.read(8)
    if len(head) < 8:
        raise FormatError(f"{source}: truncated before storage {key!r}")
    (count,) = struct.unpack("<q", head)
    if count != root.numel:
        raise FormatError(f"{source}: storage {key!r} holds {count} elements, "
                          f"the pickle says {root.numel}")
    nbytes = count * root.dtype.itemsize
    data = f.read(nbytes)
    if len(data) < nbytes:
        raise FormatError(f"{source}: truncated inside storage {key!r} "
                          f"({len(data)} of {nbytes} bytes)")
    return np.frombuffer(data, dtype=root.dtype)
