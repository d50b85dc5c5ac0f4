"""Per-channel spatial maxima computed inside the network's own graph.

Fetching whole conv blobs costs a copy of every activation out of the runtime (83 MB
per batch of 32 for CaffeNet's conv1-5) and a NumPy argmax over it. Appending
Reshape -> ReduceMax and ArgMax after each scanned blob lets the executor return only
(N, C) values and flat positions, computed by its own threads. ArgMax keeps the first
maximum (select_last_index 0), as NumPy's argmax and the original's tracker do; the
maximum is an exact float, so tables are the same bit for bit as from the full blobs.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..exec import make_executor
from ..graph.load import with_outputs
from .tracker import TopTable, image_maxima, maxima_table

PREFIX = "deepvis.maxes"


def maxima_graph(graph: onnx.ModelProto, spatial_layers, other_layers) -> onnx.ModelProto:
    """A copy of `graph` whose outputs are `<L>.max`, `<L>.argmax` for each spatial layer
    (N, C, H, W) and the blobs themselves for the others (N, C)."""
    out = with_outputs(graph, list(other_layers))
    opset = next((o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")), 17)
    shape = f"{PREFIX}/flat_shape"
    out.graph.initializer.append(numpy_helper.from_array(np.array([0, 0, -1], np.int64), shape))
    axes = {}
    if opset >= 18:   # ReduceMax takes its axes as an input from opset 18
        out.graph.initializer.append(numpy_helper.from_array(np.array([2], np.int64),
                                                             f"{PREFIX}/axes"))
        axes_input = [f"{PREFIX}/axes"]
    else:
        axes_input, axes = [], {"axes": [2]}
    for layer in spatial_layers:
        flat, top, where = (f"{PREFIX}/{layer}/{s}" for s in ("flat", "max", "argmax"))
        out.graph.node.extend([
            helper.make_node("Reshape", [layer, shape], [flat], name=f"{PREFIX}/{layer}/reshape"),
            helper.make_node("ReduceMax", [flat, *axes_input], [top], keepdims=0,
                             name=f"{PREFIX}/{layer}/reducemax", **axes),
            helper.make_node("ArgMax", [flat], [where], axis=2, keepdims=0,
                             name=f"{PREFIX}/{layer}/argmax"),
        ])
        out.graph.output.extend([helper.make_tensor_value_info(top, TensorProto.FLOAT, None),
                                 helper.make_tensor_value_info(where, TensorProto.INT64, None)])
    return out


class MaximaRunner:
    """Runs a model's maxima graph on batches; one per (model, layers)."""

    def __init__(self, model, layers, threads: int | None = None):
        self.layers = list(layers)
        self.widths = {layer: model.blob_shapes[layer][3] for layer in self.layers
                       if len(model.blob_shapes[layer]) == 4}
        self.others = [layer for layer in self.layers if layer not in self.widths]
        self.input_name = model.input_name
        graph = maxima_graph(model.graph, list(self.widths), self.others)
        # the model's own executor options (GPU when the settings ask), and `threads`
        # intra-op threads where several workers share a machine
        options = ({"gpu": bool(model.settings.get("caffevis_mode_gpu")), "threads": threads}
                   if model.backend == "ort" else {})
        self._executor = make_executor(graph, model.backend, **options)
        self._run = model.run_batched   # a graph tied to its exported batch runs in slices

    def tables(self, x: np.ndarray, image_index: np.ndarray) -> dict[str, TopTable]:
        """The unsorted (C, B) table of each layer for the batch x."""
        names = [f"{PREFIX}/{layer}/{s}" for layer in self.widths for s in ("max", "argmax")]
        out = self._run(self._executor, {self.input_name: np.ascontiguousarray(x, np.float32)},
                        names + self.others)
        result = {}
        for layer in self.layers:
            if layer in self.widths:
                result[layer] = maxima_table(out[f"{PREFIX}/{layer}/max"],
                                             out[f"{PREFIX}/{layer}/argmax"],
                                             self.widths[layer], image_index)
            else:
                result[layer] = image_maxima(out[layer], image_index)
        return result
