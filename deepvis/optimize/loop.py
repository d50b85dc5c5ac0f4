"""The original GradientOptimizer loop (original-toolbox §10.2), for many units at once.

Each unit keeps its own image, start point, RNG and FindResults; per iteration, one
`Model.forward_backward` call serves every unit still running. A unit's steps never look
at another unit, so its results are those of a run alone with the same seed: bit for bit
on onnxruntime when the model was loaded with `speed_over_memory` (as `deepvis optimize`
loads it; see grad.cache), to float rounding otherwise, and on the NumPy executor, whose
BLAS picks its kernels by matrix size.

Per unit and iteration ii: 0 clip to the pixel range; 1 forward; 2 record; 4 seed
`push_dir` at the push unit and take the gradient; stop on a zero (the original's
"grad 0 failure") or non-finite gradient, or a non-finite objective; 5 learning rate;
6 update and regularize, except on the last iteration.

Beyond the paper, two optional nouns sit between the network and step 6: a random view
of the image each step (transforms.py: the forward sees it, the gradient comes back
through it) and a preconditioner of the gradient (precondition.py: colour and frequency
parameterizations). Both are skipped entirely when off.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from ..errors import DeepvisError
from . import precondition, regularizers, transforms
from .lr import learning_rate
from .params import FindParams
from .results import GRAD_ZERO, NONFINITE_GRADIENT, NONFINITE_OBJECTIVE, FindResults
from .space import PixelSpace


def start_point(p: FindParams, space: PixelSpace) -> np.ndarray:
    """x0 from the unit's own RandomState: the same numbers as the original's
    np.random.seed(rand_seed) followed by one draw."""
    rng = np.random.RandomState(p.rand_seed)
    if p.start_at == "mean_plus_rand":
        return rng.normal(0, 10, space.shape)
    if p.start_at == "randu":
        return rng.uniform(0, 255, space.shape) - space.mean
    return np.zeros(space.shape)


@dataclass
class UnitRun:
    """One unit's optimization state."""

    params: FindParams
    space: PixelSpace
    x0: np.ndarray = None
    xx: np.ndarray = None
    results: FindResults = field(default_factory=FindResults)
    done: bool = False
    view: transforms.View = transforms.IDENTITY

    def __post_init__(self):
        self.x0 = start_point(self.params, self.space)
        self.xx = self.x0.copy()
        # a generator of its own, so the start point stays the original's draw
        self.view_rng = np.random.default_rng([self.params.rand_seed, 0x5EED])

    def network_image(self) -> np.ndarray:
        """What the network sees this step: xx, or a random view of it."""
        if not transforms.active(self.params):
            return self.xx
        self.view = transforms.draw(self.view_rng, self.params)
        return transforms.apply(self.xx, self.view)

    def active_at(self, ii: int) -> bool:
        return not self.done and ii < self.params.max_iter

    def step(self, ii: int, acts: np.ndarray, grad_input: np.ndarray) -> None:
        """Steps 1-6 given this unit's push-layer activations and input gradient."""
        p = self.params
        acts = acts.reshape(-1, 1, 1) if acts.ndim == 1 else acts
        obj = acts[p.push_unit]
        if not np.isfinite(obj):
            return self._stop(NONFINITE_OBJECTIVE)
        idxmax = tuple(int(i) for i in np.unravel_index(acts.argmax(), acts.shape))
        self.results.update(p.push_unit, ii, obj, idxmax, self.xx, self.x0)
        grad = self.space.grad_to_pixels(grad_input)
        if transforms.active(p):
            grad = transforms.pull_back(grad, self.view)
        if precondition.active(p):
            grad = precondition.precondition(grad, p, self.space.to_rgb)
        if not np.all(np.isfinite(grad)):
            return self._stop(NONFINITE_GRADIENT)
        if not grad.any():
            return self._stop(GRAD_ZERO)
        lr, _ = learning_rate(p.lr_policy, p.lr_params, grad, float(obj))
        if ii < p.max_iter - 1:
            self.xx = regularizers.update(self.xx, grad, lr, ii, p)
        else:
            self._stop(None)

    def _stop(self, meta_result: str | None) -> None:
        self.results.finish(meta_result)
        self.done = True


def check_units(model, params: list[FindParams]) -> None:
    """All units share one push layer that exists; each push unit lies inside it."""
    layers = {p.push_layer for p in params}
    if len(layers) != 1:
        raise DeepvisError(f"one batch optimizes one layer; got {sorted(layers)}")
    layer = layers.pop()
    if layer not in model.blob_names:
        raise DeepvisError(f"--push-layer: no blob named {layer!r}; blobs are: "
                           f"{', '.join(model.blob_names[1:])}")
    shape = model.blob_shapes[layer][1:]
    if len(shape) not in (1, 3):
        raise DeepvisError(f"--push-layer {layer!r} has shape {shape}; expected (C,) for "
                           "fully connected or (C, H, W) for convolutional layers")
    full = tuple(shape) + (1, 1) if len(shape) == 1 else tuple(shape)
    for p in params:
        if len(shape) == 1 and p.push_spatial != (0, 0):
            raise DeepvisError(f"--push-spatial must be None or (0, 0) for the fully connected "
                               f"layer {layer!r}, got {p.push_spatial}")
        if any(i >= n for i, n in zip(p.push_unit, full)):
            raise DeepvisError(f"push unit {p.push_unit} is outside {layer!r} of shape {shape}")
    if len(shape) == 3 and any(p.push_spatial == (0, 0) for p in params):
        print(f"deepvis: warning: optimizing units of the conv layer {layer!r} at spatial "
              f"(0, 0), the upper-left corner; to avoid edge effects push the centre with "
              f"--push-spatial \"({shape[1] // 2}, {shape[2] // 2})\"", file=sys.stderr)


def optimize(model, params: list[FindParams], space: PixelSpace, progress: bool = True,
             desc: str = "optimize") -> list[FindResults]:
    """Run every unit to its end; returns their FindResults, in order."""
    check_units(model, params)
    layer = params[0].push_layer
    runs = [UnitRun(p, space) for p in params]
    seed_shape = tuple(model.blob_shapes[layer][1:])
    total = max(p.max_iter for p in params)
    with tqdm(total=total, desc=desc, unit="it", file=sys.stderr, disable=not progress,
              dynamic_ncols=True) as bar:
        for ii in range(total):
            active = [r for r in runs if r.active_at(ii)]
            if not active:
                break
            for r in active:
                r.xx = space.clip(r.xx)
            x = np.stack([space.to_input(r.network_image()) for r in active])
            seed = np.zeros((len(active),) + seed_shape, np.float32)
            for i, r in enumerate(active):
                seed[(i,) + r.params.push_unit[:len(seed_shape)]] = r.params.push_dir
            grad, blobs = model.forward_backward(x, layer, seed, "grad", blobs=(layer,))
            for i, r in enumerate(active):
                r.step(ii, blobs[layer][i], grad[i])
            objs = [r.results.last_obj for r in active if r.results.last_obj is not None]
            bar.set_postfix(obj=f"{np.mean(objs):.4g}" if objs else "-",
                            done=f"{sum(r.done for r in runs)}/{len(runs)}", refresh=False)
            bar.update()
    return [r.results for r in runs]
