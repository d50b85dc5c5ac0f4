"""Merge defaults, model template and user file; check keys; resolve paths."""
from __future__ import annotations

import difflib
import pathlib

import yaml

from ..errors import DeepvisError, FormatError
from ..resources import cache_dir, models_dir, settings_dir
from .pyfile import read_py_settings

DVT_ROOT = "%DVT_ROOT%"
DEEPVIS_CACHE = "%DEEPVIS_CACHE%"   # deepvis's cache folder, where `deepvis fetch` puts files
# Settings whose string values are file paths, resolved against the file that sets them.
PATH_KEYS = ("caffevis_deploy_prototxt", "caffevis_network_weights", "caffevis_data_mean",
             "caffevis_labels", "caffevis_unit_jpg_dir")


class Settings(dict):
    """A dict of settings with attribute access; an unknown name suggests the closest key.

    `explicit` holds the keys a model template or the user set (not just defaulted).
    """

    explicit: frozenset = frozenset()

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(unknown_key_message(key, self)) from None


def unknown_key_message(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown setting {key!r}{hint}"


def read_settings_file(path) -> dict:
    """A YAML (.yaml/.yml) or Python (settings_local.py style) settings file, paths resolved."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FormatError(f"settings file {path} does not exist")
    if path.suffix == ".py":
        values = read_py_settings(path)
        root = original_root(path)
    else:
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise FormatError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(values, dict):
            raise FormatError(f"{path}: expected a mapping of setting names to values")
        root = path.parent
    return {key: _resolve(key, value, path.parent, root) for key, value in values.items()}


def original_root(path: pathlib.Path) -> pathlib.Path:
    """What %DVT_ROOT% means in a settings_local.py: the original toolbox checkout that holds
    the file (the nearest folder up with run_toolbox.py), else deepvis's own root."""
    for folder in path.resolve().parents:
        if (folder / "run_toolbox.py").is_file():
            return folder
    return models_dir().parent


def _resolve(key, value, base: pathlib.Path, root: pathlib.Path):
    if key == "deepvis_model" and isinstance(value, str) and value.endswith(".onnx"):
        return str((base / value).resolve())
    if key not in PATH_KEYS or not isinstance(value, str) or value == "imagenet-1k":
        return value
    value = value.replace(DVT_ROOT, str(root))
    if DEEPVIS_CACHE in value:
        value = value.replace(DEEPVIS_CACHE, str(cache_dir()))
    return str((base / value).resolve()) if not pathlib.Path(value).is_absolute() else value


def defaults() -> dict:
    return yaml.safe_load((settings_dir() / "defaults.yaml").read_text(encoding="utf-8"))


def model_template(name: str) -> dict | None:
    path = models_dir() / name / "settings.yaml"
    return read_settings_file(path) if path.is_file() else None


def load_settings(path=None, model: str | None = None) -> Settings:
    """Defaults <- template of the model (bundled name) <- the user's file.

    `model` (a bundled name or an .onnx path) overrides the file's `deepvis_model`.
    """
    base = defaults()
    user = read_settings_file(path) if path else {}
    for key in user:
        if key not in base:
            raise DeepvisError(f"{path}: {unknown_key_message(key, base)}")
    name = model or user.get("deepvis_model")
    template = model_template(name) if isinstance(name, str) else None
    merged = Settings(base)
    merged.update(template or {})
    merged.update(user)
    if model:
        merged["deepvis_model"] = model
    merged.explicit = frozenset(template or {}) | frozenset(user)
    if merged.get("caffevis_deploy_prototxt") and not merged.get("caffevis_network_weights"):
        raise DeepvisError(f"{path}: caffevis_network_weights is required with "
                           "caffevis_deploy_prototxt (the .caffemodel to load)")
    return merged
