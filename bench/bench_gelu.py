"""Where ConvNeXt's gradient step loses to torch: the step, and its GELUs alone, both ways.

Run: python bench/bench_gelu.py [--batch 16] [--repeat 9] [--threads 2]

Needs torch and torchvision. convnext_tiny (random weights, dynamic batch) takes one
gradient step from the logits to the input, on deepvis's optimizer sessions and on torch
autograd, as bench_own_models.py does. Then the same work restricted to its 18 GELUs: for
each stage, a chain of as many GELUs as it has blocks (3, 3, 9, 3), on a tensor of the shape
of its MLP's hidden layer (batch x 4C x H x W), forward and backward: exported by torch and
run by deepvis, and run by torch autograd (its fused gelu and gelu_backward kernels). The
last line replaces deepvis's GELU time in its step by torch's: if that step is no slower
than torch's, the whole gap is the GELU. Times are medians of interleaved blocks
(bench.common).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from bench.common import interleaved_median_ms  # noqa: E402

# convnext_tiny's stages: (hidden channels 4C, side, blocks)
STAGES = ((384, 56, 3), (768, 28, 3), (1536, 14, 9), (3072, 7, 3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from deepvis.model import load_model
    from tests.torchvision_export import build, export

    torch.set_num_threads(args.threads)
    os.environ.setdefault("DEEPVIS_CACHE", tempfile.mkdtemp(prefix="deepvis-bench-"))
    rng = np.random.default_rng(0)
    fns = {}
    with tempfile.TemporaryDirectory() as tmp:
        module, _, _ = build("convnext_tiny")
        chw = (3, 224, 224)     # the stage shapes above are those of 224 px
        path = os.path.join(tmp, "convnext_tiny.onnx")
        export(module, chw, path, dynamic_batch=True)
        model = load_model(path, backend="ort", speed_over_memory=True)
        x = rng.normal(0, 1, (args.batch, *chw)).astype(np.float32)
        seed = rng.normal(0, 1, (args.batch, 1000)).astype(np.float32)
        fns["step deepvis"] = lambda: model.backward(x, "logits", seed, "grad")
        fns["step torch"] = _torch_step(module, x, seed)

        for channels, side, blocks in STAGES:
            chain = torch.nn.Sequential(*(torch.nn.GELU() for _ in range(blocks))).eval()
            shape = (args.batch, channels, side, side)
            h = rng.normal(0, 1, shape).astype(np.float32)
            dy = rng.normal(0, 1, shape).astype(np.float32)
            stage = os.path.join(tmp, f"gelu{channels}.onnx")
            export(chain, shape[1:], stage, dynamic_batch=True)
            alone = load_model(stage, backend="ort", speed_over_memory=True)
            want = _torch_input_grad(chain, h, dy)
            got = alone.backward(h, "logits", dy, "grad")
            assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max(), "GELU derivative"
            fns[f"gelu {channels} deepvis"] = (
                lambda m=alone, h=h, dy=dy: m.backward(h, "logits", dy, "grad"))
            fns[f"gelu {channels} torch"] = (
                lambda c=chain, h=h, dy=dy: _torch_input_grad(c, h, dy))

        times = interleaved_median_ms(fns, args.repeat)

    gelu_ms = {who: sum(times[f"gelu {c} {who}"] for c, _, _ in STAGES)
               for who in ("deepvis", "torch")}
    step = {who: times[f"step {who}"] for who in ("deepvis", "torch")}
    print(f"convnext_tiny, batch {args.batch}, torch threads {args.threads}, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| | deepvis (onnxruntime) | torch autograd | deepvis / torch |")
    print("|---|---:|---:|---:|")
    for channels, side, blocks in STAGES:
        d, t = times[f"gelu {channels} deepvis"], times[f"gelu {channels} torch"]
        print(f"| {blocks} GELUs, {channels} x {side} x {side} | {d:.1f} ms | {t:.1f} ms "
              f"| {d / t:.2f} |")
    print(f"| the 18 GELUs | {gelu_ms['deepvis']:.0f} ms | {gelu_ms['torch']:.0f} ms "
          f"| {gelu_ms['deepvis'] / gelu_ms['torch']:.2f} |")
    print(f"| the gradient step | {step['deepvis']:.0f} ms | {step['torch']:.0f} ms "
          f"| {step['deepvis'] / step['torch']:.2f} |")
    rest = step["deepvis"] - gelu_ms["deepvis"]
    print(f"| the step without its GELUs | {rest:.0f} ms | "
          f"{step['torch'] - gelu_ms['torch']:.0f} ms "
          f"| {rest / (step['torch'] - gelu_ms['torch']):.2f} |")
    swapped = rest + gelu_ms["torch"]
    print(f"\ndeepvis's step with torch's GELU time: {swapped:.0f} ms = "
          f"{swapped / step['torch']:.2f}x torch's step")


def _torch_step(module, x, seed):
    import torch

    xt, seedt = torch.from_numpy(x), torch.from_numpy(seed)

    def step():
        inp = xt.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad((module(inp) * seedt).sum(), inp)
        return grad
    return step


def _torch_input_grad(module, h: np.ndarray, dy: np.ndarray) -> np.ndarray:
    import torch

    inp = torch.from_numpy(h).requires_grad_(True)
    (grad,) = torch.autograd.grad(module(inp), inp, torch.from_numpy(dy))
    return grad.numpy()


if __name__ == "__main__":
    main()
