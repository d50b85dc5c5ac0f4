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
