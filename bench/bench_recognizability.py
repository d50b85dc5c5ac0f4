"""Do regularized images transfer? Optimize 20 ImageNet classes on EfficientNet-Lite0 with
each setting, then ask networks that were not optimized against (Lite1, Lite2) what the
saved pictures show.

Run: python bench/bench_recognizability.py [--iters 200] [--out-dir recognizability]

For each setting the 20 classes' `fc` units run as one batch (seed 0, --iters iterations
for every setting, overriding the presets' 200..1000). Each unit's `best_Xpm.jpg` is
written exactly as `deepvis optimize` writes it and read back: the judges see the JPEG a
user sees. Reported: Lite0's own top-1, and top-1 / top-5 of Lite1 (240 px) and Lite2
(260 px). Settings: `none` (plain ascent at paper3's step), paper1..paper4 and `robust`,
all as presets in Lite0's units (step sizes x128, params.preset_values), and
`paper3-literal`, paper3 with the paper's lr of 100 taken literally (the behaviour before
presets were converted to the model's units).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from deepvis import load_model  # noqa: E402
from deepvis.fileio import save_image  # noqa: E402
from deepvis.judges import Judge, judge, load_judge, output_blob, tally  # noqa: E402
from deepvis.optimize import FindParams, optimize, pixel_space, save_results  # noqa: E402
from deepvis.optimize.params import resolve  # noqa: E402

# 20 ImageNet classes: animals, objects, scenes; fixed so runs compare.
CLASSES = (1, 9, 130, 144, 291, 309, 323, 340, 388, 417, 430, 471, 508, 574, 779, 817, 879,
           948, 954, 985)
SETTINGS = {"none": ("none", None), "paper1": ("paper1", None), "paper2": ("paper2", None),
            "paper3": ("paper3", None), "paper4": ("paper4", None),
            "robust": ("robust", None), "paper3-literal": ("paper3", {"lr": 100.0})}
TILE = 112


def unit_params(setting: str, iters: int, input_scale: float) -> list[FindParams]:
    preset, literal_lr = SETTINGS[setting]
    values = resolve({"push_layer": "fc", "max_iter": iters, "lr_params": literal_lr}, preset,
                     input_scale=input_scale)
    return [FindParams(**dict(values, push_channel=c)) for c in CLASSES]


def saved_pictures(model, space, params, batch: int, out_dir: str) -> tuple[list, float]:
    """Optimize, write each unit's files, read each best_Xpm.jpg back as RGB uint8."""
    start = time.perf_counter()
    results = []
    for i in range(0, len(params), batch):
        results += optimize(model, params[i:i + batch], space, progress=True,
                            desc=os.path.basename(out_dir))
    elapsed = time.perf_counter() - start
    pictures = []
    for p, r in zip(params, results):
        prefix = os.path.join(out_dir, f"fc_{p.push_channel:04d}_")
        save_results(prefix, p, r, space, brave=True, skipbig=True)
        pictures.append(cv2.cvtColor(cv2.imread(prefix + "best_Xpm.jpg"), cv2.COLOR_BGR2RGB))
    return pictures, elapsed


def labelled_row(name: str, pictures: list[np.ndarray]) -> np.ndarray:
    tiles = [cv2.resize(p, (TILE, TILE), interpolation=cv2.INTER_AREA) for p in pictures]
    margin = np.full((TILE, 112, 3), 255, np.uint8)
    cv2.putText(margin, name, (4, TILE // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                cv2.LINE_AA)
    return np.concatenate([margin, *tiles], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--settings", default=",".join(SETTINGS),
                        help=f"comma-separated subset of {', '.join(SETTINGS)}")
    parser.add_argument("--out-dir", default="recognizability")
    args = parser.parse_args()

    lite0 = load_model("efficientnet-lite0", speed_over_memory=True)
    self_judge = Judge("efficientnet-lite0", lite0, output_blob(lite0))
    judges = [load_judge("efficientnet-lite1"), load_judge("efficientnet-lite2")]
    space = pixel_space(lite0.preprocessing, lite0.input_shape[1:])
    rows, table = [], []
    for name in args.settings.split(","):
        params = unit_params(name, args.iters, space.input_scale)
        pictures, elapsed = saved_pictures(lite0, space, params, args.batch_size,
                                           os.path.join(args.out_dir, name))
        counts = tally(judge(pictures, CLASSES, judges=[self_judge, *judges]))
        table.append((name, counts, elapsed))
        c0, c1, c2 = (counts[j.name] for j in (self_judge, *judges))
        print(f"{name}: lite0 top-1 {c0['top1']}/20; lite1 top-1 {c1['top1']}, top-5 "
              f"{c1['top5']}; lite2 top-1 {c2['top1']}, top-5 {c2['top5']} ({elapsed:.0f} s)",
              flush=True)
        rows.append(labelled_row(name, pictures))
    montage = os.path.join(args.out_dir, "recognizability.jpg")
    save_image(montage, np.concatenate(rows), overwrite=True)

    n = len(CLASSES)
    print(f"\n{n} ImageNet classes optimized at efficientnet-lite0 fc, {args.iters} iterations, "
          f"seed 0; judged on the saved best_Xpm.jpg")
    print(f"{'setting':<15} {'lite0 top-1':>11} {'lite1 top-1':>11} {'lite1 top-5':>11} "
          f"{'lite2 top-1':>11} {'lite2 top-5':>11} {'seconds':>8}")
    for name, counts, elapsed in table:
        c0, c1, c2 = (counts[j.name] for j in (self_judge, *judges))
        print(f"{name:<15} {c0['top1'] / n:>11.0%} {c1['top1'] / n:>11.0%} "
              f"{c1['top5'] / n:>11.0%} {c2['top1'] / n:>11.0%} {c2['top5'] / n:>11.0%} "
              f"{elapsed:>8.0f}")
    print(f"montage: {montage} (rows: {args.settings}; columns: classes "
          f"{', '.join(map(str, CLASSES))})")


if __name__ == "__main__":
    main()
