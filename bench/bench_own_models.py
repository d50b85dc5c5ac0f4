"""One gradient step (forward + backward from the logits to the input) on torchvision
architectures exported by torch.onnx.export: deepvis against torch autograd, same weights.

Run: python bench/bench_own_models.py [--models resnet18,efficientnet_b0,convnext_tiny]
                                      [--batches 1,16] [--repeat 6] [--size 224] [--threads 2]
Needs torch and torchvision. Each model is exported once (random weights, dynamic batch);
deepvis runs it on onnxruntime with the optimizer's dedicated sessions (a batch in slices over
the cores; with --serial, also whole on one session) and, with --numpy, on the NumPy
executor; torch runs the module itself in eval mode. Times are medians of interleaved
blocks (bench.common), so a drift in machine load falls on every runner alike.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from bench.common import interleaved_median_ms  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="resnet18,efficientnet_b0,convnext_tiny")
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--repeat", type=int, default=6)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--numpy", action="store_true", help="also time the NumPy executor")
    parser.add_argument("--serial", action="store_true",
                        help="also time onnxruntime running the batch whole, not in slices "
                             "over the cores (exec/parallel.py)")
    args = parser.parse_args()

    import torch

    from deepvis.model import load_model
    from tests.torchvision_export import build, export

    torch.set_num_threads(args.threads)
    os.environ.setdefault("DEEPVIS_CACHE", tempfile.mkdtemp(prefix="deepvis-bench-"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            module, _, _ = build(name)
            chw = (3, args.size, args.size)
            path = os.path.join(tmp, f"{name}.onnx")
            export(module, chw, path, dynamic_batch=True)
            runners = {"ort": load_model(path, backend="ort", speed_over_memory=True)}
            if args.serial:
                runners["ort whole"] = load_model(path, backend="ort", speed_over_memory=True)
                runners["ort whole"].split_batches = False
            if args.numpy:
                runners["numpy"] = load_model(path, backend="numpy")
            for batch in (int(b) for b in args.batches.split(",")):
                rng = np.random.default_rng(0)
                x = rng.normal(0, 1, (batch, *chw)).astype(np.float32)
                seed = rng.normal(0, 1, (batch, 1000)).astype(np.float32)
                xt, seedt = torch.from_numpy(x), torch.from_numpy(seed)

                def torch_step():
                    inp = xt.clone().requires_grad_(True)
                    (grad,) = torch.autograd.grad((module(inp) * seedt).sum(), inp)
                    return grad

                fns = {}
                module.double()   # the correctness reference: torch in float64
                x64 = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
                (want,) = torch.autograd.grad((module(x64) * seedt.double()).sum(), x64)
                want = want.numpy()
                module.float()
                # random deep nets at 224 px are ill-conditioned: float32 torch itself differs
                # from float64 by percents, so a deepvis error is judged against that
                own = np.abs(torch_step().numpy() - want).max() / np.abs(want).max()
                for k, m in runners.items():
                    try:
                        got = m.backward(x, "logits", seed, "grad")
                    except Exception as exc:  # report it, time the others
                        print(f"{name:>16} batch {batch:>2}: {k} failed: "
                              f"{str(exc).splitlines()[0][:160]}", flush=True)
                        continue
                    error = np.abs(got - want).max() / np.abs(want).max()
                    if error > 1e-4:  # timed anyway, and said
                        print(f"{name:>16} batch {batch:>2}: {k}'s gradient differs from torch's "
                              f"(float64) by {error:.1e} of its maximum; torch's own float32 "
                              f"gradient by {own:.1e}", flush=True)
                    fns[k] = lambda m=m: m.backward(x, "logits", seed, "grad")
                fns["torch"] = torch_step
                times = interleaved_median_ms(fns, args.repeat)
                rows.append((name, batch, times))
                print(f"{name:>16} batch {batch:>2}: " + ", ".join(
                    f"{k} {v:8.1f} ms" for k, v in times.items()), flush=True)
    print(f"\nload average during the run: {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores; torch threads {args.threads}")
    print("| model | batch | deepvis (onnxruntime) | torch autograd | deepvis / torch |")
    print("|---|---:|---:|---:|---:|")
    for name, batch, t in rows:
        ort = f"{t['ort']:.1f} ms" if "ort" in t else "failed"
        ratio = f"{t['ort'] / t['torch']:.2f}" if "ort" in t else "-"
        print(f"| {name} | {batch} | {ort} | {t['torch']:.1f} ms | {ratio} |")


if __name__ == "__main__":
    main()
