"""The network work behind one frame: forward, then grad or deconv of the selected unit.

Shared by the worker thread (live window) and `deepvis render` (synchronous), so both show
the same numbers for the same frame and state.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import DeepvisError
from ..preprocess import rgb_to_input
from .layer_diffs import LayerDiffs


@dataclass(frozen=True, eq=False)
class Request:
    """What the current state needs from the network."""
    frame_id: int
    frame: object                     # RGB uint8 (H, W, 3), or a pair in siamese mode
    back: tuple | None = None         # (layer, unit, mode) or None when back is off
    diff_layer: str | None = None     # the layer whose diff the layers pane shows

    @property
    def key(self) -> tuple:
        return self.frame_id, self.back, self.diff_layer


@dataclass(frozen=True, eq=False)
class NetResults:
    frame_id: int
    blobs: dict                       # visible blob -> value for the image (batch axis gone)
    back: tuple | None = None         # the (layer, unit, mode) `grad` was computed for
    grad: np.ndarray | None = None    # derivative at the input, (C, H, W), network order
    diff_key: tuple | None = None     # (layer, back) `diff` was computed for
    diff: np.ndarray | None = None


class NetRunner:
    """Runs requests on a Model, redoing only what changed since the last one."""

    def __init__(self, model, siamese: bool = False):
        self.model = model
        self.siamese = siamese
        self._diffs = LayerDiffs(model)
        self._x = None
        self._full_blobs: dict = {}

    def to_input(self, frame) -> np.ndarray:
        """An RGB frame (or pair) -> the network input, resized bilinearly as the original."""
        spec = self.model.preprocessing
        h, w = spec.input_size
        if not self.siamese:
            return rgb_to_input(frame, spec)
        halves = [cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in frame]
        pair = np.concatenate(halves, axis=2)
        if self.model.input_shape[1] != pair.shape[2]:
            raise DeepvisError("siamese_image_list needs a network with a 6-channel input; "
                               f"this one takes {self.model.input_shape[1]} channels")
        return rgb_to_input(pair, spec)

    def up_to_date(self, request: Request, results: NetResults | None) -> bool:
        return (results is not None and results.frame_id == request.frame_id
                and results.back == request.back
                and results.diff_key == _diff_key(request))

    def run(self, request: Request, previous: NetResults | None = None) -> NetResults:
        same_frame = previous is not None and previous.frame_id == request.frame_id
        grad = previous.grad if same_frame and previous.back == request.back else None
        if same_frame:
            blobs = previous.blobs
        else:
            self._x = self.to_input(request.frame)
            if request.back is not None:
                # A new frame with back on: forward and backward in one pass.
                grad = self._forward_backward(*request.back)
            else:
                self._full_blobs = self.model.forward(self._x)
            blobs = {name: value[0] for name, value in self._full_blobs.items()}
        if request.back is not None and grad is None:
            # Back turned on for a frame already shown: forward and backward again in one
            # pass, and show that pass's blobs, so the activations on screen are the very
            # values whose ReLU masks and pooling switches the gradient went through.
            grad = self._forward_backward(*request.back)
            blobs = {name: value[0] for name, value in self._full_blobs.items()}
        diff_key = _diff_key(request)
        diff = (previous.diff if same_frame and previous.diff_key == diff_key else None)
        if diff_key is not None and diff is None:
            layer, unit, mode = request.back
            diff = self._diffs.diff(self._full_blobs, request.diff_layer, layer, mode,
                                    unit_seed(self._full_blobs[layer], unit))
        return NetResults(request.frame_id, blobs, request.back if grad is not None else None,
                          grad, diff_key if diff is not None else None, diff)

    def _forward_backward(self, layer: str, unit: int, mode: str) -> np.ndarray:
        """Every blob and the back image of `unit`, seeded with its own activations."""
        mask = np.zeros(self.model.blob_shapes[layer], np.float32)
        mask[:, unit] = 1.0
        grad, self._full_blobs = self.model.forward_backward(
            self._x, layer, mask, mode, blobs=self.model.blob_names, seed_times_activation=True)
        return grad[0]


def unit_seed(activation: np.ndarray, unit: int) -> np.ndarray:
    """The toolbox's seed: zeros but the unit's own activation (its whole map for conv
    blobs), i.e. the gradient of 1/2 sum(a_unit^2)."""
    seed = np.zeros_like(activation)
    seed[:, unit] = activation[:, unit]
    return seed


def _diff_key(request: Request):
    if request.back is None or request.diff_layer is None:
        return None
    return request.diff_layer, request.back
