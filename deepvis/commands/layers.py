"""`deepvis layers MODEL`: blob names and shapes in graph order."""
from __future__ import annotations

import json

from .common import add_model_args, open_model


def register(sub) -> None:
    p = sub.add_parser("layers", help="list a model's blobs (layers) and their shapes",
                       description="List the visible blobs of a model in graph order with their "
                                   "shapes at batch 1. These names are how every other command "
                                   "addresses layers.")
    add_model_args(p, backend=False)
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(run=run)


def run(args) -> int:
    model = open_model(args)
    rows = [(name, list(model.blob_shapes[name])) for name in model.blob_names]
    if args.json:
        print(json.dumps([{"name": n, "shape": s} for n, s in rows]))
        return 0
    width = max(len(n) for n, _ in rows)
    for name, shape in rows:
        print(f"{name:<{width}}  {' x '.join(map(str, shape))}")
    return 0
