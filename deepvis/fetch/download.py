"""Resumable, verified, all-or-nothing downloads of one file from a list of URLs.

Bytes stream into `<name>.part` beside the target; the part is moved into place
(os.replace) only after its size and digests match, so the target path either
does not exist or holds a verified file. A broken connection resumes with an HTTP
Range request; a server that ignores Range makes the download restart cleanly.

A file with no published digest is resumed only where the server's bytes just before the
resume point equal the part's last bytes (so a zero-filled or foreign part starts over), and
is installed only when it is well-formed for its kind (verify.structural_problems): an HTML
error page, a truncated body or a damaged resume is refused, never pinned. One process at a
time works on a file: others wait for its lock (deepvis.locks), then find it installed.
"""
from __future__ import annotations

import http.client
import os
import pathlib
import re
import socket
import sys
import urllib.error
import urllib.request
from typing import Callable

from tqdm import tqdm

from ..errors import DeepvisError
from ..fileio import check_destination, check_regular, write_bytes
from ..locks import shared_cache_entry
from .verify import CHUNK, Expected, digests, mismatches, structural_problems

TIMEOUT_S = 30.0        # per connect and per read; a stalled server fails over to the next URL
RETRIES = 3             # resumes per URL after a dropped connection
USER_AGENT = "deepvis-fetch (+https://pypi.org/project/deepvis/)"
OVERLAP = 64 * 1024     # bytes re-read before a resume point to check that the part continues

Say = Callable[[str], None]


class DownloadError(DeepvisError):
    """No URL gave a verified file; nothing was installed."""


class _SourceFailed(Exception):
    """This URL cannot deliver the file now; the next one is tried."""


def to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def part_path(dest: pathlib.Path) -> pathlib.Path:
    return dest.with_name(dest.name + ".part")


def record_path(dest: pathlib.Path) -> pathlib.Path:
    """sha256sum-style record of a file that has no published digest."""
    return dest.with_name(dest.name + ".sha256")


def ensure_file(urls, dest, expected: Expected, *, rerun: str = "the same command",
                timeout: float = TIMEOUT_S, retries: int = RETRIES, progress: bool | None = None,
                say: Say = to_stderr) -> pathlib.Path:
    """Make `dest` hold the verified file: keep a good existing copy, else download it."""
    dest = pathlib.Path(dest)
    with shared_cache_entry(dest, "downloading", say=say):
        check_regular(dest)
        if dest.exists():
            _check_existing(dest, expected, say)
            return dest
        return download(urls, dest, expected, rerun=rerun, timeout=timeout, retries=retries,
                        progress=progress, say=say)


def _check_existing(dest: pathlib.Path, expected: Expected, say: Say) -> None:
    """A file already in place: against the published digest, else against the sha256 this
    cache recorded, and (with no published digest) for its structure too, so a damaged file
    pinned by an older deepvis is caught as well."""
    published = expected.has_digest
    record = record_path(dest)
    problems = []
    if not published and record.exists():
        recorded = _read_record(record)
        if recorded is None:
            problems.append(f"its record {record.name} is not a sha256 line")
        else:
            expected = Expected(size=expected.size, sha256=recorded)
    problems = problems or mismatches(dest, expected)
    if not problems and not published:
        problems = structural_problems(dest)
    if problems:
        raise DeepvisError(f"{dest} exists but does not match the published file "
                           f"({'; '.join(problems)}); it is damaged or a different file. "
                           "Delete it and rerun to download it again.")
    if not expected.has_digest:
        _record_digest(dest, say)
    say(f"{dest.name}: already downloaded and verified")


def _read_record(record: pathlib.Path) -> str | None:
    try:
        check_regular(record)
        words = record.read_text(encoding="ascii", errors="replace")[:200].split()
    except (OSError, DeepvisError):
        return None
    if words and len(words[0]) == 64 and all(c in "0123456789abcdef" for c in words[0]):
        return words[0]
    return None


def download(urls, dest, expected: Expected, *, rerun: str = "the same command",
             timeout: float = TIMEOUT_S, retries: int = RETRIES, progress: bool | None = None,
             say: Say = to_stderr) -> pathlib.Path:
    """Try each URL in turn until one yields a file matching `expected`; install it at `dest`."""
    dest = check_destination(dest, overwrite=True)
    part = check_regular(part_path(dest))
    dest.parent.mkdir(parents=True, exist_ok=True)
    if progress is None:
        progress = sys.stderr.isatty()
    failures = []
    for url in urls:
        say(f"{dest.name}: downloading {url}")
        try:
            _fetch(url, part, expected, timeout, retries, progress, say)
        except _SourceFailed as exc:
            failures.append(f"{url}: {exc}")
            say(f"  failed: {exc}")
            if part.exists() and part.stat().st_size == 0:
                part.unlink()
            continue
        problems = mismatches(part, expected)
        if not problems and not expected.has_digest:
            problems = structural_problems(part, dest.name)
        if problems:
            part.unlink()
            failures.append(f"{url}: the downloaded file is not the published one "
                            f"({'; '.join(problems)}); it was deleted")
            say(f"  failed: checksum mismatch ({'; '.join(problems)}); deleted the download")
            continue
        _fsync(part)
        os.replace(part, dest)
        say(f"  installed {dest}")
        if not expected.has_digest:
            _record_digest(dest, say)
        return dest
    raise DownloadError(_failure_message(dest, failures, part, rerun))


def _failure_message(dest, failures, part, rerun) -> str:
    tried = "\n".join(f"  {line}" for line in failures) or "  (no URL to try)"
    kept = (f"\nThe partial download {part} is kept; rerunning resumes it."
            if part.exists() else "")
    return (f"could not download {dest.name}; nothing was installed. Tried:\n{tried}{kept}\n"
            f"What to do: retry later ({rerun}), try another copy with --mirror URL, or get the "
            f"file some other way, place it at {dest} and rerun {rerun} (it is verified, "
            "not downloaded again).")


def _record_digest(dest: pathlib.Path, say: Say) -> None:
    sha256 = digests(dest)["sha256"]
    record = record_path(dest)
    write_bytes(record, f"{sha256}  {dest.name}\n".encode(), overwrite=True)
    say(f"  {dest.name} has no published checksum; its sha256 is {sha256} "
        f"(recorded in {record.name}; compare it with a trusted copy if you can)")


class _RangeRejected(Exception):
    """HTTP 416: the server will not send bytes from the requested offset."""

    def __init__(self, total: int | None):
        super().__init__(total)
        self.total = total


def _fetch(url, part: pathlib.Path, expected: Expected, timeout, retries, progress, say) -> None:
    """Bring `part` to the full file from `url`, resuming what is already there."""
    why = ""
    for _ in range(retries + 1):
        offset = part.stat().st_size if part.exists() else 0
        if expected.size is not None and offset > expected.size:
            part.unlink()
            offset = 0
        if expected.size is not None and offset == expected.size:
            return
        overlap = 0 if expected.has_digest else min(offset, OVERLAP)
        try:
            response = _open(url, offset - overlap, timeout)
        except _RangeRejected as exc:
            if exc.total == offset:
                return                                      # the part was already complete
            why = "the server refused to resume the download"
            part.unlink()
            say(f"  {why}; starting again from the beginning")
            continue
        with response:
            mode, total = _plan(response, offset - overlap, expected, say)
            if mode == "ab" and overlap and not _continues(response, part, overlap):
                mode = None
            if mode is None:
                why = "the server answered the resume request with other bytes"
                if overlap:
                    why = ("the partial download does not continue into the file on the server "
                           "(zero-filled, damaged, or part of another file)")
                part.unlink()
                say(f"  {why}; starting again from the beginning")
                continue
            try:
                _stream(response, part, mode, total, progress)
                lost = None
            except (OSError, http.client.HTTPException) as exc:
                lost = _describe(exc, timeout)
        have = part.stat().st_size if part.exists() else 0
        if lost is None and (total is None or have >= total):
            return
        why = f"{lost or 'the server closed the connection early'} at {have:,} bytes"
        say(f"  {why}; resuming")
    kept = "; the partial download is kept" if part.exists() else ""
    raise _SourceFailed(f"{why}, {retries} retries failed{kept}")


def _open(url: str, offset: int, timeout: float):
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                      timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            raise _RangeRejected(_range_total(exc.headers.get("Content-Range"))) from None
        raise _SourceFailed(f"HTTP {exc.code} {exc.reason}") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise _SourceFailed(_describe(exc, timeout)) from None


_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)")


def _range_start(header: str | None) -> int | None:
    match = _CONTENT_RANGE.match(header or "")
    return int(match.group(1)) if match and match.group(1) else None


def _range_total(header: str | None) -> int | None:
    match = _CONTENT_RANGE.match(header or "")
    return int(match.group(2)) if match and match.group(2) != "*" else None


def _plan(response, offset: int, expected: Expected, say: Say):
    """(file mode for the part, expected total size); mode None means restart from zero."""
    status = getattr(response, "status", None) or 200
    if "html" in (response.headers.get("Content-Type") or "").lower():
        raise _SourceFailed("the server sent a web page (text/html), not the file")
    length = response.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    if status == 206:
        if _range_start(response.headers.get("Content-Range")) != offset:
            return None, None
        mode, start = ("ab" if offset else "wb"), offset
    else:
        if offset:
            say("  the server ignores resume requests; downloading again from the beginning")
        mode, start = "wb", 0
    total = start + length if length is not None else expected.size
    if expected.size is not None and total != expected.size:
        raise _SourceFailed(f"the server offers {total:,} bytes, expected {expected.size:,} "
                            "(wrong file or an error page)")
    return mode, total


def _continues(response, part: pathlib.Path, overlap: int) -> bool:
    """Whether the next `overlap` bytes of the response equal the last bytes of the part."""
    with open(part, "rb") as f:
        f.seek(-overlap, os.SEEK_END)
        tail = f.read()
    got = b""
    try:
        while len(got) < overlap and (chunk := response.read(overlap - len(got))):
            got += chunk
    except (OSError, http.client.HTTPException):
        return False
    return got == tail


def _stream(response, part: pathlib.Path, mode: str, total: int | None, progress: bool) -> None:
    with open(part, mode) as out, tqdm(total=total, initial=out.tell(), unit="B",
                                       unit_scale=True, unit_divisor=1024, desc=part.stem,
                                       file=sys.stderr, disable=not progress,
                                       leave=False) as bar:
        while chunk := response.read(CHUNK):
            out.write(chunk)
            bar.update(len(chunk))


def _describe(exc: BaseException, timeout: float) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, socket.gaierror):
        return "host not found (DNS lookup failed)"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, http.client.IncompleteRead):
        return "the connection dropped"
    if isinstance(reason, ConnectionError):
        return f"the connection broke ({reason.__class__.__name__})"
    return str(reason) or reason.__class__.__name__


def _fsync(path: pathlib.Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())
