"""The images find-maxes scans: a listing with stable indices, decoded in the background.

An image's index is its position in the listing, fixed for the whole run, so tables,
checkpoints and Dask partitions all speak about the same images. A folder is walked
recursively in sorted order; a list file has one `path [label]` per line (paths
relative to the list's folder; `#` starts a comment), as the original's file list.
Unreadable files are skipped with a reason and keep their index.
"""
from __future__ import annotations

import os
import pathlib
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator

import cv2
import numpy as np

from ..errors import DeepvisError
from ..fileio import read_image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".webp", ".tif", ".tiff",
                  ".ppm", ".pgm", ".pbm", ".pnm", ".jp2", ".npy"}   # .npy: the input itself
NO_LABEL = -1


@dataclass(frozen=True)
class ImageList:
    root: pathlib.Path         # folder the relative paths start from
    paths: tuple[str, ...]     # position + offset = image index
    labels: np.ndarray         # (M,) int64, NO_LABEL where the list gave none
    offset: int = 0            # index of paths[0]: a slice keeps the indices of the whole

    def __len__(self) -> int:
        return len(self.paths)

    def file(self, index: int) -> pathlib.Path:
        return self.root / self.paths[index - self.offset]

    def subset(self, start: int, end: int) -> "ImageList":
        """Entries [start, end) under their original indices (what a Dask task is sent)."""
        lo, hi = start - self.offset, end - self.offset
        return ImageList(self.root, self.paths[lo:hi], self.labels[lo:hi], start)


def list_images(source) -> ImageList:
    """A folder (every image file below it) or a list file of `path [label]` lines."""
    source = pathlib.Path(source)
    if source.is_dir():
        paths = _walk(source)
        if not paths:
            raise DeepvisError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) "
                               f"under {source}")
        return ImageList(source.resolve(), tuple(paths), np.full(len(paths), NO_LABEL, np.int64))
    if source.is_file():
        return _read_list(source)
    raise DeepvisError(f"--images {source} is neither a folder nor a list file")


def _walk(folder: pathlib.Path) -> list[str]:
    found = []
    for here, dirs, files in os.walk(folder):
        dirs.sort()
        rel = pathlib.Path(here).relative_to(folder)
        found += [(rel / f).as_posix() for f in sorted(files)
                  if pathlib.Path(f).suffix.lower() in IMAGE_SUFFIXES]
    return found


def _read_list(path: pathlib.Path) -> ImageList:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DeepvisError(f"{path} is not a text list of images: {exc}") from exc
    paths, labels = [], []
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.rsplit(None, 1)
        if len(parts) == 2 and _is_int(parts[1]):
            paths.append(parts[0])
            labels.append(int(parts[1]))
        else:
            paths.append(line)
            labels.append(NO_LABEL)
        if pathlib.PurePath(paths[-1]).suffix.lower() not in IMAGE_SUFFIXES:
            # a list names image files: anything else is the wrong file given to --images
            raise DeepvisError(f"{path}:{number}: {paths[-1][:80]!r} is not an image file name "
                               f"({', '.join(sorted(IMAGE_SUFFIXES))}); --images takes a "
                               "folder of images or a list of `path [label]` lines")
    if not paths:
        raise DeepvisError(f"{path} lists no images")
    return ImageList(path.parent.resolve(), tuple(paths), np.asarray(labels, np.int64))


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def decode(file: pathlib.Path, preprocess: Callable) -> tuple[np.ndarray | None, str | None]:
    """(network input (C, H, W), None), or (None, why it was skipped)."""
    try:
        if file.suffix.lower() == ".npy":
            from ..readers import read_network_input
            x = read_network_input(file)
            if len(x) != 1:
                return None, f"holds {len(x)} inputs; give one (C, H, W) input per .npy file"
        else:
            x = preprocess(read_image(file))
    except (DeepvisError, cv2.error, ValueError, OSError) as exc:
        return None, str(exc) or type(exc).__name__
    return x[0], None


@dataclass
class Batch:
    start: int                        # the listing positions [start, end) it covers
    end: int
    index: np.ndarray                 # (B,) int64: images that decoded
    x: np.ndarray                     # (B, C, H, W) float32
    skipped: dict[int, str]           # index -> reason


def spans(ranges, batch_size: int) -> list[tuple[int, int]]:
    """Cut index ranges [start, end) into batches that never cross a range boundary."""
    return [(a, min(a + batch_size, end)) for start, end in ranges
            for a in range(start, end, batch_size)]


def decode_batch(images: ImageList, span, preprocess, map_fn=map) -> Batch:
    start, end = span
    results = list(map_fn(lambda i: decode(images.file(i), preprocess), range(start, end)))
    shapes = [x.shape for x, _ in results if x is not None]
    if shapes:   # a .npy of another shape than the images (or the others) is skipped
        common = max(set(shapes), key=shapes.count)
        results = [(x, why) if x is None or x.shape == common else
                   (None, f"shape {x.shape} does not match the network input {common}")
                   for x, why in results]
    index = [start + k for k, (x, _) in enumerate(results) if x is not None]
    skipped = {start + k: why for k, (x, why) in enumerate(results) if x is None}
    xs = [x for x, _ in results if x is not None]
    x = np.stack(xs) if xs else np.zeros((0,), np.float32)
    return Batch(start, end, np.asarray(index, np.int64), x, skipped)


def batches(images: ImageList, ranges, preprocess, batch_size: int, threads: int = 2,
            prefetch: int = 2) -> Iterator[Batch]:
    """Decoded batches in listing order; with threads > 0 decoding runs ahead in the
    background (OpenCV releases the GIL) while the caller runs the network."""
    plan = spans(ranges, batch_size)
    if threads <= 0:
        for span in plan:
            yield decode_batch(images, span, preprocess)
        return
    ready: queue.Queue = queue.Queue(maxsize=prefetch)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            with ThreadPoolExecutor(threads) as pool:
                for span in plan:
                    if not put(decode_batch(images, span, preprocess, pool.map)):
                        return
            put(None)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc)

    worker = threading.Thread(target=produce, name="deepvis-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)
