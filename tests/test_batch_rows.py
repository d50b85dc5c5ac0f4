"""graph.batch_rows: an image gets the same bits from onnxruntime alone as inside a batch."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from deepvis.graph.batch_rows import pad_batch_rows
from deepvis.graph.builder import GraphBuilder

ort = pytest.importorskip("onnxruntime")


def dense_net(rows="N") -> onnx.ModelProto:
    """x (rows, 512) -> Gemm -> Relu -> MatMul: the fully connected tail of a CNN."""
    rng = np.random.default_rng(0)
    b = GraphBuilder("dense")
    x = b.input("x", [rows, 512])
    w1 = b.initializer(rng.standard_normal((256, 512)).astype(np.float32), "w1")
    w2 = b.initializer(rng.standard_normal((256, 64)).astype(np.float32), "w2")
    h = b.node("Relu", [b.node("Gemm", [x, w1], transB=1)])
    b.output(b.node("MatMul", [h, w2], ["y"]))
    return b.build()


def run(model, x):
    """As deepvis's shared-weight sessions run: weights not prepacked (with prepacking, MLAS
    happens to use one kernel for every batch size)."""
    options = ort.SessionOptions()
    options.add_session_config_entry("session.disable_prepacking", "1")
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(["y"], {"x": x})[0]


def test_one_image_alone_equals_its_row_in_any_batch():
    x = np.random.default_rng(1).standard_normal((6, 512)).astype(np.float32) * 10
    plain, padded = dense_net(), pad_batch_rows(dense_net())
    onnx.checker.check_model(padded)
    batch = run(padded, x)
    np.testing.assert_allclose(batch, run(plain, x), rtol=1e-5, atol=1e-4)  # same function
    for i in range(len(x)):
        assert np.array_equal(run(padded, x[i:i + 1])[0], batch[i])
    for n in (2, 3, 5):
        assert np.array_equal(run(padded, x[:n]), batch[:n])
    # Without the pass, batch 1 takes onnxruntime's matrix-vector kernel and rounds otherwise.
    alone = np.stack([run(plain, x[i:i + 1])[0] for i in range(len(x))])
    assert not np.array_equal(alone, run(plain, x))


def test_only_products_with_batch_rows_are_padded():
    fixed = pad_batch_rows(dense_net(rows=3))  # a static batch: nothing to keep invariant
    assert [n.op_type for n in fixed.graph.node] == ["Gemm", "Relu", "MatMul"]
    padded = pad_batch_rows(dense_net())
    ops = [n.op_type for n in padded.graph.node]
    assert ops.count("Concat") == 2 and ops.count("Slice") == 2
