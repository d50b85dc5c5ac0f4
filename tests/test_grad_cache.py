"""GradCache: one weights.bin per forward model, small graph files pointing into it, executors
that share the weights; export_grad: standalone files written atomically."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from deepvis.errors import DeepvisError
from deepvis.grad import GradCache, build_grad_graph, export_grad
from deepvis.grad.cache import WEIGHTS_FILE

from deepvis.graph import meta

from .grad_helpers import Net, numpy_executor_available, ort_run


@pytest.fixture(autouse=True)
def _small_external_threshold(monkeypatch):
    """This file's network is small: share every tensor of 1 KiB and more (the real threshold,
    16 KiB, would keep them all inline and leave nothing to test)."""
    monkeypatch.setattr("deepvis.grad.cache.EXTERNAL_MIN_BYTES", 1024)


@pytest.fixture(scope="module")
def forward():
    """conv1 (1.7 kB of weights) -> relu -> pool1 -> conv2 (tiny) -> fc (10 kB) -> prob."""
    net = Net((3, 8, 8), seed=3)
    weight = net.w(16, 3, 3, 3, scale=0.3, name="conv1/w")
    net.op("Conv", [net.x, weight, net.w(16, name="conv1/b")], ["conv1/pre"], pads=[1, 1, 1, 1])
    net.op("Relu", ["conv1/pre"], ["conv1"])
    net.op("MaxPool", ["conv1"], ["pool1"], kernel_shape=[2, 2], strides=[2, 2])
    net.op("Conv", ["pool1", net.w(4, 16, 1, 1, scale=0.3, name="conv2/w")], ["conv2"])
    flat = net.op("Flatten", ["conv2"])
    net.op("Gemm", [flat, net.w(10, 64, scale=0.2, name="fc/w"), net.w(10, name="fc/b")], ["fc"],
           transB=1)
    net.op("Softmax", ["fc"], ["prob"], axis=1)
    blobs = ["data", "conv1", "pool1", "conv2", "fc", "prob"]
    return net.build(blobs[1:], meta.encode(blobs=blobs, seeds={"conv1": "conv1/pre"}))


def _feeds(graph, batch=2):
    rng = np.random.default_rng(0)
    shapes = {i.name: [batch] + [d.dim_value for d in i.type.tensor_type.shape.dim[1:]]
              for i in graph.graph.input}
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


def test_weights_written_once_and_graphs_point_into_them(forward, tmp_path):
    cache = GradCache(forward, tmp_path)
    paths = {(t, m): cache.path(t, m) for t in ("conv1", "conv2", "prob")
             for m in ("grad", "deconv")}
    assert len(set(paths.values())) == len(paths)
    weights = cache.dir / WEIGHTS_FILE
    stamp = weights.stat().st_mtime_ns
    big = [t for t in forward.graph.initializer if len(t.raw_data) >= 1024]
    assert {t.name for t in big} == {"conv1/w", "fc/w"}
    assert weights.stat().st_size >= sum(len(t.raw_data) for t in big)
    for path in paths.values():
        content = path.read_bytes()
        assert not any(t.raw_data in content for t in big)
        model = onnx.load(str(path), load_external_data=False)
        external = {t.name: {e.key: e.value for e in t.external_data}
                    for t in model.graph.initializer if t.data_location == TensorProto.EXTERNAL}
        assert external and set(external) <= {"conv1/w", "fc/w"}
        assert all(e["location"] == WEIGHTS_FILE for e in external.values())
    again = GradCache(forward, tmp_path)  # same model: same folder, weights not rewritten
    assert again.dir == cache.dir and again.path("prob", "deconv") == paths["prob", "deconv"]
    assert weights.stat().st_mtime_ns == stamp
    stored = cache.weights()
    for tensor in big:
        np.testing.assert_array_equal(stored[tensor.name], numpy_helper.to_array(tensor))


def test_a_changed_model_gets_its_own_folder(forward, tmp_path):
    changed = onnx.ModelProto()
    changed.CopyFrom(forward)
    weight = next(t for t in changed.graph.initializer if t.name == "fc/w")
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) + 1, "fc/w"))
    assert GradCache(changed, tmp_path).dir != GradCache(forward, tmp_path).dir


@pytest.mark.parametrize("backend", ["ort", "numpy"])
@pytest.mark.parametrize("target, mode", [("conv1", "grad"), ("conv2", "guided"),
                                          ("prob", "deconv")])
def test_cached_executors_match_a_standalone_graph(forward, tmp_path, backend, target, mode):
    if backend == "numpy" and not numpy_executor_available():
        pytest.skip("the NumPy executor is not there yet")
    cache = GradCache(forward, tmp_path)
    standalone = build_grad_graph(forward, target, mode, extra_outputs=["fc"])
    feeds = _feeds(standalone)
    expected = ort_run(standalone, feeds)
    executor = cache.executor(target, mode, extra_outputs=["fc"], backend=backend)
    got = executor.run(feeds)
    for name in ("grad", "fc"):
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-6)


def test_cached_model_reads_back_with_external_weights(forward, tmp_path):
    cache = GradCache(forward, tmp_path)
    structure = cache.model("conv1", "guided")
    assert any(t.data_location == TensorProto.EXTERNAL for t in structure.graph.initializer)
    full = onnx.load(str(cache.path("conv1", "guided")))
    feeds = _feeds(full)
    np.testing.assert_allclose(ort_run(full, feeds)["grad"],
                               ort_run(build_grad_graph(forward, "conv1", "guided"), feeds)["grad"],
                               rtol=1e-6)


def test_export_grad_is_standalone_and_never_clobbers(forward, tmp_path):
    path = tmp_path / "out" / "prob-grad.onnx"
    export_grad(forward, "prob", "grad", path)
    model = onnx.load(str(path))
    assert not any(t.data_location == TensorProto.EXTERNAL for t in model.graph.initializer)
    feeds = _feeds(model)
    np.testing.assert_allclose(ort_run(model, feeds)["grad"],
                               ort_run(build_grad_graph(forward, "prob"), feeds)["grad"],
                               rtol=1e-6)
    with pytest.raises(DeepvisError, match="exists"):
        export_grad(forward, "conv1", "grad", path)
    export_grad(forward, "conv1", "grad", path, overwrite=True)
    assert onnx.load(str(path)).graph.output[0].name == "grad"
    assert sorted(p.name for p in path.parent.iterdir()) == ["prob-grad.onnx"]
