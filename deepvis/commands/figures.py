"""`deepvis figure3` and `deepvis figure4`: the paper's figures of optimized images.

figure3 (as the paper's Figure 3): one row per setting (none, paper1..paper4 by default,
and any preset --presets names, e.g. robust), one column per unit of one layer (the class
layer by default). `none` is plain gradient ascent: paper3's learning rate, no decay, no
blur, no clipping. figure4 (as the paper's Figure 4): units of several layers, one row
per layer (early conv to the class layer), all with one setting (--preset); conv units
are pushed at the centre of their map, and shown cut to their receptive field.

Default units: for caffenet-yos the classes the paper's figures show; for the
EfficientNet-Lite models a documented fixed list (deepvis/figures/units.py); else the
first units of the class layer (figure3) or a spread of conv layers (figure4).

Each writes, in --out: sheet PNG (figure3.png / figure4.png), one `<cell>_best_Xpm.jpg`
and `<cell>.json` per cell (under units/), and figure3.json / figure4.json with every
cell's objective (first, best, last) and, for class units of ImageNet models, the
judges' verdicts (rank of the class; top-1 and top-5 on EfficientNet-Lite1 and -Lite2 by
default, judged on the saved picture). A cell is saved as soon as its batch ends, so a
killed run resumes where it stopped. Cells run in batches of --batch-size units that
share a layer and a setting; --scheduler spreads the batches over a Dask cluster's
workers, with the same pictures and numbers as a run on one machine.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

from ..errors import DeepvisError
from ..fileio import atomic_path, save_image
from ..figures import plan, records, units as U
from ..figures.runner import ModelRef, run_batches, space_of
from ..figures.sheet import draw_sheet
from ..optimize import params as P
from .common import add_model_args
from .optimize import add_find_args, find_values

PAPER_ROWS = ("none", "paper1", "paper2", "paper3", "paper4")
DEFAULT_ITER = 200
# Measured with bench/bench_figures.py on EfficientNet-Lite0, 2 cores, a batch in slices over
# the cores: per unit-iteration a batch of 4 costs 0.86x one unit alone and a batch of 20
# 0.81x. 4 keeps most of that, and a killed run loses at most one batch of 4 cells.
DEFAULT_BATCH = 4


def best_preset() -> str:
    """The preset figure4 uses by default: the one that transfers best (README table)."""
    return "robust"


def register(sub) -> None:
    doc = __doc__.split("\n", 2)[2]
    p3 = sub.add_parser("figure3", help="one row per setting, one column per unit (the "
                                        "paper's Figure 3)", description=doc,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(p3, "figure3")
    p3.add_argument("--layer", help="layer of the units (default: the class layer, fc8 or fc)")
    p3.add_argument("--units", help="units of --layer: a list or range such as 130,9,779 "
                                    "(default: the model's documented list)")
    p3.add_argument("--presets", default=",".join(PAPER_ROWS),
                    help="rows: comma-separated presets, `none` for no regularization "
                         f"(default: {','.join(PAPER_ROWS)}; add e.g. robust)")
    p3.set_defaults(run=run_figure3)
    p4 = sub.add_parser("figure4", help="units of several layers with one setting (the "
                                        "paper's Figure 4)", description=doc,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(p4, "figure4")
    p4.add_argument("--units", help="rows LAYER:UNITS separated by ';', e.g. "
                                    "\"conv1:0,16;conv5:151,26;fc8:130\" (default: the "
                                    "model's documented list)")
    p4.add_argument("--no-crop", action="store_true",
                    help="show conv units' whole images, not just their receptive fields")
    p4.set_defaults(run=run_figure4)


def common_args(p, name: str) -> None:
    add_model_args(p)
    p.add_argument("--out", default=name, help=f"output folder (default: {name})")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler (e.g. tcp://host:8786): spread batches over its "
                        "workers, which must reach MODEL under the same path")
    p.add_argument("--judges", default="lite1,lite2",
                   help="judge models for class units of ImageNet models, comma-separated, "
                        "or none (default: lite1,lite2)")
    p.add_argument("--tile", type=int, default=112, help="picture size on the sheet (default 112)")
    p.add_argument("--sheet", metavar="PATH",
                   help=f"where to write the sheet, .png or .jpg (default: OUT/{name}.png)")
    p.add_argument("--draw-only", action="store_true",
                   help="optimize nothing: draw the sheet and JSON from the cells done so far "
                        "(grey where a cell is still to do), e.g. beside a running job")
    p.add_argument("--brave", action="store_true",
                   help="redo cells that --out holds with other settings (default: refuse)")
    add_find_args(p, units=False)
    for key in ("mean", "channel_swap_to_rgb", "data_size"):
        p.set_defaults(**{key: None})
    p.set_defaults(max_iter=DEFAULT_ITER, push_channel=None, batch_size=DEFAULT_BATCH)
    if name == "figure3":
        p.set_defaults(preset=None)
    for action in p._actions:
        if action.dest == "max_iter":
            action.help = f"iterations per unit (default: {DEFAULT_ITER})"
        if action.dest == "batch_size":
            action.help = (f"units per optimize() call, all of one layer and setting "
                           f"(default: {DEFAULT_BATCH})")
        if action.dest == "preset" and name == "figure4":
            action.help = (f"the setting of every cell (default: {best_preset()}, the best "
                           "one known); explicit flags override its values")
        if action.dest == "preset" and name == "figure3":
            action.help = "not used by figure3: its rows are --presets"


def check_rows(model, rows) -> None:
    for layer, units in rows:
        if layer not in model.blob_names:
            raise DeepvisError(f"--units: no blob named {layer!r}; blobs are: "
                               f"{', '.join(model.blob_names[1:])}")
        channels = model.blob_shapes[layer][1]
        outside = [u for u in units if u >= channels]
        if outside:
            raise DeepvisError(f"--units: {layer!r} has {channels} units; {outside[0]} is "
                               "outside it")


def run_figure3(args) -> int:
    if args.preset:
        raise DeepvisError("figure3 takes its rows from --presets, not --preset")
    ref, model = open_ref(args)
    settings = [s.strip() for s in args.presets.split(",") if s.strip()]
    unknown = [s for s in settings if s not in P.PRESETS]
    if unknown or not settings:
        raise DeepvisError(f"--presets: unknown preset {unknown[0] if unknown else ''!r}; "
                           f"choose from {', '.join(P.PRESETS)}")
    default_layer, units = U.figure3_units(model, args.model)
    layer = args.layer or default_layer
    check_rows(model, [(layer, ())])
    if args.units:
        units = tuple(P.parse_units(args.units, "--units"))
    elif layer != default_layer:
        units = U.spread(model.blob_shapes[layer][1], 10)
    check_rows(model, [(layer, units)])
    rows = [(s, s, layer, units) for s in settings]
    return make_sheet(args, ref, model, "figure3", rows)


def run_figure4(args) -> int:
    ref, model = open_ref(args)
    preset = args.preset or best_preset()
    unit_rows = U.parse_unit_rows(args.units) if args.units else U.figure4_units(model,
                                                                                args.model)
    check_rows(model, unit_rows)
    rows = [(layer, preset, layer, units) for layer, units in unit_rows]
    return make_sheet(args, ref, model, "figure4", rows)


def open_ref(args):
    ref = ModelRef.from_args(args)
    return ref, ref.load()


def make_sheet(args, ref, model, name: str, rows) -> int:
    if args.tile < 16:
        raise DeepvisError(f"--tile must be at least 16 pixels, got {args.tile}")
    if args.batch_size < 1:
        raise DeepvisError(f"--batch-size must be at least 1, got {args.batch_size}")
    out = pathlib.Path(args.out)
    cells_dir = out / "units"
    space = space_of(model)
    scale = space.input_scale

    def values_for(preset):
        return find_values(args, "", preset, scale)

    jobs = plan.jobs_for(model, rows, values_for,
                         P.parse_push_spatial(args.push_spatial) if args.push_spatial else None)
    done = {j.key: records.read(cells_dir, j, redo_changed=args.brave) for j in jobs}
    todo = [j for j in jobs if done[j.key] is None]
    if len(todo) < len(jobs) and not args.quiet:
        print(f"deepvis: {len(jobs) - len(todo)} of {len(jobs)} cells are done; skipping them",
              file=sys.stderr)
    batches = [] if args.draw_only else plan.batches(todo, args.batch_size)

    def on_done(i, outcomes):
        for job, result in zip(batches[i], outcomes):
            done[job.key] = records.write(cells_dir, job, result)

    def describe(i, batch):
        return f"{name} batch {i + 1}/{len(batches)}: {batch[0].setting} {batch[0].layer}"

    run_batches(ref, [[j.params for j in b] for b in batches], records.outcome, on_done,
                scheduler=args.scheduler, progress=not args.quiet, model=model,
                describe=lambda i, _: describe(i, batches[i]))
    cells = [dict(done[j.key]) if done[j.key] else {"key": j.key, "row": j.row,
                                                     "setting": j.setting, "layer": j.layer,
                                                     "unit": j.unit, "missing": True}
             for j in jobs]
    images = {j.key: records.load_image(cells_dir, done[j.key]) if done[j.key] else None
              for j in jobs}
    judge_cells(args, model, jobs, cells, images)
    sheet = draw(args, model, name, rows, jobs, cells, images)
    sheet_path = pathlib.Path(args.sheet) if args.sheet else out / f"{name}.png"
    save_image(sheet_path, sheet, overwrite=True)
    summary = {"figure": name, "model": args.model, "rows": [r[0] for r in rows],
               "cells": cells, "tally": tallies(cells)}
    with atomic_path(out / f"{name}.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(summary, indent=1) + "\n")
    if not args.quiet:
        report(summary, sheet_path)
    return 0


def imagenet_class_layer(model, layer: str) -> bool:
    labels = model.labels
    return (layer == U.class_layer(model) and labels is not None and len(labels) == 1000
            and model.blob_shapes[layer][1:] == (1000,))


def judge_cells(args, model, jobs, cells, images) -> None:
    """Verdicts for class units of ImageNet models, judged on the saved pictures."""
    names = [n for n in args.judges.split(",") if n.strip() and n.strip() != "none"]
    picked = [i for i, j in enumerate(jobs)
              if imagenet_class_layer(model, j.layer) and images[j.key] is not None]
    if not names or not picked:
        return
    from ..judges import judge

    try:
        verdicts = judge([images[jobs[i].key] for i in picked], [jobs[i].unit for i in picked],
                         names, labels=model.labels, backend=args.backend, gpu=args.gpu)
    except DeepvisError as exc:      # e.g. a judge not installed: the sheet is still worth it
        print(f"deepvis: warning: no judges' verdicts: {exc}", file=sys.stderr)
        return
    for i, v in zip(picked, verdicts):
        cells[i]["label"] = v["label"]
        cells[i]["judges"] = v["judges"]


def tallies(cells) -> dict:
    """Per row and judge: how many class units it put first / in its top five."""
    out: dict = {}
    for cell in cells:
        for name, v in (cell.get("judges") or {}).items():
            c = out.setdefault(cell["row"], {}).setdefault(name, {"units": 0, "top1": 0,
                                                                  "top5": 0})
            c["units"] += 1
            c["top1"] += int(v["top1"])
            c["top5"] += int(v["top5"])
    return out


def short(name: str) -> str:
    return name.replace("efficientnet-", "")


def captions(cell) -> list[str]:
    obj = cell.get("best_obj")
    if cell.get("missing"):
        return ["to do"]
    lines = [f"obj {obj:.3g}" if obj is not None else "no result"]
    if cell.get("judges"):
        lines.append(" ".join(f"{short(n)}:{v['rank']}" for n, v in cell["judges"].items()))
    return lines


def unit_title(model, layer: str, unit: int) -> str:
    """'130 flamingo' for a labelled class unit, else 'block06 13'."""
    labels = model.labels
    if labels and layer == U.class_layer(model) and unit < len(labels):
        return f"{unit} {labels[unit]}"
    return f"{layer} {unit}"


def crop_to_field(model, regions, job, image):
    """A conv unit's picture cut to the input region the unit sees."""
    if len(model.blob_shapes[job.layer]) != 4:
        return image
    (y0, y1), (x0, x1) = regions.region(job.layer, *job.params.push_spatial)
    return image[y0:y1, x0:x1]


def draw(args, model, name, rows, jobs, cells, images):
    from ..maxes.receptive import RegionComputer

    regions = RegionComputer(model.graph) if name == "figure4" and not args.no_crop else None
    by_row: dict = {}
    for job, cell in zip(jobs, cells):
        image = images[job.key]
        caps = captions(cell)
        if name == "figure4":
            if regions is not None and image is not None:
                image = crop_to_field(model, regions, job, image)
            caps = [unit_title(model, job.layer, job.unit)] + caps
        by_row.setdefault(job.row, []).append((image, caps))
    judged = any(c.get("judges") for c in cells)
    p = jobs[0].params
    if name == "figure3":
        layer, units = rows[0][2], rows[0][3]
        titles = [unit_title(model, layer, u) for u in units]
        title = (f"{args.model}: {layer} units, {p.max_iter} iterations, seed {p.rand_seed}"
                 + ("; under each: best objective, judges' rank of the class" if judged else ""))
        lines = 2 if judged else 1
    else:
        titles = None
        title = (f"{args.model}: {jobs[0].setting}, {p.max_iter} iterations, seed "
                 f"{p.rand_seed}" + ("" if args.no_crop else "; conv units cut to their "
                                     "receptive field"))
        lines = 3 if judged else 2
    return draw_sheet([(row[0], by_row[row[0]]) for row in rows], args.tile, titles, title,
                      caption_lines=lines)


def report(summary, path) -> None:
    for row, judges in summary["tally"].items():
        text = ", ".join(f"{short(n)} top-1 {c['top1']}/{c['units']} top-5 "
                         f"{c['top5']}/{c['units']}" for n, c in judges.items())
        print(f"{row}: {text}")
    print(f"wrote {path}")
