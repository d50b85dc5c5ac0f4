"""FindResults (what one optimization recorded) and the files the original wrote for it.

Files per unit, named `<prefix>best_X.jpg`, `best_Xpm.jpg`, `info.txt`, `info_big.pkl`,
`info.pkl` (original-toolbox §10.2 "Saving"), plus `info.json`. The pickles hold a
`(params, results)` tuple of plain dicts, lists, tuples, numbers, strings and NumPy
arrays, so they load with pickle and NumPy alone (no deepvis classes inside).
"""
from __future__ import annotations

import json
import math
import os
import pickle

import numpy as np

from ..errors import DeepvisError
from ..fileio import atomic_path, save_image
from ..vis.back import centred, min_max

MAJORITY_SUCCESS = "Metaresult: majority success"
MAJORITY_FAILURE = "Metaresult: majority failure"
GRAD_ZERO = "Metaresult: grad 0 failure"
NONFINITE_OBJECTIVE = "Metaresult: non-finite objective failure"
NONFINITE_GRADIENT = "Metaresult: non-finite gradient failure"
PICKLE_PROTOCOL = 4


class FindResults:
    """The original's per-iteration record; *_ii attributes appear only once set."""

    def __init__(self):
        self.ii, self.obj, self.idxmax, self.ismax = [], [], [], []
        self.norm, self.dist, self.std = [], [], []
        self.x0 = None
        self.majority_obj = self.majority_xx = None
        self.best_obj = self.best_xx = None
        self.last_obj = self.last_xx = None
        self.meta_result = None

    def update(self, push_unit: tuple, ii: int, obj, idxmax: tuple, xx: np.ndarray,
               x0: np.ndarray) -> None:
        self.ii.append(ii)
        self.obj.append(obj)
        self.idxmax.append(idxmax)
        self.ismax.append(idxmax == push_unit)
        self.norm.append(frobenius(xx))
        self.dist.append(frobenius(xx - x0))
        self.std.append(xx.std())
        if self.x0 is None:
            self.x0 = x0.copy()
        if idxmax == push_unit and self.majority_xx is None:
            self.majority_obj, self.majority_xx, self.majority_ii = obj, xx.copy(), ii
        if self.best_obj is None or obj > self.best_obj:
            self.best_obj, self.best_xx, self.best_ii = obj, xx.copy(), ii
        self.last_obj, self.last_xx, self.last_ii = obj, xx.copy(), ii

    def finish(self, meta_result: str | None = None) -> None:
        """Set the meta result: the given failure, else majority success or failure."""
        if meta_result is not None:
            self.meta_result = meta_result
        elif self.meta_result is None:
            self.meta_result = MAJORITY_SUCCESS if self.majority_obj is not None \
                else MAJORITY_FAILURE

    def as_dict(self, trim: bool = False) -> dict:
        """Plain Python values; arrays kept, or (trim) replaced as the original's trim_arrays."""
        def convert(value):
            if isinstance(value, np.ndarray):
                return trimmed(value) if trim else np.array(value)
            return plain(value)
        return {key: convert(value) for key, value in self.__dict__.items()}

    def __str__(self) -> str:
        lines = ["FindResults:"]
        for key in sorted(self.__dict__):
            value = self.__dict__[key]
            if isinstance(value, list) and len(value) > 4:
                text = "[%s, %s, ..., %s, %s]" % tuple(map(py2_str, value[:2] + value[-2:]))
            elif isinstance(value, np.ndarray):
                text = array_summary(value)
            else:
                text = py2_str(value)
            lines.append(f"{key:>30}: {text}")
        return "\n".join(lines) + "\n"


def frobenius(x: np.ndarray) -> np.float64:
    """sqrt(sum(x^2)) without BLAS, whose threads would compete with the executor's."""
    return np.sqrt(np.square(x).sum())


def py2_str(value) -> str:
    """`str()` as the original's Python 2 and old NumPy printed it (original-toolbox §12.23):
    12 significant digits for doubles, 6 for float32 (the network's activations)."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, np.float32):
        return _float_text(float(value), 6)
    if isinstance(value, (float, np.floating)):
        return _float_text(float(value), 12)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, tuple):
        inner = ", ".join(map(py2_str, value))
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(map(py2_str, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {py2_str(v)}" for k, v in value.items()) + "}"
    return str(value)


def _float_text(value: float, digits: int) -> str:
    if not math.isfinite(value):
        return {math.inf: "inf", -math.inf: "-inf"}.get(value, "nan")
    text = "%.*g" % (digits, value)
    return text if any(c in text for c in ".e") else text + ".0"


def array_summary(array: np.ndarray) -> str:
    flat = array.ravel()
    return "%s array [%s, %s, ...]" % (tuple(array.shape), py2_str(flat[0]), py2_str(flat[1]))


def trimmed(array: np.ndarray) -> str:
    return "Trimmed " + array_summary(array)


def plain(value):
    """NumPy scalars (and containers of them) -> built-in Python values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def jsonable(value):
    """JSON has no tuples, arrays or non-finite numbers: lists, and null for nan/inf."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


# -- file names ---------------------------------------------------------------------------

def output_prefix(output_prefix: str, template: str, params: dict, results: dict | None = None
                  ) -> str:
    """`(output_prefix + '_' + template + '_') % {'p.<param>': ..., 'r.<result>': ...}`.

    Raises KeyError when the template names a result field and `results` is not given yet.
    """
    fields = {f"p.{k}": v for k, v in params.items()}
    if isinstance(params.get("push_layer"), str):   # any tensor name as one flat file name
        from ..names import file_name
        fields["p.push_layer"] = file_name(params["push_layer"])
    fields.update({f"r.{k}": v for k, v in (results or {}).items()})
    pattern = f"{output_prefix}_{template}_"
    try:
        prefix = pattern % fields
    except KeyError as exc:
        if results is None and str(exc.args[0]).startswith("r."):
            raise
        raise DeepvisError(f"--output-template: no field {exc.args[0]!r}; use p.<param> "
                           "(e.g. p.push_channel) or r.<result> (e.g. r.best_ii)") from None
    except (TypeError, ValueError) as exc:
        raise DeepvisError(f"--output-template {template!r}: {exc}") from None
    if os.path.isdir(prefix) and not prefix.endswith(("/", os.sep)):
        prefix += "/"
    return prefix


FILE_SUFFIXES = ("best_X.jpg", "best_Xpm.jpg", "info.txt", "info_big.pkl", "info.pkl",
                 "info.json")


def output_files(prefix: str, skipbig: bool = False) -> list[str]:
    return [prefix + s for s in FILE_SUFFIXES if not (skipbig and s == "info_big.pkl")]


def refuse_existing(paths, brave: bool) -> None:
    if brave:
        return
    existing = [p for p in paths if os.path.exists(p)]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise DeepvisError(f"Cowardly refusing to overwrite {existing[0]}{more}; pass --brave "
                           "to allow it")


# -- writing ------------------------------------------------------------------------------

def info_text(params, results: FindResults) -> str:
    """The info.txt listing: FindParams, two empty lines, FindResults, a trailing empty line."""
    return f"{params}\n\n{results}\n"


def image_x(xx: np.ndarray, space) -> np.ndarray:
    """best_X: the image without the mean, zero at mid-gray (the back pane's `raw`), RGB uint8.
    Rounded, as cv2.imwrite rounds the original's float images."""
    return np.rint(255 * centred(space.rgb(xx))).astype(np.uint8)


def image_xpm(xx: np.ndarray, space) -> np.ndarray:
    """best_Xpm: the image plus the mean, stretched min..max to 0..255, RGB uint8."""
    return np.rint(255 * min_max(space.rgb(xx) + space.mean_rgb())).astype(np.uint8)


def save_results(prefix: str, params, results: FindResults, space, brave: bool = False,
                 skipbig: bool = False, run: dict | None = None) -> list[str]:
    """Write one unit's files (each atomically); returns the paths written. `run` (e.g. the
    preset and the input scale its learning-rate parameters were converted with) goes into info.json."""
    refuse_existing(output_files(prefix, skipbig), brave)
    written = []
    if results.best_xx is not None:
        save_image(prefix + "best_X.jpg", image_x(results.best_xx, space), overwrite=True)
        save_image(prefix + "best_Xpm.jpg", image_xpm(results.best_xx, space), overwrite=True)
        written += [prefix + "best_X.jpg", prefix + "best_Xpm.jpg"]
    _write_bytes(prefix + "info.txt", info_text(params, results).encode())
    p = plain(params.as_dict())
    if not skipbig:
        _write_bytes(prefix + "info_big.pkl", pickle.dumps((p, results.as_dict()),
                                                           protocol=PICKLE_PROTOCOL))
    small = results.as_dict(trim=True)
    _write_bytes(prefix + "info.pkl", pickle.dumps((p, small), protocol=PICKLE_PROTOCOL))
    doc = {"params": jsonable(p), "results": jsonable(small)}
    if run:
        doc["run"] = jsonable(plain(run))
    _write_bytes(prefix + "info.json", (json.dumps(doc, indent=1) + "\n").encode())
    written += [prefix + "info.txt", *([] if skipbig else [prefix + "info_big.pkl"]),
                prefix + "info.pkl", prefix + "info.json"]
    return written


def _write_bytes(path: str, data: bytes) -> None:
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_bytes(data)
