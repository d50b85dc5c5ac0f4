"""Helpers shared by the benchmark scripts: the synthetic CaffeNet, timing, torch twins."""
from __future__ import annotations

import statistics
import time

import numpy as np
from onnx import numpy_helper

from deepvis.resources import models_dir


def synthetic_caffenet():
    """CaffeNet from the bundled deploy file with seeded random weights (no download needed)."""
    from deepvis.caffe.convert import net_to_onnx
    from deepvis.caffe.parse import read_prototxt

    deploy = read_prototxt(models_dir() / "caffenet-yos" / "deploy.prototxt")
    return net_to_onnx(deploy, None, random_weights_seed=0)


def weights_of(model) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def median_ms(fn, repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def interleaved_median_ms(fns: dict, repeat: int, rounds: int = 3) -> dict[str, float]:
    """Median ms of each function over `repeat` timed calls, taken in `rounds` blocks per
    function (A A A B B B ... A A A ...): a drift in machine load falls on all of them alike,
    while within a block each runs back to back, warm, as in a real loop (the first call of
    every block is not timed: it pays for the other library's threads having just run)."""
    per_block = max(1, -(-repeat // rounds))
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            fn()
            for _ in range(per_block):
                start = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


def torch_caffenet(weights: dict[str, np.ndarray]):
    """The same CaffeNet in torch (functional, ceil-mode pooling, Caffe LRN), or None."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    w = {k: torch.from_numpy(np.array(v)) for k, v in weights.items()}
    convs = {"conv1": (4, 0, 1), "conv2": (1, 2, 2), "conv3": (1, 1, 1), "conv4": (1, 1, 2),
             "conv5": (1, 1, 2)}

    def conv(x, name):
        stride, pad, groups = convs[name]
        return F.relu(F.conv2d(x, w[f"{name}.weight"], w[f"{name}.bias"], stride, pad, 1, groups))

    def pool(x):
        return F.max_pool2d(x, 3, 2, ceil_mode=True)

    def lrn(x):
        return F.local_response_norm(x, 5, alpha=1e-4, beta=0.75, k=1.0)

    def fc(x, name):
        return F.linear(x, w[f"{name}.weight"], w[f"{name}.bias"])

    def forward(x, upto="prob"):
        x = lrn(pool(conv(x, "conv1")))
        x = lrn(pool(conv(x, "conv2")))
        x = pool(conv(conv(conv(x, "conv3"), "conv4"), "conv5"))
        x = F.relu(fc(x.flatten(1), "fc6"))
        x = F.relu(fc(x, "fc7"))
        x = fc(x, "fc8")
        return x if upto == "fc8" else F.softmax(x, dim=1)

    return torch, forward
