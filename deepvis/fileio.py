"""File helpers every command uses: atomic writes that never clobber by accident, image reads."""
from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile

import cv2
import numpy as np

from .errors import DeepvisError, FormatError


def refuse_overwrite(path, overwrite: bool) -> None:
    if not overwrite and pathlib.Path(path).exists():
        raise DeepvisError(f"{path} exists; pass --force to overwrite it")


@contextlib.contextmanager
def atomic_path(path, overwrite: bool = False):
    """Yield a temporary path in the target's folder; on success it replaces `path` in one step."""
    path = pathlib.Path(path)
    refuse_overwrite(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix,
                               dir=path.parent)
    os.close(fd)
    try:
        yield pathlib.Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(path, data: bytes, overwrite: bool = False) -> None:
    with atomic_path(path, overwrite) as tmp:
        tmp.write_bytes(data)


def save_npz(path, arrays: dict, overwrite: bool = False) -> None:
    with atomic_path(path, overwrite) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def save_npy(path, array, overwrite: bool = False) -> None:
    with atomic_path(path, overwrite) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


def save_image(path, rgb: np.ndarray, overwrite: bool = False) -> None:
    """RGB uint8 (or float 0..255) -> PNG/JPEG by the extension."""
    path = pathlib.Path(path)
    image = np.clip(np.asarray(rgb), 0, 255).astype(np.uint8)
    ok, data = cv2.imencode(path.suffix or ".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise DeepvisError(f"cannot encode an image as {path.suffix!r} for {path}")
    with atomic_path(path, overwrite) as tmp:
        tmp.write_bytes(data.tobytes())


# Reading user inputs, with limits, lives in deepvis.readers; these names stay importable here.
from .readers import read_image, read_network_input  # noqa: E402,F401
