"""Maxima computed inside the graph equal NumPy's argmax over the full blobs, ties included."""
from __future__ import annotations

import numpy as np
import pytest

from deepvis.exec import make_executor
from deepvis.graph.builder import GraphBuilder
from deepvis.maxes.maxima import PREFIX, maxima_graph
from deepvis.maxes.tracker import image_maxima, maxima_table


def clipped_conv_graph(opset: int):
    """Conv + Clip(0, 1): many positions saturate at 1, so first-maximum ties are common."""
    rng = np.random.default_rng(0)
    g = GraphBuilder("maxima-test")
    x = g.input("data", ["N", 3, 9, 7])
    w = g.initializer(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    conv = g.node("Conv", [x, w], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    act = g.node("Clip", [conv, g.const(0.0), g.const(1.0)], name="act")
    fc = g.node("Gemm", [g.node("Flatten", [act], name="flat"),
                         g.initializer(rng.normal(size=(5, 4 * 9 * 7)).astype(np.float32), "fw")],
                name="fc", transB=1)
    g.output(act)
    g.output(fc)
    model = g.build()
    model.opset_import[0].version = opset
    return model, act, fc


@pytest.mark.parametrize("backend", ["ort", "numpy"])
@pytest.mark.parametrize("opset", [17, 18])
def test_graph_maxima_match_numpy_on_the_full_blob(backend, opset):
    model, act, fc = clipped_conv_graph(opset)
    x = np.random.default_rng(1).normal(size=(6, 3, 9, 7)).astype(np.float32)
    full = make_executor(model, backend).run({"data": x}, [act, fc])
    out = make_executor(maxima_graph(model, [act], [fc]), backend).run(
        {"data": x}, [f"{PREFIX}/{act}/max", f"{PREFIX}/{act}/argmax", fc])
    index = np.arange(10, 16)
    got = maxima_table(out[f"{PREFIX}/{act}/max"], out[f"{PREFIX}/{act}/argmax"], 7, index)
    expected = image_maxima(full[act], index)
    assert (expected.values == 1).sum() > 6          # ties really happen
    assert got.equals(expected)
    assert image_maxima(out[fc], index).equals(image_maxima(full[fc], index))
