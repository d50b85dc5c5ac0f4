"""Default units of the figure commands, per model.

caffenet-yos: the paper's own units. Figure 3 of Yosinski et al. (2015) shows fc8 class
units; the classes below are those its panels name (flamingo, pelican, hartebeest, pool
("billiard") table, ground beetle, Indian cobra, station wagon, black swan, gorilla) plus
ostrich and school bus, the examples the paper's project page names beside flamingo. The
reference material this project works from lists no unit numbers for the paper's figures,
so the indices are those classes' ILSVRC-2012 indices. The paper's Figure 4 shows
hand-picked units of conv1..fc8 without numbers; its conv5 units here are 151 (the face
detector of the paper's Figure 2) and 26 (the wheel unit of the toolbox's documented
screenshot), the others a fixed, spread-out choice.

efficientnet-lite0 (the embedded model) and -lite1/-lite2: the same class units where the
paper's classes exist (ImageNet order), completed to 20 with common classes; Figure 4
takes six units from each of an early conv blob (stem), two middle blobs (block03,
block06), a late one (block11), the last block (block16) and the class layer (fc). The
last block, not the 1x1 `head` conv after it: head is a ReLU6 output, whose units stop at
6, and their pictures with them.

Other models: Figure 3 uses the first 10 units of the class layer; Figure 4 six evenly
spaced units of five conv blobs spread over the depth and of the class layer.
"""
from __future__ import annotations

import numpy as np

from ..errors import DeepvisError

PAPER_CLASSES = (130, 144, 351, 736, 302, 63, 436, 100, 366, 9, 779)
LITE_CLASSES = PAPER_CLASSES + (1, 323, 327, 107, 145, 340, 971, 285, 954)   # 20 units

FIGURE3 = {
    "caffenet-yos": ("fc8", PAPER_CLASSES),
    "caffenet": ("fc8", PAPER_CLASSES),
    "efficientnet-lite0": ("fc", LITE_CLASSES),
    "efficientnet-lite1": ("fc", LITE_CLASSES),
    "efficientnet-lite2": ("fc", LITE_CLASSES),
}

_LITE_FIGURE4 = (("stem", (0, 5, 10, 15, 20, 25)), ("block03", (0, 4, 8, 12, 16, 20)),
                 ("block06", (0, 13, 26, 39, 52, 65)), ("block11", (0, 18, 36, 54, 72, 90)),
                 ("block16", (0, 64, 128, 192, 256, 319)), ("fc", (130, 9, 779, 971, 285, 1)))
FIGURE4 = {
    "caffenet-yos": (("conv1", (0, 16, 32, 48, 64, 80)), ("conv2", (0, 40, 80, 120, 160, 200)),
                     ("conv3", (0, 60, 120, 180, 240, 300)),
                     ("conv4", (0, 60, 120, 180, 240, 300)),
                     ("conv5", (151, 26, 0, 64, 128, 192)),
                     ("fc6", (0, 800, 1600, 2400, 3200, 4000)),
                     ("fc7", (0, 800, 1600, 2400, 3200, 4000)),
                     ("fc8", (130, 9, 779, 144, 366, 100))),
    "efficientnet-lite0": _LITE_FIGURE4,
    "efficientnet-lite1": _LITE_FIGURE4,
    "efficientnet-lite2": _LITE_FIGURE4,
}
FIGURE4["caffenet"] = FIGURE4["caffenet-yos"]


def model_key(name: str) -> str:
    return str(name).strip().lower()


def class_layer(model) -> str:
    """The layer whose units are classes: fc8, else the first labelled non-prob layer."""
    from ..commands.optimize import default_push_layer
    return default_push_layer(model)


def spread(count: int, n: int) -> tuple[int, ...]:
    """n units spread evenly over 0..count-1 (fewer if the layer is smaller)."""
    return tuple(sorted({int(i) for i in np.linspace(0, count - 1, min(n, count))}))


def conv_blobs(model) -> list[str]:
    return [b for b in model.blob_names[1:] if len(model.blob_shapes[b]) == 4]


def figure3_units(model, name: str) -> tuple[str, tuple[int, ...]]:
    """(layer, units) of the Figure 3 sheet for this model."""
    if model_key(name) in FIGURE3:
        return FIGURE3[model_key(name)]
    layer = class_layer(model)
    return layer, tuple(range(min(10, model.blob_shapes[layer][1])))


def figure4_units(model, name: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """((layer, units), ...) of the Figure 4 sheet for this model, one row per layer."""
    if model_key(name) in FIGURE4:
        return FIGURE4[model_key(name)]
    convs = conv_blobs(model)
    if not convs:
        raise DeepvisError("the model has no convolutional blobs; give --units")
    picks = sorted({convs[int(round(i))] for i in np.linspace(0, len(convs) - 1, 5)},
                   key=convs.index)
    rows = [(b, spread(model.blob_shapes[b][1], 6)) for b in picks]
    layer = class_layer(model)
    if layer not in picks:
        rows.append((layer, spread(model.blob_shapes[layer][1], 6)))
    return tuple(rows)


def parse_unit_rows(text: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """'conv1:0,5,9;fc8:130' -> (('conv1', (0, 5, 9)), ('fc8', (130,)))."""
    from ..optimize.params import parse_units

    rows = []
    for part in text.split(";"):
        if not part.strip():
            continue
        layer, sep, units = part.rpartition(":")
        if not sep or not layer.strip():
            raise DeepvisError(f"--units: {part.strip()!r} should read LAYER:UNITS, e.g. "
                               "conv5:151,26")
        rows.append((layer.strip(), tuple(parse_units(units, "--units"))))
    if not rows:
        raise DeepvisError("--units: no units given")
    return tuple(rows)
