"""The web server: aiohttp routes, one Client per WebSocket, safe by default.

Safety: on a loopback address requests must name a loopback host (no DNS rebinding); on
any other address every request needs the token (in the URL once, then a cookie);
WebSocket and upload requests from another origin are refused; uploads are size-limited
and must decode as images; files are served only from the input folder and the
unit_jpg_vis folder, by relative paths that stay inside them after resolving links; a
malformed message gets an error reply and the connection goes on.
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import pathlib
import secrets
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import cv2
from aiohttp import WSMsgType, web

from ..toolbox.bindings import BINDINGS
from ..toolbox.jpgs import FifoCache
from ..toolbox.layout import panes_from_settings
from .client import Client
from .encode import frame_update
from .inputs import ClientInputs, UploadError, decode_upload
from .protocol import MAX_MESSAGE, ProtocolError, parse

STATIC = pathlib.Path(__file__).resolve().parent / "static"
STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
MAX_UPLOAD = 16 * 1024 ** 2
THUMB_HEIGHT = 72
HUB = web.AppKey("hub", object)
FAST_SEND_S = 0.005       # a message the link took within this is sent uncompressed next


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Hub:
    """What every page shares: the model, the input folder, the jpg cache, the encoder
    threads, and the list of pages."""

    def __init__(self, model, input_dir=None, device=None, max_clients: int = 8):
        settings = model.settings
        self.model = model
        self.input_dir = input_dir
        self.device = device
        self.max_clients = max_clients
        self.jpg_cache = FifoCache(settings["caffevis_jpg_cache_size"])
        self.clients: dict[str, Client] = {}
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="deepvis-encode")
        self.unit_dir = settings.get("caffevis_unit_jpg_dir")
        self.listing = ClientInputs(settings, input_dir)
        self.panes = panes_from_settings(settings)
        self._thumbs: dict = {}

    @property
    def inputs_dir(self) -> pathlib.Path:
        return pathlib.Path(self.listing.directory)

    def input_names(self) -> list[str]:
        return [n if isinstance(n, str) else n[0] for n in self.listing.directory_files()]

    def close(self) -> None:
        for client in list(self.clients.values()):
            client.close()
        for client in list(self.clients.values()):
            client.thread.join(30)
        self.pool.shutdown(wait=True)


def make_app(hub: Hub, token: str | None = None, loopback: bool = True,
             max_upload: int = MAX_UPLOAD) -> web.Application:
    app = web.Application(client_max_size=max_upload,
                          middlewares=[_guard(token, loopback)])
    app[HUB] = hub
    app.add_routes([
        web.get("/", _index),
        web.get("/static/{name}", _static),
        web.get("/ws", _websocket),
        web.post("/upload", _upload),
        web.get("/thumbs/{index}", _thumb),
        web.get("/files/input/{path:.+}", _input_file),
        web.get("/files/units/{path:.+}", _unit_file),
    ])
    app.on_shutdown.append(_shutdown)
    return app


# -- guard ------------------------------------------------------------------------------
def _guard(token: str | None, loopback: bool):
    @web.middleware
    async def guard(request: web.Request, handler):
        host = urlsplit(f"//{request.host}").hostname or ""
        if loopback and not is_loopback(host):
            raise web.HTTPForbidden(text=f"this server answers to localhost only, not {host!r}")
        if token is not None:
            given = request.query.get("token") or request.cookies.get(_cookie(request)) or ""
            if not hmac.compare_digest(given.encode(), token.encode()):
                raise web.HTTPForbidden(
                    text="this deepvis server needs its token: open the URL it printed "
                         "when it started (http://HOST:PORT/?token=...)")
        if request.path in ("/ws", "/upload"):
            origin = request.headers.get("Origin")
            if origin is not None and urlsplit(origin).netloc != request.host:
                raise web.HTTPForbidden(text=f"requests from {origin} are not allowed")
        response = await handler(request)
        if token is not None and request.query.get("token") and request.path == "/":
            response.set_cookie(_cookie(request), token, httponly=True, samesite="Strict")
        return response
    return guard


def _cookie(request) -> str:
    return "deepvis-token-" + str(request.url.port or "")


# -- pages and files ---------------------------------------------------------------------
async def _index(request):
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


async def _static(request):
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC / name, headers={"Content-Type": STATIC_FILES[name]})


def safe_path(root, relative: str) -> pathlib.Path:
    """`root`/`relative`, refused (403) unless it is an image file inside root once every
    link is resolved; 404 when it does not exist."""
    if root is None:
        raise web.HTTPNotFound(text="no such folder on this server")
    parts = relative.replace("\\", "/").split("/")
    if "\0" in relative or relative.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise web.HTTPForbidden(text="only plain relative paths inside the folder")
    base = pathlib.Path(root).resolve()
    path = (base / relative).resolve()
    if base not in path.parents:
        raise web.HTTPForbidden(text="outside the served folder")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise web.HTTPForbidden(text="only image files are served")
    if not path.is_file():
        raise web.HTTPNotFound()
    return path


async def _input_file(request):
    hub: Hub = request.app[HUB]
    root = hub.inputs_dir if hub.inputs_dir.is_dir() else None
    return web.FileResponse(safe_path(root, request.match_info["path"]))


async def _unit_file(request):
    hub: Hub = request.app[HUB]
    return web.FileResponse(safe_path(hub.unit_dir, request.match_info["path"]))


async def _thumb(request):
    hub: Hub = request.app[HUB]
    try:
        index = int(request.match_info["index"])
        name = hub.input_names()[index]
    except (ValueError, IndexError):
        raise web.HTTPNotFound() from None
    path = safe_path(hub.inputs_dir, name)
    key = (name, path.stat().st_mtime_ns)
    data = hub._thumbs.get(key)
    if data is None:
        data = await asyncio.get_running_loop().run_in_executor(hub.pool, _thumbnail, path)
        hub._thumbs[key] = data
    return web.Response(body=data, content_type="image/jpeg")


def _thumbnail(path) -> bytes:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise web.HTTPNotFound()
    scale = THUMB_HEIGHT / image.shape[0]
    small = cv2.resize(image, (max(1, int(image.shape[1] * scale)), THUMB_HEIGHT),
                       interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


# -- uploads ----------------------------------------------------------------------------
async def _upload(request):
    hub: Hub = request.app[HUB]
    client = hub.clients.get(request.query.get("client", ""))
    if client is None:
        raise web.HTTPNotFound(text="no such page: reload it")
    data = await request.read()           # over client_max_size: 413
    loop = asyncio.get_running_loop()
    try:
        rgb = await loop.run_in_executor(hub.pool, decode_upload, data)
        label = pathlib.PurePosixPath(request.query.get("name", "upload")).name[:80]
        client.add_upload(label or "upload", rgb)
    except (UploadError, ProtocolError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return web.json_response({"ok": True, "width": rgb.shape[1], "height": rgb.shape[0]})


# -- the page's WebSocket ------------------------------------------------------------------
async def _websocket(request):
    hub: Hub = request.app[HUB]
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE * 4, heartbeat=30, compress=False)
    await ws.prepare(request)
    if len(hub.clients) >= hub.max_clients:
        await ws.send_json({"type": "error", "fatal": True,
                            "message": f"{hub.max_clients} pages are open already"})
        await ws.close()
        return ws
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    client = Client(hub, notify=lambda: _call_soon(loop, wake.set))
    hub.clients[client.id] = client
    client.start()
    lock = asyncio.Lock()
    await ws.send_json(_hello(hub, client))
    sender = asyncio.create_task(_send_frames(client, ws, wake, lock, hub.pool))
    try:
        async for msg in ws:
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            try:
                reply = client.handle(parse(msg.data))
            except ProtocolError as exc:
                reply = {"type": "error", "message": str(exc)}
            if reply is not None:
                async with lock:
                    await ws.send_str(json.dumps(reply))
    finally:
        client.close()
        sender.cancel()
        # the page's threads finish their network run and stop; until then it counts
        await loop.run_in_executor(None, client.thread.join, 30)
        hub.clients.pop(client.id, None)
    return ws


def _call_soon(loop, callback) -> None:
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:          # the loop has closed: the server is stopping
        pass


def _hello(hub: Hub, client: Client) -> dict:
    shape = client.session.drawer.shape
    return {"type": "hello", "client": client.id, "width": shape[1], "height": shape[0],
            "panes": {name: [p.j, p.i, p.width, p.height] for name, p in hub.panes.items()},
            "inputs": hub.input_names(),
            "layers": [info.name for info in client.session.state.layers],
            "keys": [[", ".join(b.keys), b.help] for b in BINDINGS if b.help],
            "video": hub.device is not None}


async def _send_frames(client: Client, ws, wake: asyncio.Event, lock, pool) -> None:
    """Newest frame wins: whatever was drawn while the last one was being sent is skipped.
    While the link takes each message at once (loopback, a LAN), pieces are stored rather
    than compressed, which costs a third of the CPU; once a send has to wait for the link
    (a slow tunnel), they are compressed."""
    loop = asyncio.get_running_loop()
    previous, sent_panels, level = None, {}, 1
    while not ws.closed:
        await wake.wait()
        wake.clear()
        snap = client.latest
        if snap is not None and snap is not client.shown:
            panels = {name: make for name, (key, make) in snap.panels.items()
                      if sent_panels.get(name) != key}
            header = {**snap.header, "panels": sorted(snap.panels)}
            data = await loop.run_in_executor(pool, frame_update, previous, snap.image,
                                              header, panels, level)
            async with lock:
                started = loop.time()
                await ws.send_bytes(data)
                level = 0 if loop.time() - started < FAST_SEND_S else 1
            previous, client.shown = snap.image, snap
            sent_panels = {name: key for name, (key, _) in snap.panels.items()}
        if client.ended.is_set() and client.latest is client.shown:
            async with lock:
                await ws.send_json({"type": "ended", "message": client.error or
                                    "the session ended (q): reload the page to start again"})
            await ws.close()
            return


async def _shutdown(app) -> None:
    hub: Hub = app[HUB]
    await asyncio.get_running_loop().run_in_executor(None, hub.close)


# -- running ----------------------------------------------------------------------------------
def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_for(host: str, given: str | None = None) -> str | None:
    """The token requests must carry: the one given, else none on loopback and a fresh
    random one on any other address (as Jupyter does)."""
    if given:
        return given
    return None if is_loopback(host) else new_token()


def url_for(host: str, port: int, token: str | None) -> str:
    shown = "localhost" if host in ("127.0.0.1", "localhost") else host
    if shown in ("", "0.0.0.0", "::"):          # every address: name this machine
        shown = socket.gethostname()
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


class ServerThread:
    """The server on its own event loop in a thread (tests and the benchmark)."""

    def __init__(self, hub: Hub, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None, **options):
        self.hub, self.host, self.token = hub, host, token
        self.app = make_app(hub, token, loopback=is_loopback(host), **options)
        self.loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(self.app, handle_signals=False)
        self.loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, host, port)
        self.loop.run_until_complete(site.start())
        self.port = self._runner.addresses[0][1]
        self._thread = threading.Thread(target=self.loop.run_forever, name="deepvis-web",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return url_for("127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host,
                       self.port, self.token)

    def stop(self) -> None:
        future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop)
        future.result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
