"""One gradient-ascent iteration (forward + backward from fc8 to data) on CaffeNet.

Run: python bench/bench_grad.py [--repeat 10]
Side by side in one process, same network and weights (seeded synthetic CaffeNet):
onnxruntime and the NumPy executor running deepvis's gradient graph, and torch autograd
when torch is installed. Also: peak RSS with every layer's gradient graph loaded, and the
arithmetic ceiling: the pass's multiply-adds against onnxruntime's own speed on one large
matrix product in the same process, i.e. the least time any batch size can take per image.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile

import numpy as np
import onnx

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from bench.common import interleaved_median_ms, synthetic_caffenet, torch_caffenet, weights_of  # noqa: E402
from deepvis.grad import GradCache  # noqa: E402
from deepvis.graph.info import GraphInfo  # noqa: E402

LAYERS = ("conv1", "pool1", "norm1", "conv2", "pool2", "norm2", "conv3", "conv4", "conv5",
          "pool5", "fc6", "fc7", "fc8", "prob")


def peak_rss_mb() -> float:
    """This process's high-water RSS (VmHWM; ru_maxrss would include the forking parent's)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def forward_macs(model: onnx.ModelProto) -> int:
    """Multiply-adds of one image's forward pass in its Conv and Gemm nodes. The backward to
    the input costs the same again: each input gradient is the same products transposed."""
    info, total = GraphInfo(model), 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            out = info.shape(node.output[0])
            weight = info.shape(node.input[1])
            total += int(np.prod(out[1:])) * int(np.prod(weight[1:]))
        elif node.op_type == "Gemm":
            total += int(np.prod(info.shape(node.input[1])))
    return total


def matmul_gflops(threads: int, n: int = 2048) -> float:
    """onnxruntime's speed on one large square MatMul: the best its kernels do on this CPU."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    spec = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n]) for name in "abc"]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "mm",
                              spec[:2], spec[2:])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(helper.make_model(graph).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    a = np.random.default_rng(0).random((n, n), np.float32)
    ms = interleaved_median_ms({"mm": lambda: session.run(None, {"a": a, "b": a})}, 6)["mm"]
    return 2 * n ** 3 / ms / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--rss", metavar="MODEL.onnx", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss:
        return measure_rss(args.rss)

    model = synthetic_caffenet()
    workdir = tempfile.mkdtemp(prefix="deepvis-bench-")
    cache = GradCache(model, workdir)
    # "ort" runs as the optimizer runs it (a dedicated session: packed weights, buffers kept);
    # "ort-lean" as the toolbox's many per-layer sessions do (see deepvis/grad/cache.py).
    runners = {"ort": cache.executor("fc8", "grad", backend="ort", threads=args.threads,
                                     lean=False),
               "ort-lean": cache.executor("fc8", "grad", backend="ort", threads=args.threads),
               "numpy": cache.executor("fc8", "grad", backend="numpy")}
    twin = torch_caffenet(weights_of(model))
    if twin:
        twin[0].set_num_threads(args.threads)

    print(f"CaffeNet forward + backward fc8 -> data, median of {args.repeat} runs, "
          f"{args.threads} threads")
    print(f"{'batch':>5} {'ort ms':>9} {'lean ms':>9} {'numpy ms':>9} {'torch ms':>9} "
          f"{'ort/torch':>10} {'numpy/torch':>12} {'ort img/s':>10}")
    rng = np.random.default_rng(0)
    per_image = {}
    for batch in (1, 16):
        x = rng.normal(0, 50, (batch, 3, 227, 227)).astype(np.float32)
        seed = np.zeros((batch, 1000), np.float32)
        seed[np.arange(batch), rng.integers(0, 1000, batch)] = 1.0
        feeds = {"data": x, "seed": seed}
        steps = {name: (lambda r=r: r.run(feeds, ["grad"])) for name, r in runners.items()}
        if twin:
            torch, forward = twin
            tx, tseed = torch.from_numpy(x), torch.from_numpy(seed)

            def step():
                xx = tx.clone().requires_grad_(True)
                (forward(xx, upto="fc8") * tseed).sum().backward()
                return xx.grad

            steps["torch"] = step
            ours = runners["ort"].run(feeds, ["grad"])["grad"]
            ref = step().numpy()
            # Relative L2, not max: a ReLU whose input sits within float noise of 0 may flip
            # between the two implementations and move a few pixels' gradients.
            err = np.linalg.norm(ours - ref) / np.linalg.norm(ref)
            assert err < 1e-2, f"torch autograd disagrees with the gradient graph ({err:.1e})"
        ms = interleaved_median_ms(steps, args.repeat)
        t = ms.get("torch", float("nan"))
        per_image[batch] = {k: v / batch for k, v in ms.items()}
        print(f"{batch:>5} {ms['ort']:>9.1f} {ms['ort-lean']:>9.1f} {ms['numpy']:>9.1f} {t:>9.1f} "
              f"{ms['ort'] / t:>10.2f} {ms['numpy'] / t:>12.2f} {1000 * batch / ms['ort']:>10.1f}")
    for name in per_image[1]:
        print(f"batch 16 per-image throughput vs batch 1, {name}: "
              f"{per_image[1][name] / per_image[16][name]:.2f}x")

    gflop = 4 * forward_macs(model) / 1e9  # forward + input gradient, 2 flops per multiply-add
    peak = matmul_gflops(args.threads)
    floor = gflop / peak * 1000
    print(f"arithmetic per image: {gflop:.2f} GFLOP; onnxruntime MatMul 2048^3 here: "
          f"{peak:.0f} GFLOPS, so no batch size can take less than {floor:.1f} ms per image")
    print(f"batch 16 runs at {gflop / per_image[16]['ort'] * 1000:.0f} GFLOPS; the most "
          f"batch 16 could give over this batch 1 is {per_image[1]['ort'] / floor:.2f}x")

    # Memory is measured in a fresh process, as a user would load the model.
    path = os.path.join(workdir, "caffenet.onnx")
    onnx.save(model, path)
    subprocess.run([sys.executable, __file__, "--rss", path], check=True)


def measure_rss(path: str) -> None:
    """Load the model, then run backward for every layer in grad and deconv mode: the toolbox's
    worst case, every gradient graph alive at once beside the forward session."""
    import deepvis

    os.environ["DEEPVIS_CACHE"] = os.path.dirname(path)
    model = deepvis.load_model(path, backend="ort")
    x = np.random.default_rng(0).normal(0, 50, (1, 3, 227, 227)).astype(np.float32)
    for layer in LAYERS:
        for mode in ("grad", "deconv"):
            model.backward(x, layer, np.ones(model.blob_shapes[layer], np.float32), mode)
    print(f"peak RSS, CaffeNet loaded with the gradient graphs of all {len(LAYERS)} layers in "
          f"grad and deconv mode ({2 * len(LAYERS)} sessions), each run once: "
          f"{peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
