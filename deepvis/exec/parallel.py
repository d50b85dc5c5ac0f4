"""A batch of several images split over the cores: one single-threaded run per core.

onnxruntime spreads every node of a run over its intra-op threads. On a machine of a few
cores a deep network's thousand small nodes each pay for that split and join, and a batch of
16 images has activations (77 MB per tensor in ConvNeXt's first stage) that leave the caches
between the elementwise passes. Handing each core its own slice of the batch, on a session of
one thread, removes both: on 2 cores a batch-16 gradient step took 0.93x (ResNet-18), 0.76x
(EfficientNet-B0) and 0.81x (ConvNeXt-T) the time of one run of the whole batch on two threads
(bench/bench_own_models.py --serial prints both).

A session's thread count does not change what it computes (onnxruntime divides a node's work
by output rows and channels, not along a sum), so on Lite0 an image gets the same bits in a
slice, in the whole batch and alone (tests/test_exec_parallel.py). Where a network's kernels
depend on the batch size (ConvNeXt's, by 1e-7), an image's bits depend on its slice's size as
they already did on its batch's. A batch of one image still runs on all the cores.
"""
from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

# At most this many images per slice. Slices of 1-4 images measured alike on ResNet-18 and
# ConvNeXt; EfficientNet-B0 ran best at 2.
SLICE = 2

_pool: ThreadPoolExecutor | None = None


def cores() -> int:
    """The cores this process may run on (a container's share, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def slices(n: int, workers: int) -> list[slice]:
    """`n` images in a multiple of `workers` slices of at most SLICE images, sizes within one."""
    count = min(n, workers * math.ceil(n / (workers * SLICE)))
    bounds = np.linspace(0, n, count + 1).round().astype(int)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def worth_splitting(graph, shapes: dict[str, tuple]) -> bool:
    """Whether slicing the batch pays on this network (`shapes`: its tensors at batch 1).

    Each slice reads every weight again. Convolution and per-pixel matrix kernels are small
    and stay in the cache, but a fully connected layer multiplies one row per image by a
    large matrix: CaffeNet's fc6-fc8 hold 234 MB, which 8 slices of a batch of 16 would
    stream 8 times (measured: 29 against 25 ms per unit-iteration in its optimizer). So
    slices are taken only when those dense weights are no more than a slice's own tensors.
    """
    sizes = {t.name: int(np.prod(t.dims, dtype=np.int64)) for t in graph.graph.initializer}
    alias = {n.output[0]: n.input[0] for n in graph.graph.node
             if n.op_type == "Identity" and n.input and n.input[0] in sizes}
    dense = 0
    for node in graph.graph.node:
        per_image_rows = node.op_type == "Gemm" or (
            node.op_type == "MatMul" and len(shapes.get(node.input[0], ())) == 2)
        if per_image_rows:
            dense += sum(sizes.get(alias.get(i, i), 0) for i in node.input[1:])
    image = sum(int(np.prod(shape, dtype=np.int64)) for shape in shapes.values())
    return dense <= SLICE * image


class BatchParallel:
    """An executor that runs a batch of one on `whole` and larger batches in slices, one
    per core at a time, on a single-threaded executor made by `make_single` at first use.
    Every feed and every output has the batch first (Model.run_batched's contract)."""

    def __init__(self, whole, make_single: Callable[[], object], workers: int):
        self.whole = whole
        self._make_single = make_single
        self._single = None
        self._lock = threading.Lock()
        self.workers = workers
        self.input_names = whole.input_names
        self.output_names = whole.output_names

    def run(self, feeds: dict[str, np.ndarray], outputs=None) -> dict[str, np.ndarray]:
        n = len(next(iter(feeds.values())))
        if n < 2 or self.workers < 2:
            return self.whole.run(feeds, outputs)
        with self._lock:  # callers on several threads (a Dask worker's) build it once
            if self._single is None:
                self._single = self._make_single()
        parts = list(_shared_pool(self.workers).map(
            lambda s: self._single.run({k: v[s] for k, v in feeds.items()}, outputs),
            slices(n, self.workers)))
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _shared_pool(workers: int) -> ThreadPoolExecutor:
    """One pool for the process: executors that run at the same time share its threads
    rather than each bringing as many as there are cores."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(workers, thread_name_prefix="deepvis-slice")
    return _pool
