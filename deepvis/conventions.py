"""Named preprocessing conventions, and the ones ONNX files announce in their metadata.

A convention says how RGB pixels 0..255 become the network's input: the channel order, the
mean subtracted and the scale multiplied after it (deepvis.preprocess). Values are for three
channels in the network's order; other channel counts adapt (`for_channels`).
"""
from __future__ import annotations

import json

from .errors import DeepvisError

_IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

CONVENTIONS = {
    # torchvision's ImageNet models: RGB, (x/255 - mean) / std
    "torchvision": {"channel_swap": None, "mean": list(_IMAGENET_MEAN),
                    "scale": [1 / s for s in _IMAGENET_STD]},
    # Caffe's ImageNet models: BGR, minus the ImageNet pixel mean (B, G, R), scale 1
    "caffe": {"channel_swap": [2, 1, 0], "mean": [103.939, 116.779, 123.68], "scale": 1.0},
    # TensorFlow / Keras "tf" mode (Inception, MobileNet): RGB to [-1, 1]
    "tf": {"channel_swap": None, "mean": [127.5] * 3, "scale": 1 / 127.5},
    # TFLite / EfficientNet-Lite: RGB, (x - 127) / 128
    "lite": {"channel_swap": None, "mean": [127.0] * 3, "scale": 1 / 128},
}
DEFAULT = "torchvision"

# Windows ML's image metadata (Image.BitmapPixelFormat, Image.NominalPixelRange)
_PIXEL_FORMATS = {"rgb8": None, "rgba8": None, "gray8": None, "bgr8": [2, 1, 0],
                  "bgra8": [2, 1, 0, 3]}
_PIXEL_RANGES = {"nominalrange_0_255": (0.0, 1.0), "normalized_0_1": (0.0, 1 / 255),
                 "normalized_1_1": (127.5, 1 / 127.5)}


def convention(name: str) -> dict:
    key = str(name).strip().lower()
    if key not in CONVENTIONS:
        raise DeepvisError(f"unknown preprocessing convention {name!r}; known: "
                           f"{', '.join(CONVENTIONS)}")
    return dict(CONVENTIONS[key])


def from_metadata(props: dict[str, str]) -> dict:
    """Preprocessing the ONNX file's metadata_props announce, as far as they do.

    Read: `deepvis.convention` (a name above); `mean` and `std` (JSON or comma-separated
    lists, in 0..1 units when every value is at most 1, else in pixels), `channel_order`
    (RGB or BGR); Windows ML's `Image.BitmapPixelFormat` (Rgb8, Bgr8, Gray8, Rgba8, Bgra8)
    and `Image.NominalPixelRange` (NominalRange_0_255, Normalized_0_1, Normalized_1_1).
    """
    out: dict = {}
    lower = {k.lower(): v for k, v in props.items()}
    name = lower.get("deepvis.convention")
    if name:
        out.update(convention(name))
    fmt = lower.get("image.bitmappixelformat", "").lower()
    if fmt in _PIXEL_FORMATS:
        out["channel_swap"] = _PIXEL_FORMATS[fmt]
        out["color"] = "gray" if fmt == "gray8" else ("rgba" if fmt.endswith("a8") else "rgb")
    pixel_range = lower.get("image.nominalpixelrange", "").lower()
    if pixel_range in _PIXEL_RANGES:
        mean, scale = _PIXEL_RANGES[pixel_range]
        out.update(mean=[mean] * 3 if mean else None, scale=scale)
    order = lower.get("channel_order", lower.get("color_order", "")).strip().upper()
    if order in ("RGB", "BGR"):
        out["channel_swap"] = [2, 1, 0] if order == "BGR" else None
    mean, std = _numbers(lower.get("mean")), _numbers(lower.get("std"))
    if mean is not None or std is not None:
        unit = 255.0 if all(abs(v) <= 1 for v in (mean or []) + (std or [])) else 1.0
        if mean is not None:
            out["mean"] = [v * unit for v in mean]
        if std is not None:
            if any(v == 0 for v in std):
                raise DeepvisError(f"the model's metadata gives a std of 0: {std}")
            out["scale"] = [1 / (v * unit) for v in std]
    return out


def for_channels(values, channels: int, pad: float):
    """A per-channel list made to fit `channels`: averaged for one, padded with `pad`
    (or cut) for others; scalars and None pass through."""
    if values is None or isinstance(values, (int, float, str)):
        return values
    values = [float(v) for v in values]
    if len(values) == channels or len(values) not in (1, 3):
        return values
    if channels == 1:
        return [sum(values) / len(values)]
    if len(values) == 1:
        return values * channels
    return (values + [pad] * channels)[:channels]


def swap_for_channels(swap, channels: int):
    """A swap of three channels extended to keep further channels in place; None for one."""
    if swap is None or channels == len(swap) or len(swap) != 3:
        return swap
    if channels == 1:
        return None
    if channels > 3:
        return list(swap) + list(range(3, channels))
    return swap


def _numbers(text):
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = [p for p in str(text).replace(";", ",").split(",") if p.strip()]
    value = value if isinstance(value, list) else [value]
    try:
        return [float(v) for v in value]
    except (TypeError, ValueError):
        raise DeepvisError(f"the model's metadata holds {text!r} where numbers belong") from None
