"""Do regularized images transfer? The Figure 3 sheet on EfficientNet-Lite0 (20 classes, each
setting), judged by networks that were not optimized against (Lite1, Lite2).

Run: python bench/bench_recognizability.py [--iters 200] [--out recognizability]

This is `deepvis figure3 efficientnet-lite0 --presets none,paper1,paper2,paper3,paper4,robust
--judges lite0,lite1,lite2`:
the 20 documented class units (deepvis/figures/units.py, the paper's classes first), rows
none, paper1..paper4 and robust, all as presets in Lite0's units (learning-rate parameters x128,
params.preset_values), seed 0, --iters iterations for every setting, batched. Each cell's
best_Xpm.jpg is written as `deepvis optimize` writes it and read back, so the judges see
the JPEG a user sees. Lite0 judging its own pictures gives its top-1; Lite1 (240 px) and
Lite2 (260 px) are the independent judges. The command resumes, so a rerun with the same
--out only judges and prints. The sheet is <out>/figure3.png.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from deepvis.cli import main as deepvis  # noqa: E402

JUDGES = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--presets", default="none,paper1,paper2,paper3,paper4,robust",
                        help="the rows (default: none,paper1,paper2,paper3,paper4,robust)")
    parser.add_argument("--out", default="recognizability")
    args = parser.parse_args()

    start = time.perf_counter()
    code = deepvis(["figure3", "efficientnet-lite0", "--presets", args.presets,
                    "--max-iter", str(args.iters), "--batch-size", str(args.batch_size),
                    "--judges", ",".join(JUDGES), "--out", args.out])
    if code:
        sys.exit(code)
    elapsed = time.perf_counter() - start
    with open(os.path.join(args.out, "figure3.json")) as f:
        summary = json.load(f)

    units = summary["tally"][summary["rows"][0]][JUDGES[1]]["units"]
    print(f"\n{units} ImageNet classes optimized at efficientnet-lite0 fc, {args.iters} "
          f"iterations, seed 0; judged on the saved best_Xpm.jpg ({elapsed:.0f} s, "
          "finished cells reused)")
    print(f"{'setting':<10} {'lite0 top-1':>11} {'lite1 top-1':>11} {'lite1 top-5':>11} "
          f"{'lite2 top-1':>11} {'lite2 top-5':>11}")
    for row in summary["rows"]:
        t = summary["tally"][row]
        c0, c1, c2 = (t[j] for j in JUDGES)
        print(f"{row:<10} {c0['top1'] / units:>11.0%} {c1['top1'] / units:>11.0%} "
              f"{c1['top5'] / units:>11.0%} {c2['top1'] / units:>11.0%} "
              f"{c2['top5'] / units:>11.0%}")
    for line in verdicts(summary["tally"], summary["rows"], units):
        print(line)
    print(f"sheet: {os.path.join(args.out, 'figure3.png')}")


def verdicts(tally: dict, rows: list, units: int) -> list[str]:
    """The issue's three targets, each with its numbers, where the rows they need ran."""
    def rate(row, judge, k):
        return tally[row][judge][f"top{k}"] / units
    lite1, lite2 = JUDGES[1], JUDGES[2]
    papers = [r for r in rows if r.startswith("paper")]
    if not papers:
        return []
    best = max(papers, key=lambda r: (rate(r, lite1, 5), rate(r, lite2, 5)))
    out = [f"best paper preset {best}: lite1 top-5 {rate(best, lite1, 5):.0%} (target >= 80%),"
           f" lite2 top-5 {rate(best, lite2, 5):.0%} (target >= 60%): "
           + ("met" if rate(best, lite1, 5) >= .8 and rate(best, lite2, 5) >= .6 else "NOT met")]
    if "none" in rows:
        for r in papers:
            ok = rate(r, lite1, 5) > rate("none", lite1, 5)
            out.append(f"{r} vs none, lite1 top-5: {rate(r, lite1, 5):.0%} vs "
                       f"{rate('none', lite1, 5):.0%}: {'beats' if ok else 'does NOT beat'}")
    for r in (r for r in rows if r not in papers and r != "none"):
        pairs = [(rate(r, j, k), rate(best, j, k)) for j in (lite1, lite2) for k in (1, 5)]
        ok = all(a >= b for a, b in pairs) and any(a > b for a, b in pairs[:2]) and \
            any(a > b for a, b in pairs[2:])
        shown = ", ".join(f"{a:.0%}/{b:.0%}" for a, b in pairs)
        out.append(f"{r} vs {best} (lite1 top-1, top-5, lite2 top-1, top-5): {shown}: "
                   f"{'beats it on both judges' if ok else 'does NOT beat it on both judges'}")
    return out


if __name__ == "__main__":
    main()
