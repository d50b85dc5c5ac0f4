"""Write tests/data/own_models/: tiny random CNNs with the ops of modern networks, exported
by torch.onnx.export (legacy exporter at opsets 13 and 17, the dynamo exporter at 18), each
with torch autograd's input gradients (computed in float64) for a few seeds, so that
deepvis's rules are checked against torch without torch installed
(tests/test_own_models_data.py).

    python tests/data/make_own_models.py        # needs torch; rewrites the folder

Every file is deterministic for a given torch version (seeded weights and inputs).
"""
from __future__ import annotations

import pathlib
import sys

import numpy as np
import torch
from torch import nn

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from tests.torchvision_export import autograd_input_gradient, export, module_outputs  # noqa: E402

OUT = HERE / "own_models"


class Gated(nn.Module):
    """SiLU, a squeeze-excitation gate with hard-sigmoid, group norm, GELU (erf),
    nearest upsampling, ELU, max pooling."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.SiLU())
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 4, 1), nn.ReLU(),
                                  nn.Conv2d(4, 8, 1), nn.Hardsigmoid())
        self.mix = nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.GroupNorm(2, 8),
                                 nn.GELU(), nn.Upsample(scale_factor=2, mode="nearest"),
                                 nn.Conv2d(8, 6, 3, padding=1), nn.ELU(), nn.MaxPool2d(2))
        self.head = nn.Linear(6 * 8 * 8, 5)

    def forward(self, x):
        x = self.stem(x)
        x = x * self.gate(x)
        x = self.mix(x)
        return self.head(torch.flatten(x, 1))


class Channels(nn.Module):
    """ConvNeXt's pattern (permute, layer norm over channels, linear, GELU, permute back),
    PReLU, hard-swish, hardtanh, tanh, ReLU6, LeakyReLU, global mean."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 4, stride=2), nn.PReLU(8))
        self.norm = nn.LayerNorm(8)
        self.mlp = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8))
        self.acts = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.Hardswish(),
                                  nn.Conv2d(8, 8, 1), nn.Hardtanh(-2, 2), nn.Conv2d(8, 8, 1),
                                  nn.Tanh(), nn.Conv2d(8, 8, 1), nn.ReLU6(),
                                  nn.Conv2d(8, 8, 1), nn.LeakyReLU(0.2))
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        x = self.stem(x)
        y = self.mlp(self.norm(x.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        x = self.acts(x + y)
        return self.head(x.mean(dim=(2, 3)))


class Smooth(nn.Module):
    """Instance norm, bilinear upsampling, a sigmoid gate, average pooling, concat."""

    def __init__(self):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(3, 6, 3, stride=2, padding=1),
                               nn.InstanceNorm2d(6, affine=True), nn.SiLU())
        self.b = nn.Sequential(nn.Conv2d(6, 6, 3, padding=1), nn.Sigmoid())
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.c = nn.Sequential(nn.Conv2d(12, 6, 3, stride=2, padding=1), nn.ReLU(),
                               nn.AvgPool2d(2))
        self.head = nn.Linear(6 * 4 * 4, 3)

    def forward(self, x):
        a = self.a(x)
        x = torch.cat([a, a * self.b(a)], dim=1)
        x = self.c(self.up(x))
        return self.head(torch.flatten(x, 1))


# name -> (class, modules whose outputs get a seed besides the logits)
MODELS = {"gated": (Gated, ("stem", "mix.3")),
          "channels": (Channels, ("stem", "acts.7")),
          "smooth": (Smooth, ("a", "c.1"))}
EXPORTS = {"legacy13": dict(opset=13), "legacy17": dict(opset=17, dynamic_batch=True),
           "dynamo18": dict(opset=18, dynamo=True)}
CHW = (3, 16, 16)


def main() -> None:
    import onnx

    from deepvis.model import load_model

    OUT.mkdir(exist_ok=True)
    for name, (cls, layers) in MODELS.items():
        torch.manual_seed(0)
        module = cls().eval()
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        rng = np.random.default_rng(0)
        x = rng.normal(0, 1, (2, *CHW)).astype(np.float32)
        for kind, options in EXPORTS.items():
            path = OUT / f"{name}-{kind}.onnx"
            export(module, CHW, path, **options)
            drop_stack_traces(path)
            onnx.checker.check_model(onnx.load(str(path)))
            model = load_model(path, backend="ort")
            outputs = module_outputs(module, x, layers)
            refs = {"input": x}
            for i, layer in enumerate((*layers, "logits")):
                if layer == "logits":
                    blob, wanted = "logits", module(torch.from_numpy(x)).detach().numpy()
                else:
                    wanted = outputs[layer]
                    blob = _matching(model, x, wanted)
                seed = rng.normal(0, 1, wanted.shape).astype(np.float32)
                module.double()   # the reference gradient in float64 (see the torch tests)
                x64, seed64 = x.astype(np.float64), seed.astype(np.float64)
                grad = (_logits_gradient(module, x64, seed64) if layer == "logits"
                        else autograd_input_gradient(module, x64, layer, seed64))
                module.float()
                grad = grad.astype(np.float32)
                refs.update({f"blob{i}": np.array(blob), f"seed{i}": seed, f"grad{i}": grad,
                             f"value{i}": wanted})
            np.savez_compressed(OUT / f"{name}-{kind}.npz", **refs)
            print(f"{path.name}: {path.stat().st_size} bytes, blobs "
                  f"{[str(refs[f'blob{i}']) for i in range(len(layers) + 1)]}")


def drop_stack_traces(path) -> None:
    """The dynamo exporter records each node's Python stack, with the paths of the machine
    that exported it; the committed files keep the rest of its metadata."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        kept = [p for p in node.metadata_props if p.key != "pkg.torch.onnx.stack_trace"]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)
    onnx.save(model, str(path))


def _matching(model, x, wanted) -> str:
    blobs = model.forward(x)
    scale = float(np.abs(wanted).max()) or 1.0
    found = [n for n, v in blobs.items()
             if v.shape == wanted.shape and float(np.abs(v - wanted).max()) <= 1e-4 * scale]
    if not found:
        raise LookupError("no blob matches")
    return found[-1]


def _logits_gradient(module, x, seed):
    xt = torch.from_numpy(x).requires_grad_(True)
    (grad,) = torch.autograd.grad((module(xt) * torch.from_numpy(seed)).sum(), xt)
    return grad.numpy()


if __name__ == "__main__":
    main()
