"""Forward milliseconds for CaffeNet at batch 1 and 16: onnxruntime, NumPy, and torch.

Run: python bench/bench_forward.py [--repeat 10]
All three run the same network and weights (seeded synthetic CaffeNet) in one process,
so the ratios are comparable; medians of --repeat runs after two warm-up runs.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from bench.common import median_ms, synthetic_caffenet, torch_caffenet, weights_of  # noqa: E402
from deepvis.exec import make_executor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()

    model = synthetic_caffenet()
    runners = {"ort": make_executor(model, "ort", threads=args.threads),
               "numpy": make_executor(model, "numpy")}
    twin = torch_caffenet(weights_of(model))
    if twin:
        twin[0].set_num_threads(args.threads)
    print(f"CaffeNet forward (data -> prob), median of {args.repeat} runs, "
          f"{args.threads} threads, milliseconds")
    print(f"{'batch':>5} {'ort':>9} {'numpy':>9} {'torch':>9} {'numpy/ort':>10} {'ort/torch':>10}")
    rng = np.random.default_rng(0)
    for batch in (1, 16):
        x = rng.normal(0, 50, (batch, 3, 227, 227)).astype(np.float32)
        ms = {name: median_ms(lambda r=r: r.run({"data": x}, ["prob"]), args.repeat)
              for name, r in runners.items()}
        if twin:
            torch, forward = twin
            tx = torch.from_numpy(x)
            with torch.inference_mode():
                ms["torch"] = median_ms(lambda: forward(tx), args.repeat)
                got = forward(tx).numpy()
            ref = runners["ort"].run({"data": x}, ["prob"])["prob"]
            assert np.abs(got - ref).max() < 1e-4, "torch twin disagrees with the ONNX graph"
        torch_ms = ms.get("torch", float("nan"))
        print(f"{batch:>5} {ms['ort']:>9.1f} {ms['numpy']:>9.1f} {torch_ms:>9.1f} "
              f"{ms['numpy'] / ms['ort']:>10.2f} {ms['ort'] / torch_ms:>10.2f}")


if __name__ == "__main__":
    main()
