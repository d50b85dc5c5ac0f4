"""The input pane: the current frame, resized to the pane (original-toolbox §2.3)."""
from __future__ import annotations

import cv2
import numpy as np


def draw(view: np.ndarray, frame, siamese: bool = False) -> None:
    if frame is None:
        return
    height, width = view.shape[:2]
    if siamese:
        halves = [cv2.resize(f, (width // 2, height), interpolation=cv2.INTER_LINEAR)
                  for f in frame]
        shown = np.concatenate(halves, axis=1)
    else:
        shown = cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)
    view[:, :shown.shape[1]] = shown
