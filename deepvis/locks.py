"""File locks for state that several deepvis processes may share: the download cache, the
converted-model and gradient-graph caches, and every output a command writes.

A lock is a hidden `.<name>.lock` file beside what it guards (filelock's flock-based lock,
released by the kernel when its process dies, so a kill -9 never leaves a stale lock).
Caches wait for the other process (it is making the very file this one needs); outputs
do not: a second command writing the same output stops at once with a message.
"""
from __future__ import annotations

import contextlib
import pathlib
import sys

from filelock import FileLock, Timeout

from .errors import DeepvisError


class Busy(DeepvisError):
    """Another process holds the lock of an output."""


def lock_path(path) -> pathlib.Path:
    path = pathlib.Path(path)
    return path.with_name(f".{path.name}.lock")


def _lock(path) -> FileLock:
    lock = lock_path(path)
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DeepvisError(f"cannot create folder {lock.parent}: {exc.strerror or exc}") from None
    return FileLock(str(lock), thread_local=False)


@contextlib.contextmanager
def exclusive_output(path, what: str = "writing"):
    """Hold `path`'s lock for the whole run; stop with a clear message if another process has it."""
    lock = _lock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise Busy(f"another deepvis process is {what} {path} (it holds {lock_path(path)}); "
                   "wait for it to finish, or choose another output") from None
    except OSError as exc:
        raise DeepvisError(f"cannot lock {path} ({lock_path(path)}): "
                           f"{exc.strerror or exc}") from None
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def shared_cache_entry(path, what: str | None = None, say=None):
    """Hold `path`'s lock, waiting while another process makes or checks the same entry."""
    lock = _lock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        (say or _to_stderr)(f"deepvis: waiting for another deepvis process "
                            f"{what or 'using'} {path} ...")
        lock.acquire()
    except OSError as exc:
        raise DeepvisError(f"cannot lock {path} ({lock_path(path)}): "
                           f"{exc.strerror or exc}") from None
    try:
        yield
    finally:
        lock.release()


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
