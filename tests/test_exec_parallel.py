"""A batch split over the cores (exec/parallel.py): slices that cover the batch in order,
the same bits as the whole batch on one session, and a plain session where splitting has
no point."""
from __future__ import annotations

import numpy as np
import pytest

import deepvis
from deepvis.errors import DeepvisError
from deepvis.exec import parallel
from deepvis.exec.parallel import BatchParallel, slices


@pytest.mark.parametrize("n,workers", [(1, 2), (2, 2), (3, 2), (4, 2), (5, 2), (16, 2),
                                       (17, 4), (40, 8), (7, 1)])
def test_slices_cover_the_batch_in_order_evenly(n, workers):
    parts = slices(n, workers)
    assert [i for s in parts for i in range(s.start, s.stop)] == list(range(n))
    sizes = [s.stop - s.start for s in parts]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1 and max(sizes) <= parallel.SLICE
    if n >= workers:  # every core gets as many slices as the others
        assert len(parts) % workers == 0


@pytest.fixture(scope="module")
def lite0():
    return deepvis.load_model("efficientnet-lite0", backend="ort", speed_over_memory=True)


def _grad_executor(model):
    return model._grad_executor("fc", "grad", ("fc",))


def test_a_split_batch_gives_the_bits_of_the_whole_batch(lite0, monkeypatch):
    executor = _grad_executor(lite0)
    if not isinstance(executor, BatchParallel):
        pytest.skip("one core: batches are not split")
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (5, *lite0.input_shape[1:])).astype(np.float32)
    seed = rng.normal(0, 1, (5, 1000)).astype(np.float32)
    feeds = {lite0.input_name: x, "seed": seed}
    calls = []
    single_run = None

    def counting(feeds_, outputs):
        calls.append(len(feeds_[lite0.input_name]))
        return single_run(feeds_, outputs)

    split = executor.run(feeds, ["grad", "fc"])
    single_run = executor._single.run
    monkeypatch.setattr(executor._single, "run", counting)
    executor.run(feeds, ["grad", "fc"])
    assert sorted(calls) == sorted(s.stop - s.start for s in slices(5, executor.workers))
    assert len(calls) > 1
    whole = executor.whole.run(feeds, ["grad", "fc"])
    np.testing.assert_array_equal(split["fc"], whole["fc"])
    np.testing.assert_array_equal(split["grad"], whole["grad"])
    # and each image's gradient is its own: the slices come back in the batch's order
    alone = executor.whole.run({k: v[3:4] for k, v in feeds.items()}, ["grad"])["grad"]
    np.testing.assert_array_equal(split["grad"][3:4], alone)


def test_one_image_runs_whole_and_errors_come_back_from_a_slice(lite0):
    executor = _grad_executor(lite0)
    if not isinstance(executor, BatchParallel):
        pytest.skip("one core: batches are not split")
    x = np.zeros((1, *lite0.input_shape[1:]), np.float32)
    seed = np.zeros((1, 1000), np.float32)
    before = executor._single
    executor.run({lite0.input_name: x, "seed": seed}, ["grad"])
    assert executor._single is before  # a batch of one never builds the single-thread session
    bad = np.zeros((4, 3, 8, 8), np.float32)   # the wrong image size reaches onnxruntime
    with pytest.raises(DeepvisError, match="onnxruntime failed running the model"):
        executor.run({lite0.input_name: bad, "seed": np.zeros((4, 1000), np.float32)}, ["grad"])


def test_one_core_gets_the_plain_session(monkeypatch, tmp_path):
    monkeypatch.setattr("deepvis.grad.cache.cores", lambda: 1)
    model = deepvis.load_model("efficientnet-lite0", backend="ort", speed_over_memory=True)
    assert not isinstance(_grad_executor(model), BatchParallel)
    monkeypatch.setattr("deepvis.grad.cache.cores", lambda: 2)
    model = deepvis.load_model("efficientnet-lite0", backend="ort", speed_over_memory=True)
    assert isinstance(_grad_executor(model), BatchParallel)


def test_slices_only_where_dense_weights_are_smaller_than_a_slice(lite0, tmp_path_factory):
    """CaffeNet's fully connected layers (58M weights) would be read once per slice; Lite0's
    classifier (1.3M) is small beside its feature maps."""
    from tests.fixtures_caffenet import synthetic_caffenet_onnx

    caffenet = deepvis.load_model(str(synthetic_caffenet_onnx(tmp_path_factory.mktemp("cn"))),
                                  backend="ort", speed_over_memory=True)
    assert not parallel.worth_splitting(caffenet.graph, caffenet.blob_shapes)
    assert not isinstance(caffenet._grad_executor("fc8", "grad", ()), BatchParallel)
    assert parallel.worth_splitting(lite0.graph, lite0.blob_shapes)
    lean = deepvis.load_model("efficientnet-lite0", backend="ort")   # the toolbox's sessions
    assert not isinstance(lean._grad_executor("fc", "grad", ()), BatchParallel)
