"""The in-memory form of a Caffe network that both parsers produce and the converter reads.

Parsing (prototxt text or .caffemodel binary) and conversion to ONNX are kept
apart: the parsers normalise V1/V2 files, legacy input forms and legacy blob
shapes into these records, so the converter sees one shape of data.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Layer:
    name: str
    type: str                      # V2 type string ("Convolution", "ReLU", ...), V1 enums mapped
    bottoms: list[str] = field(default_factory=list)
    tops: list[str] = field(default_factory=list)
    # Parameter messages keyed by their V2 field name ("convolution_param", ...). Each is a dict
    # of field name -> value; repeated fields are lists, enums are their names ("MAX", "AVE").
    params: dict[str, dict] = field(default_factory=dict)
    blobs: list[np.ndarray] = field(default_factory=list)   # float32, as stored (legacy 4-D kept)
    include: list[dict] = field(default_factory=list)      # NetStateRule dicts
    exclude: list[dict] = field(default_factory=list)

    def param(self, key: str) -> dict:
        return self.params.get(key, {})


@dataclass
class Net:
    name: str = ""
    inputs: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)  # (blob, N,C,H,W)
    layers: list[Layer] = field(default_factory=list)
    force_backward: bool = False
    source: str = ""               # file the net came from, for error messages
