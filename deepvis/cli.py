"""The `deepvis` console command: one subcommand per module in deepvis.commands."""
from __future__ import annotations

import argparse
import importlib
import sys

from .errors import DeepvisError

# Each module defines register(subparsers), which adds its parser and sets `run`.
COMMANDS = (
    "layers",
    "forward",
    "import_caffe",
    "fetch",
    "export_grad",
    "backprop",
    "optimize",
    "optimize_layer",
    "figures",
    "judge",
    "reproduce",
    "find_maxes",
    "crop_max_patches",
    "convert_original",
    "toolbox",
    "render",
    "serve",
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or only of `command` when it names one module: a
    command then does not import the others' dependencies (optimize's SciPy, fetch's
    networking), a second saved on each `deepvis layers`."""
    parser = argparse.ArgumentParser(
        prog="deepvis",
        description="Look inside convolutional networks: the Deep Visualization Toolbox "
                    "on ONNX graphs, run by onnxruntime or NumPy.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    module = (command or "").replace("-", "_")
    for name in ((module,) if module in COMMANDS else COMMANDS):
        importlib.import_module(f"deepvis.commands.{name}").register(sub)
    return parser


def exit_on_sigterm() -> None:
    """SIGTERM (kill, a job scheduler's time limit) unwinds like Ctrl-C, so every `finally`
    runs and no temporary file is left behind."""
    import signal
    import threading

    def terminated(signum, frame):
        raise SystemExit(128 + signum)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, terminated)


def main(argv=None) -> int:
    if argv is None:                 # the console command, not a caller inside Python
        exit_on_sigterm()
    words = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser(next((w for w in words if not w.startswith("-")), None))
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("deepvis: interrupted", file=sys.stderr)
        return 130
    except DeepvisError as exc:
        print(f"deepvis {args.command}: error: {exc}", file=sys.stderr)
        return 1




if __name__ == "__main__":
    sys.exit(main())
