"""The original's three learning-rate policies (original-toolbox §10.2 step 5).

`progress` picks the step that would raise a linear objective by `desired_prog`
(lr * |g|^2 = desired_prog), capped at `max_lr`; `progress01` targets outputs in [0, 1]
(softmax units) and slows down as the objective approaches 1.
"""
from __future__ import annotations

import numpy as np


def learning_rate(policy: str, params: dict, grad: np.ndarray, obj: float
                  ) -> tuple[float, float | None]:
    """(lr, predicted progress lr*|g|^2, or None under the constant policy)."""
    if policy == "constant":
        return params["lr"], None
    g2 = float(np.square(grad).sum())
    if policy == "progress":
        desired = params["desired_prog"]
    elif policy == "progress01":
        desired = min(params["early_prog"], params["late_prog_mult"] * (1 - obj))
    else:
        raise ValueError(f"unknown lr policy {policy!r}")
    # |g|^2 can underflow to 0 for a tiny nonzero gradient; the original's float division
    # then gave inf, i.e. max_lr
    lr = min(params["max_lr"], desired / g2) if g2 > 0 else params["max_lr"]
    return lr, lr * g2
