"""`deepvis fetch NAME`: download a published Caffe model, verify it, convert it to ONNX once."""
from __future__ import annotations

import argparse
import textwrap

from ..errors import DeepvisError
from ..fetch import MODELS, fetch_model, fetched_onnx_path, model_dir
from ..fetch.install import UNIT_JPG_DIR
from ..fetch.urls import BASE_URL_ENV

WIDTH = 78


def _size(entry) -> str:
    sizes = [f.expected.size for f in entry.files]
    if None in sizes:
        return "size not published"
    total = sum(sizes)
    return f"{total / 2**20:,.0f} MiB" if total >= 2**20 else f"{total / 2**10:,.0f} KiB"


def _models_help() -> str:
    blocks = []
    for entry in MODELS.values():
        lines = [f"{entry.name} ({_size(entry)})", f"  {entry.title}"]
        for label, text in (("source", entry.source), ("status", entry.status),
                            ("note", entry.warning)):
            if text:
                lines += textwrap.wrap(f"{label}: {text}", WIDTH, initial_indent="  ",
                                       subsequent_indent="    ", break_on_hyphens=False)
        lines += ["  weights from:"] + [f"    {url}" for url in entry.weights.urls]
        blocks.append("\n".join(lines))
    env = textwrap.fill(
        f"Files go to $DEEPVIS_CACHE/models/NAME/ (default ~/.cache/deepvis/models/NAME/). "
        f"Every file is checked against its published size and checksums before it is moved "
        f"into place; an interrupted download resumes when you rerun. To download from your "
        f"own mirror of the original hosts, set {BASE_URL_ENV}=URL: each catalog URL "
        f"scheme://host/path is then fetched as URL/host/path (the layout `wget --mirror` "
        f"writes).", WIDTH)
    return "models:\n\n" + "\n\n".join(blocks) + "\n\n" + env


def register(sub) -> None:
    p = sub.add_parser(
        "fetch", help="download a Caffe model (caffenet, bvlc-googlenet, ...) and convert it",
        description="Download a published Caffe model's weights (and mean image), verify them, "
                    "and convert the network to ONNX once, so `deepvis forward NAME` and the "
                    "other commands can use it by name.",
        epilog=_models_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", nargs="?", metavar="NAME", help=f"one of: {', '.join(MODELS)}")
    p.add_argument("--list", action="store_true",
                   help="list the models, their status and whether they are fetched")
    p.add_argument("--mirror", metavar="URL",
                   help="a folder URL holding the files under their published names; tried "
                        "before the catalog's URLs (files are still verified)")
    p.add_argument("--no-convert", action="store_true",
                   help="only download and verify; do not convert to ONNX")
    p.set_defaults(run=run)


def run(args) -> int:
    if args.list:
        for entry in MODELS.values():
            onnx = fetched_onnx_path(entry.name)
            state = f"fetched: {onnx}" if onnx else "not fetched"
            print(f"{entry.name:<15} {_size(entry):>18}  {state}\n{'':<15} {entry.title}")
        return 0
    if not args.name:
        raise DeepvisError(f"name a model to fetch ({', '.join(MODELS)}) or pass --list")
    entry = MODELS.get(args.name)
    if entry is None:
        raise DeepvisError(f"unknown model {args.name!r}; choose one of {', '.join(MODELS)}")
    onnx = fetch_model(entry, mirror=args.mirror, convert=not args.no_convert)
    folder = model_dir(entry.name)
    if entry.unit_jpgs:
        print(f"per-unit images: {folder / UNIT_JPG_DIR}")
    if onnx is None:
        print(f"{entry.name}: files verified in {folder}; rerun without --no-convert to "
              "convert them to ONNX")
    else:
        print(f"{entry.name}: ready, converted model at {onnx}\n"
              f"use it:  deepvis forward {entry.name} --input IMAGE\n"
              f"         deepvis layers {entry.name}")
    return 0
