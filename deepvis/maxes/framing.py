"""How find-maxes and crop-max-patches turn a photo into the network input.

Two framings:
- `squash`: as the original's find_max_acts.py and crop_max_patches.py (a Caffe Classifier
  with image_dims 256x256): the whole photo is squashed to 256x256, ignoring its aspect
  ratio, and the input-sized centre (rows and columns 14..240 for 227) is cut out.
- `square`: as the live toolbox: the largest centred square, resized to the input size.
Both then swap channels, subtract the mean and scale as the model's preprocessing says.
`squash` is the default for Caffe models (what the original's published top-9 images were
computed with); `square` for every other network.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import DeepvisError
from ..preprocess import as_rgb, preprocess, rgb_to_input

FRAMINGS = ("squash", "square")
SQUASH_SIDE = 256


@dataclass(frozen=True)
class Framing:
    how: str = "square"
    side: int = SQUASH_SIDE          # the squash size (never below the input size)

    def __post_init__(self):
        if self.how not in FRAMINGS:
            raise DeepvisError(f"framing must be one of {', '.join(FRAMINGS)}, got {self.how!r}")

    def as_dict(self) -> dict:
        return {"how": self.how, "side": self.side}

    def preprocessor(self, model):
        """image (as cv2.imread gives it) -> (1, C, H, W) network input."""
        spec = model.preprocessing
        if self.how == "square":
            return lambda image_bgr: preprocess(image_bgr, spec)
        side = self.side

        def squash(image_bgr):
            return rgb_to_input(squash_and_crop(as_rgb(image_bgr), side, spec.input_size), spec)
        return squash


def squash_and_crop(rgb: np.ndarray, side: int, crop_hw) -> np.ndarray:
    """Resize to side x side (bilinear, aspect ignored), then cut the crop_hw centre, whose
    offset is (side - crop) // 2 (Caffe's Classifier: int(side / 2 - crop / 2))."""
    h, w = crop_hw
    side_h, side_w = max(side, h), max(side, w)
    squashed = cv2.resize(rgb, (side_w, side_h), interpolation=cv2.INTER_LINEAR)
    top, left = (side_h - h) // 2, (side_w - w) // 2
    return squashed[top:top + h, left:left + w]


def is_caffe_model(model) -> bool:
    """Imported from Caffe files (deepvis fetch, import-caffe, an original settings file)."""
    source = str(model.metadata.get("source", ""))
    return source.startswith("caffe") or bool(model.settings.get("caffevis_deploy_prototxt"))


def default_framing(model) -> Framing:
    return Framing("squash" if is_caffe_model(model) else "square")


def framing_from(recorded, model) -> Framing:
    """The framing a MAXES file records (find-maxes writes it), else the model's default."""
    if isinstance(recorded, dict) and recorded.get("how") in FRAMINGS:
        return Framing(recorded["how"], int(recorded.get("side", SQUASH_SIDE)))
    return default_framing(model)
