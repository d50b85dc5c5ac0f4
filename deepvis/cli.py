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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepvis",
        description="Look inside convolutional networks: the Deep Visualization Toolbox "
                    "on ONNX graphs, run by onnxruntime or NumPy.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
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
    parser = build_parser()
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
