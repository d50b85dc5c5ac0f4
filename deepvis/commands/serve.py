"""`deepvis serve`: the live toolbox as a web page, for a machine without a screen."""
from __future__ import annotations

from .toolbox import add_toolbox_model_args


def register(sub) -> None:
    p = sub.add_parser(
        "serve", help="serve the live toolbox as a web page (no display needed)",
        description="Start a web server that shows the live toolbox in a browser: the same "
                    "frame, keys and settings as `deepvis toolbox`, plus the mouse (click a "
                    "layer name or a unit, hover a unit for its activation, click a picture "
                    "to show it), uploads by drag and drop, and full-size panels. Each "
                    "browser tab has its own state; all share one loaded model. It listens "
                    "on 127.0.0.1 unless told otherwise; on any other address every request "
                    "needs the token printed in the URL. To use it from another machine, "
                    "keep the default and tunnel: ssh -L 8600:localhost:8600 HOST.")
    add_toolbox_model_args(p)
    p.add_argument("--input-dir", metavar="DIR",
                   help="folder of images to show (default: the static_files_dir setting); "
                        "the only folder, with caffevis_unit_jpg_dir, the server reads "
                        "images from")
    p.add_argument("--capture-device", metavar="VIDEO",
                   help="a video file (or camera index) each page can switch to with c "
                        "(default: input_updater_capture_device when a settings file sets "
                        "it; a server has no camera 0)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8600, help="port (default 8600; 0: any free)")
    p.add_argument("--token", metavar="TOKEN",
                   help="the token requests must carry (default: a random one on a "
                        "non-loopback address, none on loopback)")
    p.add_argument("--max-upload-mb", type=float, default=16.0, metavar="MB",
                   help="largest image upload accepted (default 16)")
    p.add_argument("--max-pages", type=int, default=8, metavar="N",
                   help="most pages open at once (default 8; each has its own state)")
    p.set_defaults(run=run)


def run(args) -> int:
    import asyncio
    import signal

    from ..errors import DeepvisError
    try:
        from aiohttp import web
    except ImportError:
        raise DeepvisError("deepvis serve needs aiohttp: pip install 'deepvis[web]'") from None
    from ..web.server import Hub, is_loopback, make_app, token_for, url_for
    from .toolbox import open_toolbox_model

    if not 0 <= args.port < 65536:
        raise DeepvisError(f"--port must be in 0..65535, got {args.port}")
    if args.max_upload_mb <= 0 or args.max_pages < 1:
        raise DeepvisError("--max-upload-mb and --max-pages must be positive")
    loopback = is_loopback(args.host)
    token = token_for(args.host, args.token)
    model = open_toolbox_model(args)
    device = args.capture_device
    if device is None and "input_updater_capture_device" in getattr(model.settings, "explicit", ()):
        device = model.settings["input_updater_capture_device"]   # set by the user, not camera 0
    if isinstance(device, str) and device.lower() == "none":
        device = None
    hub = Hub(model, args.input_dir, device, max_clients=args.max_pages)
    app = make_app(hub, token, loopback, max_upload=int(args.max_upload_mb * 1024 ** 2))

    async def serve() -> None:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, args.host, args.port)
        try:
            await site.start()
        except OSError as exc:
            raise DeepvisError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") \
                from None
        port = runner.addresses[0][1]
        print(f"deepvis serve: open {url_for(args.host, port, token)}", flush=True)
        if not loopback:
            print("  (listening beyond this machine: keep the token secret)", flush=True)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):     # Ctrl-C, or a service manager
            try:
                asyncio.get_running_loop().add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # Windows: Ctrl-C still interrupts
                pass
        try:
            await stop.wait()
        finally:
            await runner.cleanup()             # closes every page and joins its threads

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    print("deepvis serve: stopped")
    return 0
