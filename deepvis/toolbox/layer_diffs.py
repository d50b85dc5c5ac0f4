"""The diff at an intermediate blob, for the layers pane's back view (§2.6 step 1, §11).

deepvis's gradient graphs return the derivative at the network input only, so the diff at
blob L for a seed at blob S comes from a gradient graph of the forward graph cut at L: its
input is L, its nodes are those on paths from L to where S's seed enters.

Quirk #27, as the original: for a blob L with an in-place ReLU (a Caffe import records where
its seed enters, below that ReLU) the diff shown is the one below the ReLU, i.e. after the
ReLU's backward or deconv step, as Caffe's shared buffer held it. The cut graph then starts
at L's pre-ReLU tensor, fed with L's values: the ReLU's mask (x > 0) is the same for x and
relu(x), so the result is exact. Blobs after S, or off every path to it, show zeros, as
with the original's zero_higher; S itself shows its seed.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..errors import DeepvisError
from ..exec import make_executor
from ..graph import meta
from ..grad import build_grad_graph, seed_tensor_for

_KEEP = 4   # gradient graphs kept (one per layer, seed layer and mode)


class LayerDiffs:
    """Diffs at any visible blob of one model; gradient graphs built on first use."""

    def __init__(self, model):
        self.model = model
        self._executors: dict[tuple, object] = {}

    def diff(self, blobs: dict[str, np.ndarray], layer: str, target: str, mode: str,
             seed: np.ndarray) -> np.ndarray:
        """d sum(seed * target) / d layer for one image, shaped like blobs[layer][0]."""
        if layer == target:
            return seed[0]
        key = (layer, target, mode)
        if key not in self._executors:
            if len(self._executors) >= _KEEP:
                self._executors.pop(next(iter(self._executors)))
            self._executors[key] = self._build(layer, target, mode)
        built = self._executors[key]
        if built is None:
            return np.zeros_like(blobs[layer][0])
        executor, extra_inputs = built
        feeds = {seed_tensor_for(self.model.graph, layer): blobs[layer], "seed": seed}
        feeds.update({name: blobs[name] for name in extra_inputs})
        return executor.run(feeds, ["grad"])["grad"][0]

    def _build(self, layer: str, target: str, mode: str):
        start = seed_tensor_for(self.model.graph, layer)      # below an in-place ReLU
        shapes = {**self.model.blob_shapes, start: self.model.blob_shapes[layer]}
        cut = cut_graph(self.model.graph, start, seed_tensor_for(self.model.graph, target),
                        shapes)
        if cut is None:
            return None
        sub, extra_inputs = cut
        grad_model = build_grad_graph(sub, target, mode)
        return make_executor(grad_model, self.model.backend), extra_inputs


def cut_graph(model: onnx.ModelProto, start: str, end: str, shapes: dict):
    """(sub-model from tensor `start` to tensor `end`, its other inputs), or None when `end`
    does not depend on `start`. Inputs must be visible blobs, whose `shapes` (batch 1) and
    values are known."""
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output if out}
    reached, downstream = {start}, set()
    for node in graph.node:
        if any(i in reached for i in node.input):
            downstream.add(id(node))
            reached.update(o for o in node.output if o)
    if end not in reached:
        return None
    stack, keep = [end], set()
    while stack:
        node = producer.get(stack.pop())
        if node is None or id(node) in keep:
            continue
        if id(node) in downstream or node.op_type == "Constant":
            keep.add(id(node))
            stack.extend(i for i in node.input if i and i != start)
    nodes = [n for n in graph.node if id(n) in keep]
    made = {o for n in nodes for o in n.output}
    weights = {t.name: t for t in graph.initializer}
    used = {i for n in nodes for i in n.input if i}
    extra = sorted(used - made - set(weights) - {start})
    missing = [name for name in extra if name not in shapes]
    if missing:
        raise DeepvisError(f"cannot show diffs at {start!r}: the graph from there also needs "
                           f"the hidden tensors {missing}")
    blob_infos = [helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                                ["N", *shapes[name][1:]])
                  for name in [start, *extra]]
    sub_graph = helper.make_graph(nodes, f"{graph.name}/from/{start}", blob_infos,
                                  [helper.make_tensor_value_info(end, TensorProto.FLOAT, None)],
                                  [weights[name] for name in sorted(used & set(weights))])
    sub = helper.make_model(sub_graph, opset_imports=list(model.opset_import))
    sub.ir_version = model.ir_version
    meta.write(sub, **{k: v for k, v in meta.read(model).items() if k == "seeds"})
    return sub, extra
