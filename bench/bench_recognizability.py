"""Do regularized images transfer better? Optimize 20 ImageNet classes on EfficientNet-Lite0,
then ask Lite1 and Lite2 what they see.

Run: python bench/bench_recognizability.py [--iters 40] [--out recognizability.png]

The paper's claim: regularization makes optimized images more recognizable, so they should
be recognized by other networks too. For each setting (no regularization, paper1..paper4)
the 20 classes run as one batch on lite0's `fc` units for --iters iterations (the same
count for every setting, overriding the presets' 500..1000; seed 0). The image kept is the
best one (best_xx plus the mean, the pixels the network saw). Reported: top-1 rate on lite0
itself, and top-5 rates on lite1 (240x240) and lite2 (260x260) after a bilinear resize.
"none" is plain gradient ascent with paper3's learning rate (constant 100); "paper2x" is
paper2 with a 100x learning rate (10000), since lite0's pixel gradients are too small for
paper2's lr 100 to leave the mean image against its 30% decay per step.
The montage shows every image as best_Xpm.jpg does (min-max stretched), one row per
setting.
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
from deepvis.optimize import FindParams, optimize, pixel_space  # noqa: E402
from deepvis.optimize.params import resolve  # noqa: E402
from deepvis.optimize.results import image_xpm  # noqa: E402
from deepvis.preprocess import rgb_to_input  # noqa: E402

CLASSES = (1, 9, 130, 144, 291, 309, 323, 340, 388, 417, 430, 471, 508, 574, 779, 817, 879,
           948, 954, 985)
SETTINGS = {"none": dict(decay=0.0, lr_policy="constant", lr_params={"lr": 100.0}),
            "paper1": "paper1", "paper2": "paper2", "paper3": "paper3", "paper4": "paper4",
            "paper2x": ("paper2", {"lr_params": {"lr": 10000.0}})}
TILE = 112


def settings_params(setting, iters: int) -> list[FindParams]:
    explicit = {"push_layer": "fc", "max_iter": iters}
    if isinstance(setting, dict):
        values = resolve(dict(explicit, **setting))
    elif isinstance(setting, tuple):
        values = resolve(dict(explicit, **setting[1]), setting[0])
    else:
        values = resolve(explicit, setting)
    return [FindParams(**dict(values, push_channel=c)) for c in CLASSES]


def top_k_hits(model, rgb_images: list[np.ndarray], k: int) -> int:
    x = np.concatenate([rgb_to_input(image, model.preprocessing) for image in rgb_images])
    probs = model.forward(x, ["prob"])["prob"].reshape(len(rgb_images), -1)
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return sum(int(c in row) for c, row in zip(CLASSES, top))


def labelled_row(name: str, tiles: list[np.ndarray]) -> np.ndarray:
    row = np.concatenate(tiles, axis=1)
    margin = np.full((TILE, 84, 3), 255, np.uint8)
    cv2.putText(margin, name, (4, TILE // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                cv2.LINE_AA)
    return np.concatenate([margin, row], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--out", default="recognizability.png")
    args = parser.parse_args()

    lite0 = load_model("efficientnet-lite0")
    judges = {"lite1": load_model("efficientnet-lite1"), "lite2": load_model("efficientnet-lite2")}
    space = pixel_space(lite0.preprocessing, lite0.input_shape[1:])
    rows, table = [], []
    for name, setting in SETTINGS.items():
        params = settings_params(setting, args.iters)
        start = time.perf_counter()
        results = []
        for i in range(0, len(params), args.batch_size):
            results += optimize(lite0, params[i:i + args.batch_size], space, progress=False)
        elapsed = time.perf_counter() - start
        pixels = [np.clip(space.rgb(r.best_xx) + space.mean_rgb(), 0, 255) for r in results]
        hits0 = top_k_hits(lite0, pixels, 1)
        hits = {j: top_k_hits(m, pixels, 5) for j, m in judges.items()}
        table.append((name, hits0, hits["lite1"], hits["lite2"], elapsed))
        print(f"{name}: lite0 top-1 {hits0}/20, lite1 top-5 {hits['lite1']}/20, lite2 top-5 "
              f"{hits['lite2']}/20 ({elapsed:.0f} s)", flush=True)
        tiles = [cv2.resize(image_xpm(r.best_xx, space), (TILE, TILE),
                            interpolation=cv2.INTER_AREA) for r in results]
        rows.append(labelled_row(name, tiles))
    save_image(args.out, np.concatenate(rows), overwrite=True)

    print(f"\n20 ImageNet classes optimized on efficientnet-lite0, {args.iters} iterations each, "
          "seed 0")
    print(f"{'setting':<8} {'lite0 top-1':>12} {'lite1 top-5':>12} {'lite2 top-5':>12} "
          f"{'seconds':>8}")
    for name, h0, h1, h2, elapsed in table:
        print(f"{name:<8} {h0 / 20:>12.0%} {h1 / 20:>12.0%} {h2 / 20:>12.0%} {elapsed:>8.0f}")
    print(f"montage: {args.out} (rows: {', '.join(SETTINGS)}; columns: classes "
          f"{', '.join(map(str, CLASSES))})")


if __name__ == "__main__":
    main()
