"""Bundled models: converted once from their packaged weights, then read from a cache.

The cache file name carries a hash of the weights and of the converter version,
so a new weight package or a changed converter gives a new file instead of a
stale one.
"""
from __future__ import annotations

import hashlib
import pathlib

from ..fileio import write_bytes
from ..locks import shared_cache_entry
from ..resources import cache_dir
from . import efficientnet_lite


def cached_model(variant: int = 0) -> pathlib.Path:
    """Path of the EfficientNet-Lite<variant> .onnx, converting it on first use."""
    weights = efficientnet_lite.weights_path(variant)
    digest = hashlib.sha256()
    with open(weights, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    digest.update(efficientnet_lite.CONVERTER_VERSION.encode())
    target = cache_dir() / "onnx" / f"efficientnet-lite{variant}-{digest.hexdigest()[:12]}.onnx"
    if not target.is_file():
        with shared_cache_entry(target, "converting"):    # one process converts, others wait
            if not target.is_file():
                write_bytes(target, efficientnet_lite.build(variant).SerializeToString(),
                            overwrite=True)
    return target
