"""A client's frames: the input directory (shared, read-only) plus its own uploads.

Uploads live in memory only, are size-limited by the server, and must decode as images;
the pixels they may unpack to are capped too, so a small file cannot claim gigabytes.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..errors import DeepvisError
from ..preprocess import to_square
from ..toolbox.inputs import StaticFiles

MAX_PIXELS = 40_000_000          # decoded width x height of one upload
MAX_SIDE = 2048                  # uploads are kept at most this large (the panes show 300 px)
MAX_UPLOADS = 32                 # per page, kept in memory
EMPTY = "\0no image"             # cannot be a file name: names never contain NUL
UPLOAD = "\0upload "


class UploadError(ValueError):
    """The upload is refused; the text says why."""


def decode_upload(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Bytes of an image file -> RGB uint8, or UploadError."""
    if not data:
        raise UploadError("empty upload")
    buffer = np.frombuffer(data, np.uint8)
    shape = _header_shape(buffer)
    if shape is not None and shape[0] * shape[1] > max_pixels:
        raise UploadError(f"image of {shape[1]}x{shape[0]} pixels is larger than the "
                          f"limit of {max_pixels} pixels")
    try:
        bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    except cv2.error:
        bgr = None
    if bgr is None:
        raise UploadError("not an image that OpenCV can decode (JPEG, PNG, BMP, TIFF, WebP...)")
    if bgr.shape[0] * bgr.shape[1] > max_pixels:
        raise UploadError(f"image of {bgr.shape[1]}x{bgr.shape[0]} pixels is larger than the "
                          f"limit of {max_pixels} pixels")
    scale = MAX_SIDE / max(bgr.shape[:2])
    if scale < 1:
        bgr = cv2.resize(bgr, (max(1, round(bgr.shape[1] * scale)),
                               max(1, round(bgr.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _header_shape(buffer: np.ndarray):
    """(height, width) from a PNG header, read before decoding; None for other formats
    (their decoded size is checked afterwards)."""
    head = buffer[:24].tobytes()
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24:
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        return height, width
    return None


def empty_frame(size: int = 256) -> np.ndarray:
    """What a client shows before it has any image: mid-gray."""
    return np.full((size, size, 3), 128, np.uint8)


class ClientInputs(StaticFiles):
    """StaticFiles over the input directory, followed by this client's uploads."""

    def __init__(self, settings, directory=None):
        super().__init__(settings, directory)
        self.uploads: dict[str, np.ndarray] = {}

    def directory_files(self) -> list:
        try:
            return super().files()
        except DeepvisError:
            return []

    def files(self) -> list:
        files = self.directory_files() + list(self.uploads)
        return files or [EMPTY]

    def check_room(self) -> None:
        """UploadError unless one more upload can be kept."""
        if self.siamese:
            raise UploadError("uploads need single images; this session shows image pairs")
        if len(self.uploads) >= MAX_UPLOADS:
            raise UploadError(f"a page keeps at most {MAX_UPLOADS} uploads: reload it to "
                              "start afresh")

    def add_upload(self, label: str, rgb: np.ndarray) -> int:
        """Keep an uploaded image; its index in files()."""
        self.check_room()
        name = f"{UPLOAD}{len(self.uploads) + 1}: {label}"
        self.uploads = {**self.uploads, name: rgb}    # replaced whole: readers never see it change
        return self.files().index(name)

    def _read(self, name) -> np.ndarray:
        if name == EMPTY:
            return empty_frame()
        if isinstance(name, str) and name in self.uploads:
            return to_square(self.uploads[name], self.stretch)
        return super()._read(name)


def display_name(name) -> str:
    if name == EMPTY:
        return "(no image yet: drop one on the page)"
    if isinstance(name, tuple):
        return " | ".join(name)
    return name[len(UPLOAD):].partition(": ")[2] if name.startswith(UPLOAD) else name
