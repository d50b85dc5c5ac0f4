"""find-maxes and crop-max-patches on a Dask distributed cluster.

The only module that imports Dask, and only when a command is given --scheduler or
--workers; a single-process run never needs it. Images (or units) are cut into
partitions; each task loads the model once per worker process (cached here), scans its
partition into partial top-N tables and sends them back, and the client merges them.
The merge is exact (see tracker), so any number of workers or partitions gives the
result of one process, in whatever order tasks finish. Workers must reach the model
and image files under the same paths as the client.
"""
from __future__ import annotations

import contextlib
import math
import os
import threading
from dataclasses import dataclass
from typing import Callable

from ..errors import DeepvisError
from .checkpoint import ScanState
from .images import ImageList
from .maxima import MaximaRunner
from .scan import layer_channels, scan

_models: dict = {}   # per process: ModelSpec -> Model, (spec, layers) -> MaximaRunner
_models_lock = threading.Lock()
PARTITIONS_PER_WORKER = 4
MAX_PARTITION_BATCHES = 64   # bounds the work a kill can lose between checkpoints


@dataclass(frozen=True)
class ModelSpec:
    """How a worker loads the model: the command's MODEL, --settings and --backend, and the
    settings its command line sets (--input-size, --preprocess) as sorted (key, value)
    pairs, so that a worker frames and scales photos exactly as a local run does."""
    model: str
    settings: str | None = None
    backend: str = "auto"
    overrides: tuple = ()

    def load(self):
        """The model, loaded once per process and shared by the tasks (and threads) there."""
        with _models_lock:
            if self not in _models:
                from ..model import load_model
                _models[self] = load_model(self.model, backend=self.backend,
                                           settings=self.settings,
                                           overrides=dict(self.overrides) or None)
            return _models[self]

    def runner(self, layers, threads: int | None = None) -> MaximaRunner:
        """The maxima graph of these layers, built once per process."""
        model = self.load()
        key = (self, tuple(layers), threads)
        with _models_lock:
            if key not in _models:
                _models[key] = MaximaRunner(model, layers, threads)
            return _models[key]


def _dask():
    try:
        from dask import distributed
    except ImportError:
        raise DeepvisError("--scheduler and --workers need Dask: pip install "
                           "'dask[distributed]' (or deepvis[dask])") from None
    return distributed


@contextlib.contextmanager
def open_client(scheduler: str | None = None, workers: int | None = None,
                processes: bool = True):
    """A client of the cluster at `scheduler`, or of a local cluster of `workers` workers
    (one thread each; processes=False keeps them as threads of this process)."""
    distributed = _dask()
    if scheduler:
        with distributed.Client(scheduler) as client:
            yield client
        return
    import dask

    # Dask starts worker processes with MALLOC_TRIM_THRESHOLD_ set, which pins glibc's
    # mmap threshold: every large buffer of the forward pass is then mapped and faulted in
    # anew, and the scan runs about half as fast. Local workers start without it.
    environ = {key: value for key, value
               in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
               if key != "MALLOC_TRIM_THRESHOLD_"}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}), \
            distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                     processes=processes, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def worker_count(client) -> int:
    return max(1, len(client.scheduler_info().get("workers", {})))


def local_threads(workers: int) -> int:
    """onnxruntime threads per worker when `workers` workers share this machine's cores."""
    return max(1, (os.cpu_count() or 1) // workers)


def partitions(ranges, size: int) -> list[tuple[int, int]]:
    """Cut index ranges [start, end) into pieces of at most `size`."""
    return [(a, min(a + size, end)) for start, end in ranges for a in range(start, end, size)]


def default_partition_size(ranges, workers: int, batch_size: int) -> int:
    total = sum(b - a for a, b in ranges)
    batches = math.ceil(total / max(1, workers * PARTITIONS_PER_WORKER) / batch_size)
    return batch_size * min(max(1, batches), MAX_PARTITION_BATCHES)


def scan_partition(spec: ModelSpec, images: ImageList, layers, top: int, batch_size: int,
                   decode_threads: int, threads: int | None = None,
                   framing: dict | None = None) -> ScanState:
    """A task: the partial tables of one slice of the image list."""
    from .framing import framing_from
    model = spec.load()
    state = ScanState.empty(layer_channels(model, layers), top)
    span = [(images.offset, images.offset + len(images))]
    return scan(model, images, layers, state, span, batch_size, decode_threads,
                runner=spec.runner(layers, threads),
                preprocess=framing_from(framing, model).preprocessor(model))


def scan_on_cluster(client, spec: ModelSpec, images: ImageList, layers, top: int,
                    batch_size: int, ranges, partition_size: int | None,
                    on_partition: Callable[[ScanState], None], decode_threads: int = 1,
                    threads: int | None = None, framing: dict | None = None) -> None:
    """Scan `ranges` on the cluster; on_partition gets each partial state as it arrives.
    `threads`: onnxruntime intra-op threads per worker (None: one per core)."""
    distributed = _dask()
    size = partition_size or default_partition_size(ranges, worker_count(client), batch_size)
    futures = [client.submit(scan_partition, spec, images.subset(a, b), list(layers), top,
                             batch_size, decode_threads, threads, framing, pure=False)
               for a, b in partitions(ranges, size)]
    for future in distributed.as_completed(futures):
        on_partition(future.result())
        future.release()


def render_partition(spec: ModelSpec, maxes, layer: str, units, options):
    """A task: the encoded files of some units of one layer, and the re-run mismatches."""
    from .render import render_units
    return render_units(spec.load(), maxes, layer, units, options)


def render_on_cluster(client, spec: ModelSpec, maxes, jobs, options,
                      on_done: Callable[[tuple[dict, int]], None]) -> None:
    """jobs: (layer, units) pairs; on_done gets (files, mismatches) of each as it arrives."""
    distributed = _dask()
    shared = client.scatter(maxes, broadcast=True)
    futures = [client.submit(render_partition, spec, shared, layer, list(units), options,
                             pure=False) for layer, units in jobs]
    for future in distributed.as_completed(futures):
        on_done(future.result())
        future.release()
