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


# -- files without a published digest: is it at least the kind of file it should be? ----------
_HTML_STARTS = (b"<!doctype", b"<html", b"<head", b"<body", b"<?xml", b"<title")
ZERO_BLOCK = 4096


def looks_like_html(head: bytes) -> bool:
    """An error or login page served in place of the file."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith(_HTML_STARTS) or b"<html" in text[:1024]


def structural_problems(path: pathlib.Path, name: str | None = None) -> list[str]:
    """Why `path` is not a well-formed file of the kind its name says (caffemodel, .npy, tar,
    .binaryproto); empty when it is. Used before pinning a file that has no published digest,
    so an error page, a truncated body or a zero-filled resume is never recorded as trusted."""
    name = (name or path.name).lower()
    size = path.stat().st_size
    if size == 0:
        return ["the file is empty"]
    with open(path, "rb") as f:
        head = f.read(ZERO_BLOCK)
        f.seek(max(0, size - ZERO_BLOCK))
        tail = f.read(ZERO_BLOCK)
    if looks_like_html(head):
        return ["it is a web page (HTML), not the file; the server sent an error or login page"]
    zero_head, zero_tail = not head.strip(b"\0"), size > ZERO_BLOCK and not tail.strip(b"\0")
    if zero_head or zero_tail:
        where = "start" if zero_head else "end"
        return [f"the {ZERO_BLOCK:,} bytes at its {where} are all zeros (a damaged or "
                "zero-filled download)"]
    checker = _checker_for(name)
    if checker is None:
        return []
    try:
        checker(path)
    except Exception as exc:  # noqa: BLE001 - any failure to parse means "not this kind"
        return [f"not a readable {checker.__doc__}: {str(exc)[:200] or exc.__class__.__name__}"]
    return []


def _checker_for(name: str):
    if name.endswith(".npy"):
        return _npy
    if name.endswith((".tar", ".tar.gz", ".tgz")):
        return _tarball
    if name.endswith(".binaryproto"):
        return _binaryproto
    if name.endswith(".caffemodel") or "weights" in name:
        return _caffemodel
    return None


def _npy(path):
    """NumPy .npy array"""
    import numpy as np

    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f"unknown .npy version {version}")
        shape, _, dtype = read_header(f)
        offset = f.tell()
    if dtype.hasobject:
        raise ValueError("holds Python objects")
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if path.stat().st_size != expected:
        raise ValueError(f"{path.stat().st_size:,} bytes, its header says {expected:,}")


def _tarball(path):
    """tar archive"""
    import tarfile

    with tarfile.open(path, "r:*") as tar:
        count = 0
        for member in tar:
            if member.isfile():
                tar.extractfile(member).read()      # reads to the end: a cut archive fails
            count += 1
    if count == 0:
        raise ValueError("no members")


def _binaryproto(path):
    """Caffe .binaryproto mean"""
    from ..caffe.caffemodel import read_binaryproto

    read_binaryproto(path)


def _caffemodel(path):
    """Caffe .caffemodel"""
    from ..caffe.caffemodel import decode_caffemodel

    net = decode_caffemodel(path)
    layers = list(net.get("layer") or []) + list(net.get("layers") or [])
    if not any(layer.get("blobs") for layer in layers):
        raise ValueError("no layer with weights")
