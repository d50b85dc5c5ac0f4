"""A parsed Caffe deploy net (plus weights) -> a self-describing ONNX forward graph.

The graph's input is the Caffe input blob (shape ['N', C, H, W]); every visible Caffe
blob is a graph output under its Caffe name, listed in `deepvis.blobs`; rewritten
blobs record their seed tensor in `deepvis.seeds` (see `plan`). Preprocessing defaults
are Caffe's (BGR channel order, pixel scale), recorded in `deepvis.preprocess`.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx

from ..errors import DeepvisError
from ..fileio import check_destination, write_bytes
from ..graph import meta
from ..graph.builder import GraphBuilder
from .layers.base import Site
from .mean import load_mean
from .net import Net
from .parse import read_caffemodel, read_prototxt
from .plan import plan_net
from .weights import gather_weights


def _default_preprocess(input_shape) -> dict:
    return {"channel_swap": [2, 1, 0], "mean": None, "mean_file": None, "scale": 1.0,
            "input_size": [int(n) for n in input_shape[2:4]] if len(input_shape) >= 4 else None,
            "stretch": False}


def _visible_shapes(deploy: Net, plan) -> dict[str, list]:
    """Visible blob shapes with the batch dim symbolic: the dims that change when the net is
    planned at batch 2 follow the batch ('N' when it is dim 0 itself)."""
    try:
        other = plan_net(deploy, batch=2)
    except DeepvisError:       # a net that only works at batch 1 (e.g. a Reshape fixing it)
        return {blob: list(plan.shapes[blob]) for blob in plan.blobs}
    return {blob: [d if d == e else ("N" if (i, d, e) == (0, 1, 2) else None)
                   for i, (d, e) in enumerate(zip(plan.shapes[blob], other.shapes[blob]))]
            for blob in plan.blobs}


def net_to_onnx(deploy: Net, weights: Net | None, *, random_weights_seed: int | None = None,
                preprocess: dict | None = None) -> onnx.ModelProto:
    """Build the forward graph. Layers missing from `weights` get seeded random blobs when
    `random_weights_seed` is given, otherwise they are an error."""
    plan = plan_net(deploy)
    blobs = gather_weights(plan, weights, random_weights_seed)
    g = GraphBuilder(deploy.name or "caffe")
    for name, shape in plan.inputs:
        g.input(name, ["N", *shape[1:]])
    for step in plan.steps:
        for tensor in step.outputs:
            g.reserve(tensor)
    for step in plan.steps:
        step.converter.emit(Site(g, step.layer, step.inputs, step.in_shapes, step.outputs,
                                 step.out_shapes, blobs.get(step.layer.name, [])))
    for blob, shape in _visible_shapes(deploy, plan).items():
        g.output(blob, shape=shape)
    settings = {**_default_preprocess(plan.inputs[0][1]), **(preprocess or {})}
    files = [Path(n.source).name for n in (deploy, weights) if n is not None and n.source]
    source = "caffe: " + " + ".join(files)
    if random_weights_seed is not None:
        source += f" (seeded random weights where none were given, seed {random_weights_seed})"
    return g.build(meta.encode(blobs=plan.blobs, seeds=plan.seeds, preprocess=settings,
                               source=source))


def mean_sidecar_path(out_path) -> Path:
    """The mean image's place next to the model: `model.onnx` -> `model.mean.npy`."""
    return Path(out_path).with_suffix(".mean.npy")


def import_caffe(prototxt_path, caffemodel_path, mean_path=None, out_path=None, *,
                 overwrite: bool = False) -> onnx.ModelProto:
    """Read a deploy .prototxt and its .caffemodel and convert them; with `out_path`, write the
    .onnx (and, with a mean, the centre-cropped mean as a `.mean.npy` sidecar)."""
    out = Path(out_path) if out_path is not None else None
    if mean_path is not None and out is None:
        raise ValueError("a mean file is saved as a sidecar of the .onnx: give out_path too")
    sidecar = mean_sidecar_path(out) if mean_path is not None else None
    if out is not None and not out.parent.is_dir():
        raise DeepvisError(f"cannot write {out}: folder {out.parent} does not exist")
    if out is not None:
        check_destination(out, overwrite)
    if sidecar is not None:
        # a sidecar without its .onnx is the orphan of a failed run: this run's to replace
        check_destination(sidecar, overwrite or not out.exists())
    deploy = read_prototxt(prototxt_path)
    weights = read_caffemodel(caffemodel_path)
    preprocess, mean = {}, None
    if mean_path is not None:
        mean = load_mean(mean_path, plan_net(deploy).inputs[0][1][2:4])
        preprocess["mean_file"] = sidecar.name
    model = net_to_onnx(deploy, weights, preprocess=preprocess)
    if out is not None:
        if mean is not None:
            buffer = io.BytesIO()
            np.save(buffer, mean, allow_pickle=False)
            write_bytes(sidecar, buffer.getvalue(), overwrite=True)
        try:
            write_bytes(out, model.SerializeToString(), overwrite=True)
        except BaseException:
            if sidecar is not None and not out.exists():
                sidecar.unlink(missing_ok=True)       # no orphan sidecar
            raise
    return model
