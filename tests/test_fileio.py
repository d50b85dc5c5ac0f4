"""The safe writer every command uses: only regular files are replaced (even with --force),
files get the umask's mode, bad destinations fail before the work, and temporary files never
outlive their writer for long."""
from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from deepvis import cli, fileio
from deepvis.errors import DeepvisError
from tests.test_caffe_import import _small_weights, small_prototxt

REPO = pathlib.Path(__file__).resolve().parent.parent


def run_cli(args, timeout=120, prefix=(), **kw):
    """deepvis in a subprocess: a bug that opened a FIFO for writing would hang, not the tests."""
    return subprocess.run([*prefix, sys.executable, "-m", "deepvis.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO, **kw)


@pytest.fixture
def fifo_and_link(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "link-to-pipe"
    link.symlink_to(fifo)
    return fifo, link


# -- never replace anything but a regular file --------------------------------------------------
def test_force_onto_a_fifo_or_a_symlink_to_one_is_refused(fifo_and_link):
    for target in fifo_and_link:
        for write in (lambda p: fileio.write_bytes(p, b"x", overwrite=True),
                      lambda p: fileio.save_npy(p, np.zeros(3), overwrite=True),
                      lambda p: fileio.save_image(p, np.zeros((2, 2, 3)), overwrite=True)):
            with pytest.raises(DeepvisError, match="only ever replaces regular files"):
                write(target)
    fifo, link = fifo_and_link
    assert fifo.is_fifo() and link.is_symlink() and link.resolve() == fifo
    assert sorted(p.name for p in fifo.parent.iterdir()) == ["link-to-pipe", "pipe"]


@pytest.mark.parametrize("which", [0, 1])
def test_the_cli_refuses_force_onto_a_fifo_before_any_work(tmp_path, fifo_and_link, which):
    target = fifo_and_link[which]
    deploy, weights = small_prototxt(tmp_path), _small_weights(tmp_path)
    result = run_cli(["import-caffe", deploy, weights, "-o", target, "--force"])
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "FIFO" in result.stderr and "even with --force" in result.stderr
    assert fifo_and_link[0].is_fifo() and fifo_and_link[1].is_symlink()
    result = run_cli(["render", "--model", "efficientnet-lite0", "--input", deploy,
                      "--out", target, "--force"])
    assert result.returncode == 1 and "FIFO" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_existing_directory_is_not_an_output_file(tmp_path):
    (tmp_path / "out.npy").mkdir()
    with pytest.raises(DeepvisError, match="is a directory"):
        fileio.save_npy(tmp_path / "out.npy", np.zeros(2), overwrite=True)
    assert (tmp_path / "out.npy").is_dir()


def test_a_regular_file_is_replaced_only_with_overwrite(tmp_path):
    path = tmp_path / "a.bin"
    fileio.write_bytes(path, b"one")
    with pytest.raises(DeepvisError, match="refusing to overwrite"):
        fileio.write_bytes(path, b"two")
    fileio.write_bytes(path, b"two", overwrite=True)
    assert path.read_bytes() == b"two"


# -- mode ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_get_the_mode_the_umask_allows(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        fileio.write_bytes(tmp_path / "a.bin", b"x")
        fileio.save_npz(tmp_path / "b.npz", {"x": np.zeros(2)})
    finally:
        os.umask(old)
    for name in ("a.bin", "b.npz"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode


# -- bad destinations fail before the work -------------------------------------------------------
def _without_root_powers():
    """A prefix that runs a command without root's power to write anywhere."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot make a folder unwritable")
    return ("setpriv", "--bounding-set=-dac_override,-dac_read_search")


def test_a_read_only_folder_is_reported_before_the_import(tmp_path):
    deploy, weights = small_prototxt(tmp_path), _small_weights(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = run_cli(["import-caffe", deploy, weights, "-o", locked / "x.onnx"],
                         prefix=_without_root_powers(),
                         env=dict(os.environ, DEEPVIS_CACHE=str(tmp_path / "cache")))
    finally:
        locked.chmod(0o755)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"cannot write in folder {locked} (permission denied)" in result.stderr
    assert list(locked.iterdir()) == []


def test_an_unknown_image_suffix_is_refused_before_the_model_loads(tmp_path):
    result = run_cli(["render", "--model", "no-such-model", "--input", "x.png",
                      "--out", tmp_path / "frame.xyz"])
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot write an image with suffix '.xyz'" in result.stderr   # not "no-such-model"
    with pytest.raises(DeepvisError, match="suffix"):
        fileio.save_image(tmp_path / "noext", np.zeros((2, 2, 3)))


def test_sprite_cell_zero_is_refused_before_any_optimization(tmp_path):
    assert cli.main(["optimize-layer", "no-such-model", "--layer", "x", "--sprite-cell", "0",
                     "--out", str(tmp_path / "jpgs")]) == 1
    assert not (tmp_path / "jpgs").exists()


FULL_DISK = """
import resource, signal, sys
from deepvis import fileio
from deepvis.errors import DeepvisError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
try:
    fileio.write_bytes(sys.argv[1], b"x" * 1_000_000, overwrite=True)
except DeepvisError as exc:
    print(exc)
    sys.exit(3)
"""


def test_a_full_disk_is_a_clean_error_and_leaves_no_temporary(tmp_path):
    """The file-size limit makes write() fail with EFBIG, as a full disk fails with ENOSPC."""
    target = tmp_path / "big.bin"
    target.write_bytes(b"old")
    result = subprocess.run([sys.executable, "-c", FULL_DISK, str(target)], capture_output=True,
                            text=True, timeout=60, cwd=REPO)
    assert result.returncode == 3, result.stderr
    assert f"cannot write {target}: file too large" in result.stdout
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.bin"]


# -- temporary files -------------------------------------------------------------------------------
WRITER_SOURCE = """
import sys, time
from deepvis import cli, fileio
{setup}
with fileio.atomic_path(sys.argv[1], overwrite=True) as tmp:
    tmp.write_bytes(b"x" * 4096)
    print(tmp, flush=True)
    time.sleep(600)
"""
SLOW_WRITER = WRITER_SOURCE.format(setup="")


def test_temporary_files_are_gone_after_kill_9_and_a_rerun(tmp_path):
    target = tmp_path / "out.onnx"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(target)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    temporary = pathlib.Path(proc.stdout.readline().strip())
    assert temporary.exists() and temporary.name.startswith(".out.onnx.")
    assert fileio.stale_temporaries(target) == []          # its writer is alive: not stale
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert temporary.exists()                              # kill -9 runs no cleanup
    assert fileio.stale_temporaries(target) == [temporary]
    deploy, weights = small_prototxt(tmp_path), _small_weights(tmp_path)
    assert cli.main(["import-caffe", str(deploy), str(weights), "-o", str(target)]) == 0
    assert not temporary.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "out.onnx", "small.caffemodel", "small.prototxt"]


def test_a_refused_rerun_still_removes_what_a_killed_run_left(tmp_path):
    target = tmp_path / "blobs.npz"
    target.write_bytes(b"an earlier result")
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(target)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    temporary = pathlib.Path(proc.stdout.readline().strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert temporary.exists()
    assert cli.main(["forward", "no-such-model", "--input", "x.png",
                     "--save-blobs", str(target)]) == 1           # refused: it exists
    assert not temporary.exists() and target.read_bytes() == b"an earlier result"


def test_temporary_files_are_removed_when_the_write_fails(tmp_path):
    with pytest.raises(RuntimeError):
        with fileio.atomic_path(tmp_path / "a.npy") as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("the work failed")
    assert list(tmp_path.iterdir()) == []


def test_import_caffe_mean_leaves_no_orphan_that_blocks_a_rerun(tmp_path, monkeypatch):
    from deepvis.caffe import convert

    deploy, weights = small_prototxt(tmp_path), _small_weights(tmp_path)
    np.save(tmp_path / "mean.npy", np.full((3, 6, 7), 100, np.float32))
    out = tmp_path / "small.onnx"
    args = ["import-caffe", str(deploy), str(weights), "-o", str(out),
            "--mean", str(tmp_path / "mean.npy")]
    real = convert.write_bytes

    def onnx_fails(path, data, overwrite=False):
        if str(path).endswith(".onnx"):
            raise DeepvisError(f"cannot write {path}: no space left on the device")
        return real(path, data, overwrite)
    monkeypatch.setattr(convert, "write_bytes", onnx_fails)
    assert cli.main(args) == 1
    assert not out.exists() and not (tmp_path / "small.mean.npy").exists()
    monkeypatch.setattr(convert, "write_bytes", real)
    np.save(tmp_path / "small.mean.npy", np.zeros(3))    # an orphan from an older failed run
    assert cli.main(args) == 0
    assert out.exists() and np.load(tmp_path / "small.mean.npy").shape == (3, 4, 4)


TERMINATED_WRITER = WRITER_SOURCE.format(setup="cli.exit_on_sigterm()")


def test_sigterm_unwinds_and_removes_the_temporary_file(tmp_path):
    target = tmp_path / "out.npz"
    proc = subprocess.Popen([sys.executable, "-c", TERMINATED_WRITER, str(target)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    temporary = pathlib.Path(proc.stdout.readline().strip())
    assert temporary.exists()
    proc.terminate()
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []
