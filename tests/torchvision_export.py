"""Export torchvision classifiers and small CNNs of our own to ONNX, as a user would.

Shared by tests/test_torchvision_models.py, tests/data/make_own_models.py and
bench/bench_own_models.py. Needs torch and torchvision; importing this module raises
ImportError without them (tests importorskip it).
"""
from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import torch
from torch import nn


def torchvision_models():
    """torchvision.models; the C extension of some torchvision wheels fails to register its
    ops against a newer torch, which only the detection models need, so it is stubbed."""
    try:
        import torchvision.models as models
    except (RuntimeError, ImportError):
        for name in [n for n in sys.modules if n.startswith("torchvision")]:
            del sys.modules[name]
        sys.modules["torchvision._meta_registrations"] = types.ModuleType(
            "torchvision._meta_registrations")
        import torchvision.models as models
    return models


# name -> (constructor kwargs, input side, three module names whose outputs get compared)
TORCHVISION = {
    "resnet18": ({}, 64, ("layer1", "layer3", "fc")),
    "mobilenet_v2": ({}, 64, ("features.3", "features.14", "classifier")),
    "vgg11_bn": ({}, 224, ("features.6", "features.20", "classifier")),
    "googlenet": ({"aux_logits": False, "init_weights": True}, 64,
                  ("inception3a", "inception4c", "fc")),
    "densenet121": ({}, 64, ("features.denseblock1", "features.transition2", "classifier")),
    "efficientnet_b0": ({}, 64, ("features.2", "features.6", "classifier")),
    "convnext_tiny": ({}, 64, ("features.1", "features.5", "classifier")),
}


class GrayNet(nn.Module):
    """1 channel in: conv, batch norm, ReLU, max pooling, global average, linear."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(2, 3)))


class RGBANet(nn.Module):
    """4 channels in, with the activations of modern networks: SiLU, a squeeze-excitation
    gate (sigmoid), hard-swish, GELU, group norm."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.SiLU())
        self.squeeze = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 4, 1), nn.ReLU(),
                                     nn.Conv2d(4, 8, 1), nn.Sigmoid())
        self.mix = nn.Sequential(nn.Conv2d(8, 12, 3, padding=1), nn.GroupNorm(3, 12),
                                 nn.Hardswish(), nn.Conv2d(12, 12, 1), nn.GELU())
        self.head = nn.Linear(12, 7)

    def forward(self, x):
        x = self.stem(x)
        x = x * self.squeeze(x)
        x = self.mix(x)
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class WideNet(nn.Module):
    """A non-square input (H 32, W 64): conv, LeakyReLU, average pooling, a Reshape flatten
    (view with the batch size, as many hand-written models do), linear."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 6, 5, stride=2, padding=2), nn.LeakyReLU(0.1),
                                  nn.AvgPool2d(4), nn.Conv2d(6, 8, 3, padding=1), nn.Tanh())
        self.head = nn.Linear(8 * 4 * 8, 5)

    def forward(self, x):
        x = self.body(x)
        return self.head(x.view(x.shape[0], -1))


OWN = {"gray": (GrayNet, (1, 32, 32), ("body.2", "body.5", "head")),
       "rgba": (RGBANet, (4, 32, 32), ("stem", "mix.2", "head")),
       "wide": (WideNet, (3, 32, 64), ("body.1", "body.4", "head"))}


def build(name: str, seed: int = 0) -> tuple[nn.Module, tuple[int, int, int], tuple[str, ...]]:
    """(module in eval mode with random weights, input (C, H, W), modules to compare)."""
    torch.manual_seed(seed)
    if name in OWN:
        cls, chw, layers = OWN[name]
        module = cls()
    else:
        kwargs, side, layers = TORCHVISION[name]
        module = getattr(torchvision_models(), name)(weights=None, **kwargs)
        chw = (3, side, side)
    module.eval()
    if name in OWN:   # give batch norm statistics that are not the identity
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return module, chw, layers


def export(module: nn.Module, chw, path, dynamo: bool = False, opset: int = 17,
           dynamic_batch: bool = False, batch: int = 1) -> None:
    """torch.onnx.export with an input named `input` and an output named `logits`."""
    x = torch.randn(batch, *chw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(module, (x,), str(path), dynamo=True, opset_version=opset,
                              input_names=["input"], output_names=["logits"],
                              dynamic_shapes=({0: torch.export.Dim("N")},) if dynamic_batch
                              else None, external_data=False, verbose=False)
        else:
            torch.onnx.export(module, (x,), str(path), dynamo=False, opset_version=opset,
                              input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}
                              if dynamic_batch else None)


def module_outputs(module: nn.Module, x: np.ndarray, names) -> dict[str, np.ndarray]:
    """The outputs of the named submodules on input x (NumPy)."""
    _, outs = _hooked(module, torch.from_numpy(x), names)
    return {k: v.detach().numpy() for k, v in outs.items()}


def autograd_input_gradient(module: nn.Module, x: np.ndarray, name: str,
                            seed: np.ndarray) -> np.ndarray:
    """d sum(seed * output of module `name`) / d x, by torch autograd."""
    xt = torch.from_numpy(x).requires_grad_(True)
    _, outs = _hooked(module, xt, [name])
    (grad,) = torch.autograd.grad((outs[name] * torch.from_numpy(seed)).sum(), xt)
    return grad.numpy()


def matching_blob(model, x: np.ndarray, wanted: np.ndarray, after: str | None = None) -> str:
    """The last visible blob of the deepvis model whose value on x is `wanted` (an exporter
    names tensors as it likes, and folds batch norm into the convolution before it)."""
    blobs = model.forward(x)
    scale = float(np.abs(wanted).max()) or 1.0
    found = [name for name, value in blobs.items()
             if value.shape == wanted.shape and
             float(np.abs(value - wanted).max()) <= 1e-4 * scale]
    if not found:
        raise LookupError(f"no blob of shape {wanted.shape} matches the module output")
    return found[-1]


def _hooked(module, x, names):
    outs, handles = {}, []
    modules = dict(module.named_modules())
    for name in names:
        def keep(_, __, out, name=name):
            outs[name] = out
        handles.append(modules[name].register_forward_hook(keep))
    try:
        result = module(x)
    finally:
        for h in handles:
            h.remove()
    return result, outs
