"""`deepvis serve` without a browser: the protocol, the frame encoding, hit-testing against
rendered pixels, and the server's safety (token, origin, host, paths, uploads, bad
messages), over real HTTP and WebSocket connections on a free loopback port."""
import asyncio
import json
import os
import socket
import time

import cv2
import numpy as np
import pytest

aiohttp = pytest.importorskip("aiohttp")

from deepvis import load_model  # noqa: E402
from deepvis.toolbox.keys import key_name, parse_keys  # noqa: E402
from deepvis.toolbox.session import Session, replay, static_files_for  # noqa: E402
from deepvis.web import encode, geometry, protocol  # noqa: E402
from deepvis.web.inputs import UploadError, decode_upload  # noqa: E402
from deepvis.web.server import Hub, ServerThread, token_for  # noqa: E402
from tests.test_toolbox_render import outlined_unit, region  # noqa: E402


@pytest.fixture(scope="module")
def lite():
    return load_model("efficientnet-lite0")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """inputs/ and units/ served; a real image beside them that must never be served."""
    skdata = pytest.importorskip("skimage.data")
    root = tmp_path_factory.mktemp("serve")
    inputs, units = root / "inputs", root / "units"
    (units / "max_im" / "stem").mkdir(parents=True)
    inputs.mkdir()
    cv2.imwrite(str(inputs / "a_cat.png"), cv2.cvtColor(skdata.chelsea(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(inputs / "b_coffee.png"), cv2.cvtColor(skdata.coffee(), cv2.COLOR_RGB2BGR))
    (inputs / "notes.txt").write_text("not an image")
    cv2.imwrite(str(units / "max_im" / "stem" / "stem_0000.jpg"), np.full((30, 30, 3), 90, np.uint8))
    cv2.imwrite(str(root / "secret.png"), np.full((8, 8, 3), 7, np.uint8))
    os.symlink(root / "secret.png", units / "max_im" / "stem" / "link.png")
    return root


@pytest.fixture(scope="module")
def server(lite, folders):
    settings = folders / "s.yaml"
    settings.write_text(f"caffevis_unit_jpg_dir: {folders / 'units'}\n"
                        "caffevis_jpgvis_layers: [stem]\n")
    model = load_model("efficientnet-lite0", settings=str(settings))
    srv = ServerThread(Hub(model, folders / "inputs"), max_upload=200_000)
    yield srv
    srv.stop()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def get(url, headers=None):
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers=headers or {}) as response:
            return response.status, await response.read()


def raw_get(port, path, host="localhost"):
    """The status of a request sent byte for byte (no client-side path normalisation)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
                     .encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


class Page:
    """A WebSocket client that applies frame messages as the page's script does."""

    def __init__(self, ws):
        self.ws, self.canvas, self.header, self.hello, self.texts = ws, None, None, None, []

    async def next(self, until, timeout=30):
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), timeout)
            if msg.type == aiohttp.WSMsgType.BINARY:
                header, blobs = encode.unpack(msg.data)
                self.canvas = encode.apply_update(self.canvas, header, blobs)
                self.header = header
            elif msg.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                if data["type"] == "hello":
                    self.hello = data
                else:
                    self.texts.append(data)
            else:
                raise AssertionError(f"connection ended: {msg} after {self.texts}")
            if until(self):
                return self

    async def keys(self, text):
        names = parse_keys(text)
        for name in names:
            await self.ws.send_str(json.dumps({"type": "key", "key": name}))
        return len(names)


def settled(keys):
    return lambda page: page.header is not None and page.header["settled"] \
        and page.header["keys"] == keys


def rendered(model, folder, keys):
    session = Session(model, static_files_for(model.settings, folder))
    return session.drawer.draw(replay(session, parse_keys(keys))), session


# -- protocol and encoding -------------------------------------------------------------------
def test_every_bound_key_reaches_the_window_key_reader():
    from deepvis.toolbox.bindings import BINDINGS
    for binding in BINDINGS:
        for name in binding.keys:
            assert key_name(protocol.parse(json.dumps({"type": "key", "key": name})).code) == name


@pytest.mark.parametrize("raw", [b"\x00binary", "not json", "[1, 2]", '{"type": "key"}',
                                 '{"type": "key", "key": "F13"}', '{"type": "rm -rf"}',
                                 '{"type": "click", "x": -1, "y": 3}',
                                 '{"type": "hover", "x": 1e99, "y": 3}',
                                 '{"type": "input", "index": true}', "x" * 5000])
def test_malformed_messages_are_refused(raw):
    with pytest.raises(protocol.ProtocolError):
        protocol.parse(raw)


@pytest.mark.parametrize("width,level", [(200, 1), (201, 0)])   # rows of whole 32-bit words
def test_changed_blocks_rebuild_the_frame_exactly(width, level):  # or not; stored or deflated
    rng = np.random.default_rng(0)
    first = rng.integers(0, 255, (130, width, 3), np.uint8)
    second = first.copy()
    second[5, 7] = 0
    second[100:129, 150:199] = 255
    second[129, width - 1, 2] ^= 1                    # one byte of the last pixel
    rects = encode.changed_rects(first, second)
    assert rects == [(0, 0, 64, 64), (128, 64, width - 128, 66)]
    canvas = encode.apply_update(None, *encode.unpack(encode.frame_update(None, first, {
        "width": width, "height": 130}, {})))
    assert np.array_equal(canvas, first)
    message = encode.frame_update(first, second, {"width": width, "height": 130}, {}, level)
    stored = encode.png(second, level=0)
    assert len(stored) > second.nbytes and np.array_equal(     # level 0 stores the bytes
        cv2.cvtColor(cv2.imdecode(np.frombuffer(stored, np.uint8), 1), cv2.COLOR_BGR2RGB), second)
    assert np.array_equal(encode.apply_update(canvas, *encode.unpack(message)), second)
    assert encode.changed_rects(second, second) == []


def test_uploads_must_decode_within_the_pixel_limit():
    ok, png = cv2.imencode(".png", np.zeros((40, 50, 3), np.uint8))
    assert decode_upload(png.tobytes()).shape == (40, 50, 3)
    with pytest.raises(UploadError, match="larger"):
        decode_upload(png.tobytes(), max_pixels=1000)
    for junk in (b"", b"GIF89a but not really", png.tobytes()[:60]):
        with pytest.raises(UploadError):
            decode_upload(junk)
    big = cv2.imencode(".png", np.zeros((3000, 4000, 3), np.uint8))[1].tobytes()
    assert decode_upload(big).shape == (1536, 2048, 3)            # kept at most 2048 px


def test_a_page_keeps_a_bounded_number_of_uploads(lite, folders):
    from deepvis.web.inputs import MAX_UPLOADS, ClientInputs
    inputs = ClientInputs(lite.settings, folders / "inputs")
    tiny = np.zeros((4, 4, 3), np.uint8)
    assert [inputs.add_upload(f"u{k}", tiny) for k in range(MAX_UPLOADS)] == \
        list(range(2, 2 + MAX_UPLOADS))                 # after the folder's two images
    with pytest.raises(UploadError, match="at most"):
        inputs.add_upload("one more", tiny)


# -- hit-testing against rendered pixels -------------------------------------------------------
def test_tile_grid_finds_the_outlined_unit_and_layer_names(lite, folders):
    frame, session = rendered(lite, folders / "inputs", "o*4 down right right down")
    state = session.state
    grid = geometry.tile_grid(state, session.drawer)
    outlined = outlined_unit(region(frame, "caffevis_layers"), grid.cols)
    assert outlined == state.selected_unit == grid.cols + 2
    x, y = grid.centre(outlined)
    assert grid.unit_at(x, y)[0] == outlined
    assert [grid.unit_at(*grid.centre(k))[0] for k in range(grid.n)] == list(range(grid.n))
    ys, xs = np.nonzero((frame == (127, 255, 127)).all(axis=2))   # the outline's pixels
    assert {grid.unit_at(int(a), int(b))[0] for a, b in zip(xs, ys)} == {outlined}
    boxes = geometry.layer_boxes(state, session.drawer)
    assert len(boxes) == len(state.layers)
    for idx, (top, left, bottom, right) in enumerate(boxes):
        ink = (frame[top:bottom, left:right] != frame[0, 0]).any(axis=2)
        assert ink.any(), state.layers[idx].name
        assert geometry.layer_at(boxes, (left + right) // 2, (top + bottom) // 2) == idx
    assert geometry.layer_at(boxes, 5, 5) is None


# -- the server ---------------------------------------------------------------------------------
def test_key_sequence_gives_the_render_frame_and_bad_messages_get_errors(server, lite, folders):
    async def scenario():
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(server.url + "ws") as ws:
                page = await Page(ws).next(settled(0))
                assert page.hello["inputs"] == ["a_cat.png", "b_coffee.png"]
                for bad in ("garbage", '{"type": "key", "key": "F13"}'):
                    await ws.send_str(bad)
                await ws.send_bytes(b"\x01\x02")
                n = await page.keys("o*3 down b b b")
                await page.next(settled(n))
                await ws.send_str(json.dumps({"type": "hover", "x": 400, "y": 200}))
                await page.next(lambda p: any(t["type"] == "hover" for t in p.texts))
                return page
    page = run(scenario())
    errors = [t for t in page.texts if t["type"] == "error"]
    assert len(errors) == 3
    expected, _ = rendered(lite, folders / "inputs", "o*3 down b b b")
    assert np.array_equal(page.canvas, expected)
    assert page.header["state"] == {"layer": "block03", "layer_idx": 3, "unit": 0,
                                    "cursor": "bottom", "back": "deconv", "filter": "raw",
                                    "help": False}
    hover = next(t for t in page.texts if t["type"] == "hover")["text"]
    assert hover.startswith("block03 unit ") and "activation" in hover


def test_two_pages_keep_their_own_state_and_inputs(server, lite, folders):
    async def scenario():
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(server.url + "ws") as one, \
                    http.ws_connect(server.url + "ws") as two:
                a, b = await Page(one).next(settled(0)), await Page(two).next(settled(0))
                na, nb = await a.keys("o o down right"), await b.keys("e down")
                await asyncio.gather(a.next(settled(na)), b.next(settled(nb)))
                return a, b
    a, b = run(scenario())
    assert (a.header["state"]["layer"], a.header["state"]["unit"]) == ("block02", 1)
    assert (b.header["state"]["layer"], b.header["state"]["unit"]) == ("stem", 0)
    assert (a.header["input"]["name"], b.header["input"]["name"]) == ("a_cat.png", "b_coffee.png")
    model = server.hub.model                           # its unit folder has stem_0000.jpg
    assert np.array_equal(a.canvas, rendered(model, folders / "inputs", "o o down right")[0])
    assert np.array_equal(b.canvas, rendered(model, folders / "inputs", "e down")[0])
    jpgvis = region(b.canvas, "caffevis_jpgvis")
    assert (jpgvis == 90).all(axis=2).sum() >= 280 * 280   # that picture, enlarged
    # ... and its full-size file, for the page's panel
    assert b.header["units"] == {"max_im": "files/units/max_im/stem/stem_0000.jpg"}
    status, body = run(get(server.url + b.header["units"]["max_im"]))
    assert status == 200 and body == (folders / "units/max_im/stem/stem_0000.jpg").read_bytes()
    assert sorted(b.header["panels"]) == ["activation"] and a.header["panels"] == ["activation"]


def test_upload_changes_the_input_and_bad_uploads_are_refused(server):
    pattern = np.zeros((60, 90, 3), np.uint8)
    pattern[:, :45] = (0, 0, 255)                       # BGR: red on the left
    png = cv2.imencode(".png", pattern)[1].tobytes()

    async def scenario():
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(server.url + "ws") as ws:
                page = await Page(ws).next(settled(0))
                target = server.url + f"upload?client={page.hello['client']}&name=red.png"
                statuses = []
                for body in (b"\x89PNG not really", os.urandom(300_000), png):
                    async with http.post(target, data=body) as response:
                        statuses.append(response.status)
                async with http.post(server.url + "upload?client=nobody", data=png) as response:
                    statuses.append(response.status)
                await page.next(lambda p: p.header["settled"] and p.header["input"]["name"]
                                == "red.png")
                return page, statuses
    page, statuses = run(scenario())
    assert statuses == [400, 413, 200, 404]
    shown = region(page.canvas, "input")
    expected = cv2.resize(cv2.cvtColor(pattern[:, 15:75], cv2.COLOR_BGR2RGB), shown.shape[1::-1])
    assert np.array_equal(shown, expected)


def test_path_traversal_is_refused(server, folders):
    port = server.port
    assert raw_get(port, "/files/units/max_im/stem/stem_0000.jpg")[0] == 200    # positive control
    assert raw_get(port, "/files/input/a_cat.png")[0] == 200
    refused = ["/files/units/../../secret.png", "/files/units/%2e%2e/%2e%2e/secret.png",
               "/files/input/..%2fsecret.png", "/files/input/%2e%2e%2fsecret.png",
               "/files/input/%2F" + str(folders / "secret.png").lstrip("/").replace("/", "%2F"),
               "/files/units/max_im/stem/link.png", "/files/input/notes.txt",
               "/static/..%2f..%2fserver.py", "/thumbs/..%2f..%2fsecret.png", "/thumbs/9"]
    secret = (folders / "secret.png").read_bytes()
    for path in refused:
        status, body = raw_get(port, path)
        assert status in (403, 404), path
        assert secret not in body, path


def test_host_and_origin_checks_on_loopback(server):
    assert raw_get(server.port, "/", host="evil.example")[0] == 403     # DNS rebinding
    assert raw_get(server.port, "/")[0] == 200

    async def cross_site():
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await http.ws_connect(server.url + "ws", headers={"Origin": "http://evil.example"})
            return info.value.status
    assert run(cross_site()) == 403


def test_non_loopback_bind_needs_the_token(lite, folders):
    assert token_for("127.0.0.1") is None and token_for("localhost") is None
    token = token_for("0.0.0.0")
    assert token and token != token_for("0.0.0.0") and token_for("0.0.0.0", "mine") == "mine"
    srv = ServerThread(Hub(lite, folders / "inputs"), host="0.0.0.0", token=token)
    try:
        base = f"http://127.0.0.1:{srv.port}/"
        assert run(get(base))[0] == 403
        assert run(get(base + "?token=wrong"))[0] == 403
        assert run(get(base + "thumbs/0"))[0] == 403
        assert run(get(base + "files/input/a_cat.png"))[0] == 403
        assert run(get(base + f"?token={token}"))[0] == 200
        assert run(get(base + f"thumbs/0?token={token}"))[0] == 200

        async def ws(url):
            async with aiohttp.ClientSession() as http:
                try:
                    async with http.ws_connect(url) as sock:
                        return (await sock.receive_json())["type"]
                except aiohttp.WSServerHandshakeError as exc:
                    return exc.status
        assert run(ws(base + "ws")) == 403
        assert run(ws(base + f"ws?token={token}")) == "hello"
    finally:
        srv.stop()


def test_video_source_and_quit(lite, folders, tmp_path):
    from deepvis.toolbox.inputs import camera_frame
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for k in range(60):
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[:, :32] = (40 + 3 * k, 0, 200)
        frame[10:20, 40:60] = 255
        writer.write(frame)
    writer.release()
    capture = cv2.VideoCapture(str(video))
    decoded = []
    while (got := capture.read())[0]:
        decoded.append(got[1])
    capture.release()
    srv = ServerThread(Hub(lite, folders / "inputs", device=str(video)))

    def shows_a_video_frame(page):
        pane = region(page.canvas, "input")
        return page.header["input"]["camera"] and any(
            np.array_equal(pane, cv2.resize(camera_frame(f, mirror=False), pane.shape[1::-1]))
            for f in decoded)

    async def scenario():
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(srv.url + "ws") as ws:
                page = await Page(ws).next(settled(0))
                assert page.hello["video"] is True and not shows_a_video_frame(page)
                await page.keys("c")
                await page.next(shows_a_video_frame)
                await page.keys("q")
                await page.next(lambda p: any(t["type"] == "ended" for t in p.texts))
    try:
        run(scenario())
        deadline = time.monotonic() + 10
        while srv.hub.clients and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not srv.hub.clients                     # the page's session is gone
    finally:
        srv.stop()


def test_a_page_that_stops_reading_does_not_hold_up_another(lite, folders, tmp_path):
    """Page A plays a video and never reads its socket, so its sends back up; page B's keys
    still get their frames, and A's frames are skipped rather than queued."""
    video = tmp_path / "long.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 20, (128, 128))
    rng = np.random.default_rng(0)
    for _ in range(400):
        writer.write(rng.integers(0, 255, (128, 128, 3), np.uint8))   # every frame all new
    writer.release()
    srv = ServerThread(Hub(lite, folders / "inputs", device=str(video)))

    async def scenario():
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(srv.url + "ws", max_msg_size=0) as slow, \
                    http.ws_connect(srv.url + "ws") as fast:
                slow_id = (await slow.receive_json())["client"]
                await slow.send_str(json.dumps({"type": "key", "key": "c"}))
                page = await Page(fast).next(settled(0))
                await asyncio.sleep(3)                      # A's unread frames pile up
                n = await page.keys("o down right")
                await page.next(settled(n))              # B is served while A reads nothing
                return page, srv.hub.clients[slow_id]
    try:
        page, slow_page = run(scenario())
        drawn, sent = slow_page.latest.header["seq"], slow_page.shown.header["seq"]
        notice = slow_page.app.fetcher.notice
    finally:
        srv.stop()
    assert page.header["state"]["unit"] == 1
    assert sent < drawn // 2, (drawn, sent, notice)   # A's frames skipped, not queued (54 vs 7)


def test_serve_command_refuses_bad_arguments(capsys):
    from deepvis.cli import main as cli
    assert cli(["serve", "--port", "70000"]) == 1
    assert "--port" in capsys.readouterr().err
    assert cli(["serve", "--max-upload-mb", "0"]) == 1
    assert "--max-upload-mb" in capsys.readouterr().err
