"""Run batches of optimizations here or on a Dask cluster, with the same bits either way.

A batch is a list of FindParams for one layer; a task loads the model once per process
(with `speed_over_memory`, as `deepvis optimize` does, so a unit's bits do not depend on
its batch) and returns, per unit, what `finish(params, results, space)` keeps of its
FindResults. Workers must reach the model files under the same paths as the client.
"""
from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import Callable

from tqdm import tqdm

from ..optimize.loop import optimize
from ..optimize.space import pixel_space

_models: dict = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class ModelRef:
    """How any process loads the model: MODEL, --settings, --backend and the settings the
    command line sets (--input-size, --preprocess), as sorted (key, value) pairs."""
    model: str
    settings: str | None = None
    backend: str = "auto"
    overrides: tuple = ()

    @classmethod
    def from_args(cls, args) -> "ModelRef":
        from ..commands.common import setting_overrides

        return cls(args.model, args.settings, getattr(args, "backend", "auto"),
                   tuple(sorted(setting_overrides(args).items())))

    def load(self):
        """The model, loaded once per process (optimizer sessions: speed over memory)."""
        with _lock:
            if self not in _models:
                from ..model import load_model
                _models[self] = load_model(self.model, backend=self.backend,
                                           settings=self.settings, speed_over_memory=True,
                                           overrides=dict(self.overrides) or None)
            return _models[self]


def space_of(model):
    """The pixel space every figure and optimize-layer task uses: the model's own mean."""
    return pixel_space(model.preprocessing, model.input_shape[1:])


def run_batch(ref: ModelRef, params: list, finish: Callable, progress: bool = False,
              desc: str = "optimize", model=None) -> list:
    """One batch: optimize() on the unit list, then finish(params, results, space) per unit."""
    model = model if model is not None else ref.load()
    space = space_of(model)
    results = optimize(model, list(params), space, progress=progress, desc=desc)
    return [finish(p, r, space) for p, r in zip(params, results)]


def run_batches(ref: ModelRef, batches: list[list], finish: Callable,
                on_done: Callable[[int, list], None], scheduler: str | None = None,
                progress: bool = True, model=None, describe=None) -> None:
    """Run every batch (lists of FindParams); on_done(index, outputs) as each one ends.

    Here: one after the other, each with optimize's own progress bar. On a cluster: one
    task per batch, a bar counting finished units."""
    describe = describe or (lambda i, batch: f"batch {i + 1}/{len(batches)}")
    if not scheduler:
        for i, batch in enumerate(batches):
            on_done(i, run_batch(ref, batch, finish, progress, describe(i, batch), model))
        return
    from ..maxes.distributed import _dask, open_client

    distributed = _dask()
    with open_client(scheduler) as client:
        futures = {client.submit(run_batch, ref, batch, finish, pure=False): i
                   for i, batch in enumerate(batches)}
        with tqdm(total=sum(map(len, batches)), desc="units", unit="unit", file=sys.stderr,
                  disable=not progress, dynamic_ncols=True) as bar:
            for future in distributed.as_completed(list(futures)):
                i = futures[future]
                on_done(i, future.result())
                future.release()
                bar.update(len(batches[i]))
