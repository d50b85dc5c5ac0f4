"""torch's zip `torch.save` format (torch >= 1.6), read without torch.

The archive holds `<name>/data.pkl`, whose storages are persistent ids
('storage', type, key, location, numel), and one raw entry `<name>/data/<key>`
per storage.
"""
from __future__ import annotations

import collections
import pathlib
import zipfile

import numpy as np

from ..errors import FormatError
from .restricted import materialize_all, storage_ref, unpickle_bytes


def load_zip(path) -> collections.OrderedDict:
    """State dict (name -> ndarray) of a zip-format torch file."""
    path = pathlib.Path(path)
    source = str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            prefix = _record_prefix(archive, source)
            if _entry(archive, prefix + "byteorder", b"little") != b"little":
                raise FormatError(f"{source}: only little-endian torch files are supported")
            roots: dict[str, object] = {}
            state = unpickle_bytes(archive.read(prefix + "data.pkl"), source,
                                   lambda pid: _storage(pid, roots))
            storages = {key: _read_storage(archive, prefix, ref, source)
                        for key, ref in roots.items()}
    except (zipfile.BadZipFile, EOFError) as exc:
        raise FormatError(f"{source}: damaged zip-format torch file ({exc})") from None
    return materialize_all(state, storages, source)


def _record_prefix(archive: zipfile.ZipFile, source: str) -> str:
    pickles = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise FormatError(f"{source}: zip file is not a torch file (no single <name>/data.pkl)")
    return pickles[0][:-len("data.pkl")]


def _entry(archive: zipfile.ZipFile, name: str, default: bytes) -> bytes:
    try:
        return archive.read(name).strip()
    except KeyError:
        return default


def _storage(pid, roots: dict):
    if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
        raise FormatError(f"unsupported persistent id {str(pid)[:80]}")
    _, storage_type, key, _location, numel = pid
    ref = storage_ref(storage_type, key, numel)
    if roots.setdefault(key, ref) != ref:
        raise FormatError(f"storage {key!r} is described twice, differently")
    return ref


def _read_storage(archive: zipfile.ZipFile, prefix: str, ref, source: str) -> np.ndarray:
    name = f"{prefix}data/{ref.key}"
    try:
        size = archive.getinfo(name).file_size
    except KeyError:
        raise FormatError(f"{source}: storage entry {name!r} is missing") from None
    if size != ref.numel * ref.dtype.itemsize:  # checked before reading: no zip bombs
        raise FormatError(f"{source}: storage entry {name!r} has {size} bytes, "
                          f"expected {ref.numel * ref.dtype.itemsize}")
    return np.frombuffer(archive.read(name), dtype=ref.dtype)
