"""`deepvis crop-max-patches MODEL MAXES -o UNIT_JPG_DIR`: the per-unit jpgs of the toolbox.

Writes `max_im/<layer>/<layer>_<NNNN>.jpg` and `max_deconv/...` (with --backprop also
`max_bp/...`), the folders `caffevis_unit_jpg_dir` points the jpgvis pane at, and the
original's loose per-crop files in its layout `<layer>/unit_<NNNN>/` (see
deepvis.maxes.render). With the original's --do-* flags, only the chosen loose files.
"""
from __future__ import annotations

import pathlib
import sys

from ..errors import DeepvisError
from ..fileio import atomic_path
from .common import add_model_args, open_model
from .find_maxes import layer_list, model_spec

UNITS_PER_TASK = 16


def register(sub) -> None:
    p = sub.add_parser("crop-max-patches", help="write the per-unit max image and deconv jpgs",
                       description="From a find-maxes result, crop each unit's top images to "
                                   "its receptive field (computed from the graph), deconv "
                                   "each crop, and write the 3x3 montages the toolbox loads.")
    add_model_args(p)
    p.add_argument("maxes", metavar="MAXES", help="the .npz written by find-maxes")
    p.add_argument("-o", "--output", required=True, metavar="UNIT_JPG_DIR")
    p.add_argument("--layers", metavar="L1,L2", help="layers to render (default: all in MAXES)")
    p.add_argument("--units", metavar="SPEC",
                   help="units to render, e.g. 0-15,32 (default: all of each layer)")
    p.add_argument("--backprop", action="store_true",
                   help="also write max_bp/ (plain gradient instead of deconv)")
    p.add_argument("--no-loose", action="store_true",
                   help="skip the per-crop PNGs and info.txt (LAYER/unit_NNNN/)")
    p.add_argument("--crops", choices=("auto", "original", "natural"), default="auto",
                   help="maxim_*.png: original (as the original's: the mean-subtracted network "
                        "input, zero at mid-gray), natural (the pixels the network saw); auto "
                        "(default): original for Caffe models, else natural. The max_im "
                        "montages are always natural")
    do = p.add_argument_group(
        "the original's selective outputs",
        "with any of these, only the chosen files of LAYER/unit_NNNN/ are written (no "
        "montages), and only the passes they need are run")
    for flag, what in (("maxes", "maxim_K.png, the image crops"),
                       ("deconv", "deconv_K.png, the deconv of each crop"),
                       ("deconv-norm", "deconvnorm_K.png, its per-pixel norm"),
                       ("backprop", "backprop_K.png, the plain gradient"),
                       ("backprop-norm", "backpropnorm_K.png, its per-pixel norm"),
                       ("info", "info.txt, the table")):
        do.add_argument(f"--do-{flag}", action="store_true", help=what)
    p.add_argument("--batch-size", type=int, default=16, metavar="B",
                   help="crops per forward/backward pass (16)")
    p.add_argument("--image-root", metavar="DIR",
                   help="folder the images are in now, if they moved since find-maxes")
    cluster = p.add_mutually_exclusive_group()
    cluster.add_argument("--scheduler", metavar="ADDRESS",
                         help="render on the Dask cluster at ADDRESS")
    cluster.add_argument("--workers", type=int, metavar="N", help="render on N local Dask workers")
    p.add_argument("--force", action="store_true", help="overwrite existing jpgs")
    p.set_defaults(run=run)


def parse_units(spec: str | None, channels: int) -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7]; None -> every unit."""
    if not spec:
        return list(range(channels))
    units = set()
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise DeepvisError(f"--units: {part!r} is not a unit or a range like 0-15") from None
        if not 0 <= a <= b < channels:
            raise DeepvisError(f"--units: {part!r} is outside 0-{channels - 1}")
        units.update(range(a, b + 1))
    return sorted(units)


def run(args) -> int:
    """The output folder is checked before any crop is made, and locked for the run."""
    from ..fileio import check_output_dir
    from ..locks import exclusive_output

    out = check_output_dir(args.output)
    with exclusive_output(out, "writing crops into"):
        return _run(args)


def _run(args) -> int:
    from dataclasses import replace

    from ..maxes.framing import is_caffe_model
    from ..maxes.render import RenderOptions, check_layer_name, written_paths
    from ..maxes.store import read_maxes

    if args.batch_size < 1:
        raise DeepvisError("--batch-size must be at least 1")
    maxes = read_maxes(args.maxes)
    if args.image_root:
        maxes.images = replace(maxes.images, root=pathlib.Path(args.image_root).resolve())
    layers = layer_list(args.layers) or list(maxes.tables)
    jobs = []
    for layer in layers:
        if layer not in maxes.tables:
            raise DeepvisError(f"{args.maxes} has no layer {layer!r}; it has: "
                               f"{', '.join(maxes.tables)}")
        check_layer_name(layer)
        units = parse_units(args.units, maxes.tables[layer].values.shape[0])
        jobs += [(layer, units[i:i + UNITS_PER_TASK]) for i in range(0, len(units), UNITS_PER_TASK)]
    out = pathlib.Path(args.output)
    model = open_model(args)
    crops = args.crops if args.crops != "auto" else \
        ("original" if is_caffe_model(model) else "natural")
    chosen = [stem for stem, flag in (("maxim", args.do_maxes), ("deconv", args.do_deconv),
                                      ("deconvnorm", args.do_deconv_norm),
                                      ("backprop", args.do_backprop),
                                      ("backpropnorm", args.do_backprop_norm),
                                      ("info", args.do_info)) if flag]
    if chosen:
        options = RenderOptions.selective(chosen, batch_size=args.batch_size, crops=crops)
    else:
        options = RenderOptions(modes=("deconv", "grad") if args.backprop else ("deconv",),
                                loose=not args.no_loose, batch_size=args.batch_size,
                                crops=crops)
    if not args.force:
        for layer, units in jobs:
            top = maxes.tables[layer].top
            for unit in units:
                for rel in written_paths(layer, unit, top, options):
                    if (out / rel).exists():
                        raise DeepvisError(f"{out / rel} exists; pass --force to overwrite")
    for layer in layers:
        if layer not in model.blob_names or \
                model.blob_shapes[layer][1] != maxes.tables[layer].values.shape[0]:
            raise DeepvisError(f"layer {layer!r} of {args.maxes} does not match the model "
                               f"(was MAXES made with another network?)")
        shape, table = model.blob_shapes[layer], maxes.tables[layer]
        filled = table.image_index >= 0
        if len(shape) == 4:
            outside = (table.y < 0) | (table.y >= shape[2]) | (table.x < 0) | (table.x >= shape[3])
        else:  # a unit of a fully connected layer has no location
            outside = (table.y != -1) | (table.x != -1)
        if (filled & outside).any():
            raise DeepvisError(f"layer {layer!r} of {args.maxes}: a maximum lies outside the "
                               f"blob {shape}")

    from tqdm import tqdm
    total = sum(len(units) for _, units in jobs)
    mismatches = 0
    with tqdm(total=total, unit="unit", file=sys.stderr, dynamic_ncols=True) as bar:
        def done(result) -> None:
            nonlocal mismatches
            files, bad, units_done = result
            write_files(out, files)
            mismatches += bad
            bar.update(units_done)

        if args.scheduler or args.workers:
            from ..maxes.distributed import open_client, render_on_cluster
            with open_client(args.scheduler, args.workers) as client:
                render_on_cluster(client, model_spec(args, model), maxes, jobs, options, done)
        else:
            from ..maxes.receptive import RegionComputer
            from ..maxes.render import render_units
            regions = RegionComputer(model.graph)
            for layer, units in jobs:
                done(render_units(model, maxes, layer, units, options, regions))
    if mismatches:
        print(f"deepvis crop-max-patches: warning: {mismatches} re-run activations differ from "
              f"{args.maxes} by more than 0.1 (different model, settings or images?)",
              file=sys.stderr)
    print(f"{total} units -> {out}")
    return 0


def write_files(root: pathlib.Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        with atomic_path(root / rel, overwrite=True) as tmp:
            tmp.write_bytes(data)
