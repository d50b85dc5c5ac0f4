"""Arguments and helpers shared by several subcommands."""
from __future__ import annotations

from ..exec import BACKENDS


def add_model_args(parser, backend: bool = True) -> None:
    parser.add_argument("model", metavar="MODEL",
                        help="bundled model name (e.g. efficientnet-lite0, caffenet after "
                             "`deepvis fetch caffenet`), an .onnx file, or a settings file "
                             "(.yaml, or an original settings_local.py)")
    parser.add_argument("--settings", metavar="FILE",
                        help="settings file (YAML or settings_local.py) applied on top of MODEL")
    if backend:
        parser.add_argument("--backend", choices=("auto", *BACKENDS), default="auto",
                            help="ort: onnxruntime (CPU, or CUDA with caffevis_mode_gpu and "
                                 "onnxruntime-gpu); numpy: deepvis's own NumPy executor; "
                                 "auto: ort when installed, else numpy (default)")


def open_model(args, backend=None, speed_over_memory: bool = False):
    from ..model import load_model
    return load_model(args.model, backend=backend or getattr(args, "backend", "auto"),
                      settings=args.settings, speed_over_memory=speed_over_memory)
