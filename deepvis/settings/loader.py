"""Merge defaults, model template and user file; check keys; resolve paths."""
from __future__ import annotations

import difflib
import functools
import pathlib

import yaml

from ..errors import DeepvisError, FormatError
from ..resources import cache_dir, models_dir, settings_dir
from .pyfile import MAX_SETTINGS_BYTES, read_py_settings
from .schema import Bad, rules_from_defaults

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
    """A YAML (.yaml/.yml) or Python (settings_local.py style) settings file, checked against
    the schema in defaults.yaml, paths resolved."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FormatError(f"settings file {path} does not exist")
    if path.suffix == ".py":
        values = read_py_settings(path)
        root = original_root(path)
    else:
        values = _read_yaml(path)
        root = path.parent
    values = check_values(values, path)
    return {key: _resolve(key, value, path.parent, root) for key, value in values.items()}


def _read_yaml(path: pathlib.Path) -> dict:
    data = read_limited(path)
    try:
        values = yaml.safe_load(data.decode("utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except yaml.YAMLError as exc:
        raise FormatError(f"{path}: not valid YAML: {exc}") from None
    except (ValueError, OverflowError, RecursionError, MemoryError) as exc:
        raise FormatError(f"{path}: a value YAML cannot read: {exc.__class__.__name__}: "
                          f"{str(exc)[:200]}") from None
    if not isinstance(values, dict):
        raise FormatError(f"{path}: expected a mapping of setting names to values")
    return values


def check_values(values: dict, path) -> dict:
    """Every known key's value against its rule; the error names file, key, value and rule.
    Unknown keys are left for load_settings to name."""
    rules = schema_rules()
    out = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise DeepvisError(f"{path}: setting names are words, not {key!r}")
        rule = rules.get(key)
        if rule is None:
            out[key] = value
            continue
        try:
            out[key] = rule.check(value)
        except Bad as exc:
            raise DeepvisError(f"{path}: setting {key} = {_show(value)} is not allowed: {exc}; "
                               f"allowed: {rule.text}") from None
    return out


def check_combined(merged: dict, path) -> None:
    """Rules between keys, on the merged settings."""
    for kind in ("indiv", "gamma"):
        choices = merged.get(f"caffevis_boost_{kind}_choices") or []
        index = merged.get(f"caffevis_boost_{kind}_default_idx", 0)
        if not choices or not 0 <= index < len(choices):
            raise DeepvisError(f"{path}: caffevis_boost_{kind}_default_idx = {index} must index "
                               f"caffevis_boost_{kind}_choices ({len(choices)} choices)")


def read_limited(path: pathlib.Path, limit: int = MAX_SETTINGS_BYTES) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise FormatError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise FormatError(f"{path}: larger than {limit // 1024} KiB; not a settings file")
    return data


@functools.lru_cache(maxsize=1)
def schema_rules() -> dict:
    return rules_from_defaults((settings_dir() / "defaults.yaml").read_text(encoding="utf-8"))


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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
    check_combined(merged, path or f"the settings of {name}")
    if merged.get("caffevis_deploy_prototxt") and not merged.get("caffevis_network_weights"):
        raise DeepvisError(f"{path}: caffevis_network_weights is required with "
                           "caffevis_deploy_prototxt (the .caffemodel to load)")
    return merged
