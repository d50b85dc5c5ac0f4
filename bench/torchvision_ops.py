"""Which ONNX ops torchvision's classification models export to, and whether deepvis covers them.

Exports each architecture (random weights, eval mode) with the legacy TorchScript exporter
(`dynamo=False`) and the dynamo exporter at the given opsets, lists the op types of every
graph, and checks each against the NumPy executor's kernels and the gradient rules. Ops that
only compute shapes (no path from the image) need no backward rule; the builder never asks.

    python bench/torchvision_ops.py --out tv-exports [--models resnet18,...] [--opsets 13,18]
                                    [--check-grad]

Exit status 1 when some op has no NumPy kernel or some differentiable op has no rule. With
--check-grad, each graph's plain gradient of a dense random seed at the logits is also
compared with torch autograd on both executors (error relative to the gradient's maximum).
In float32 a ReLU pre-activation within rounding of 0, or a max-pool window whose two best
values are within rounding of each other, can take the other side in torch than here (each
runtime sums in its own order) and move the gradient by far more than 1e-4 of its maximum;
--float64 shows the rules themselves are exact, on the NumPy executor.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import types
import warnings
from collections import defaultdict

MODELS = ("resnet18", "mobilenet_v2", "vgg11_bn", "googlenet", "densenet121",
          "efficientnet_b0", "convnext_tiny")
OPSETS = (13, 18)
EXPORTERS = ("legacy", "dynamo")
BACKENDS = ("ort", "numpy")


def torchvision_models():
    """torchvision.models without its C extension (its nms registration fails to load here)."""
    sys.modules.setdefault("torchvision._meta_registrations",
                           types.ModuleType("torchvision._meta_registrations"))
    import torchvision.models as models
    return models


def build(name: str, seed: int = 0):
    """An architecture with seeded random weights, in eval mode, its batch norms given
    non-trivial statistics (fresh ones are mean 0, var 1, a near-identity)."""
    import torch

    torch.manual_seed(seed)
    kwargs = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    net = getattr(torchvision_models(), name)(weights=None, **kwargs).eval()
    with torch.no_grad():
        for module in net.modules():
            if name == "googlenet" and isinstance(module, torch.nn.Conv2d):
                # its own init (std 0.01, made for training with batch norm) makes every map
                # nearly constant a few layers in: max pools then tie within rounding
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return net


def export(net, path, opset: int, exporter: str, size: int = 224, dynamic_batch: bool = False):
    """Write `net` as ONNX with one (N, 3, size, size) input named `data`."""
    import torch

    x = torch.zeros(1, 3, size, size, dtype=next(net.parameters()).dtype)
    path = pathlib.Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "legacy":
            axes = {"data": {0: "N"}} if dynamic_batch else None
            torch.onnx.export(net, (x,), str(path), opset_version=opset, dynamo=False,
                              input_names=["data"], output_names=["logits"],
                              dynamic_axes=axes)
        else:
            shapes = ({"x": {0: torch.export.Dim("N", min=1, max=1024)}}
                      if dynamic_batch else None)
            program = torch.onnx.export(net, (x,), dynamo=True, opset_version=opset,
                                        input_names=["data"], output_names=["logits"],
                                        dynamic_shapes=shapes, verbose=False)
            program.save(str(path))
    return path


def op_types(path) -> set[str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {(f"{n.domain}." if n.domain not in ("", "ai.onnx") else "") + n.op_type
            for n in model.graph.node}


def differentiable_ops(path) -> set[str]:
    """Op types on a path from the graph input (the only nodes a backward pass visits)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    reached = {model.graph.input[0].name}
    found = set()
    for node in model.graph.node:  # exporters write nodes in topological order
        if any(i in reached for i in node.input):
            found.add(node.op_type)
            reached.update(o for o in node.output if o)
    return found


def torch_gradient(net, x, seed):
    """d sum(seed * net(x)) / dx by torch autograd, as float64 NumPy."""
    import torch

    data = torch.from_numpy(x).requires_grad_(True)
    (net(data) * torch.from_numpy(seed)).sum().backward()
    return data.grad.numpy().astype("float64")


def deepvis_gradients(path, x, seed, backends=BACKENDS) -> dict:
    """The same gradient from deepvis's backward graph of the exported file, per executor."""
    import onnx

    from deepvis.exec import make_executor
    from deepvis.grad import build_grad_graph

    forward = onnx.load(str(path))
    graph = build_grad_graph(forward, forward.graph.output[0].name, "grad")
    feeds = {forward.graph.input[0].name: x, "seed": seed}
    return {b: make_executor(graph, b).run(feeds)["grad"].astype("float64") for b in backends}


def relative_error(actual, expected) -> float:
    import numpy as np
    return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-30))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for the exported graphs")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--opsets", default=",".join(map(str, OPSETS)))
    parser.add_argument("--exporters", default=",".join(EXPORTERS))
    parser.add_argument("--check-grad", action="store_true",
                        help="compare each graph's gradient with torch autograd")
    parser.add_argument("--float64", action="store_true",
                        help="export float64 networks and check on the NumPy executor only "
                             "(onnxruntime has no float64 Conv): no ReLU mask or max-pool "
                             "switch is then within rounding of flipping")
    args = parser.parse_args(argv)
    import numpy as np

    from deepvis.exec.numpy_ops import OPS
    from deepvis.grad.rules import RULES

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    where = defaultdict(set)  # op -> {model/exporter/opset}
    on_path = set()
    grad_failures = 0
    for name in args.models.split(","):
        net = build(name).double() if args.float64 else build(name)
        dtype, backends = (np.float64, ("numpy",)) if args.float64 else (np.float32, BACKENDS)
        for exporter in args.exporters.split(","):
            for opset in map(int, args.opsets.split(",")):
                suffix = "-f64" if args.float64 else ""
                path = out / f"{name}-{exporter}-{opset}{suffix}.onnx"
                if not path.exists():
                    try:
                        export(net, path, opset, exporter)
                    except Exception as exc:  # noqa: BLE001 - reported, the others go on
                        print(f"{path.name}: export failed: {type(exc).__name__}: {exc}")
                        continue
                for op in op_types(path):
                    where[op].add(f"{name}/{exporter}/{opset}")
                on_path |= differentiable_ops(path)
                print(f"{path.name}: {' '.join(sorted(op_types(path)))}", flush=True)
                if args.check_grad:
                    rng = np.random.default_rng(0)
                    x = rng.standard_normal((1, 3, 224, 224)).astype(dtype)
                    seed = rng.standard_normal((1, 1000)).astype(dtype)
                    expected = torch_gradient(net, x, seed)
                    errors = {b: relative_error(g, expected)
                              for b, g in deepvis_gradients(path, x, seed, backends).items()}
                    worst = max(errors.values())
                    grad_failures += worst > 1e-4
                    print("    gradient vs torch: " + ", ".join(
                        f"{b} {e:.2e}" for b, e in errors.items())
                        + ("" if worst <= 1e-4 else "  OVER 1e-4"), flush=True)
    missing = 0
    print(f"\n{'op':24} {'numpy':6} {'rule':10} graphs")
    for op in sorted(where):
        kernel = "yes" if op in OPS else "MISSING"
        rule = ("yes" if op in RULES else "MISSING") if op in on_path else "shape-only"
        missing += kernel == "MISSING" or rule == "MISSING"
        print(f"{op:24} {kernel:6} {rule:10} {len(where[op])}")
    print(f"\n{len(where)} op types, {missing} not covered")
    if args.check_grad:
        print(f"{grad_failures} graph(s) with a gradient more than 1e-4 off torch's")
    return 1 if missing or grad_failures else 0


if __name__ == "__main__":
    sys.exit(main())
