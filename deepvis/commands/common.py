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
    parser.add_argument("--input-size", metavar="HxW",
                        help="input height and width for a graph exported with a dynamic "
                             "size (the setting deepvis_input_size)")
    parser.add_argument("--preprocess", metavar="NAME",
                        choices=("torchvision", "caffe", "tf", "lite"),
                        help="how photos become inputs, by convention: torchvision (RGB, "
                             "ImageNet mean/std), caffe (BGR, ImageNet mean, scale 1), tf "
                             "(RGB to [-1, 1]), lite (RGB, (x-127)/128); the setting "
                             "deepvis_preprocess")
    if backend:
        add_backend_args(parser, "ort: onnxruntime (CPU, or CUDA with --gpu); numpy: deepvis's "
                                 "own NumPy executor; auto: ort when installed, else numpy "
                                 "(default)")


def add_backend_args(parser, help: str) -> None:
    """--backend, and --gpu (the original's caffevis_mode_gpu), for every command that runs
    a network."""
    parser.add_argument("--backend", choices=("auto", *BACKENDS), default="auto", help=help)
    parser.add_argument("--gpu", action="store_true",
                        help="run onnxruntime on CUDA: needs onnxruntime-gpu and a CUDA "
                             "runtime, and without them says so once and runs on the CPU; "
                             "the setting caffevis_mode_gpu")


def open_model(args, backend=None, speed_over_memory: bool = False):
    from ..model import load_model
    return load_model(args.model, backend=backend or getattr(args, "backend", "auto"),
                      settings=args.settings, speed_over_memory=speed_over_memory,
                      overrides=setting_overrides(args))


def setting_overrides(args) -> dict:
    """The settings the command line sets (--input-size, --preprocess, --gpu): one
    definition, so that every process that loads the model (Dask workers too) gets the same
    ones."""
    flags = {"deepvis_input_size": getattr(args, "input_size", None),
             "deepvis_preprocess": getattr(args, "preprocess", None),
             "caffevis_mode_gpu": True if getattr(args, "gpu", False) else None}
    return {key: value for key, value in flags.items() if value is not None}
