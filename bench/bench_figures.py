"""The Figure 3 sheet on EfficientNet-Lite0: its total time, and what one unit-iteration
costs inside the sheet's batches against one unit optimized alone.

Run: python bench/bench_figures.py [--iters 10] [--rounds 3] [--batch-sizes 4,20] [--sheet]
                                   [--out DIR]

Side by side, in --rounds interleaved rounds (alone, batch, alone, batch, ...): one fc
unit (130, flamingo) alone for --iters iterations, and the first B default units as one
batch for each B of --batch-sizes (4 is what `deepvis figure3` runs by default; 20 is
the whole row at once), all with paper3 in the model's units; the median of each gives
the time per unit-iteration, and the ratio to alone is what batching saves or costs. With --sheet it then runs the whole sheet as a user would
(`deepvis figure3 efficientnet-lite0`: 20 units x 5 settings x 200 iterations, judged)
into --out and reports its wall time and its time per unit-iteration against the alone
figure. The model is loaded as the command loads it (onnxruntime keeps its buffers).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from deepvis.figures.runner import ModelRef, space_of  # noqa: E402
from deepvis.figures.units import LITE_CLASSES  # noqa: E402
from deepvis.optimize import FindParams, optimize  # noqa: E402
from deepvis.optimize.params import resolve  # noqa: E402

MODEL = "efficientnet-lite0"


def unit_params(units, iters: int, input_scale: float) -> list[FindParams]:
    values = resolve({"push_layer": "fc", "max_iter": iters}, "paper3", None, input_scale)
    return [FindParams(**dict(values, push_channel=u)) for u in units]


def seconds(model, params, space) -> float:
    start = time.perf_counter()
    optimize(model, params, space, progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=10, help="iterations per timed run")
    parser.add_argument("--batch-sizes", default="4,20", help="batch sizes to time")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sheet", action="store_true", help="also run the whole sheet")
    parser.add_argument("--out", help="folder for --sheet (default: a temporary one)")
    args = parser.parse_args()

    model = ModelRef(MODEL).load()
    space = space_of(model)
    scale = getattr(space, "input_scale", 1.0)
    runs = {1: unit_params([130], args.iters, scale)}
    for size in (int(b) for b in args.batch_sizes.split(",") if b.strip()):
        runs[size] = unit_params(LITE_CLASSES[:size], args.iters, scale)
    for size in runs:                                              # warm every batch size
        seconds(model, unit_params(LITE_CLASSES[:size], 2, scale), space)
    times = {size: [] for size in runs}
    for _ in range(args.rounds):
        for size, params in runs.items():
            times[size].append(seconds(model, params, space) / (args.iters * size))
    per = {size: statistics.median(t) * 1000 for size, t in times.items()}
    per_alone = per[1]
    print(f"{MODEL}, fc, paper3, {args.iters} iterations, median of {args.rounds} rounds")
    for size, ms in per.items():
        name = "one unit alone" if size == 1 else f"{size} units as one batch"
        print(f"  {name:<22} {ms:8.1f} ms per unit-iteration = {ms / per_alone:.2f} x alone "
              f"(rounds: {', '.join(f'{t * 1000:.1f}' for t in times[size])})")
    if not args.sheet:
        return
    from deepvis.cli import main as cli

    out = args.out or tempfile.mkdtemp(prefix="figure3-")
    before = done_cells(out)
    start = time.perf_counter()
    assert cli(["figure3", MODEL, "--out", out, "--quiet"]) == 0
    total = time.perf_counter() - start
    made = {k: v for k, v in done_cells(out).items() if k not in before}
    unit_iters = sum(made.values())
    per_sheet = total / max(1, unit_iters) * 1000
    print(f"  figure3 sheet (5 settings x {len(LITE_CLASSES)} units x 200 iterations, judged; "
          f"{len(made)} cells made in this run, {len(before)} found done): {total:.0f} s, "
          f"{unit_iters} unit-iterations, {per_sheet:.1f} ms per unit-iteration = "
          f"{per_sheet / per_alone:.2f} x alone; in {out}")


def done_cells(out) -> dict:
    """Cell records in a sheet folder: {name: iterations run}."""
    import json
    import pathlib

    return {p.name: json.loads(p.read_text())["iterations"]
            for p in sorted((pathlib.Path(out) / "units").glob("*.json"))}


if __name__ == "__main__":
    main()
