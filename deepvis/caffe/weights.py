"""Parameter blobs for a planned net: copied from a .caffemodel by layer name, as Caffe's
CopyTrainedLayersFrom does, or seeded random stand-ins for architecture inspection."""
from __future__ import annotations

import math
import zlib

import numpy as np

from ..errors import FormatError
from .net import Net
from .plan import Plan, Step, plan_net, where

# Typical spread of mean-subtracted 0..255 pixels: layers that read the network input
# divide their random weights by it so activations stay near unit scale.
PIXEL_STD = 64.0


def random_blobs(step: Step, seed: int) -> list[np.ndarray]:
    """Seeded stand-in blobs for one layer; they depend only on the seed and the layer name."""
    rng = np.random.default_rng([seed, zlib.crc32(step.layer.name.encode())])
    input_std = PIXEL_STD if step.reads_input else 1.0
    return step.converter.random_blobs(step.layer, step.blob_shapes, rng, input_std)


def random_weights(net: Net, seed: int) -> dict[str, list[np.ndarray]]:
    """Random blobs for every layer of `net` that has parameters (e.g. to write a test file)."""
    return {step.layer.name: random_blobs(step, seed) for step in plan_net(net).steps
            if step.blob_shapes}


def _fit(stored: np.ndarray, expected: tuple, layer: str, index: int, source: str) -> np.ndarray:
    """Accept the expected shape, or a legacy 4-D blob holding as many values."""
    if tuple(stored.shape) == tuple(expected):
        return stored.astype(np.float32, copy=False)
    if stored.ndim == 4 and stored.size == math.prod(expected):
        return stored.astype(np.float32, copy=False).reshape(expected)
    raise FormatError(f"{where(source)}layer {layer!r} blob {index} has shape "
                      f"{tuple(stored.shape)} but the deploy net expects {tuple(expected)}")


def gather_weights(plan: Plan, weights: Net | None,
                   random_seed: int | None = None) -> dict[str, list[np.ndarray]]:
    """layer name -> blobs in the shapes the converters expect."""
    source = weights.source if weights is not None else ""
    stored = {layer.name: layer.blobs for layer in weights.layers} if weights is not None else {}
    out = {}
    for step in plan.steps:
        name, expected = step.layer.name, step.blob_shapes
        blobs = stored.get(name) or []
        if blobs:
            if len(blobs) != len(expected):
                raise FormatError(f"{where(source)}layer {name!r} has {len(blobs)} blobs in the "
                                  f"weights file but the deploy layer ({step.layer.type}) "
                                  f"takes {len(expected)}")
            out[name] = [_fit(b, shape, name, i, source)
                         for i, (b, shape) in enumerate(zip(blobs, expected))]
        elif expected and random_seed is not None:
            out[name] = random_blobs(step, random_seed)
        elif expected:
            why = f"{source or 'the weights file'} has none for it" if weights is not None \
                else "no weights file was given"
            raise FormatError(f"layer {name!r} ({step.layer.type}) needs weights but {why}")
    return out
