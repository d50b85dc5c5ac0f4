"""Writing outputs safely: every writer in deepvis goes through `atomic_path`.

- Nothing but a regular file is ever replaced, even with --force: a FIFO, a device node, a
  directory or a symbolic link at the destination is refused, and so is a folder that
  cannot be written. `check_destination` says so before any work starts.
- Bytes go to a hidden temporary file beside the destination (created with the mode the
  umask allows, like any other new file) and replace it in one step (os.replace), so a
  reader sees the old file or the new one, never half of one.
- The temporary file is removed on every exit path that runs Python code; one that a
  kill -9 left behind carries its process id and host in its name and is removed by the
  next write of the same path once that process is gone.
"""
from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import re
import secrets
import socket
import stat
import zlib

import cv2
import numpy as np

from .errors import DeepvisError

# .<name>.<host>-<pid>-<random>.part<suffix>; the older form had 8 random characters.
_HOST = format(zlib.crc32(socket.gethostname().encode()), "08x")
_TEMP = re.compile(r"(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]{8}")
_LEGACY_TEMP = re.compile(r"[a-z0-9_]{8}")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def check_destination(path, overwrite: bool = False) -> pathlib.Path:
    """Say now, before the work, why `path` cannot be written; return it as a Path.

    Only a regular file is ever replaced (and only with `overwrite`); the folder must exist
    or be creatable, and be writable.
    """
    path = pathlib.Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise DeepvisError(f"cannot use {path} as an output: {exc.strerror or exc}") from None
    if info is not None:
        if not stat.S_ISREG(info.st_mode):
            what = _kind(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                with contextlib.suppress(OSError):
                    what += f" (to {_kind(os.stat(path).st_mode)})"
            hint = ("give a file name inside it" if stat.S_ISDIR(info.st_mode)
                    else "remove it or choose another path")
            raise DeepvisError(f"{path} is {what}; deepvis only ever replaces regular files, "
                               f"even with --force: {hint}")
        if not overwrite:
            raise DeepvisError(f"{path} exists; refusing to overwrite it (pass --force to "
                               "replace it)")
    check_folder(path.parent, for_file=path)
    return path


def check_regular(path) -> pathlib.Path:
    """`path` is a regular file or nothing: never read or resume a FIFO, device or link."""
    path = pathlib.Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise DeepvisError(f"cannot use {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise DeepvisError(f"{path} is {_kind(info.st_mode)}, not a regular file; remove it")
    return path


def check_folder(folder, for_file=None) -> pathlib.Path:
    """The folder (or its nearest existing ancestor, where it would be created) must be a
    writable directory."""
    folder = pathlib.Path(folder)
    what = f" for {for_file}" if for_file is not None else ""
    probe = folder
    while True:
        try:
            info = os.stat(probe)
            break
        except (FileNotFoundError, NotADirectoryError):
            if probe.parent == probe:
                raise DeepvisError(f"cannot create folder {folder}{what}") from None
            probe = probe.parent
        except OSError as exc:
            raise DeepvisError(f"cannot use folder {probe}{what}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise DeepvisError(f"{probe} is {_kind(info.st_mode)}, not a folder; cannot write "
                           f"{for_file if for_file is not None else folder} there")
    if not os.access(probe, os.W_OK | os.X_OK):
        reason = "read-only file system" if _read_only_fs(probe) else "permission denied"
        raise DeepvisError(f"cannot write in folder {probe} ({reason})"
                           + (f"; choose another place for {for_file}" if for_file else ""))
    return folder


def check_output_dir(folder) -> pathlib.Path:
    """A folder a command fills with its own files: a directory (or nothing yet), writable."""
    folder = pathlib.Path(folder)
    try:
        info = os.stat(folder)                  # a link to a folder is a folder here
    except FileNotFoundError:
        if os.path.islink(folder):
            raise DeepvisError(f"{folder} is a broken symbolic link; choose another output "
                               "folder") from None
        check_folder(folder.parent, for_file=folder)
        return folder
    except OSError as exc:
        raise DeepvisError(f"cannot use {folder} as an output folder: "
                           f"{exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise DeepvisError(f"{folder} is {_kind(info.st_mode)}, not a folder; choose another "
                           "output folder")
    return check_folder(folder)


def _read_only_fs(folder) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def check_image_suffix(path) -> pathlib.Path:
    """An image output must have a suffix OpenCV can encode (.png, .jpg, ...)."""
    path = pathlib.Path(path)
    if not path.suffix or not cv2.haveImageWriter(str(path)):
        raise DeepvisError(f"{path}: cannot write an image with suffix {path.suffix or '(none)'!r};"
                           " use .png or .jpg")
    return path


def refuse_overwrite(path, overwrite: bool) -> None:
    """Kept for callers that only check: the same as check_destination."""
    check_destination(path, overwrite)


def temporary_name(path: pathlib.Path) -> str:
    return f".{path.name}.{_HOST}-{os.getpid()}-{secrets.token_hex(4)}.part{path.suffix}"


def stale_temporaries(path) -> list[pathlib.Path]:
    """Temporary files of earlier writes of `path` whose writer is gone (killed)."""
    path = pathlib.Path(path)
    prefix, suffix = f".{path.name}.", f".part{path.suffix}"
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    stale = []
    for name in names:
        if not (name.startswith(prefix) and name.endswith(suffix)):
            continue
        middle = name[len(prefix):len(name) - len(suffix)]
        match = _TEMP.fullmatch(middle)
        if match:
            if match["host"] == _HOST and _alive(int(match["pid"])):
                continue
            if match["host"] != _HOST:
                continue          # another machine's process: it cannot be asked; leave it
        elif not _LEGACY_TEMP.fullmatch(middle):
            continue
        stale.append(path.parent / name)
    return stale


def _alive(pid: int) -> bool:
    if pid == os.getpid() or os.name != "posix":   # Windows' os.kill would end the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def remove_stale_temporaries(path) -> int:
    removed = 0
    for stale in stale_temporaries(path):
        try:
            if stat.S_ISREG(os.lstat(stale).st_mode):
                os.unlink(stale)
                removed += 1
        except FileNotFoundError:
            pass
        except OSError:
            pass
    return removed


@contextlib.contextmanager
def atomic_path(path, overwrite: bool = False):
    """Yield a temporary path in the target's folder; on success it replaces `path` in one step.

    OSErrors while writing (disk full, quota, read-only) become a DeepvisError naming `path`.
    """
    path = check_destination(path, overwrite)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DeepvisError(f"cannot create folder {path.parent}: {exc.strerror or exc}") from None
    remove_stale_temporaries(path)
    tmp = path.with_name(temporary_name(path))
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                         0o666))                      # the umask decides the final mode
        yield tmp
        check_destination(path, overwrite)            # nothing special appeared meanwhile
        os.replace(tmp, path)
    except OSError as exc:
        raise DeepvisError(f"cannot write {path}: {_why(exc)}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _why(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on the device (the disk or your quota is full)"
    if exc.errno == errno.EFBIG:
        return "file too large for this file system or process limit"
    return exc.strerror or str(exc)


def write_bytes(path, data: bytes, overwrite: bool = False) -> None:
    with atomic_path(path, overwrite) as tmp:
        tmp.write_bytes(data)


def save_npz(path, arrays: dict, overwrite: bool = False) -> None:
    with atomic_path(path, overwrite) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def save_npy(path, array, overwrite: bool = False) -> None:
    with atomic_path(path, overwrite) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


def save_image(path, rgb: np.ndarray, overwrite: bool = False) -> None:
    """RGB uint8 (or float 0..255) -> PNG/JPEG by the extension."""
    path = check_image_suffix(check_destination(path, overwrite))
    image = np.clip(np.asarray(rgb), 0, 255).astype(np.uint8)
    try:
        ok, data = cv2.imencode(path.suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    except cv2.error as exc:
        raise DeepvisError(f"cannot encode an image as {path.suffix!r} for {path}: "
                           f"{str(exc).strip().splitlines()[-1]}") from None
    if not ok:
        raise DeepvisError(f"cannot encode an image as {path.suffix!r} for {path}")
    with atomic_path(path, overwrite) as tmp:
        tmp.write_bytes(data.tobytes())


# Reading user inputs, with limits, lives in deepvis.readers; these names stay importable here.
from .readers import read_image, read_network_input  # noqa: E402,F401
