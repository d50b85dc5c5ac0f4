"""`deepvis toolbox`: the live Deep Visualization Toolbox window."""
from __future__ import annotations

from ..exec import BACKENDS

DEFAULT_MODEL = "efficientnet-lite0"


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
                   help="camera index or video file (default: input_updater_capture_device)")
    p.set_defaults(run=run)


def add_toolbox_model_args(p) -> None:
    p.add_argument("--settings", metavar="FILE",
                   help="settings file: YAML, or an original toolbox settings_local.py")
    p.add_argument("--model", metavar="MODEL",
                   help="bundled model name, .onnx file or settings file (default: the "
                        f"settings' model, else {DEFAULT_MODEL})")
    p.add_argument("--backend", choices=("auto", *BACKENDS), default="auto",
                   help="ort (onnxruntime), numpy, or auto: ort when installed (default)")


def open_toolbox_model(args):
    """--model on top of --settings; the settings' own model; else the embedded default."""
    from ..model import load_model
    from ..settings import read_settings_file

    if args.model:
        return load_model(args.model, backend=args.backend, settings=args.settings)
    if args.settings:
        own = read_settings_file(args.settings)
        if own.get("deepvis_model") or own.get("caffevis_deploy_prototxt"):
            return load_model(args.settings, backend=args.backend)
    return load_model(DEFAULT_MODEL, backend=args.backend, settings=args.settings)


def run(args) -> int:
    from ..toolbox.app import ToolboxApp
    from ..toolbox.inputs import StaticFiles
    from ..toolbox.session import Session

    model = open_toolbox_model(args)
    device = args.capture_device if args.capture_device is not None \
        else model.settings.get("input_updater_capture_device")
    ToolboxApp(Session(model, StaticFiles(model.settings, args.input_dir)), device=device).run()
    return 0
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


    from ..errors import DeepvisError

    problem = display_problem()
    if problem:
        raise DeepvisError(f"{problem}: the live window needs a display. Without one, draw "
                           "frames with `deepvis render --model MODEL --input IMAGE --keys ... "
                           "--out FRAME.png`, or serve the toolbox to a browser with "
                           "`deepvis serve`")
