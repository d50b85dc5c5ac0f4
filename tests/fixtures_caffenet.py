"""A full-size CaffeNet with seeded random weights, written as a real .caffemodel.

The weights are deepvis's seeded stand-ins (He-scaled, small positive biases, the
first layer scaled for 0..255 pixel input), so activations stay O(1) through the net
and no ReLU layer is dead. Files are reused when already present in `folder`, and a file
made earlier in the same test run is hard-linked (or copied) rather than made again: building
the 233 MB model takes seconds, reading it back is what each test checks.

    deploy, weights = write_synthetic_caffenet(tmp_path, seed=0, fmt="v1")
    onnx_path = synthetic_caffenet_onnx(tmp_path, seed=0)
"""
from __future__ import annotations

import os
import pathlib
import shutil

from deepvis.caffe.convert import import_caffe
from deepvis.caffe.parse import read_prototxt
from deepvis.caffe.weights import random_weights
from tests.caffe_writer import write_caffemodel

DEPLOY = pathlib.Path(__file__).resolve().parent.parent / "models" / "caffenet-yos" / \
    "deploy.prototxt"


_MADE: dict[str, pathlib.Path] = {}   # file name -> where this run first made it


def _reuse(path: pathlib.Path) -> bool:
    """Put an identical earlier file at `path`; False when there is none yet."""
    if path.exists():
        return True
    earlier = _MADE.get(path.name)
    if earlier is None or not earlier.exists():
        _MADE[path.name] = path
        return False
    try:
        os.link(earlier, path)
    except OSError:
        shutil.copyfile(earlier, path)
    return True


def write_synthetic_caffenet(folder, seed: int = 0, fmt: str = "v2"):
    """(deploy .prototxt, .caffemodel) paths. fmt "v1" writes V1 layers with legacy 4-D blob
    dims, as the 2014 BVLC files are; "v2" writes current `layer` records with BlobShape."""
    path = pathlib.Path(folder) / f"caffenet-synthetic-{seed}-{fmt}.caffemodel"
    if not _reuse(path):
        net = read_prototxt(DEPLOY)
        blobs = random_weights(net, seed)
        layers = [(layer.name, layer.type, blobs[layer.name])
                  for layer in net.layers if layer.name in blobs]
        write_caffemodel(path, layers, fmt=fmt, legacy_dims=fmt == "v1")
    return DEPLOY, path


def synthetic_caffenet_onnx(folder, seed: int = 0) -> pathlib.Path:
    """The synthetic CaffeNet imported to .onnx (from the V2 .caffemodel)."""
    out = pathlib.Path(folder) / f"caffenet-synthetic-{seed}.onnx"
    if not _reuse(out):
        deploy, weights = write_synthetic_caffenet(folder, seed)
        import_caffe(deploy, weights, out_path=out)
    return out
