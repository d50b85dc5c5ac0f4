"""`deepvis reproduce flamingo`: the original's documented optimize run, beside its record.

Runs fc8 unit 130 of caffenet-yos with the paper's third setting (decay 0.0001, blur 1.0
every 4 steps, constant lr 100, 1000 iterations, seed 0), writes the original's files
(optimize_results/opt_fc8_0130_0_*), and prints our figures beside the ones recorded in
the original's doc/running-optimize-image.md. With --original-dir (a folder holding the
original's opt_fc8_0130_0_best_X.jpg and _best_Xpm.jpg) it also writes
<prefix>side_by_side.jpg: ours on the left, the original's on the right.
"""
from __future__ import annotations

import argparse
import pathlib

import cv2
import numpy as np

from ..errors import DeepvisError
from ..fileio import save_image
from ..optimize import params as P
from ..optimize.loop import optimize
from ..optimize.params import FindParams
from ..optimize.results import output_files, refuse_existing, save_results
from ..optimize.space import pixel_space
from .common import add_backend_args, setting_overrides

MODEL = "caffenet-yos"
PREFIX = "opt_fc8_0130_0_"

# doc/running-optimize-image.md's recorded FindResults (original-toolbox §9.1).
RECORDED = {
    "best_obj": 71.186447, "best_ii": 992, "majority_ii": 27, "majority_obj": 8.44836,
    "last_obj": 68.1828, "first norm": 3921.52364497, "first std": 9.97384688005,
    "final norm": 647.378869524, "final std": 1.6460861413, "x0[0]": 17.6405234597,
    "x0[1]": 4.00157208367, "meta_result": "Metaresult: majority success",
}


def register(sub) -> None:
    p = sub.add_parser("reproduce", help="rerun the original's documented flamingo optimization "
                                         "and compare with its recorded results",
                       description=__doc__.split("\n", 2)[2],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_name", choices=("flamingo",), metavar="RUN",
                   help="the documented run to reproduce: flamingo")
    p.add_argument("--model", default=MODEL,
                   help="the network (default: caffenet-yos, after `deepvis fetch "
                        "caffenet-yos`); another CaffeNet-shaped .onnx for a dry run")
    add_backend_args(p, "ort (onnxruntime), numpy, or auto (default)")
    p.add_argument("--max-iter", type=int,
                   help="stop early, for a quick look (default: the recorded 1000)")
    p.add_argument("--output-dir", default="optimize_results",
                   help="where the files go (default: optimize_results)")
    p.add_argument("--original-dir", help="folder with the original's published "
                                          "opt_fc8_0130_0_best_X.jpg and _best_Xpm.jpg")
    p.add_argument("--brave", action="store_true", help="allow overwriting existing files")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def open_reproduce_model(args):
    from ..fetch import fetched_onnx_path
    from ..model import load_model

    if args.model == MODEL and fetched_onnx_path(MODEL) is None:
        raise DeepvisError("reproduce flamingo needs the caffenet-yos weights, which are not "
                           "fetched: run `deepvis fetch caffenet-yos` first (its host has been "
                           "down for years; see `deepvis fetch --help`)")
    return load_model(args.model, backend=args.backend, speed_over_memory=True,
                      overrides=setting_overrides(args))


def flamingo_params(max_iter: int | None) -> FindParams:
    values = P.resolve({"push_layer": "fc8", "max_iter": max_iter}, "flamingo")
    return FindParams(**values)


def comparison_rows(r) -> list[tuple[str, str, str]]:
    ours = {
        "best_obj": r.best_obj, "best_ii": getattr(r, "best_ii", None),
        "majority_ii": getattr(r, "majority_ii", None), "majority_obj": r.majority_obj,
        "last_obj": r.last_obj, "first norm": r.norm[0] if r.norm else None,
        "first std": r.std[0] if r.std else None,
        "final norm": r.norm[-1] if r.norm else None, "final std": r.std[-1] if r.std else None,
        "x0[0]": r.x0.ravel()[0] if r.x0 is not None else None,
        "x0[1]": r.x0.ravel()[1] if r.x0 is not None else None,
        "meta_result": r.meta_result,
    }
    return [(key, _fmt(ours[key]), _fmt(RECORDED[key])) for key in RECORDED]


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return str(value)


def print_table(rows, iterations: int) -> None:
    print(f"flamingo (fc8 unit 130), {iterations} iterations; the original ran 1000")
    print(f"{'':<14} {'deepvis':>30} {'original':>30}")
    for name, ours, original in rows:
        print(f"{name:<14} {ours:>30} {original:>30}")


def side_by_side(prefix: str, original_dir) -> str:
    """Ours (left) and the original's (right), best_X above best_Xpm."""
    rows = []
    for suffix in ("best_X.jpg", "best_Xpm.jpg"):
        theirs_path = pathlib.Path(original_dir) / (PREFIX + suffix)
        ours, theirs = cv2.imread(prefix + suffix), cv2.imread(str(theirs_path))
        if theirs is None:
            raise DeepvisError(f"--original-dir: cannot read {theirs_path}")
        if ours is None:
            raise DeepvisError(f"cannot read our {prefix + suffix}")
        theirs = cv2.resize(theirs, ours.shape[1::-1], interpolation=cv2.INTER_AREA)
        rows.append(np.concatenate([ours, np.full((ours.shape[0], 4, 3), 255, np.uint8),
                                    theirs], axis=1))
    image = np.concatenate([rows[0], np.full((4, rows[0].shape[1], 3), 255, np.uint8), rows[1]])
    path = prefix + "side_by_side.jpg"
    save_image(path, cv2.cvtColor(image, cv2.COLOR_BGR2RGB), overwrite=True)
    return path


def run(args) -> int:
    model = open_reproduce_model(args)
    params = flamingo_params(args.max_iter)
    prefix = str(pathlib.Path(args.output_dir) / PREFIX)
    extra = [prefix + "side_by_side.jpg"] if args.original_dir else []
    refuse_existing(output_files(prefix) + extra, args.brave)
    space = pixel_space(model.preprocessing, model.input_shape[1:])
    results = optimize(model, [params], space, progress=not args.quiet, desc="flamingo")[0]
    save_results(prefix, params, results, space, brave=args.brave)
    print_table(comparison_rows(results), len(results.ii))
    print(f"wrote {prefix}best_X.jpg, {prefix}best_Xpm.jpg and {prefix}info.*")
    if args.original_dir:
        print(f"wrote {side_by_side(prefix, args.original_dir)}")
    return 0
