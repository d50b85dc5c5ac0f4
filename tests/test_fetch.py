"""`deepvis fetch`: downloads against a local HTTP server on 127.0.0.1 serving files the tests
make, with checksums computed here; tarball safety; the catalog, templates and deploy files."""
from __future__ import annotations

import argparse
import hashlib
import http.server
import io
import os
import pathlib
import re
import shutil
import socket
import tarfile
import threading
import urllib.parse

import numpy as np
import pytest
import yaml

from deepvis.errors import DeepvisError
from deepvis.fetch import MODELS, ModelEntry, RemoteFile, fetch_model, fetched_onnx_path
from deepvis.fetch import download as dl
from deepvis.fetch.install import model_dir
from deepvis.fetch.unpack import UnsafeArchive, safe_extract
from deepvis.fetch.urls import candidate_urls
from deepvis.fetch.verify import Expected
from deepvis.resources import models_dir

TIMEOUT = 5.0


# -- a local file server ---------------------------------------------------------------------
class FileServer:
    """Serves `files` (URL path -> bytes or a file path). Knobs: honour Range or not, cut
    responses short, leave out Content-Length, set a Content-Type, hold a response halfway
    until an event is set."""

    def __init__(self):
        self.files: dict[str, bytes | pathlib.Path] = {}
        self.requests: list[tuple[str, str | None]] = []     # (path, Range header)
        self.honour_range = True
        self.drops: dict[str, list[int]] = {}      # path -> bytes sent before closing, per request
        self.no_length: set[str] = set()           # paths answered without Content-Length
        self.content_types: dict[str, str] = {}
        self.gates: dict[str, threading.Event] = {}   # path -> send half, wait for the event
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                owner.requests.append((self.path, self.headers.get("Range")))
                body = owner.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                if isinstance(body, pathlib.Path):
                    self._send(body.stat().st_size, lambda start: _opened_at(body, start))
                else:
                    self._send(len(body), lambda start: io.BytesIO(body[start:]))

            def _send(self, size, open_from):
                start, wanted = 0, self.headers.get("Range")
                if wanted and owner.honour_range:
                    start = int(re.fullmatch(r"bytes=(\d+)-", wanted).group(1))
                    if start >= size:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{size}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                else:
                    self.send_response(200)
                if self.path not in owner.no_length:
                    self.send_header("Content-Length", str(size - start))
                if self.path in owner.content_types:
                    self.send_header("Content-Type", owner.content_types[self.path])
                self.end_headers()
                cuts = owner.drops.get(self.path)
                cut = cuts.pop(0) if cuts else None
                gate = owner.gates.get(self.path)
                with open_from(start) as source:
                    if gate is not None:
                        self.wfile.write(source.read((size - start) // 2))
                        self.wfile.flush()
                        gate.wait(60)
                    if cut is None:
                        shutil.copyfileobj(source, self.wfile, 1 << 20)
                    else:
                        self.wfile.write(source.read(cut))

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def ranges(self, path: str) -> list[str | None]:
        return [r for p, r in self.requests if p == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _opened_at(path: pathlib.Path, start: int):
    handle = path.open("rb")
    handle.seek(start)
    return handle


@pytest.fixture
def server():
    srv = FileServer()
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def _local_only(tmp_path, monkeypatch):
    """A private cache per test; never route 127.0.0.1 through a proxy."""
    monkeypatch.setenv("DEEPVIS_CACHE", str(tmp_path / "cache"))
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "*")
    monkeypatch.delenv("DEEPVIS_FETCH_BASE_URL", raising=False)


def closed_port_url(path: str) -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def payload(n: int = 200_003, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def expected_for(data: bytes, **drop) -> Expected:
    fields = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
              "sha1": hashlib.sha1(data).hexdigest()}
    return Expected(**{k: v for k, v in fields.items() if k not in drop})


def expected_for_file(path: pathlib.Path) -> Expected:
    sha256, sha1 = hashlib.sha256(), hashlib.sha1()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            sha256.update(chunk)
            sha1.update(chunk)
    return Expected(size=path.stat().st_size, sha256=sha256.hexdigest(), sha1=sha1.hexdigest())


def download(urls, dest, expected, lines=None):
    return dl.download(urls, dest, expected, timeout=TIMEOUT, progress=False,
                       say=(lines.append if lines is not None else lambda line: None))


# -- the downloader ----------------------------------------------------------------------------
def test_download_verifies_then_moves_the_part_into_place(server, tmp_path, monkeypatch):
    data = payload()
    server.files["/w.bin"] = data
    dest = tmp_path / "m" / "w.bin"
    moves = []
    real_replace = os.replace

    def spy(src, dst):
        moves.append((str(src), str(dst), os.path.getsize(src)))
        return real_replace(src, dst)

    monkeypatch.setattr(dl.os, "replace", spy)
    assert download([server.url("/w.bin")], dest, expected_for(data)) == dest
    assert dest.read_bytes() == data
    assert moves == [(str(dest) + ".part", str(dest), len(data))]
    assert not dl.part_path(dest).exists()


def test_installed_verified_file_is_not_downloaded_again(server, tmp_path):
    data = payload()
    server.files["/w.bin"] = data
    dest = tmp_path / "w.bin"
    for _ in range(2):
        dl.ensure_file([server.url("/w.bin")], dest, expected_for(data), timeout=TIMEOUT,
                       progress=False, say=lambda line: None)
    assert len(server.requests) == 1
    assert dest.read_bytes() == data


def test_a_damaged_installed_file_is_reported_not_replaced(server, tmp_path):
    data = payload()
    dest = tmp_path / "w.bin"
    dest.write_bytes(data[:-1] + b"\0")
    with pytest.raises(DeepvisError, match="does not match the published file") as info:
        dl.ensure_file([server.url("/w.bin")], dest, expected_for(data), timeout=TIMEOUT,
                       progress=False, say=lambda line: None)
    assert "Delete it and rerun" in str(info.value)
    assert dest.read_bytes() == data[:-1] + b"\0"
    assert server.requests == []


def test_dropped_connection_resumes_with_a_range_request(server, tmp_path):
    data = payload(300_001)
    half = len(data) // 2
    server.files["/w.bin"] = data
    server.drops["/w.bin"] = [half]
    dest = tmp_path / "w.bin"
    lines = []
    download([server.url("/w.bin")], dest, expected_for(data), lines)
    assert dest.read_bytes() == data
    assert server.ranges("/w.bin") == [None, f"bytes={half}-"]
    assert any("resuming" in line for line in lines)


def test_a_server_that_keeps_dropping_leaves_a_part_that_the_next_run_resumes(server, tmp_path):
    data = payload()
    server.files["/w.bin"] = data
    server.drops["/w.bin"] = [1000, 1000, 1000]
    dest = tmp_path / "w.bin"
    with pytest.raises(dl.DownloadError, match="rerunning resumes it"):
        dl.download([server.url("/w.bin")], dest, expected_for(data), retries=2,
                    timeout=TIMEOUT, progress=False, say=lambda line: None)
    assert not dest.exists() and dl.part_path(dest).stat().st_size == 3000
    download([server.url("/w.bin")], dest, expected_for(data))
    assert dest.read_bytes() == data
    assert server.ranges("/w.bin") == [None, "bytes=1000-", "bytes=2000-", "bytes=3000-"]


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    data = payload()
    server.files["/w.bin"] = data
    server.honour_range = False
    dest = tmp_path / "w.bin"
    dl.part_path(dest).write_bytes(b"x" * (len(data) // 3))   # stale bytes that must not survive
    lines = []
    download([server.url("/w.bin")], dest, expected_for(data), lines)
    assert dest.read_bytes() == data
    assert server.ranges("/w.bin") == [f"bytes={len(data) // 3}-"]
    assert any("ignores resume requests" in line for line in lines)


def test_416_for_an_already_complete_part_installs_it(server, tmp_path):
    data = payload()
    server.files["/w.bin"] = data
    dest = tmp_path / "w.bin"
    dl.part_path(dest).write_bytes(data)
    download([server.url("/w.bin")], dest, expected_for(data, size=None))
    assert dest.read_bytes() == data
    assert server.ranges("/w.bin") == [f"bytes={len(data)}-"]


def test_checksum_mismatch_installs_nothing_and_says_what_to_do(server, tmp_path):
    data = payload()
    server.files["/w.bin"] = data
    dest = tmp_path / "w.bin"
    wrong = expected_for(payload(seed=1))          # same size, other bytes
    with pytest.raises(dl.DownloadError) as info:
        download([server.url("/w.bin")], dest, wrong)
    message = str(info.value)
    assert not dest.exists() and not dl.part_path(dest).exists()
    assert "nothing was installed" in message
    assert hashlib.sha256(data).hexdigest() in message        # what we actually got
    assert "retry" in message and "--mirror" in message and f"place it at {dest}" in message


def test_dead_hosts_install_nothing_and_are_named(tmp_path):
    urls = [closed_port_url("/a/w.bin"), closed_port_url("/b/w.bin")]
    dest = tmp_path / "w.bin"
    with pytest.raises(dl.DownloadError) as info:
        download(urls, dest, expected_for(payload()))
    message = str(info.value)
    assert not dest.exists() and not dl.part_path(dest).exists()
    for url in urls:
        assert f"{url}: connection refused" in message


def test_falls_back_to_the_next_mirror_after_a_404(server, tmp_path):
    data = payload()
    server.files["/mirror/w.bin"] = data
    dest = tmp_path / "w.bin"
    lines = []
    download([server.url("/gone/w.bin"), server.url("/mirror/w.bin")], dest, expected_for(data),
             lines)
    assert dest.read_bytes() == data
    assert [p for p, _ in server.requests] == ["/gone/w.bin", "/mirror/w.bin"]
    assert any("HTTP 404" in line for line in lines)


def test_wrong_size_offer_is_refused_before_downloading(server, tmp_path):
    data = payload()
    server.files["/w.bin"] = data + b"<html>error</html>"
    dest = tmp_path / "w.bin"
    with pytest.raises(dl.DownloadError, match="offers .* bytes, expected"):
        download([server.url("/w.bin")], dest, expected_for(data))
    assert not dest.exists() and not dl.part_path(dest).exists()


def test_unchecked_file_gets_its_sha256_recorded_and_checked_later(server, tmp_path):
    data = payload()
    server.files["/w.bin"] = data
    dest = tmp_path / "w.bin"
    lines = []
    download([server.url("/w.bin")], dest, Expected(), lines)
    digest = hashlib.sha256(data).hexdigest()
    assert dl.record_path(dest).read_text() == f"{digest}  w.bin\n"
    assert any("no published checksum" in line and digest in line for line in lines)
    dest.write_bytes(data[::-1])                  # tampered after download
    with pytest.raises(DeepvisError, match="does not match"):
        dl.ensure_file([server.url("/w.bin")], dest, Expected(), say=lambda line: None)


# -- files without a published digest: checked for what they are before they are pinned --------
def small_caffemodel(seed: int = 0) -> bytes:
    from tests.caffe_writer import net_message
    rng = np.random.default_rng(seed)
    return net_message([("conv1", "Convolution", [rng.standard_normal((192, 3, 11, 11))
                                                  .astype(np.float32), np.zeros(192, np.float32)])])


def unchecked_download(server, path, dest, lines):
    return dl.ensure_file([server.url(path)], dest, Expected(), timeout=TIMEOUT, retries=1,
                          progress=False, say=lines.append)


@pytest.mark.parametrize("body, content_type", [
    (b"<!DOCTYPE html>\n<html><body>Service unavailable</body></html>" + b" " * 5000, None),
    (b"<html><head><title>Login</title></head></html>", "text/html; charset=utf-8"),
])
def test_an_html_page_served_with_200_is_never_installed_or_pinned(server, tmp_path, body,
                                                                    content_type):
    server.files["/caffenet-yos-weights"] = body
    if content_type:
        server.content_types["/caffenet-yos-weights"] = content_type
    dest = tmp_path / "caffenet-yos-weights"
    lines = []
    with pytest.raises(dl.DownloadError, match="web page"):
        unchecked_download(server, "/caffenet-yos-weights", dest, lines)
    assert not dest.exists() and not dl.record_path(dest).exists()
    assert not dl.part_path(dest).exists()


def test_a_truncated_body_without_content_length_is_refused(server, tmp_path):
    weights = small_caffemodel()
    server.files["/caffenet-yos-weights"] = weights[:len(weights) * 2 // 3]
    server.no_length.add("/caffenet-yos-weights")
    dest = tmp_path / "caffenet-yos-weights"
    with pytest.raises(dl.DownloadError, match="not a readable Caffe .caffemodel"):
        unchecked_download(server, "/caffenet-yos-weights", dest, [])
    assert not dest.exists() and not dl.record_path(dest).exists()
    server.files["/caffenet-yos-weights"] = weights            # the whole file: accepted
    unchecked_download(server, "/caffenet-yos-weights", dest, [])
    assert dest.read_bytes() == weights
    assert dl.record_path(dest).read_text().split()[0] == hashlib.sha256(weights).hexdigest()


def test_a_zero_filled_part_is_not_resumed_into_the_file(server, tmp_path):
    weights = small_caffemodel()
    server.files["/caffenet-yos-weights"] = weights
    dest = tmp_path / "caffenet-yos-weights"
    dl.part_path(dest).write_bytes(b"\0" * (len(weights) // 2))
    lines = []
    unchecked_download(server, "/caffenet-yos-weights", dest, lines)
    assert dest.read_bytes() == weights
    assert any("does not continue into the file" in line for line in lines)
    overlap_start = len(weights) // 2 - dl.OVERLAP
    assert server.ranges("/caffenet-yos-weights") == [f"bytes={overlap_start}-", None]


def test_a_good_part_of_an_unchecked_file_resumes_after_an_overlap_check(server, tmp_path):
    weights = small_caffemodel()
    server.files["/caffenet-yos-weights"] = weights
    dest = tmp_path / "caffenet-yos-weights"
    half = len(weights) // 2
    dl.part_path(dest).write_bytes(weights[:half])
    unchecked_download(server, "/caffenet-yos-weights", dest, [])
    assert dest.read_bytes() == weights
    assert server.ranges("/caffenet-yos-weights") == [f"bytes={half - dl.OVERLAP}-"]


def test_an_unchecked_file_placed_by_hand_is_checked_before_it_is_pinned(server, tmp_path):
    dest = tmp_path / "ilsvrc_2012_mean.npy"
    buffer = io.BytesIO()
    np.save(buffer, np.ones((3, 16, 16)))
    dest.write_bytes(buffer.getvalue()[:-100])                  # cut short
    with pytest.raises(DeepvisError, match="header says"):
        unchecked_download(server, "/m.npy", dest, [])
    assert not dl.record_path(dest).exists() and server.requests == []


def caffenet_yos_files(base: str) -> dict[str, bytes]:
    """Small but well-formed stand-ins for every caffenet-yos file, at their rebased URLs."""
    files = {}
    for remote in MODELS["caffenet-yos"].files:
        if remote.unpack_sentinel:
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
                info = tarfile.TarInfo(remote.unpack_sentinel)
                info.size = 4
                tar.addfile(info, io.BytesIO(b"jpeg"))
            body = buffer.getvalue()
        elif remote.name.endswith(".npy"):
            buffer = io.BytesIO()
            np.save(buffer, np.full((3, 256, 256), 110.0, np.float32))
            body = buffer.getvalue()
        else:
            body = small_caffemodel(seed=7)
        files[urllib.parse.urlsplit(candidate_urls(remote, base=base)[0]).path] = body
    return files


def test_two_concurrent_fetches_into_one_cache_give_one_correct_file(server, tmp_path):
    """The issue's case: two `deepvis fetch caffenet-yos` at once. The second waits for the
    first's lock, then finds the file installed and verified; nothing is corrupted."""
    import subprocess
    import sys
    import time

    files = caffenet_yos_files(server.url("/base"))
    server.files.update(files)
    weights_url = next(p for p in files if p.endswith("caffenet-yos-weights"))
    gate = server.gates[weights_url] = threading.Event()
    env = dict(os.environ, DEEPVIS_CACHE=str(tmp_path / "cache"),
               DEEPVIS_FETCH_BASE_URL=server.url("/base"), no_proxy="*", NO_PROXY="*")
    command = [sys.executable, "-m", "deepvis.cli", "fetch", "caffenet-yos", "--no-convert"]

    def start():
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    first = start()
    deadline = time.monotonic() + 60
    while weights_url not in [p for p, _ in server.requests] and time.monotonic() < deadline:
        time.sleep(0.05)                         # the first is now halfway through the weights
    second = start()
    waited = []

    def watch():
        for line in second.stderr:
            waited.append(line)
            if "waiting for another deepvis process" in line:
                gate.set()                       # let the first finish once the second waits
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        out1, err1 = first.communicate(timeout=90)
        second.wait(timeout=90)
    finally:
        gate.set()
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
    watcher.join(5)
    err2 = "".join(waited)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert "waiting for another deepvis process downloading" in err2
    assert "already downloaded and verified" in err2
    assert "Traceback" not in err1 + err2
    folder = tmp_path / "cache" / "models" / "caffenet-yos"
    weights = files[weights_url]
    assert (folder / "caffenet-yos-weights").read_bytes() == weights
    assert (folder / "caffenet-yos-weights.sha256").read_text().split()[0] == \
        hashlib.sha256(weights).hexdigest()
    assert [p for p, _ in server.requests].count(weights_url) == 1
    assert not list(folder.glob("*.part"))


# -- URLs --------------------------------------------------------------------------------------
def test_candidate_urls_put_the_mirror_first_and_rebase_keeps_host_and_path():
    remote = RemoteFile("x.caffemodel", ("http://a.example/dir/x.caffemodel",
                                         "https://b.example/y/x.caffemodel"), Expected())
    assert candidate_urls(remote, mirror="http://m.example/files/", base="") == [
        "http://m.example/files/x.caffemodel", "http://a.example/dir/x.caffemodel",
        "https://b.example/y/x.caffemodel"]
    assert candidate_urls(remote, base="http://127.0.0.1:9/mirror/") == [
        "http://127.0.0.1:9/mirror/a.example/dir/x.caffemodel",
        "http://127.0.0.1:9/mirror/b.example/y/x.caffemodel"]


# -- tarballs ----------------------------------------------------------------------------------
def make_tar(path, members):
    """members: (name, bytes) for files, (name, '->target') for symlinks."""
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content[2:]
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))


@pytest.mark.parametrize("members", [
    [("ok/a.jpg", b"a"), ("../evil.txt", b"e")],
    [("ok/a.jpg", b"a"), ("ok/../../evil.txt", b"e")],
    [("ok/a.jpg", b"a"), ("/etc/evil.txt", b"e")],
    [("ok/a.jpg", b"a"), ("ok/up", "->../../x")],
    [("ok/a.jpg", b"a"), ("here", "->."), ("here/evil.txt", b"e")],
], ids=["dotdot", "nested-dotdot", "absolute", "escaping-symlink", "through-symlink"])
def test_tar_with_an_escaping_member_is_refused_whole(tmp_path, members):
    archive = tmp_path / "t.tar.gz"
    make_tar(archive, members)
    target = tmp_path / "out" / "unit_jpg_vis"
    with pytest.raises(UnsafeArchive, match="nothing was extracted"):
        safe_extract(archive, target)
    assert not target.exists()
    assert not (tmp_path / "out" / "evil.txt").exists()


def test_tar_unpacks_plain_members(tmp_path):
    archive = tmp_path / "t.tar.gz"
    make_tar(archive, [("max_im/conv1/conv1_0000.jpg", b"jpg0"),
                       ("max_im/conv1/l", "->conv1_0000.jpg")])
    assert safe_extract(archive, tmp_path / "u") == 2
    assert (tmp_path / "u" / "max_im" / "conv1" / "conv1_0000.jpg").read_bytes() == b"jpg0"
    assert (tmp_path / "u" / "max_im" / "conv1" / "l").read_bytes() == b"jpg0"


# -- a whole model -----------------------------------------------------------------------------
def test_fetch_model_downloads_unpacks_once_and_skips_next_time(server):
    weights, mean = payload(), payload(5_000, seed=2)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("max_im/conv1/conv1_0000.jpg")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"jpg"))
    server.files.update({"/w": weights, "/mean.npy": mean, "/units.tar.gz": buffer.getvalue()})
    entry = ModelEntry(
        name="toy", title="toy", source="test", status="test", deploy="unused.prototxt",
        weights=RemoteFile("w", (server.url("/w"),), expected_for(weights)),
        mean=RemoteFile("mean.npy", (server.url("/mean.npy"),), expected_for(mean)),
        unit_jpgs=(RemoteFile("units.tar.gz", (server.url("/units.tar.gz"),), Expected(),
                              unpack_sentinel="max_im/conv1/conv1_0000.jpg"),))
    quiet = {"timeout": TIMEOUT, "progress": False, "say": lambda line: None}
    assert fetch_model(entry, convert=False, **quiet) is None
    folder = model_dir("toy")
    assert (folder / "w").read_bytes() == weights
    assert (folder / "mean.npy").read_bytes() == mean
    assert (folder / "unit_jpg_vis" / "max_im" / "conv1" / "conv1_0000.jpg").read_bytes() == b"jpg"
    before = len(server.requests)
    fetch_model(entry, convert=False, **quiet)
    assert len(server.requests) == before == 3


def test_fetch_model_converts_squeezenet_with_its_per_channel_mean(server):
    """The bundled SqueezeNet deploy + synthetic weights served locally -> cached .onnx."""
    import onnx.numpy_helper

    from deepvis.caffe.parse import read_prototxt
    from deepvis.caffe.plan import plan_net
    from deepvis.exec import make_executor
    from deepvis.graph import meta
    from tests.caffe_writer import net_message

    deploy = read_prototxt(models_dir() / "squeezenet" / "deploy.prototxt")
    plan = plan_net(deploy)
    rng = np.random.default_rng(0)
    shapes = []
    for layer in deploy.layers:          # weight shapes follow from the deploy's own numbers
        if layer.type == "Convolution":
            p = layer.param("convolution_param")
            k = p["kernel_size"][0]
            shapes.append((layer.name, (p["num_output"], plan.shapes[layer.bottoms[0]][1], k, k)))
    layers = [(name, "Convolution", [rng.standard_normal(s).astype(np.float32) * 0.05,
                                     np.zeros(s[0], np.float32)]) for name, s in shapes]
    weights = net_message(layers)
    server.files["/squeezenet_v1.0.caffemodel"] = weights
    real = MODELS["squeezenet"]
    entry = ModelEntry(
        name="squeezenet", title=real.title, source="test", status="test", deploy=real.deploy,
        weights=RemoteFile(real.weights.name, (server.url("/squeezenet_v1.0.caffemodel"),),
                           expected_for(weights)),
        mean_values=real.mean_values)
    lines = []
    onnx_file = fetch_model(entry, timeout=TIMEOUT, progress=False, say=lines.append)
    assert onnx_file == fetched_onnx_path("squeezenet")
    assert onnx_file == model_dir("squeezenet") / "squeezenet.onnx"
    model = onnx.load(str(onnx_file))
    info = meta.read(model)
    assert info["preprocess"]["mean"] == [104.0, 117.0, 123.0]
    assert info["preprocess"]["channel_swap"] == [2, 1, 0]
    assert {"fire2/concat", "conv10", "pool10", "prob"} <= set(info["blobs"])
    served = layers[0][2][0]                  # conv1's weights, as the server sent them
    assert any(np.array_equal(onnx.numpy_helper.to_array(t), served)
               for t in model.graph.initializer)
    x = rng.uniform(-100, 100, (1, 3, 227, 227)).astype(np.float32)
    assert make_executor(model).run({"data": x}, ["prob"])["prob"].shape == (1, 1000, 1, 1)
    stamp = onnx_file.stat().st_mtime_ns
    fetch_model(entry, timeout=TIMEOUT, progress=False, say=lines.append)   # nothing to redo
    assert onnx_file.stat().st_mtime_ns == stamp
    assert any("already converted" in line for line in lines)


def test_fetch_converts_a_synthetic_caffenet_with_its_mean_image(server, tmp_path):
    """caffenet's catalog entry, served locally with a full-size synthetic V1 .caffemodel."""
    import dataclasses

    import onnx

    from deepvis.graph import meta
    from tests.fixtures_caffenet import write_synthetic_caffenet

    _, weights = write_synthetic_caffenet(tmp_path, seed=0, fmt="v1")
    mean = np.random.default_rng(3).uniform(90, 130, (3, 256, 256))
    buffer = io.BytesIO()
    np.save(buffer, mean)
    server.files.update({"/bvlc_reference_caffenet.caffemodel": weights,
                         "/ilsvrc_2012_mean.npy": buffer.getvalue()})
    real = MODELS["caffenet"]
    entry = dataclasses.replace(
        real,
        weights=dataclasses.replace(real.weights, urls=(server.url("/gone.caffemodel"),
                                                        server.url(f"/{real.weights.name}")),
                                    expected=expected_for_file(weights)),
        mean=dataclasses.replace(real.mean, urls=(server.url("/ilsvrc_2012_mean.npy"),),
                                 expected=expected_for(buffer.getvalue())))
    onnx_file = fetch_model(entry, timeout=TIMEOUT, progress=False, say=lambda line: None)
    assert onnx_file == fetched_onnx_path("caffenet")
    assert (model_dir("caffenet") / real.weights.name).stat().st_size == weights.stat().st_size
    model = onnx.load(str(onnx_file))
    info = meta.read(model)
    assert info["blobs"][:3] == ["data", "conv1", "pool1"] and "fc8" in info["blobs"]
    sidecar = onnx_file.parent / info["preprocess"]["mean_file"]
    np.testing.assert_allclose(np.load(sidecar), mean[:, 14:241, 14:241], rtol=1e-6)


# -- the command -------------------------------------------------------------------------------
def fetch_parser():
    from deepvis.commands import fetch
    parser = argparse.ArgumentParser(prog="deepvis")
    fetch.register(parser.add_subparsers())
    return parser


def test_help_explains_every_model_and_the_dead_caffenet_yos_host(capsys):
    with pytest.raises(SystemExit):
        fetch_parser().parse_args(["fetch", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, entry in MODELS.items():
        assert f"{name} (" in text and entry.weights.urls[0] in text
    assert "c.yosinski.com has been down for years" in text
    assert "`deepvis fetch caffenet`" in text
    assert "DEEPVIS_FETCH_BASE_URL" in text


def test_caffenet_yos_says_the_host_is_down_and_points_to_caffenet(monkeypatch, capsys):
    monkeypatch.setenv("DEEPVIS_FETCH_BASE_URL", closed_port_url("/mirror"))
    args = fetch_parser().parse_args(["fetch", "caffenet-yos", "--no-convert"])
    with pytest.raises(dl.DownloadError) as info:
        args.run(args)
    err = capsys.readouterr().err
    assert "down for years" in err and "`deepvis fetch caffenet`" in err
    message = str(info.value)
    assert "/mirror/c.yosinski.com/caffenet-yos-weights: connection refused" in message
    assert "`deepvis fetch caffenet`" in message
    assert not (model_dir("caffenet-yos") / "caffenet-yos-weights").exists()


def toy_entry(weights: bytes, urls) -> ModelEntry:
    return ModelEntry(name="toy", title="toy", source="test", status="test", deploy="none",
                      weights=RemoteFile("toy.caffemodel", tuple(urls), expected_for(weights)))


def test_command_tries_the_mirror_folder_first(server, monkeypatch, capsys):
    from deepvis.commands import fetch as command
    weights = payload()
    server.files["/folder/toy.caffemodel"] = weights
    monkeypatch.setattr(command, "MODELS", {"toy": toy_entry(
        weights, [closed_port_url("/dead/toy.caffemodel")])})
    args = fetch_parser().parse_args(["fetch", "toy", "--no-convert",
                                      "--mirror", server.url("/folder/")])
    assert args.run(args) == 0
    assert (model_dir("toy") / "toy.caffemodel").read_bytes() == weights
    assert [p for p, _ in server.requests] == ["/folder/toy.caffemodel"]
    assert f"files verified in {model_dir('toy')}" in capsys.readouterr().out


def test_base_url_variable_rebases_catalog_urls_onto_a_local_server(server, monkeypatch):
    weights = payload()
    server.files["/base/dl.example.org/models/toy.caffemodel"] = weights
    monkeypatch.setenv("DEEPVIS_FETCH_BASE_URL", server.url("/base"))
    entry = toy_entry(weights, ["http://dl.example.org/models/toy.caffemodel"])
    fetch_model(entry, convert=False, timeout=TIMEOUT, progress=False, say=lambda line: None)
    assert (model_dir("toy") / "toy.caffemodel").read_bytes() == weights


def test_list_names_every_model(capsys):
    args = fetch_parser().parse_args(["fetch", "--list"])
    assert args.run(args) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in MODELS) and "not fetched" in out


# -- catalog, templates and deploy files -------------------------------------------------------
@pytest.mark.parametrize("name", ["caffenet", "bvlc-googlenet", "squeezenet"])
def test_template_names_its_catalog_model(name):
    template = yaml.safe_load((models_dir() / name / "settings.yaml").read_text())
    entry = MODELS[name]
    assert template["deepvis_model"] == name
    assert (models_dir() / entry.deploy).is_file()
    if entry.mean_values:
        assert template["caffevis_data_mean"] == list(entry.mean_values)
    assert template["caffevis_labels"] == "imagenet-1k"


def test_catalog_checksums_are_well_formed():
    for entry in MODELS.values():
        for remote in entry.files:
            e = remote.expected
            assert e.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", e.sha256)
            for digest in (e.sha1, e.git_blob):
                assert digest is None or re.fullmatch(r"[0-9a-f]{40}", digest)
            assert all(url.startswith(("http://", "https://")) for url in remote.urls)
    assert MODELS["caffenet"].weights.expected.size == 243_862_418
    assert MODELS["caffenet"].mean.expected.size == 1_572_944


def _layer_facts(net):
    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items() if not k.endswith("_filler")}
        if isinstance(value, np.ndarray):
            return value.tolist()
        return value
    return [(l.name, l.type, l.bottoms, l.tops, plain(l.params)) for l in net.layers]


@pytest.mark.parametrize("name", ["bvlc-googlenet", "squeezenet"])
def test_deploy_matches_the_original_toolbox_layer_for_layer(name, original_models):
    from deepvis.caffe.parse import read_prototxt
    mine = read_prototxt(models_dir() / name / "deploy.prototxt")
    original = read_prototxt(original_models / f"{name}-deploy.prototxt")
    assert mine.inputs == original.inputs and mine.force_backward
    assert _layer_facts(mine) == _layer_facts(original)


def test_googlenet_deploy_has_caffes_ceil_pooling_sizes():
    """224 input: 112 -> 56 -> 28 -> 14 -> 7 only with Caffe's ceil rounding."""
    from deepvis.caffe.parse import read_prototxt
    from deepvis.caffe.plan import plan_net
    plan = plan_net(read_prototxt(models_dir() / "bvlc-googlenet" / "deploy.prototxt"))
    sizes = [plan.shapes[f"pool{i}/3x3_s2"][2] for i in (1, 2, 3, 4)]
    assert sizes == [56, 28, 14, 7]
    assert plan.shapes["inception_5b/output"] == (1, 1024, 7, 7)
    assert plan.shapes["prob"] == (1, 1000)


def test_a_fifo_in_place_of_the_file_or_its_part_is_refused_not_read(server, tmp_path):
    server.files["/w.bin"] = payload()
    dest = tmp_path / "w.bin"
    os.mkfifo(dest)
    with pytest.raises(DeepvisError, match="FIFO"):
        dl.ensure_file([server.url("/w.bin")], dest, Expected(), timeout=TIMEOUT,
                       progress=False, say=lambda line: None)
    dest.unlink()
    os.mkfifo(dl.part_path(dest))
    with pytest.raises(DeepvisError, match="FIFO"):
        dl.ensure_file([server.url("/w.bin")], dest, Expected(), timeout=TIMEOUT,
                       progress=False, say=lambda line: None)
    assert dl.part_path(dest).is_fifo() and not dest.exists() and server.requests == []


def test_a_damaged_file_pinned_by_an_older_version_is_caught(server, tmp_path):
    html = b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>"
    dest = tmp_path / "caffenet-yos-weights"
    dest.write_bytes(html)
    dl.record_path(dest).write_text(f"{hashlib.sha256(html).hexdigest()}  {dest.name}\n")
    with pytest.raises(DeepvisError, match="web page"):
        unchecked_download(server, "/caffenet-yos-weights", dest, [])
    dest.write_bytes(small_caffemodel())
    dl.record_path(dest).write_text("")                  # an empty record is not a digest
    with pytest.raises(DeepvisError, match="not a sha256 line"):
        unchecked_download(server, "/caffenet-yos-weights", dest, [])
    assert server.requests == []
