"""Blob names as file names, and as short labels.

Exporters name tensors as they like: `/layer1/layer1.0/conv1/Conv_output_0` (torch's legacy
exporter), `onnx::Conv_123`, `inception_3a/1x1` (Caffe). A file or folder named after a blob
must be one flat, portable name that maps back to the blob, so `file_name` keeps letters,
digits, `-`, `_` and `.` (not a leading `.`) and writes every other byte of the UTF-8 name as
`~XX` (hex), `~` included: Caffe's `conv1` stays `conv1`, and `blob_name` inverts it exactly.
Names too long for a file system (over 200 characters once escaped) end in a hash instead;
`match_blob` maps those back against the model's blob names.

`short_name` is the toolbox's automatic pretty name for exporter paths (the original's
`caffevis_layer_pretty_name_fn`): the module path of the node, without the repeated scope
prefixes and the `_output_0` tail.
"""
from __future__ import annotations

import hashlib
import re
import string

_SAFE = frozenset(string.ascii_letters + string.digits + "-_.")
_MAX = 200
_ESCAPE = re.compile(r"~([0-9A-F]{2})")


def file_name(blob: str) -> str:
    """A flat, safe file name for `blob` that `blob_name` (or `match_blob`) maps back."""
    out = []
    for i, ch in enumerate(blob):
        if ch in _SAFE and not (i == 0 and ch == "."):
            out.append(ch)
        else:
            out.append("".join(f"~{b:02X}" for b in ch.encode("utf-8")))
    name = "".join(out) or "~"
    if len(name) > _MAX:
        digest = hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
        name = f"{name[:_MAX - 20]}~~{digest}"
    return name


def blob_name(name: str) -> str | None:
    """The blob a `file_name` came from; None for a shortened (hashed) one."""
    if "~~" in name:
        return None
    if name == "~":
        return ""
    data = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(name):
        data += name[pos:match.start()].encode("utf-8")
        data.append(int(match.group(1), 16))
        pos = match.end()
    data += name[pos:].encode("utf-8")
    return data.decode("utf-8")


def match_blob(name: str, blobs) -> str | None:
    """The blob among `blobs` whose file name is `name`."""
    for blob in blobs:
        if file_name(blob) == name:
            return blob
    return None


_OUTPUT_TAIL = re.compile(r"_output_(\d+)$")


def short_name(blob: str) -> str:
    """`/layer1/layer1.0/conv1/Conv_output_0` -> `layer1.0.conv1`; other names unchanged."""
    if not blob.startswith("/") or "/" not in blob[1:]:
        tail = _OUTPUT_TAIL.search(blob)
        return blob[1:tail.start()] if blob.startswith("/") and tail else blob
    parts = [p for p in blob[1:].split("/") if p]
    op = _OUTPUT_TAIL.sub(lambda m: "" if m.group(1) == "0" else f":{m.group(1)}", parts[-1])
    path = ""
    for scope in parts[:-1]:
        # the legacy exporter repeats the parent's name: /layer1/layer1.0/... is layer1.0
        path = scope if not path or scope.startswith(path + ".") else f"{path}.{scope}"
    return path or op


def short_names(blobs) -> list[str]:
    """`short_name` of each blob, with the op added (then a count) where two would clash."""
    first = [short_name(b) for b in blobs]
    counts: dict[str, int] = {}
    for name in first:
        counts[name] = counts.get(name, 0) + 1
    out = []
    for blob, name in zip(blobs, first):
        if counts[name] > 1 and blob.startswith("/"):
            op = _OUTPUT_TAIL.sub(lambda m: "" if m.group(1) == "0" else f":{m.group(1)}",
                                  blob.rsplit("/", 1)[-1])
            name = f"{name}.{op}" if name != op else name
        out.append(name)
    seen: dict[str, int] = {}
    unique = []
    for name in out:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 and out.count(name) == 1 else f"{name}#{seen[name]}")
    return unique
