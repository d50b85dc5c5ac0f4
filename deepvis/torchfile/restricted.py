"""The one unpickler deepvis uses on torch files: it can build dicts and tensor
descriptions, nothing else.

A torch .pth file is a pickle, and a pickle can call any importable function.
`find_class` is the only way a pickle reaches a callable (GLOBAL, STACK_GLOBAL,
INST, OBJ and EXT all go through it), so answering it from a fixed table of
harmless stand-ins makes loading a hostile file fail before anything runs.
Tensor data lives outside the pickle, so unpickling yields `TensorRef`s that
`materialize` turns into NumPy arrays once the storage bytes are at hand.
"""
from __future__ import annotations

import collections
import io
import math
import pickle
from typing import Callable, NamedTuple

import numpy as np

from ..errors import FormatError

# torch storage class -> little-endian element type of its bytes
STORAGE_DTYPES = {"FloatStorage": np.dtype("<f4"), "LongStorage": np.dtype("<i8")}


# The stand-ins are immutable and have no __dict__, so a pickle's BUILD opcode cannot
# change them for later loads.
class StorageType(NamedTuple):
    """Stands in for `torch.FloatStorage` and friends: only its element type matters."""
    name: str
    dtype: np.dtype


class StorageRef(NamedTuple):
    """A storage named by a persistent id; `offset`/`numel` select a view of the root `key`."""
    key: str
    dtype: np.dtype
    offset: int
    numel: int


class TensorRef(NamedTuple):
    storage: StorageRef
    offset: int
    size: tuple
    stride: tuple


class _RebuildTensor:
    """Stands in for `torch._utils._rebuild_tensor_v2` (requires_grad and hooks are ignored)."""
    __slots__ = ()

    def __call__(self, storage, storage_offset, size, stride, *_ignored):
        if not isinstance(storage, StorageRef):
            raise FormatError("tensor is not backed by a storage")
        shape, strides = _int_tuple(size, "size"), _int_tuple(stride, "stride")
        if len(shape) != len(strides):
            raise FormatError(f"tensor size {shape} and stride {strides} differ in length")
        return TensorRef(storage, _int(storage_offset, "storage offset"), shape, strides)


_ALLOWED: dict = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _RebuildTensor(),
    **{("torch", name): StorageType(name, dtype) for name, dtype in STORAGE_DTYPES.items()},
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose globals come only from `_ALLOWED`; persistent ids go to `on_persistent`."""

    def __init__(self, file, source: str, on_persistent: Callable[[object], object] | None = None):
        super().__init__(file)
        self.source = source
        self.on_persistent = on_persistent

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise FormatError(f"{self.source}: refusing to load global {module}.{name} "
                              "(only torch tensors and dicts are accepted)") from None

    def persistent_load(self, pid):
        if self.on_persistent is None:
            raise FormatError(f"{self.source}: unexpected persistent id in a plain pickle")
        return self.on_persistent(pid)


def unpickle(file, source: str, on_persistent=None):
    """Load one pickle from `file` with the restricted unpickler; any failure is a FormatError."""
    try:
        return RestrictedUnpickler(file, source, on_persistent).load()
    except FormatError as exc:
        message = str(exc)
        located = message if message.startswith(source) else f"{source}: {message}"
        raise FormatError(located) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, MemoryError, OverflowError, RecursionError, UnicodeDecodeError) as exc:
        raise FormatError(f"{source}: not a readable torch pickle "
                          f"({type(exc).__name__}: {exc})") from None


def unpickle_bytes(data: bytes, source: str, on_persistent=None):
    return unpickle(io.BytesIO(data), source, on_persistent)


def storage_ref(storage_type, key, numel, view=None) -> StorageRef:
    """Check the fields of a storage persistent id and describe the storage (or view) it names."""
    if not isinstance(storage_type, StorageType):
        raise FormatError(f"storage of unknown type {storage_type!r}")
    if not isinstance(key, str):
        raise FormatError(f"storage key {key!r} is not a string")
    numel = _int(numel, "storage size")
    if view is None:
        return StorageRef(key, storage_type.dtype, 0, numel)
    if not (isinstance(view, tuple) and len(view) == 3):
        raise FormatError(f"storage view description {view!r} is not (key, offset, size)")
    offset, view_numel = _int(view[1], "view offset"), _int(view[2], "view size")
    if offset + view_numel > numel:
        raise FormatError(f"storage view {view!r} runs past its {numel}-element storage")
    return StorageRef(key, storage_type.dtype, offset, view_numel)


def materialize(ref: TensorRef, storages: dict[str, np.ndarray]) -> np.ndarray:
    """Copy a tensor out of its storage, refusing any view that would read outside it."""
    root = storages[ref.storage.key]
    base = root[ref.storage.offset:ref.storage.offset + ref.storage.numel]
    if math.prod(ref.size) == 0:
        return np.zeros(ref.size, dtype=base.dtype.newbyteorder("="))
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
    if last >= len(base):
        raise FormatError(f"tensor (offset {ref.offset}, size {ref.size}, stride {ref.stride}) "
                          f"reads past its {len(base)}-element storage")
    strides = tuple(s * base.itemsize for s in ref.stride)
    view = np.lib.stride_tricks.as_strided(base[ref.offset:], ref.size, strides, writeable=False)
    return np.array(view, dtype=base.dtype.newbyteorder("="), order="C")


def materialize_all(obj, storages: dict[str, np.ndarray], source: str) -> collections.OrderedDict:
    """The state dict as name -> array; anything but a flat dict of tensors is refused."""
    if not isinstance(obj, dict):
        raise FormatError(f"{source}: holds a {type(obj).__name__}, not a state dict")
    out = collections.OrderedDict()
    for name, value in obj.items():
        if not isinstance(name, str) or not isinstance(value, TensorRef):
            raise FormatError(f"{source}: entry {name!r} is not a named tensor")
        if value.storage.key not in storages:
            raise FormatError(f"{source}: tensor {name!r} uses storage {value.storage.key!r}, "
                              "which the file does not contain")
        try:
            out[name] = materialize(value, storages)
        except FormatError as exc:
            raise FormatError(f"{source}: tensor {name!r}: {exc}") from None
    return out


def _int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FormatError(f"{what} {value!r} is not a non-negative integer")
    return value


def _int_tuple(value, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple):
        raise FormatError(f"tensor {what} {value!r} is not a tuple")
    return tuple(_int(v, f"tensor {what} entry") for v in value)
