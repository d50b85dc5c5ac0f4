"""Judges: other networks asked which class an image shows.

An optimized image is only as good as its recognizability: if independent networks,
trained on the same labels, see the intended class in it, the image carries the class's
features rather than one network's quirks. Each judge preprocesses every image its own
way (square crop or stretch, resize to its input, channel order, mean, scale), so any
picture size works.

    from deepvis.judges import judge
    verdicts = judge([rgb_uint8], [130])          # EfficientNet-Lite1 and -Lite2
    verdicts[0]["judges"]["efficientnet-lite1"]   # {"rank": 1, "top1": True, "top5": True,
                                                  #  "top": [{"class", "label", "prob"}, ...]}
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from .errors import DeepvisError
from .preprocess import rgb_to_input, to_square

DEFAULT_JUDGES = ("efficientnet-lite1", "efficientnet-lite2")
SHORT_NAMES = {"lite0": "efficientnet-lite0", "lite1": "efficientnet-lite1",
               "lite2": "efficientnet-lite2"}
BATCH = 16

_cache: dict = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Judge:
    """A loaded judge: its model, the blob it is read at, and its class names (if any)."""
    name: str
    model: object
    blob: str

    @property
    def classes(self) -> int:
        return int(np.prod(self.model.blob_shapes[self.blob][1:]))

    @property
    def labels(self) -> list[str] | None:
        return self.model.labels

    def label(self, index: int) -> str:
        labels = self.labels
        return labels[index] if labels and index < len(labels) else str(index)


def judge_name(name: str) -> str:
    """'lite1' -> 'efficientnet-lite1'; anything else (model name, .onnx, settings) as is."""
    name = name.strip()
    return SHORT_NAMES.get(name, name)


def output_blob(model) -> str:
    """The probability blob the settings name, else the graph's last blob."""
    name = model.settings.get("caffevis_prob_layer")
    return name if name in model.blob_names else model.blob_names[-1]


def load_judge(name: str, backend: str = "auto", gpu: bool = False) -> Judge:
    """A judge, loaded once per process (and shared by threads)."""
    name = judge_name(name)
    key = (name, backend, gpu)
    with _cache_lock:
        if key not in _cache:
            from .model import load_model
            model = load_model(name, backend=backend,
                               overrides={"caffevis_mode_gpu": True} if gpu else None)
            _cache[key] = Judge(name, model, output_blob(model))
        return _cache[key]


def check_label_set(judge_: Judge, labels) -> None:
    """`labels` (names or a count) must have as many classes as the judge outputs."""
    if labels is None:
        return
    count = labels if isinstance(labels, int) else len(labels)
    if count != judge_.classes:
        raise DeepvisError(f"judge {judge_.name!r} knows {judge_.classes} classes but the "
                           f"images' model has {count}; a judge needs the same label set")


def as_pixels(image) -> np.ndarray:
    """An RGB picture (H, W, 3): uint8 stays uint8 (resized as the toolbox resizes photos),
    anything else becomes float32 0..255."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise DeepvisError(f"a judge needs RGB images of shape (H, W, 3), got {image.shape}")
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise DeepvisError(f"a judge needs numeric pixels, got dtype {image.dtype}")
    return image if image.dtype == np.uint8 else image.astype(np.float32)


def judge_inputs(judge_: Judge, images) -> np.ndarray:
    """Each picture through the judge's own preprocessing, stacked (N, C, H, W)."""
    spec = judge_.model.preprocessing
    return np.concatenate([rgb_to_input(to_square(as_pixels(im), spec.stretch), spec)
                           for im in images])


def scores(judge_: Judge, images, batch: int = BATCH) -> np.ndarray:
    """(N, classes) outputs of the judge's blob for the pictures."""
    rows = []
    for start in range(0, len(images), batch):
        x = judge_inputs(judge_, images[start:start + batch])
        out = judge_.model.forward(x, [judge_.blob])[judge_.blob]
        rows.append(out.reshape(len(x), -1))
    return np.concatenate(rows) if rows else np.zeros((0, judge_.classes), np.float32)


def verdict(judge_: Judge, row: np.ndarray, cls: int, k: int) -> dict:
    """Rank of `cls` (1 = first; ties keep class order), top-1/top-5 hits, the top k."""
    order = np.argsort(-row, kind="stable")
    rank = int(np.flatnonzero(order == cls)[0]) + 1
    top = [{"class": int(c), "label": judge_.label(int(c)), "prob": float(row[c])}
           for c in order[:k]]
    return {"rank": rank, "top1": rank <= 1, "top5": rank <= 5, "top": top}


def judge(images, classes, judges=DEFAULT_JUDGES, k: int = 5, labels=None,
          backend: str = "auto", gpu: bool = False) -> list[dict]:
    """Ask each judge which class each picture shows.

    images: RGB pictures (H, W, 3), uint8 or float 0..255, any size. classes: the intended
    class of each. labels: the label names (or their count) of the model the pictures were
    made for; each judge must have that many classes. Returns, per picture,
    {"class", "label", "judges": {name: {"rank", "top1", "top5", "top": k entries}}}.
    """
    images, classes = list(images), [int(c) for c in classes]
    if len(images) != len(classes):
        raise DeepvisError(f"{len(images)} images but {len(classes)} classes; give one class "
                           "per image")
    if k < 1:
        raise DeepvisError(f"k must be at least 1, got {k}")
    loaded = [j if isinstance(j, Judge) else load_judge(j, backend, gpu) for j in judges]
    if not loaded:
        raise DeepvisError("no judges given")
    for j in loaded:
        check_label_set(j, labels)
        outside = [c for c in classes if not 0 <= c < j.classes]
        if outside:
            raise DeepvisError(f"class {outside[0]} is outside judge {j.name!r}'s "
                               f"{j.classes} classes")
    names = labels if labels is not None and not isinstance(labels, int) else loaded[0].labels
    out = [{"class": c, "label": names[c] if names and c < len(names) else str(c), "judges": {}}
           for c in classes]
    for j in loaded:
        for entry, row, cls in zip(out, scores(j, images), classes):
            entry["judges"][j.name] = verdict(j, row, cls, k)
    return out


def tally(verdicts: list[dict]) -> dict:
    """Per judge: how many pictures it put first (top1) and among its first five (top5)."""
    counts: dict = {}
    for entry in verdicts:
        for name, v in entry["judges"].items():
            c = counts.setdefault(name, {"images": 0, "top1": 0, "top5": 0})
            c["images"] += 1
            c["top1"] += int(v["top1"])
            c["top5"] += int(v["top5"])
    return counts
