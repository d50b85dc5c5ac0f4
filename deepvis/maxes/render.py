"""The per-unit files of crop-max-patches, rendered from a MAXES table.

For each top entry (unit, image, y, x) the image is decoded and preprocessed as in
find-maxes and run forward and backward once per mode, seeded with 1.0 at the unit's
recorded location (at the unit for FC layers), as the original crop_max_patches did;
the crop of the image and of the derivative at the input over the unit's receptive
field become tiles. Files come back as encoded bytes keyed by their path under the
output folder, so a Dask worker can render and the client write:

- `max_im/<layer>/<layer>_<NNNN>.jpg`: 3x3 montage of the image crops (what the
  toolbox's jpgvis pane loads), `max_deconv/...` of the deconv crops, `max_bp/...`
  of the backprop crops (with the grad mode);
- loose files as the original wrote them, in its layout `<layer>/unit_<NNNN>/`:
  `maxim_<k>.png`, `deconv_<k>.png`, `deconvnorm_<k>.png`, `backprop_<k>.png`,
  `backpropnorm_<k>.png` (k = rank, 000 best) and `info.txt`; `outputs` picks which, as
  the original's --do-* flags did.

Two kinds of image crop (RenderOptions.crops): "original", as the original's maxim files,
the network input itself (mean subtracted, channels back in RGB order) over the crop's
canvas, scaled so that zero is mid-gray; "natural", the pixels the network saw. The
montages in max_im/ are always natural, as the toolbox's shipped jpgs are.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import DeepvisError
from ..names import file_name
from ..preprocess import input_to_rgb
from . import crops
from .images import ImageList, decode
from .receptive import RegionComputer
from .store import Maxes

MONTAGE_FOLDERS = {"deconv": "max_deconv", "grad": "max_bp"}
LOOSE_NAMES = {"deconv": "deconv", "grad": "backprop"}
# the original's --do-* outputs: file stem -> backward mode it needs (None: forward only)
OUTPUTS = {"maxim": None, "deconv": "deconv", "deconvnorm": "deconv", "backprop": "grad",
           "backpropnorm": "grad", "info": None}
CROP_KINDS = ("original", "natural")
MISMATCH = 0.1          # the original warned when a re-run differed by more than this
INFO_HEADER = "# is_conv val image_idx image_class i(if is_conv) j(if is_conv) filename"


@dataclass(frozen=True)
class RenderOptions:
    modes: tuple[str, ...] = ("deconv",)   # add "grad" for max_bp
    loose: bool = True
    batch_size: int = 16
    jpeg_quality: int = 95
    crops: str = "natural"                 # maxim_*.png: "original" or "natural"
    outputs: frozenset | None = None       # only these loose files, no montages (--do-*)
    framing: dict | None = None            # how images become inputs (None: as in MAXES)

    @classmethod
    def selective(cls, outputs, **kw) -> "RenderOptions":
        """The original's --do-* selection: only those loose files, and only the backward
        passes they need."""
        outputs = frozenset(outputs)
        modes = tuple(m for m in ("deconv", "grad")
                      if any(OUTPUTS[o] == m for o in outputs))
        return cls(modes=modes, outputs=outputs, **kw)

    @property
    def montages(self) -> bool:
        return self.outputs is None

    def wants(self, stem: str) -> bool:
        return self.loose if self.outputs is None else stem in self.outputs

    @property
    def needs_network(self) -> bool:
        return self.montages or any(self.wants(s) for s in OUTPUTS if s != "info")


@dataclass(frozen=True)
class Entry:
    unit: int
    rank: int
    image: int
    y: int
    x: int
    value: float


def check_layer_name(layer: str) -> None:
    if not layer:
        raise DeepvisError("an empty layer name cannot be a folder name of the jpg tree")


def montage_paths(layer: str, unit: int, options: RenderOptions) -> list[str]:
    """The files the toolbox loads for one unit (relative to the output folder)."""
    if not options.montages:
        return []
    folders = ["max_im"] + [MONTAGE_FOLDERS[m] for m in options.modes]
    name = file_name(layer)   # flat and safe for any tensor name; deepvis.names maps back
    return [f"{folder}/{name}/{name}_{unit:04d}.jpg" for folder in folders]


def loose_folder(layer: str, unit: int) -> str:
    """The original's layout: <layer>/unit_<NNNN>/ directly in the output folder."""
    return f"{file_name(layer)}/unit_{unit:04d}"


def written_paths(layer: str, unit: int, top: int, options: RenderOptions) -> list[str]:
    """Every file one unit gets (relative), for the overwrite check."""
    paths = montage_paths(layer, unit, options)
    folder = loose_folder(layer, unit)
    stems = [s for s in OUTPUTS if s != "info" and options.wants(s)
             and (OUTPUTS[s] is None or OUTPUTS[s] in options.modes)]
    paths += [f"{folder}/{s}_{k:03d}.png" for s in stems for k in range(top)]
    if options.wants("info"):
        paths.append(f"{folder}/info.txt")
    return paths


def entries(maxes: Maxes, layer: str, units) -> list[Entry]:
    table = maxes.tables[layer]
    out = []
    for unit in units:
        for rank in range(table.top):
            image = int(table.image_index[unit, rank])
            if image >= 0:
                out.append(Entry(unit, rank, image, int(table.y[unit, rank]),
                                 int(table.x[unit, rank]), float(table.values[unit, rank])))
    return out


class InputCache:
    """Decoded network inputs of recently used images (entries are visited sorted by image)."""

    def __init__(self, images: ImageList, preprocess, size: int = 64):
        self.images, self.preprocess, self.size = images, preprocess, size
        self._items: OrderedDict[int, np.ndarray] = OrderedDict()

    def get(self, index: int) -> np.ndarray:
        if index in self._items:
            self._items.move_to_end(index)
            return self._items[index]
        x, why = decode(self.images.file(index), self.preprocess)
        if x is None:
            raise DeepvisError(f"image {index} ({self.images.file(index)}) cannot be read any "
                               f"more: {why} (if the images moved, pass --image-root)")
        self._items[index] = x
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return x


def render_units(model, maxes: Maxes, layer: str, units, options: RenderOptions,
                 regions: RegionComputer | None = None) -> tuple[dict[str, bytes], int, int]:
    """(files, mismatches, units): encoded files for `units` of `layer`, how many re-runs
    disagreed with the recorded value by more than MISMATCH, and how many units."""
    from .framing import framing_from

    check_layer_name(layer)
    regions = regions or RegionComputer(model.graph)
    tile_hw = regions.canvas(layer)
    todo = sorted(entries(maxes, layer, units), key=lambda e: (e.image, e.unit, e.rank))
    if not options.needs_network:
        todo = []
    framing = framing_from(options.framing or maxes.info.get("framing"), model)
    cache = InputCache(maxes.images, framing.preprocessor(model))
    tiles: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    mismatches = 0
    for start in range(0, len(todo), options.batch_size):
        chunk = todo[start:start + options.batch_size]
        x = np.stack([cache.get(e.image) for e in chunk])
        seed = unit_seeds(model.blob_shapes[layer], chunk)
        grads = {}
        for k, mode in enumerate(options.modes):
            grads[mode], blobs = model.forward_backward(x, layer, seed, mode,
                                                        blobs=[layer] if k == 0 else ())
            if k == 0:
                mismatches += count_mismatches(blobs[layer], chunk)
        if not options.modes:
            mismatches += count_mismatches(model.forward(x, blobs=[layer])[layer], chunk)
        swap = model.preprocessing.channel_swap
        for b, e in enumerate(chunk):
            region = regions.region(layer, max(e.y, 0), max(e.x, 0))
            rgb = input_to_rgb(x[b], model.preprocessing)
            found = {"natural": crops.image_tile(rgb, region, tile_hw)}
            found["maxim"] = found["natural"] if options.crops == "natural" else \
                crops.gradient_tiles(x[b], region, tile_hw, swap)[0]
            for mode, grad in grads.items():
                signed, norm = crops.gradient_tiles(grad[b], region, tile_hw,
                                                    model.preprocessing.channel_swap)
                found[LOOSE_NAMES[mode]] = signed
                found[LOOSE_NAMES[mode] + "norm"] = norm
            tiles[e.unit, e.rank] = found
    files = {}
    for unit in units:
        files.update(unit_files(maxes, layer, unit, tiles, tile_hw, options))
    return files, mismatches, len(units)


def unit_seeds(shape, chunk) -> np.ndarray:
    """1.0 at each entry's unit and location, one entry per batch row."""
    seed = np.zeros((len(chunk), *shape[1:]), np.float32)
    for b, e in enumerate(chunk):
        seed[(b, e.unit, e.y, e.x) if len(shape) == 4 else (b, e.unit)] = 1.0
    return seed


def count_mismatches(blob: np.ndarray, chunk) -> int:
    values = [blob[(b, e.unit, e.y, e.x) if blob.ndim == 4 else (b, e.unit)]
              for b, e in enumerate(chunk)]
    return int(sum(abs(float(v) - e.value) > MISMATCH for v, e in zip(values, chunk)))


def unit_files(maxes: Maxes, layer: str, unit: int, tiles: dict, tile_hw,
               options: RenderOptions) -> dict[str, bytes]:
    top = maxes.tables[layer].top
    found = [tiles.get((unit, rank)) for rank in range(top)]
    kinds = ["natural"] + [LOOSE_NAMES[m] for m in options.modes]
    out = {}
    for path, kind in zip(montage_paths(layer, unit, options), kinds):
        grid = crops.montage([t[kind] if t else crops.empty_tile(tile_hw) for t in found],
                             tile_hw)
        out[path] = encode(grid, ".jpg", options.jpeg_quality)
    folder = loose_folder(layer, unit)
    for rank, tile in enumerate(found):
        for kind, image in (tile or {}).items():
            if kind != "natural" and options.wants(kind):
                out[f"{folder}/{kind}_{rank:03d}.png"] = encode(image, ".png")
    if options.wants("info"):
        out[f"{folder}/info.txt"] = info_text(maxes, layer, unit).encode()
    return out


def info_text(maxes: Maxes, layer: str, unit: int) -> str:
    table = maxes.tables[layer]
    lines = [INFO_HEADER]
    for rank in range(table.top):
        image = int(table.image_index[unit, rank])
        if image < 0:
            continue
        is_conv = int(table.y[unit, rank]) >= 0
        fields = [str(int(is_conv)), f"{float(table.values[unit, rank]):.6f}", str(image),
                  str(int(maxes.images.labels[image]))]
        if is_conv:
            fields += [str(int(table.y[unit, rank])), str(int(table.x[unit, rank]))]
        fields.append(maxes.images.paths[image])
        lines.append(" ".join(fields))
    return "\n".join(lines) + "\n"


def encode(rgb: np.ndarray, suffix: str, quality: int = 95) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if suffix == ".jpg" else []
    ok, data = cv2.imencode(suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise DeepvisError(f"cannot encode an image as {suffix}")
    return data.tobytes()
