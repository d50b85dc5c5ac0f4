"""Where a gradient step's time goes: onnxruntime's profiler, summed per op type.

Run: python bench/profile_grad.py [--models convnext_tiny,efficientnet_b0] [--batch 16]
                                  [--runs 3] [--top 15]
Exports each torchvision model as bench_own_models does, builds the same dedicated gradient
session (logits to input, speed_over_memory) with profiling on, and prints the op types that
took most of the time over `runs` timed runs (one untimed warm-up run is left out).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def profile(model, batch: int, runs: int) -> dict[str, float]:
    """{op type: total ms per run} for the model's logits-to-input gradient session."""
    import onnxruntime as ort

    from deepvis.exec.ort import session_options

    graphs = model._graphs
    path = graphs.path("logits", "grad")
    options = session_options()
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "grad")
    for name, value in graphs._ort_initializers(path).items():
        options.add_initializer(name, value)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {model.input_name: rng.normal(0, 1, (batch, *model.input_shape[1:])).astype("f4"),
             "seed": rng.normal(0, 1, (batch, 1000)).astype("f4")}
    for _ in range(runs + 1):
        session.run(["grad"], feeds)
    with open(session.end_profiling()) as f:
        events = json.load(f)
    per_run = [e for e in events if e.get("name") == "model_run"]
    first_end = per_run[0]["ts"] + per_run[0]["dur"]  # the warm-up run is not counted
    totals = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") \
                and event["ts"] > first_end:
            totals[event["args"]["op_name"]] += event["dur"] / 1000 / runs
    totals["(whole run)"] = sum(e["dur"] for e in per_run[1:]) / 1000 / runs
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="convnext_tiny,efficientnet_b0")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()

    from deepvis.model import load_model
    from tests.torchvision_export import build, export

    os.environ.setdefault("DEEPVIS_CACHE", tempfile.mkdtemp(prefix="deepvis-profile-"))
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            module, _, _ = build(name)
            path = os.path.join(tmp, f"{name}.onnx")
            export(module, (3, args.size, args.size), path, dynamic_batch=True)
            model = load_model(path, backend="ort", speed_over_memory=True)
            totals = profile(model, args.batch, args.runs)
            whole = totals.pop("(whole run)")
            print(f"\n{name} batch {args.batch}: {whole:.1f} ms per run; "
                  f"kernels {sum(totals.values()):.1f} ms")
            for op, ms in totals.most_common(args.top):
                print(f"  {op:<24} {ms:8.1f} ms  {100 * ms / whole:5.1f}%")


if __name__ == "__main__":
    main()
