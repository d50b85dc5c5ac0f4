"""Unpacking downloaded tarballs without letting them write outside their folder.

Every member is checked before anything is written, so a hostile or damaged
archive is refused as a whole instead of half-extracted.
"""
from __future__ import annotations

import gzip
import lzma
import pathlib
import posixpath
import tarfile
import zlib

from ..errors import DeepvisError


class UnsafeArchive(DeepvisError):
    """The archive holds a member that would land outside the target folder."""


def unsafe_reason(member: tarfile.TarInfo, links=frozenset()) -> str | None:
    """Why this member may not be extracted, or None when it is a plain, contained entry.

    `links` are the archive's symlink names: nothing may be written through one, which
    closes escapes by chains of individually harmless links.
    """
    name = member.name
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    parts = pathlib.PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        return "climbs out with '..'"
    if any("/".join(parts[:i]) in links for i in range(1, len(parts))):
        return "lies behind a symbolic link"
    if member.issym() or member.islnk():
        target = member.linkname
        if member.issym():
            target = posixpath.join(posixpath.dirname(name), target)
        if target.startswith("/") or posixpath.normpath(target).split("/")[0] == "..":
            return f"links outside the folder (to {member.linkname!r})"
        return None
    if not (member.isfile() or member.isdir()):
        return "is a device, fifo or other special file"
    return None


def safe_extract(archive, target) -> int:
    """Extract every member of `archive` under `target`; return the number of members."""
    archive, target = pathlib.Path(archive), pathlib.Path(target)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            links = frozenset(posixpath.normpath(m.name) for m in members if m.issym())
            for member in members:
                reason = unsafe_reason(member, links)
                if reason:
                    raise UnsafeArchive(f"{archive.name}: refusing to unpack, member "
                                        f"{member.name!r} {reason}; nothing was extracted")
            target.mkdir(parents=True, exist_ok=True)
            for member in members:
                tar.extract(member, target, **_filter_kwargs())
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error, lzma.LZMAError) as exc:
        raise DeepvisError(f"{archive} is not a readable tar archive ({exc}); delete it and "
                           "rerun to download it again") from exc
    return len(members)


def _filter_kwargs() -> dict:
    # Python 3.12 (and 3.8.17+/3.9.17+/3.10.12+/3.11.4+) re-checks each member against the
    # files already on disk; older versions rely on the checks above alone.
    return {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
