"""The mean image subtracted from inputs, cut to the network's input size the way the
original toolbox does: centre crop with offset (mean_dim - input_dim) // 2."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import FormatError
from .parse import read_binaryproto


def _read(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".binaryproto":
        return read_binaryproto(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise FormatError(f"{path}: not a readable .npy mean ({exc})") from exc
    if not isinstance(array, np.ndarray):
        raise FormatError(f"{path}: expected one array (.npy), found an archive")
    return array


def load_mean(source, input_hw) -> np.ndarray:
    """(C, H, W) float32 mean for an input of `input_hw`, from a .npy / .binaryproto path or a
    per-channel sequence such as (104, 117, 123) (broadcast over the image)."""
    h, w = (int(n) for n in input_hw)
    if isinstance(source, (str, Path)):
        array = np.squeeze(_read(Path(source))).astype(np.float32)
        where = str(source)
    else:
        array, where = np.asarray(source, dtype=np.float32), "per-channel mean"
    if array.ndim == 1:
        return np.ascontiguousarray(np.broadcast_to(array[:, None, None], (array.size, h, w)))
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise FormatError(f"{where}: a mean must be (C, H, W), (H, W) or per-channel; got shape "
                          f"{array.shape}")
    mh, mw = array.shape[1:]
    if mh < h or mw < w:
        raise FormatError(f"{where}: the mean is {mh}x{mw}, smaller than the {h}x{w} input")
    top, left = (mh - h) // 2, (mw - w) // 2
    return np.ascontiguousarray(array[:, top:top + h, left:left + w])
