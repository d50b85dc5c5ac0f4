"""User images and .npy inputs read with limits, one way for every command.

A header may claim any size and a pixel may be NaN: both are refused before they reach
the network, with the file named. Deeper than 8 bits, pixels are shifted to 8 bits
exactly as OpenCV's IMREAD_COLOR does, so `forward`, `find-maxes` and the toolbox see
the same picture of the same file.
"""
from __future__ import annotations

import os
import pathlib
import stat

# OpenCV reads this limit once, on its first decode: set it before anyone decodes.
MAX_IMAGE_PIXELS = 1 << 28          # 268 M pixels: an 805 MB BGR image
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_IMAGE_PIXELS))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from .errors import DeepvisError, FormatError  # noqa: E402

MAX_NPY_BYTES = 4 << 30             # a network input larger than 4 GB is no input
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


def regular_file(path, what: str = "input") -> pathlib.Path:
    """`path` if it is an existing regular file (a FIFO would block the reader forever)."""
    path = pathlib.Path(path)
    try:
        mode = path.stat().st_mode
    except OSError:
        raise DeepvisError(f"{what} {path} does not exist") from None
    if not stat.S_ISREG(mode):
        raise DeepvisError(f"{what} {path} is not a regular file")
    return path


def read_image(path) -> np.ndarray:
    """BGR (or gray, or BGRA) uint8 as cv2.imread gives it; a clear error for a missing,
    unreadable, oversized or non-finite image."""
    path = regular_file(path)
    problem = png_chunk_problem(path)
    if problem:
        raise FormatError(f"{path}: {problem}")
    try:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        if "CV_IO_MAX_IMAGE_PIXELS" in str(exc):
            raise FormatError(f"{path}: the image is larger than {MAX_IMAGE_PIXELS} pixels "
                              "(its header says so)") from None
        raise FormatError(f"{path} is not an image OpenCV can read: "
                          f"{str(exc).strip().splitlines()[-1]}") from None
    if image is None or image.size == 0:
        raise FormatError(f"{path} is not an image OpenCV can read")
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise FormatError(f"{path}: images with {image.shape[2]} channels are not supported "
                          "(gray, BGR or BGRA)")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    return to_uint8(image, path)


def png_chunk_problem(path) -> str | None:
    """Why a PNG's chunk list is impossible (a chunk longer than the file), or None. OpenCV
    spends seconds on a chunk whose length field claims gigabytes; the walk reads 8 bytes a
    chunk."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        if handle.read(8) != b"\x89PNG\r\n\x1a\n":
            return None
        at = 8
        while at + 8 <= size:
            handle.seek(at)
            head = handle.read(8)
            length = int.from_bytes(head[:4], "big")
            if length > size - at - 12:
                return f"a PNG chunk ({head[4:8]!r}) claims {length} bytes, more than the file has"
            if head[4:8] == b"IEND":
                return None
            at += 12 + length
    return None


def to_uint8(image: np.ndarray, path) -> np.ndarray:
    """Pixels of any depth as 8 bits: 16-bit shifted right by 8 (as IMREAD_COLOR), float
    taken as 0..1 (the TIFF/OpenCV convention for float pictures)."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if image.dtype.kind == "f":
        if not np.isfinite(image).all():
            raise FormatError(f"{path}: the image has NaN or infinite pixels")
        return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    raise FormatError(f"{path}: {image.dtype} pixels are not supported (8 or 16 bit, or float)")


def npy_header(path) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from a .npy header, refusing what is no numeric array of sane size
    before any data is read."""
    path = regular_file(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        magic = handle.read(len(_NPY_MAGIC))
        if magic[:4] == _ZIP_MAGIC:
            raise FormatError(f"{path} is a .npz archive, not a .npy array")
        if magic != _NPY_MAGIC:
            raise FormatError(f"{path} is not a .npy array")
        handle.seek(0)
        try:
            version = np.lib.format.read_magic(handle)
            reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                      else np.lib.format.read_array_header_2_0)
            shape, _fortran, dtype = reader(handle, max_header_size=10000)
        except Exception as exc:  # noqa: BLE001 - numpy's header parser raises many kinds
            raise FormatError(f"{path}: unreadable .npy header: {exc}") from None
        data_start = handle.tell()
    if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
        raise FormatError(f"{path}: holds {dtype} values; a network input is numbers")
    count = 1
    for n in shape:
        count *= int(n)
    if count == 0:
        raise FormatError(f"{path}: the array of shape {shape} is empty")
    if count * dtype.itemsize > MAX_NPY_BYTES:
        raise FormatError(f"{path}: its header declares {count * dtype.itemsize} bytes of data "
                          f"(shape {shape}), more than deepvis reads ({MAX_NPY_BYTES})")
    if size - data_start < count * dtype.itemsize:
        raise FormatError(f"{path}: truncated: the header declares {count * dtype.itemsize} "
                          f"bytes of data, the file holds {size - data_start}")
    return tuple(int(n) for n in shape), dtype


def read_network_input(path) -> np.ndarray:
    """A .npy holding the network input itself, (C,H,W) or (N,C,H,W), finite float32."""
    shape, _ = npy_header(path)
    if len(shape) not in (3, 4):
        raise FormatError(f"{path}: expected shape (C,H,W) or (N,C,H,W), got {shape}")
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise FormatError(f"{path} is not a readable .npy array: {exc}") from None
    if x.ndim == 3:
        x = x[None]
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise FormatError(f"{path}: the input has NaN or infinite values (or values beyond "
                          "float32)")
    return x
