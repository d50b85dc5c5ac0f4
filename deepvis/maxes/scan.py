"""The find-maxes loop in one process: decode a batch, run the network, merge its maxima.

Used as is by a single-process run and, on each Dask worker, for one partition.
"""
from __future__ import annotations

from typing import Callable

from ..errors import DeepvisError
from .checkpoint import Coverage, ScanState
from .images import Batch, ImageList, batches
from .maxima import MaximaRunner


def layer_channels(model, layers) -> dict[str, int]:
    """Channel count of each layer to scan; conv (N, C, H, W) and FC (N, C) blobs only."""
    out = {}
    for layer in layers:
        if layer not in model.blob_names or layer == model.input_name:
            raise DeepvisError(f"no layer named {layer!r} to scan; layers are: "
                               f"{', '.join(model.blob_names[1:])}")
        shape = model.blob_shapes[layer]
        if len(shape) not in (2, 4):
            raise DeepvisError(f"layer {layer!r} has shape {shape}; find-maxes handles "
                               "(N, C, H, W) and (N, C) blobs")
        out[layer] = shape[1]
    return out


def batch_state(runner: MaximaRunner, batch: Batch) -> ScanState:
    """The maxima of one decoded batch as a state of its own (unsorted, N = batch size)."""
    tables = runner.tables(batch.x, batch.index) if len(batch.index) else {}
    return ScanState(tables, Coverage([(batch.start, batch.end)]), dict(batch.skipped))


def scan(model, images: ImageList, layers, state: ScanState, ranges, batch_size: int,
         decode_threads: int = 2, on_batch: Callable[[Batch, ScanState], None] | None = None,
         runner: MaximaRunner | None = None, preprocess=None) -> ScanState:
    """Scan the index ranges into `state` (updated in place and returned). `preprocess`
    turns a decoded image into the network input (default: the model's, as the toolbox)."""
    runner = runner or MaximaRunner(model, layers)
    preprocess = preprocess or model.preprocess
    for batch in batches(images, ranges, preprocess, batch_size, decode_threads):
        state.absorb(batch_state(runner, batch))
        if on_batch is not None:
            on_batch(batch, state)
    return state
