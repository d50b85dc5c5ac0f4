"""Read the original toolbox's pickles without running them.

find_max_acts.py pickled a `NetMaxTracker` (with one `MaxTracker` per layer), and
optimize_image.py a `(FindParams, FindResults)` tuple in info.pkl / info_big.pkl. A pickle
can call any importable function, so this reader answers every global the file names from
a fixed table: NumPy arrays and scalars (never of object dtype), a few built-in
containers, and for the original's four class names a stand-in that only records the
instance's attribute dict. The classes themselves are never imported or built; any other
global makes the load fail before anything runs. What comes back is plain data: dicts,
lists, tuples, numbers, strings and arrays; an instance of one of the original's classes
becomes a dict of its attributes plus "__class__": its name.

Python 2 pickles are read with latin-1 strings (NumPy's own advice for their raw bytes).
"""
from __future__ import annotations

import codecs
import collections
import io
import pickle

import numpy as np

from .errors import FormatError

CLASS_MODULES = {
    "NetMaxTracker": ("max_tracker", "find_maxes.max_tracker", "__main__"),
    "MaxTracker": ("max_tracker", "find_maxes.max_tracker", "__main__"),
    "FindParams": ("gradient_optimizer", "optimize.gradient_optimizer", "__main__"),
    "FindResults": ("gradient_optimizer", "optimize.gradient_optimizer", "__main__"),
}
NUMPY_CORE = ("numpy.core.multiarray", "numpy._core.multiarray")
MAX_BYTES = 1 << 33          # refuse anything larger before reading it


class _Stand_in:
    """An instance of one of the original's classes: only its attribute dict is kept."""
    kind = "?"

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:   # (dict, slots) form
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"{self.kind}: unexpected state {type(state).__name__}")
        self.__dict__["_state"] = dict(state)


_STAND_INS = {name: type(name, (_Stand_in,), {"kind": name, "__module__": __name__})
              for name in CLASS_MODULES}


def _dtype(spec, align=False, copy=False):
    dtype = np.dtype(spec)
    if dtype.hasobject:
        raise pickle.UnpicklingError("arrays of Python objects are refused")
    return dtype


class _NdarrayName:
    """What `numpy.ndarray` means inside the pickle: only a tag for _reconstruct."""


def _reconstruct(subtype, shape, typecode):
    if subtype is not _NdarrayName:
        raise pickle.UnpicklingError("only plain NumPy arrays are built")
    return np.ndarray.__new__(np.ndarray, shape, _dtype(typecode))


def _scalar(dtype, data=None):
    dtype = _dtype(dtype)
    if isinstance(data, str):
        data = data.encode("latin-1")
    if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError("bad NumPy scalar")
    return np.frombuffer(bytes(data), dtype)[0]


def _encode(text, encoding="utf-8"):
    """`_codecs.encode`, which Python 3 pickles of bytes use at protocols 0-2."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError("only latin-1 byte strings are decoded")
    return codecs.encode(text, "latin-1")


def _reconstructor(cls, base, state):
    """copy_reg._reconstructor for protocol 0/1 pickles of the original's classes."""
    if not (isinstance(cls, type) and issubclass(cls, _Stand_in)) or base is not object \
            or state is not None:
        raise pickle.UnpicklingError("copy_reg._reconstructor of an unexpected class")
    return cls.__new__(cls)


_GLOBALS = {
    **{(m, "_reconstruct"): _reconstruct for m in NUMPY_CORE},
    **{(m, "scalar"): _scalar for m in NUMPY_CORE},
    ("numpy", "ndarray"): _NdarrayName,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _encode,
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("__builtin__", "object"): object,
    ("builtins", "object"): object,
    ("__builtin__", "set"): set, ("builtins", "set"): set,
    ("__builtin__", "frozenset"): frozenset, ("builtins", "frozenset"): frozenset,
    ("collections", "OrderedDict"): collections.OrderedDict,
    **{(m, name): _STAND_INS[name] for name, ms in CLASS_MODULES.items() for m in ms},
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        found = _GLOBALS.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"refused global {module}.{name}: the original's "
                                         "pickles hold only arrays, containers and its "
                                         "tracker / optimizer records")
        return found

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are refused")


def loads(data: bytes, where: str = "<bytes>"):
    """Plain data from a pickle of the original toolbox (see the module docstring)."""
    try:
        value = _Unpickler(io.BytesIO(data), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, OverflowError, MemoryError) as exc:
        raise FormatError(f"{where}: not a pickle of the original toolbox that deepvis can "
                          f"read: {exc}") from None
    return _plain(value, where)


def load(path):
    import pathlib
    path = pathlib.Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise FormatError(f"{path}: larger than {MAX_BYTES >> 30} GiB")
        data = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"cannot read {path}: {exc.strerror}") from None
    return loads(data, str(path))


def _plain(value, where, depth: int = 0):
    """Stand-ins -> dicts, everything checked to be plain data."""
    if depth > 100:
        raise FormatError(f"{where}: nested too deeply")
    if isinstance(value, _Stand_in):
        state = value.__dict__.get("_state", {})
        return {"__class__": value.kind, **{str(k): _plain(v, where, depth + 1)
                                            for k, v in state.items()}}
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise FormatError(f"{where}: arrays of Python objects are refused")
        return value
    if isinstance(value, dict):
        return {_plain(k, where, depth + 1): _plain(v, where, depth + 1)
                for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_plain(v, where, depth + 1) for v in value]
        return items if isinstance(value, list) else type(value)(items)
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, np.generic)):
        return value
    raise FormatError(f"{where}: unexpected {type(value).__name__} in the pickle")
