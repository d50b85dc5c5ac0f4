"""Where the bundled `models/` and `settings/` folders and the user cache live."""
from __future__ import annotations

import os
import pathlib
import sys

_PACKAGE_ROOT = pathlib.Path(__file__).resolve().parent.parent


def _data_dir(name: str) -> pathlib.Path:
    # A source checkout or editable install keeps them beside the package; a wheel install
    # puts them under <prefix>/share/deepvis (setup.cfg data_files).
    for base in (_PACKAGE_ROOT, pathlib.Path(sys.prefix) / "share" / "deepvis"):
        if (base / name).is_dir():
            return base / name
    raise FileNotFoundError(f"deepvis data folder {name!r} not found; reinstall deepvis")


def models_dir() -> pathlib.Path:
    return _data_dir("models")


def settings_dir() -> pathlib.Path:
    return _data_dir("settings")


def cache_dir() -> pathlib.Path:
    """Converted models and downloads: $DEEPVIS_CACHE, else ~/.cache/deepvis."""
    root = os.environ.get("DEEPVIS_CACHE") or pathlib.Path.home() / ".cache" / "deepvis"
    path = pathlib.Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
