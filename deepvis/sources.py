"""Turn the `deepvis_model` setting (or the original's Caffe settings) into an .onnx path.

Conversions (EfficientNet-Lite from its .pth, Caffe deploy + weights) happen once
and are cached under deepvis's cache folder, keyed by the content they came from.
"""
from __future__ import annotations

import hashlib
import pathlib
import re
import sys

from .errors import DeepvisError
from .resources import cache_dir

_LITE = re.compile(r"^efficientnet-lite([0-4])$")


def resolve_onnx(settings) -> pathlib.Path:
    source = settings.get("deepvis_model")
    if isinstance(source, dict) and "caffe" in source:
        caffe = source["caffe"]
        return cached_caffe_import(caffe["deploy"], caffe["weights"], caffe.get("mean"))
    if source is None and settings.get("caffevis_deploy_prototxt"):
        if settings.get("caffevis_caffe_root"):
            print("deepvis: caffevis_caffe_root is ignored (deepvis needs no Caffe)",
                  file=sys.stderr)
        return cached_caffe_import(settings["caffevis_deploy_prototxt"],
                                   settings["caffevis_network_weights"])
    if not isinstance(source, str):
        raise DeepvisError(f"deepvis_model must be a model name or an .onnx path, got {source!r}")
    lite = _LITE.match(source)
    if lite:
        from .zoo import cached_model
        return cached_model(int(lite.group(1)))
    if source.endswith(".onnx"):
        path = pathlib.Path(source)
        if not path.is_file():
            raise DeepvisError(f"model file {path} does not exist")
        return path
    from .fetch import catalog, fetched_onnx_path
    if source in catalog.MODELS:
        path = fetched_onnx_path(source)
        if path is None:
            raise DeepvisError(f"model {source!r} is not downloaded yet: run `deepvis fetch "
                               f"{source}` (or use the embedded efficientnet-lite0)")
        return path
    raise DeepvisError(f"unknown model {source!r}: give a bundled name ({', '.join(known_names())}),"
                       " an .onnx file or a settings file")


def known_names() -> list[str]:
    from .fetch import catalog
    return ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2", *catalog.MODELS]


def cached_caffe_import(deploy, weights, mean=None) -> pathlib.Path:
    """Import a Caffe model once; the cache key covers the deploy text and the weights' identity."""
    from .caffe.convert import import_caffe

    deploy, weights = pathlib.Path(deploy), pathlib.Path(weights)
    for path, what in ((deploy, "deploy prototxt"), (weights, "weights")):
        if not path.is_file():
            raise DeepvisError(f"Caffe {what} {path} does not exist")
    key = hashlib.sha256(deploy.read_bytes())
    stat = weights.stat()
    key.update(f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{mean}".encode())
    out = cache_dir() / "onnx" / f"{deploy.stem}-{key.hexdigest()[:12]}.onnx"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)   # a fresh cache has no onnx/ yet
        from .locks import shared_cache_entry        # one process converts, others wait
        with shared_cache_entry(out, "importing"):
            if not out.is_file():
                print(f"deepvis: importing {deploy.name} + {weights.name} to ONNX (once) ...",
                      file=sys.stderr)
                import_caffe(deploy, weights, mean_path=mean, out_path=out, overwrite=True)
    return out
