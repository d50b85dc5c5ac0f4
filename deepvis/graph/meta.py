"""deepvis metadata carried inside ONNX models (``metadata_props``).

The forward graph records which tensors are the user-visible blobs (pycaffe's
``net.blobs``: values after in-place ReLU/Dropout) and, for each such blob, the
tensor where a backward seed enters (the layer's own output, below an in-place
ReLU). Keeping this in the .onnx file means a converted model is self-describing:
any later command can address layers by their Caffe names.
"""
from __future__ import annotations

import json

import onnx

BLOBS = "deepvis.blobs"          # JSON list: visible blob names in graph order, input first
SEEDS = "deepvis.seeds"          # JSON dict: blob -> tensor where a backward seed enters
PREPROCESS = "deepvis.preprocess"  # JSON dict: default preprocessing (see deepvis.preprocess)
SOURCE = "deepvis.source"        # free text: where the graph came from


def read(model: onnx.ModelProto) -> dict:
    props = {p.key: p.value for p in model.metadata_props}
    out = {"source": props.get(SOURCE, "")}
    for key, name, default in ((BLOBS, "blobs", None), (SEEDS, "seeds", {}),
                               (PREPROCESS, "preprocess", {})):
        out[name] = json.loads(props[key]) if key in props else default
    return out


def encode(blobs=None, seeds=None, preprocess=None, source=None) -> dict[str, str]:
    """Metadata dict for GraphBuilder.build()."""
    out = {}
    if blobs is not None:
        out[BLOBS] = json.dumps(list(blobs))
    if seeds:
        out[SEEDS] = json.dumps(dict(seeds))
    if preprocess:
        out[PREPROCESS] = json.dumps(preprocess)
    if source:
        out[SOURCE] = source
    return out


def write(model: onnx.ModelProto, **fields) -> None:
    """Set (replace) metadata entries on an existing model in place."""
    new = encode(**fields)
    keep = [p for p in model.metadata_props if p.key not in new]
    del model.metadata_props[:]
    for p in keep:
        model.metadata_props.add(key=p.key, value=p.value)
    for key, value in new.items():
        model.metadata_props.add(key=key, value=value)
