"""File locks for state that several deepvis processes may share: the download cache, the
converted-model and gradient-graph caches, and every output a command writes.

Locks are filelock's flock-based locks, released by the kernel when their process dies, so
a kill -9 never leaves a stale lock. Lock files live in the cache folder (`locks/`, named
by a hash of the guarded path), so neither users' folders nor cache folders get extra
files. Caches wait for the other process (it is making the very file this one needs);
outputs do not: a second command writing the same output stops at once with a message.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import sys

from filelock import FileLock, Timeout

from .errors import DeepvisError


class Busy(DeepvisError):
    """Another process holds the lock of an output."""


def lock_path(path) -> pathlib.Path:
    """The lock file that guards `path` (which need not exist yet)."""
    from .resources import cache_dir

    path = pathlib.Path(path)
    absolute = path.parent.resolve() / path.name
    digest = hashlib.sha256(os.fsencode(absolute)).hexdigest()[:32]
    return cache_dir() / "locks" / f"{digest}.lock"


def _lock(lock: pathlib.Path) -> FileLock:
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DeepvisError(f"cannot create folder {lock.parent}: {exc.strerror or exc}") from None
    return FileLock(str(lock), thread_local=False)


@contextlib.contextmanager
def exclusive_output(path, what: str = "writing"):
    """Hold `path`'s lock for the whole run; stop with a clear message if another process has it."""
    def busy(lock, where):
        raise Busy(f"another deepvis process is {what} {path} (it holds {where}); "
                   "wait for it to finish, or choose another output") from None
    with _held(path, busy):
        yield


@contextlib.contextmanager
def shared_cache_entry(path, what: str | None = None, say=None):
    """Hold `path`'s lock, waiting while another process makes or checks the same entry."""
    def wait(lock, where):
        (say or _to_stderr)(f"deepvis: waiting for another deepvis process "
                            f"{what or 'using'} {path} ...")
        lock.acquire()
    with _held(path, wait):
        yield


@contextlib.contextmanager
def _held(path, on_busy):
    """`path`'s lock, taken at once or, when another process holds it, as `on_busy` decides."""
    where = lock_path(path)
    lock = _lock(where)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        on_busy(lock, where)
    except OSError as exc:
        raise DeepvisError(f"cannot lock {path} ({where}): {exc.strerror or exc}") from None
    try:
        yield
    finally:
        lock.release()


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def claimed_outputs(files=(), overwrite: bool = False, folders=(), images=()):
    """Everything a command will write, checked now (before the work: kind, folder, rights,
    image suffix) and locked until the command ends, so a second command writing the same
    output stops at once instead of racing this one."""
    from .fileio import (check_destination, check_image_suffix, check_output_dir,
                         remove_stale_temporaries)

    files = [pathlib.Path(p) for p in files if p is not None]
    folders = [pathlib.Path(p) for p in folders if p is not None]
    for path in files:
        remove_stale_temporaries(path)      # what killed earlier runs left (dead writers only)
        check_destination(path, overwrite)
    for path in images:
        if path is not None:
            check_image_suffix(path)
    for folder in folders:
        check_output_dir(folder)
    with contextlib.ExitStack() as stack:
        for path in [*files, *folders]:
            stack.enter_context(exclusive_output(path))
        yield
