"""`deepvis toolbox`: the live Deep Visualization Toolbox window."""
from __future__ import annotations

from .common import add_backend_args, setting_overrides

DEFAULT_MODEL = "efficientnet-lite0"
SETTINGS_LOCAL = "settings_local.py"


def register(sub) -> None:
    p = sub.add_parser("toolbox", help="open the live toolbox window",
                       description="Open the Deep Visualization Toolbox window: the input, every "
                                   "channel of the selected layer, the grad or deconv of the "
                                   "selected unit and its per-unit pictures. Push h in the window "
                                   "for the keys, q to quit.")
    add_toolbox_model_args(p)
    p.add_argument("--input-dir", metavar="DIR",
                   help="folder of images to show (default: the static_files_dir setting)")
    p.add_argument("--capture-device", metavar="DEVICE",
                   help="camera index, video file, or none (default: "
                        "input_updater_capture_device, camera 0 as in the original; without a "
                        "camera the status line says so and static files are shown)")
    p.set_defaults(run=run)


def add_toolbox_model_args(p) -> None:
    p.add_argument("--settings", metavar="FILE",
                   help="settings file: YAML, or an original toolbox settings_local.py "
                        f"(default: {SETTINGS_LOCAL} in the working directory or beside "
                        "deepvis's settings defaults, where run_toolbox.py found it)")
    p.add_argument("--model", metavar="MODEL",
                   help="bundled model name, .onnx file or settings file (default: the "
                        f"settings' model, else {DEFAULT_MODEL})")
    add_backend_args(p, "ort (onnxruntime), numpy, or auto: ort when installed (default)")


def find_settings_local(cwd=None):
    """settings_local.py where the original's run_toolbox.py imported it from: the working
    directory, else the folder of the settings defaults. None when neither has one."""
    import pathlib

    from ..resources import settings_dir

    for folder in (pathlib.Path(cwd) if cwd else pathlib.Path.cwd(), settings_dir()):
        path = folder / SETTINGS_LOCAL
        if path.is_file():
            return path
    return None


def uses_original_settings(args) -> bool:
    """Settings from an original settings_local.py: static files then come in os.listdir
    order, as the original listed them."""
    return str(getattr(args, "settings", None) or "").endswith(".py")


def open_toolbox_model(args):
    """--model on top of --settings (default: a settings_local.py found as run_toolbox.py
    found it); the settings' own model; else the embedded default."""
    import sys

    from ..model import load_model
    from ..settings import read_settings_file

    if not args.settings:
        found = find_settings_local()
        if found is not None:
            print(f"deepvis: using {found} (found as run_toolbox.py found settings_local.py; "
                  "--settings picks another file)", file=sys.stderr)
            args.settings = str(found)
    model = _open(args, load_model, read_settings_file)
    if model.settings.get("installed_apps") is not None:
        print("deepvis: installed_apps is ignored: deepvis has one app, the caffevis panes",
              file=sys.stderr)
    return model


def _open(args, load_model, read_settings_file):
    flags = setting_overrides(args)
    if args.model:
        return load_model(args.model, backend=args.backend, settings=args.settings,
                          overrides=flags)
    if args.settings:
        own = read_settings_file(args.settings)
        if own.get("deepvis_model") or own.get("caffevis_deploy_prototxt"):
            return load_model(args.settings, backend=args.backend, overrides=flags)
    return load_model(DEFAULT_MODEL, backend=args.backend, settings=args.settings,
                      overrides=flags)


def display_problem(environ=None, platform: str | None = None) -> str | None:
    """Why no window can open here, or None. On Linux, Qt aborts the whole process (SIGABRT)
    when it finds no display, so the check comes first."""
    import os
    import sys

    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux") or environ.get("QT_QPA_PLATFORM") or \
            environ.get("WAYLAND_DISPLAY"):
        return None
    display = environ.get("DISPLAY", "")
    if not display:
        return "no display (DISPLAY is not set)"
    host, _, number = display.rpartition(":")
    number = number.split(".")[0]
    if host in ("", "unix") and number.isdigit() and \
            not os.path.exists(f"/tmp/.X11-unix/X{number}"):
        return f"no X server for DISPLAY={display}"
    return None


def run(args) -> int:
    from ..errors import DeepvisError

    problem = display_problem()
    if problem:
        raise DeepvisError(f"{problem}: the live window needs a display. Without one, draw "
                           "frames with `deepvis render --model MODEL --input IMAGE --keys ... "
                           "--out FRAME.png`, or serve the toolbox to a browser with "
                           "`deepvis serve`")
    from ..toolbox.app import ToolboxApp
    from ..toolbox.inputs import StaticFiles
    from ..toolbox.session import Session

    model = open_toolbox_model(args)
    device = args.capture_device if args.capture_device is not None \
        else model.settings.get("input_updater_capture_device")
    if isinstance(device, str) and device.lower() == "none":
        device = None
    static = StaticFiles(model.settings, args.input_dir,
                         listdir_order=uses_original_settings(args))
    ToolboxApp(Session(model, static), device=device).run()
    return 0
