"""One model end to end: download its files into the cache, unpack, convert to ONNX once.

Everything lands under `<cache>/models/<name>/` (cache = $DEEPVIS_CACHE or
~/.cache/deepvis), so users' checkouts stay clean and every command finds the
converted model by name through `fetched_onnx_path`.
"""
from __future__ import annotations

import pathlib

import onnx

from ..errors import DeepvisError
from ..fileio import atomic_path
from ..graph import meta
from ..locks import shared_cache_entry
from ..resources import cache_dir, models_dir
from .catalog import ModelEntry, RemoteFile
from .download import RETRIES, TIMEOUT_S, DownloadError, Say, ensure_file, to_stderr
from .unpack import safe_extract
from .urls import candidate_urls

UNIT_JPG_DIR = "unit_jpg_vis"


def model_dir(name: str) -> pathlib.Path:
    return cache_dir() / "models" / name


def onnx_path(name: str) -> pathlib.Path:
    return model_dir(name) / f"{name}.onnx"


def fetched_onnx_path(name: str) -> pathlib.Path | None:
    """The converted model `deepvis fetch NAME` made, or None before that."""
    path = onnx_path(name)
    return path if path.is_file() else None


def fetch_model(entry: ModelEntry, *, mirror: str | None = None, convert: bool = True,
                timeout: float = TIMEOUT_S, retries: int = RETRIES,
                progress: bool | None = None, say: Say = to_stderr) -> pathlib.Path | None:
    """Download, verify and unpack every file of `entry`; return the .onnx path if converting."""
    if entry.warning:
        say(f"warning: {entry.warning}")
    folder = model_dir(entry.name)
    for remote in entry.files:
        _fetch_file(entry, remote, folder, mirror, timeout, retries, progress, say)
    return convert_model(entry, say=say) if convert else None


def _fetch_file(entry, remote: RemoteFile, folder, mirror, timeout, retries, progress, say):
    unit_jpgs = folder / UNIT_JPG_DIR
    if remote.unpack_sentinel and (unit_jpgs / remote.unpack_sentinel).exists():
        say(f"{remote.name}: already unpacked in {unit_jpgs}")
        return
    try:
        path = ensure_file(candidate_urls(remote, mirror), folder / remote.name, remote.expected,
                           rerun=f"`deepvis fetch {entry.name}`", timeout=timeout,
                           retries=retries, progress=progress, say=say)
    except DownloadError as exc:
        raise DownloadError(f"{exc}\n{entry.warning}" if entry.warning else str(exc)) from None
    if remote.unpack_sentinel:
        with shared_cache_entry(unit_jpgs, "unpacking into", say=say):
            if (unit_jpgs / remote.unpack_sentinel).exists():
                return
            say(f"{remote.name}: unpacking into {unit_jpgs}")
            safe_extract(path, unit_jpgs)
        if not (unit_jpgs / remote.unpack_sentinel).exists():
            say(f"warning: {remote.name} did not contain {remote.unpack_sentinel}; the per-unit "
                "images may be missing or laid out differently")


def convert_model(entry: ModelEntry, say: Say = to_stderr) -> pathlib.Path:
    """Import the fetched Caffe files to `<name>.onnx`, unless it is newer than all of them."""
    with shared_cache_entry(onnx_path(entry.name), "converting", say=say):
        return _convert(entry, say)


def _convert(entry: ModelEntry, say: Say) -> pathlib.Path:
    folder = model_dir(entry.name)
    deploy = models_dir() / entry.deploy
    weights = folder / entry.weights.name
    mean = folder / entry.mean.name if entry.mean else None
    inputs = [p for p in (deploy, weights, mean) if p is not None]
    for path in inputs:
        if not path.is_file():
            raise DeepvisError(f"cannot convert {entry.name}: {path} is missing")
    out = onnx_path(entry.name)
    if out.is_file() and out.stat().st_mtime_ns >= max(p.stat().st_mtime_ns for p in inputs):
        say(f"{out.name}: already converted")
        return out
    from ..caffe.convert import import_caffe
    say(f"{entry.name}: converting {deploy.name} + {weights.name} to ONNX ...")
    if entry.mean_values is None:
        import_caffe(deploy, weights, mean, out, overwrite=True)
        return out
    # A per-channel mean has no file to import: record it in the graph so the .onnx alone
    # preprocesses correctly.
    model = import_caffe(deploy, weights)
    preprocess = dict(meta.read(model)["preprocess"], mean=list(entry.mean_values),
                      mean_file=None)
    meta.write(model, preprocess=preprocess)
    with atomic_path(out, overwrite=True) as tmp:
        onnx.save(model, str(tmp))
    return out
