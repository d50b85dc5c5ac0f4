"""Checking a file against the size and digests its publisher gave.

Several digest kinds exist because publishers disagree: BVLC's model readmes give
sha1, the OpenVINO model zoo gives sha256, and GitHub-hosted weights can be checked
by their git blob id (`git hash-object`).
"""
from __future__ import annotations

import hashlib
import pathlib
from dataclasses import dataclass

CHUNK = 1 << 20


@dataclass(frozen=True)
class Expected:
    """What a published file must look like; any field may be unknown (None)."""

    size: int | None = None
    sha256: str | None = None
    sha1: str | None = None
    git_blob: str | None = None

    @property
    def has_digest(self) -> bool:
        return any((self.sha256, self.sha1, self.git_blob))


def digests(path: pathlib.Path) -> dict[str, str]:
    """sha256, sha1 and git blob id of a file, from one read."""
    size = path.stat().st_size
    sha256, sha1 = hashlib.sha256(), hashlib.sha1()
    blob = hashlib.sha1(b"blob %d\0" % size)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha256.update(chunk)
            sha1.update(chunk)
            blob.update(chunk)
    return {"sha256": sha256.hexdigest(), "sha1": sha1.hexdigest(), "git_blob": blob.hexdigest()}


def mismatches(path: pathlib.Path, expected: Expected) -> list[str]:
    """How the file differs from `expected`; empty when it matches (or nothing is known)."""
    size = path.stat().st_size
    if expected.size is not None and size != expected.size:
        return [f"size is {size:,} bytes, expected {expected.size:,}"]
    if not expected.has_digest:
        return []
    found = digests(path)
    return [f"{kind} is {found[kind]}, expected {want}"
            for kind, want in (("sha256", expected.sha256), ("sha1", expected.sha1),
                               ("git_blob", expected.git_blob))
            if want and found[kind] != want.lower()]
