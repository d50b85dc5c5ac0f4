"""Per-unit pictures from `caffevis_unit_jpg_dir`: the jpgvis pane and pattern mode
(original-toolbox §2.6 step 4, §2.11, §3.4, §3.5).

Decisions on quirks: as the original, the pictures found are stacked from the top and the
rest of the pane is plain background (nothing is drawn for a missing one); the loader thread always
serves the newest request and never drops one that arrived during a load (#17); the cache
is FIFO by bytes, as the original.
"""
from __future__ import annotations

import collections
import math
import os
import threading

import cv2
import numpy as np

from ..names import file_name
from .fit import resize_to_fit
from .paint import fill

SECTIONS = (("regularized_opt", "{layer}_{unit:04d}_montage.jpg"),
            ("max_im", "{layer}_{unit:04d}.jpg"),
            ("max_deconv", "{layer}_{unit:04d}.jpg"))


class FifoCache:
    """Arrays by key, evicting the oldest insertions once their bytes exceed `max_bytes`.
    A get does not refresh an entry. Thread-safe."""

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._items: collections.OrderedDict = collections.OrderedDict()
        self._bytes = 0
        self._lock = threading.RLock()

    def get(self, key, default=None):
        with self._lock:
            return self._items.get(key, default)

    def set(self, key, value: np.ndarray) -> None:
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key).nbytes
            self._items[key] = value
            self._bytes += value.nbytes
            while self._bytes > self.max_bytes and len(self._items) > 1:
                self._bytes -= self._items.popitem(last=False)[1].nbytes

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)


def read_rgb(path) -> np.ndarray | None:
    """An image file as RGB uint8, or None when it is missing or unreadable."""
    if not os.path.isfile(path):
        return None
    image = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def crop_to_corner(image: np.ndarray, corner: int = 2, small_pad: int = 1,
                   large_pad: int = 2) -> np.ndarray:
    """One quadrant of a 2x2 montage of 3x3 grids (corner 2 is the lower left), without
    its padding."""
    side = image.shape[0]
    if side != image.shape[1] or side % 2:
        raise ValueError(f"montage must be square with an even side, got {image.shape[:2]}")
    half, pad = side // 2, small_pad + large_pad
    row, col = divmod(corner, 2)
    return image[row * half + pad:(row + 1) * half - pad, col * half + pad:(col + 1) * half - pad]


def split_sprites(sheet: np.ndarray, n: int) -> np.ndarray:
    """A square sprite sheet of ceil(sqrt(n))^2 equal cells -> (n, h, w, 3), row-major."""
    side = int(math.ceil(math.sqrt(n)))
    rows, cols = sheet.shape[:2]
    if rows % side or cols % side:
        raise ValueError(f"sprite sheet of shape {sheet.shape[:2]} does not split into "
                         f"{side}x{side} cells")
    h, w = rows // side, cols // side
    cells = sheet.reshape(side, h, side, w, -1).transpose(0, 2, 1, 3, 4).reshape(-1, h, w,
                                                                                 sheet.shape[2])
    return cells[:n]


def assemble(unit_dir, layer: str, unit: int, shape: tuple[int, int], stack_vert: bool,
             background, border) -> np.ndarray:
    """The jpgvis pane's image: optimized-image corner, top-9 montage, top-9 deconv, each in
    a third of the pane, those found stacked from the top (or left) on plain background."""
    height, width = shape
    cell = (height // 3, width) if stack_vert else (height, width // 3)
    parts = []
    for folder, pattern in SECTIONS:
        image = None
        if unit_dir is not None:
            name = file_name(layer)   # as crop-max-patches and optimize-layer wrote it
            image = read_rgb(os.path.join(unit_dir, folder, name,
                                          pattern.format(layer=name, unit=unit)))
        if image is not None and folder == "regularized_opt":
            image = crop_to_corner(image) if _is_montage(image) else None
        if image is None:
            continue
        section = np.empty(cell + (3,), np.uint8)
        fill(section, background)
        fitted = resize_to_fit(image, *cell)
        section[:fitted.shape[0], :fitted.shape[1]] = fitted
        parts.append(section)
    pane = np.empty((*shape, 3), np.uint8)
    fill(pane, background)
    if parts:
        found = np.concatenate(parts, axis=0 if stack_vert else 1)
        pane[:found.shape[0], :found.shape[1]] = found
    return pane


def _is_montage(image: np.ndarray) -> bool:
    return image.shape[0] == image.shape[1] and image.shape[0] % 2 == 0 and image.shape[0] > 6


class UnitJpgs:
    """Pictures for the panes, from the cache; what is missing is loaded synchronously or,
    with a `loader`, requested from the loading thread (the pane shows 'stale' meanwhile)."""

    def __init__(self, settings, cache: FifoCache, background, border):
        self.unit_dir = settings.get("caffevis_unit_jpg_dir")
        self.layers = set(settings.get("caffevis_jpgvis_layers") or ())
        self.remap = dict(settings.get("caffevis_jpgvis_remap") or {})
        self.stack_vert = bool(settings.get("caffevis_jpgvis_stack_vert", True))
        self.cache = cache
        self.background, self.border = background, border
        self.loader: JpgLoader | None = None

    def source_layer(self, layer: str) -> str:
        return self.remap.get(layer, layer)

    def has_layer(self, layer: str) -> bool:
        return self.unit_dir is not None and self.source_layer(layer) in self.layers

    def unit_images(self, layer: str, unit: int, shape: tuple[int, int]) -> np.ndarray | None:
        """The pane image for a unit, or None while the loader is still reading it."""
        if self.has_layer(layer):
            key = (self.source_layer(layer), unit, tuple(shape))
        else:                                   # background only, the same for every unit
            key = (None, 0, tuple(shape))
        image = self.cache.get(key)
        if image is None:
            if self.loader is not None and key[0] is not None:
                self.loader.request(key)
                return None
            image = self.load(key)
        return image

    def load(self, key) -> np.ndarray:
        layer, unit, shape = key
        unit_dir = self.unit_dir if layer is not None else None
        image = assemble(unit_dir, layer, unit, shape, self.stack_vert, self.background,
                         self.border)
        self.cache.set(key, image)
        return image

    def sprites(self, layer: str, n: int) -> np.ndarray | None:
        """Pattern mode: the layer's whole_layer.jpg cut into n unit images, or None."""
        if not self.has_layer(layer):
            return None
        path = os.path.join(self.unit_dir, "regularized_opt",
                            file_name(self.source_layer(layer)), "whole_layer.jpg")
        key = (path, "whole")
        stack = self.cache.get(key)
        if stack is None:
            sheet = read_rgb(path)
            try:
                stack = split_sprites(sheet, n) if sheet is not None else np.zeros((0,), np.uint8)
            except ValueError as exc:
                print(f"deepvis toolbox: {path}: {exc}")
                stack = np.zeros((0,), np.uint8)
            self.cache.set(key, stack)
        return stack if stack.size else None


class JpgLoader(threading.Thread):
    """Reads the newest requested unit pictures into the cache, then calls `loaded()`."""

    def __init__(self, jpgs: UnitJpgs, loaded, lifeline, idle_sleep: float = 0.01):
        super().__init__(name="deepvis-jpgs", daemon=True)
        self.jpgs, self.loaded, self.lifeline = jpgs, loaded, lifeline
        self.idle_sleep = idle_sleep
        self._wanted = None
        self._lock = threading.Lock()
        jpgs.loader = self

    def request(self, key) -> None:
        with self._lock:
            self._wanted = key

    def run(self) -> None:
        while self.lifeline.alive():
            with self._lock:
                key, self._wanted = self._wanted, None
            if key is None:
                self.lifeline.sleep(self.idle_sleep)
            elif self.jpgs.cache.get(key) is None:
                self.jpgs.load(key)
                self.loaded()
