"""Optimizer speed on CaffeNet (seeded synthetic weights): one unit alone vs a batch of 16.

Run: python bench/bench_optimize.py [--iters 1000] [--numpy-iters 10] [--block 10] [--rounds 3]

Settings are the flamingo run's (fc8, decay 0.0001, blur 1.0 every 4, constant lr 100),
with the Caffe per-channel mean. Per backend:
- one unit's full run: --iters iterations on onnxruntime, --numpy-iters on NumPy (reported
  per iteration too);
- the batch comparison: --rounds rounds, each running one unit alone and then 16 units
  (fc8 0..15) as one batch for --block iterations; the best round of each gives the time
  per unit-iteration. Interleaving and taking the best round keeps other processes on
  the machine from favouring either side.
The raw forward+backward call is also timed at batch 1 and 16 (best of --repeat): the part
of an iteration that batching can amortize. The model is loaded as `deepvis optimize` loads
it (onnxruntime keeps its buffers between runs).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from bench.common import synthetic_caffenet  # noqa: E402
from deepvis import load_model  # noqa: E402
from deepvis.optimize import FindParams, optimize, pixel_space  # noqa: E402
from deepvis.optimize.params import resolve  # noqa: E402

CAFFE_MEAN_BGR = (104.0, 117.0, 123.0)


def flamingo(unit: int, iters: int) -> FindParams:
    return FindParams(**resolve({"push_layer": "fc8", "push_channel": unit, "max_iter": iters},
                                "flamingo"))


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_seconds(model, space, units, iters: int) -> float:
    return seconds(lambda: optimize(model, [flamingo(u, iters) for u in units], space,
                                    progress=False))


def raw_call_ms(model, repeat: int) -> dict[int, float]:
    """Best ms per unit of one forward+backward call at batch 1 and 16."""
    rng = np.random.default_rng(0)
    out = {}
    for batch in (1, 16):
        x = rng.normal(0, 10, (batch, 3, 227, 227)).astype(np.float32)
        seed = np.zeros((batch, 1000), np.float32)
        seed[:, 130] = 1
        model.forward_backward(x, "fc8", seed, "grad", ("fc8",))
        best = min(seconds(lambda: model.forward_backward(x, "fc8", seed, "grad", ("fc8",)))
                   for _ in range(repeat))
        out[batch] = best * 1000 / batch
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=1000, help="full single run, onnxruntime")
    parser.add_argument("--numpy-iters", type=int, default=10, help="full single run, NumPy")
    parser.add_argument("--block", type=int, default=10, help="iterations per timed block")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--repeat", type=int, default=3, help="raw call timings: repeats")
    parser.add_argument("--backends", default="ort,numpy")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "caffenet-synthetic.onnx")
        with open(path, "wb") as f:
            f.write(synthetic_caffenet().SerializeToString())
        rows, raws = [], {}
        for backend in args.backends.split(","):
            model = load_model(path, backend=backend, speed_over_memory=True)
            space = pixel_space(model.preprocessing, model.input_shape[1:], mean=CAFFE_MEAN_BGR)
            run_seconds(model, space, [130], 2)                       # warm up both shapes
            run_seconds(model, space, range(16), 2)
            iters = args.iters if backend == "ort" else args.numpy_iters
            full = run_seconds(model, space, [130], iters)
            alone, batch = [], []
            for _ in range(args.rounds):
                alone.append(run_seconds(model, space, [130], args.block) / args.block)
                batch.append(run_seconds(model, space, range(16), args.block) / (16 * args.block))
            rows.append((backend, iters, full, min(alone) * 1000, min(batch) * 1000))
            raws[backend] = raw_call_ms(model, args.repeat)
            print(f"{backend}: done", file=sys.stderr, flush=True)

    print(f"CaffeNet (synthetic weights), flamingo settings, {os.cpu_count()} CPU cores")
    print(f"{'backend':<8} {'full run':>14} {'ms/it':>7} | {'alone ms/it':>11} "
          f"{'batch16 ms/unit-it':>18} {'speedup':>8} {'1000 it/unit: alone, in 16':>27}")
    for backend, iters, full, alone, batch in rows:
        print(f"{backend:<8} {iters:>5} it {full:>5.0f} s {full / iters * 1000:>7.0f} | "
              f"{alone:>11.0f} {batch:>18.0f} {alone / batch:>7.2f}x "
              f"{alone:>14.0f} s, {batch:>6.0f} s")
    print("\nraw forward+backward call (data -> fc8 -> data), best ms per unit")
    print(f"{'backend':<8} {'batch 1':>9} {'batch 16':>9} {'speedup':>8}")
    for backend, ms in raws.items():
        print(f"{backend:<8} {ms[1]:>9.0f} {ms[16]:>9.0f} {ms[1] / ms[16]:>7.2f}x")


if __name__ == "__main__":
    main()
