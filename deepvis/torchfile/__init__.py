"""Read torch state dicts (.pth) into NumPy arrays without torch and without
trusting the pickle inside: see `restricted` for what the unpickler accepts."""
from __future__ import annotations

import collections
import pathlib

from .legacy import ZIP_MAGIC, load_legacy
from .zipformat import load_zip

__all__ = ["load", "load_legacy", "load_zip"]


def load(path) -> collections.OrderedDict:
    """State dict of a torch file in either the legacy or the zip format."""
    with open(pathlib.Path(path), "rb") as f:
        is_zip = f.read(4) == ZIP_MAGIC
    return load_zip(path) if is_zip else load_legacy(path)
