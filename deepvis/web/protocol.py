"""What a browser may send over the WebSocket, checked before anything acts on it.

Messages are JSON objects with a `type`; anything else (binary data, bad JSON, unknown
types, out-of-range numbers) raises ProtocolError, which the server answers with an error
message while the connection and the server go on.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from ..toolbox.keys import KEY_PATTERNS, NAMED_KEYS, key_name

MAX_MESSAGE = 4096          # bytes; every valid message is far smaller
MAX_COORD = 1 << 16


class ProtocolError(ValueError):
    """A message the server refuses; its text is sent back to the browser."""


def _codes() -> dict[str, int]:
    """Key name -> the code the window would get for it (X11 codes for named keys), so the
    page's keys go through the window's own key reader."""
    codes: dict[str, int] = {}
    for name, code, mask in KEY_PATTERNS:
        if name in codes or name in ("shift", "ctrl"):
            continue
        if len(name) == 1 or mask == 0xffff or name in ("esc", "enter"):
            codes[name] = code
    missing = [n for n in NAMED_KEYS if n not in codes]
    assert not missing, missing
    assert all(key_name(c) == n for n, c in codes.items())
    return codes


KEY_CODES = _codes()


@dataclass(frozen=True)
class Key:
    name: str

    @property
    def code(self) -> int:
        return KEY_CODES[self.name]


@dataclass(frozen=True)
class Pointer:
    """A click or a hover at (x, y) in frame pixels."""
    action: str                 # "click" or "hover"
    x: int
    y: int


@dataclass(frozen=True)
class ChooseInput:
    index: int


def parse(raw) -> Key | Pointer | ChooseInput:
    if not isinstance(raw, str):
        raise ProtocolError("messages are JSON text, not binary; upload images with POST")
    if len(raw) > MAX_MESSAGE:
        raise ProtocolError(f"message longer than {MAX_MESSAGE} bytes")
    try:
        msg = json.loads(raw)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("a message must be a JSON object")
    kind = msg.get("type")
    if kind == "key":
        name = msg.get("key")
        if not isinstance(name, str) or name not in KEY_CODES:
            raise ProtocolError(f"unknown key {name!r}: letters, digits, or one of "
                                f"{', '.join(NAMED_KEYS)}")
        return Key(name)
    if kind in ("click", "hover"):
        return Pointer(kind, _int(msg, "x", MAX_COORD), _int(msg, "y", MAX_COORD))
    if kind == "input":
        return ChooseInput(_int(msg, "index", 1 << 30))
    raise ProtocolError(f"unknown message type {kind!r}: key, click, hover or input")


def _int(msg: dict, field: str, limit: int) -> int:
    value = msg.get(field)
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0 <= value < limit or value != value:
        raise ProtocolError(f"{field} must be a number in [0, {limit})")
    return int(value)
