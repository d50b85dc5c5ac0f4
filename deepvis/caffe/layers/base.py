"""What every layer converter provides, and the small helpers they share.

A converter is three pure functions of the layer and its bottom shapes (taken at
batch 1): the shapes of its parameter blobs (so weights can be checked and random
ones made), the shapes of its tops (so later layers, e.g. Caffe pooling pads, can
be computed without running anything), and the ONNX nodes it emits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ...errors import FormatError, UnsupportedError
from ...graph.builder import GraphBuilder
from ..net import Layer

Shape = tuple[int, ...]


@dataclass
class Site:
    """One layer at its place in the graph: where to read, where to write, its weights."""

    g: GraphBuilder
    layer: Layer
    inputs: list[str]            # tensor names of the bottoms (versions current at this layer)
    in_shapes: list[Shape]       # at batch 1
    outputs: list[str]           # tensor names the tops must be written to
    out_shapes: list[Shape]
    blobs: list[np.ndarray] = field(default_factory=list)  # in the shapes `blob_shapes` gave

    def tmp(self, what: str) -> str:
        """A fresh name for an intermediate tensor of this layer."""
        return self.g.unique(f"{self.layer.name}/{what}")

    def weight(self, array: np.ndarray, what: str) -> str:
        """A readable initializer name such as `conv1.weight`."""
        return self.g.initializer(np.asarray(array, dtype=np.float32), f"{self.layer.name}.{what}")


def _no_blobs(layer: Layer, in_shapes: list[Shape]) -> list[Shape]:
    return []


@dataclass(frozen=True)
class Converter:
    tops: Callable[[Layer, list[Shape]], list[Shape]]
    emit: Callable[[Site], None]
    blob_shapes: Callable[[Layer, list[Shape]], list[Shape]] = _no_blobs
    # Seeded stand-in weights: (layer, blob shapes, rng, input_std) -> arrays. `input_std` is
    # the typical magnitude of the layer's input (pixel scale when it reads the network input).
    random_blobs: Callable[..., list[np.ndarray]] | None = None


def same_shape(layer: Layer, in_shapes: list[Shape]) -> list[Shape]:
    """One top shaped like the first bottom."""
    return [in_shapes[0]]


def canonical_axis(axis: int, rank: int, layer: Layer) -> int:
    """Caffe's CanonicalAxisIndex: negative axes count from the end."""
    if not -rank <= axis < rank:
        raise FormatError(f"layer {layer.name!r} ({layer.type}): axis {axis} is out of range "
                          f"for a {rank}-D input")
    return axis % rank


def per_dim(param: dict, name: str, nd: int, default: int, layer: Layer) -> list[int]:
    """A repeated (or scalar) geometry field given once for all spatial dims or once per dim."""
    value = param.get(name, [])
    values = [int(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
    if not values:
        return [default] * nd
    if len(values) == 1:
        return values * nd
    if len(values) != nd:
        raise UnsupportedError(f"layer {layer.name!r} ({layer.type}): {name} has {len(values)} "
                               f"values for {nd} spatial dims")
    return values


def geometry(param: dict, nd: int, field_name: str, default: int, layer: Layer) -> list[int]:
    """Resolve `kernel_size` / `stride` / `pad` or their 2-D `_h` + `_w` pair (which wins)."""
    prefix = field_name.removesuffix("_size")
    h, w = f"{prefix}_h", f"{prefix}_w"
    if h in param or w in param:
        if nd != 2:
            raise UnsupportedError(f"layer {layer.name!r} ({layer.type}): {h}/{w} need a 2-D input")
        values = [int(param.get(h, default)), int(param.get(w, default))]
    else:
        values = per_dim(param, field_name, nd, default, layer)
    # Caffe's own CHECKs: strides are positive and pads are not negative.
    least = 1 if prefix == "stride" else 0
    if min(values, default=least) < least:
        raise FormatError(f"layer {layer.name!r} ({layer.type}): {field_name} {values} must be "
                          f"at least {least}")
    return values


def he_normal(rng: np.random.Generator, shape: Shape, fan_in: int, input_std: float) -> np.ndarray:
    """He-initialised weights that keep activations near unit scale after a ReLU."""
    weights = rng.standard_normal(shape, dtype=np.float32)
    weights *= np.float32(math.sqrt(2.0 / fan_in) / input_std)
    return weights


def small_bias(shape: Shape) -> np.ndarray:
    """A small positive bias so that random ReLU layers are never all dead."""
    return np.full(shape, 0.1, dtype=np.float32)
