"""`deepvis optimize-layer MODEL --layer L`: the per-unit montages the jpgvis pane shows.

For each unit, nine optimizations (start seeds rand_seed..rand_seed+8) fill the 3x3 grid
of montage quadrant 2, the one the toolbox displays, with the --preset settings (default
paper3, the paper's most used). --all-presets fills quadrants 0..3 with paper1..paper4
instead (36 runs a unit). Each grid image is
the best image plus the mean, stretched to 0..255 (as best_Xpm.jpg). Files go to
<out>/regularized_opt/<layer>/<layer>_<unit:04d>_montage.jpg; units whose montage exists
are skipped, so an interrupted run resumes. Once every unit of the layer has a montage,
whole_layer.jpg (the pattern-mode sprite sheet: seed rand_seed of the shown quadrant per
unit) is written beside them. Conv units are pushed at the centre unless --push-spatial
says otherwise. A whole layer (4096 units of fc6: 36864 runs) outgrows one machine:
--scheduler spreads the batches over a Dask cluster's workers, with the same montages.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys

import cv2
import numpy as np

from ..errors import DeepvisError
from ..fileio import save_image
from ..names import file_name
from ..optimize import montage as M
from ..optimize import params as P
from ..optimize.params import FindParams
from ..optimize.results import image_xpm
from ..figures.runner import ModelRef, run_batches
from .common import add_model_args, open_model
from .optimize import add_find_args, chunks, find_values, space_for

SEEDS_PER_GRID = 9
ALL_PRESETS = ("paper1", "paper2", "paper3", "paper4")


def register(sub) -> None:
    p = sub.add_parser("optimize-layer", help="per-unit montages of optimized images for the "
                                              "toolbox's jpgvis pane",
                       description=__doc__.split("\n", 2)[2],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    p.add_argument("--layer", required=True, help="layer (blob) whose units to visualize")
    p.add_argument("--units", help="units: a range such as 0-95 or a list (default: all)")
    p.add_argument("--out", default="unit_jpg_vis",
                   help="root folder of the per-unit images (default: unit_jpg_vis)")
    p.add_argument("--all-presets", action="store_true",
                   help="fill the four quadrants with paper1..paper4 (4x the work)")
    p.add_argument("--sprite-cell", type=int, default=96,
                   help="cell size in pixels of whole_layer.jpg (default: 96)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler (e.g. tcp://host:8786): spread the batches over its "
                        "workers, which must reach MODEL under the same path; the montages "
                        "are those of a run on one machine")
    add_find_args(p, units=False)
    for name in ("mean", "channel_swap_to_rgb", "data_size"):
        p.set_defaults(**{name: None})
    p.set_defaults(run=run, push_channel=None)


def layer_dir(out, layer: str) -> pathlib.Path:
    return pathlib.Path(out) / "regularized_opt" / file_name(layer)


def montage_path(out, layer: str, unit: int) -> pathlib.Path:
    return layer_dir(out, layer) / f"{file_name(layer)}_{unit:04d}_montage.jpg"


def quadrant_presets(args) -> list[str | None]:
    """The preset of each quadrant (None: left empty)."""
    if args.all_presets:
        if args.preset:
            raise DeepvisError("--all-presets and --preset exclude each other")
        return list(ALL_PRESETS)
    return [None, None, args.preset or "paper3", None]


def planned_runs(args, model, units: list[int], input_scale: float = 1.0
                 ) -> list[tuple[int, int, int, FindParams]]:
    """(unit, quadrant, grid index, params) for every optimization still to do."""
    shape = model.blob_shapes[args.layer][1:]
    centre = (shape[1] // 2, shape[2] // 2) if len(shape) == 3 else (0, 0)
    runs = []
    for corner, preset in enumerate(quadrant_presets(args)):
        if preset is None:
            continue
        values = find_values(args, args.layer, preset, input_scale)
        if args.push_spatial is None:
            values["push_spatial"] = centre
        for unit in units:
            for k in range(SEEDS_PER_GRID):
                p = FindParams(**dict(values, push_channel=unit,
                                      rand_seed=values["rand_seed"] + k))
                runs.append((unit, corner, k, p))
    runs.sort(key=lambda run: run[0])
    return runs


def run(args) -> int:
    """Flags and the output folder are checked before any optimization runs, and the folder
    is locked: a second optimize-layer into it stops at once."""
    from ..fileio import check_output_dir
    from ..locks import exclusive_output

    if args.sprite_cell < 1:
        raise DeepvisError(f"--sprite-cell must be at least 1 pixel, got {args.sprite_cell}")
    if args.batch_size < 1:
        raise DeepvisError(f"--batch-size must be at least 1, got {args.batch_size}")
    out = check_output_dir(args.out)
    with exclusive_output(out, "writing optimized montages into"):
        return _run(args)


def _run(args) -> int:
    model = open_model(args, speed_over_memory=True)
    if args.layer not in model.blob_names:
        raise DeepvisError(f"--layer: no blob named {args.layer!r}; blobs are: "
                           f"{', '.join(model.blob_names[1:])}")
    channels = model.blob_shapes[args.layer][1]
    units = P.parse_units(args.units, "--units") if args.units else list(range(channels))
    outside = [u for u in units if u >= channels]
    if outside:
        raise DeepvisError(f"--units: {args.layer!r} has {channels} units; {outside[0]} is "
                           "outside it")
    todo = [u for u in units if not montage_path(args.out, args.layer, u).exists()]
    if len(todo) < len(units) and not args.quiet:
        print(f"deepvis: {len(units) - len(todo)} of {len(units)} montages exist; "
              "skipping them", file=sys.stderr)
    space = space_for(model, args)
    runs = planned_runs(args, model, todo, space.input_scale)
    expected = {u: sum(1 for r in runs if r[0] == u) for u in todo}
    tiles: dict[int, dict] = {u: {} for u in todo}
    tile = space.shape[1]
    batches = list(chunks(runs, args.batch_size))

    def on_done(i, images):
        for (unit, corner, k, _), image in zip(batches[i], images):
            tiles[unit][(corner, k)] = image
            if len(tiles[unit]) == expected[unit]:
                write_montage(args.out, args.layer, unit, tiles.pop(unit), tile)

    run_batches(ModelRef.from_args(args),
                [[r[3] for r in b] for b in batches], best_tile, on_done,
                scheduler=args.scheduler, progress=not args.quiet, model=model,
                describe=lambda i, _: f"{args.layer} units {batches[i][0][0]}-"
                                      f"{batches[i][-1][0]}")
    write_sprite_if_complete(args.out, args.layer, channels, args.sprite_cell,
                             quiet=args.quiet)
    return 0


def best_tile(params, results, space) -> np.ndarray:
    """A grid image: best_Xpm of one run (black where nothing was recorded)."""
    if results.best_xx is None:
        return np.zeros(space.shape[1:] + (3,), np.uint8)
    return image_xpm(results.best_xx, space)


def write_montage(out, layer: str, unit: int, tiles: dict, tile: int) -> None:
    quadrants = [None] * 4
    for (corner, k), image in sorted(tiles.items()):
        quadrants[corner] = (quadrants[corner] or []) + [image]
    save_image(montage_path(out, layer, unit), M.unit_montage(quadrants, tile), overwrite=True)


def write_sprite_if_complete(out, layer: str, channels: int, cell: int, quiet: bool) -> None:
    """whole_layer.jpg from the montages, once all of the layer's units have one."""
    paths = [montage_path(out, layer, u) for u in range(channels)]
    if not all(p.exists() for p in paths):
        return
    sprite = layer_dir(out, layer) / "whole_layer.jpg"
    if sprite.exists() and sprite.stat().st_mtime_ns >= max(os.stat(p).st_mtime_ns
                                                             for p in paths):
        return
    images = []
    for path in paths:
        montage = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        images.append(M.grid_image(M.montage_corner(montage), 0))
    save_image(sprite, M.sprite_sheet(images, cell), overwrite=True)
    if not quiet:
        print(f"deepvis: wrote {sprite}", file=sys.stderr)
