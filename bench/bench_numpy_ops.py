"""NumPy executor vs onnxruntime on a CaffeNet-shaped forward graph and its gradient graphs,
with a per-op-type breakdown of where the NumPy time goes.

Run: python bench/bench_numpy_ops.py [--batch 16] [--repeat 5] [--target conv5] [--breakdown]
Single-threaded: OPENBLAS_NUM_THREADS=1 python bench/bench_numpy_ops.py --threads 1 --cpu-time
Weights are random (the graph is built here with GraphBuilder), so no download is needed.
Times are the best of 3 * --repeat runs, ORT and NumPy alternating in blocks of 3, so
background load on a shared machine disturbs both alike. Gradient graphs come from
deepvis.grad; their "max rel err" can reach 1e-2 on some inputs, where float32 rounding flips
a max-pool argmax between two near-equal values (the gradient is discontinuous there).
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from deepvis.exec import make_executor, numpy_exec  # noqa: E402
from deepvis.grad import build_grad_graph  # noqa: E402
from deepvis.graph import meta  # noqa: E402
from deepvis.graph.builder import GraphBuilder  # noqa: E402

# name, out channels, kernel, stride, pad, group; then pool after?, LRN after?
_CONVS = [("conv1", 96, 11, 4, 0, 1, True, True), ("conv2", 256, 5, 1, 2, 2, True, True),
          ("conv3", 384, 3, 1, 1, 1, False, False), ("conv4", 384, 3, 1, 1, 2, False, False),
          ("conv5", 256, 3, 1, 1, 2, True, False)]


def caffenet_like(seed: int = 0):
    """CaffeNet's layer shapes with random weights, in deepvis's forward-graph conventions."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder("caffenet-like")
    x = g.input("data", ["N", 3, 227, 227])
    blobs, seeds, channels = ["data"], {}, 3

    def visible(pre, name):
        seeds[name] = pre
        blobs.append(name)
        return g.node("Relu", [pre], [name])

    for name, out, k, s, p, group, pool, lrn in _CONVS:
        w = g.initializer((rng.standard_normal((out, channels // group, k, k)) * 0.01)
                          .astype(np.float32), f"{name}.weight")
        b = g.initializer(np.zeros(out, np.float32), f"{name}.bias")
        x = visible(g.node("Conv", [x, w, b], [f"{name}/pre"], strides=[s, s], pads=[p] * 4,
                           group=group), name)
        channels = out
        if pool:
            x = g.node("MaxPool", [x], [f"pool{name[-1]}"], kernel_shape=[3, 3], strides=[2, 2])
            blobs.append(x)
        if lrn:
            x = g.node("LRN", [x], [f"norm{name[-1]}"], size=5, alpha=1e-4, beta=0.75, bias=1.0)
            blobs.append(x)
    x = g.node("Flatten", [x], ["pool5/flat"], axis=1)
    for name, out, inputs in (("fc6", 4096, 9216), ("fc7", 4096, 4096), ("fc8", 1000, 4096)):
        w = g.initializer((rng.standard_normal((out, inputs)) * 0.01).astype(np.float32),
                          f"{name}.weight")
        b = g.initializer(np.zeros(out, np.float32), f"{name}.bias")
        x = g.node("Gemm", [x, w, b], [f"{name}/pre" if name != "fc8" else name], transB=1)
        if name != "fc8":
            x = visible(x, name)
        else:
            blobs.append(x)
    blobs.append(g.node("Softmax", [x], ["prob"], axis=1))
    g.output("data", shape=["N", 3, 227, 227])
    for blob in blobs[1:]:
        g.output(blob)
    return g.build(meta.encode(blobs=blobs, seeds=seeds))


CLOCK = time.perf_counter


def best_ms(run, repeat):
    times = []
    for _ in range(repeat):
        start = CLOCK()
        run()
        times.append((CLOCK() - start) * 1000)
    return min(times)


def profile(executor, feeds, repeat):
    """Milliseconds per op type (best of `repeat` runs), by timing each kernel call."""
    runs = []
    original = numpy_exec._execute

    def timed(step, args):
        start = CLOCK()
        result = original(step, args)
        runs[-1][step.op_type] += CLOCK() - start
        return result

    numpy_exec._execute = timed
    try:
        for _ in range(repeat):
            runs.append(collections.Counter())
            executor.run(feeds)
    finally:
        numpy_exec._execute = original
    best = {op: min(run[op] for run in runs) * 1000 for op in runs[0]}
    return dict(sorted(best.items(), key=lambda kv: -kv[1]))


def compare(label, model, feeds, repeat, breakdown, threads):
    ort_exec = make_executor(model, "ort", threads=threads)
    np_exec = make_executor(model, "numpy")
    for executor in (ort_exec, np_exec):
        executor.run(feeds)
    t_ort = t_np = float("inf")
    # Alternating blocks of 3: a backend's first run after a switch may compete with the
    # other's still-spinning worker threads; the best of the block does not.
    for _ in range(repeat):
        t_ort = min(t_ort, best_ms(lambda: ort_exec.run(feeds), 3))
        t_np = min(t_np, best_ms(lambda: np_exec.run(feeds), 3))
    ours, theirs = np_exec.run(feeds), ort_exec.run(feeds)
    error = max(float(np.abs(ours[k] - theirs[k]).max() / max(np.abs(theirs[k]).max(), 1e-30))
                for k in theirs)
    print(f"{label:28s} ort {t_ort:8.1f} ms   numpy {t_np:8.1f} ms   ratio {t_np / t_ort:5.2f}"
          f"   max rel err {error:.1e}")
    if breakdown:
        for op, ms in profile(np_exec, feeds, repeat).items():
            print(f"    {op:20s} {ms:8.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--target", action="append",
                        help="gradient target blob(s) (default: conv5 and fc8)")
    parser.add_argument("--mode", default="grad", help="grad, deconv or guided")
    parser.add_argument("--breakdown", action="store_true", help="per-op-type NumPy times")
    parser.add_argument("--threads", type=int, help="onnxruntime intra-op threads (match "
                        "OPENBLAS_NUM_THREADS for NumPy; both default to all cores)")
    parser.add_argument("--cpu-time", action="store_true", help="measure process CPU time, "
                        "not wall time: robust to a busy machine, meaningful single-threaded")
    args = parser.parse_args()
    global CLOCK
    if args.cpu_time:
        CLOCK = time.process_time

    rng = np.random.default_rng(1)
    forward = caffenet_like()
    data = rng.standard_normal((args.batch, 3, 227, 227)).astype(np.float32)
    compare(f"forward b{args.batch}", forward, {"data": data}, args.repeat, args.breakdown,
            args.threads)

    shapes = {k: v.shape for k, v in make_executor(forward, "numpy").run({"data": data}).items()}
    for target in args.target or ["conv5", "fc8"]:
        grad = build_grad_graph(forward, target, args.mode)
        seed = rng.standard_normal(shapes[target]).astype(np.float32)
        compare(f"{args.mode} {target} b{args.batch}", grad, {"data": data, "seed": seed},
                args.repeat, args.breakdown, args.threads)


if __name__ == "__main__":
    main()
