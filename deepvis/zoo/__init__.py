"""Bundled models: converted once from their packaged weights, then read from a cache.

The cache file name carries a hash of the weights and of the converter version,
so a new weight package or a changed converter gives a new file instead of a
stale one.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import tempfile

import onnx

from . import efficientnet_lite


def cache_dir() -> pathlib.Path:
    """`$DEEPVIS_CACHE`, else ~/.cache/deepvis."""
    root = os.environ.get("DEEPVIS_CACHE")
    return pathlib.Path(root) if root else pathlib.Path.home() / ".cache" / "deepvis"


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
        _write_atomically(efficientnet_lite.build(variant), target)
    return target


def _write_atomically(model: onnx.ModelProto, target: pathlib.Path) -> None:
    """Readers never see a partial file: write a sibling temp file, then rename it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(model.SerializeToString())
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
