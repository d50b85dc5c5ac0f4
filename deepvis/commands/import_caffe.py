"""`deepvis import-caffe DEPLOY WEIGHTS -o OUT.onnx`: convert a Caffe model to ONNX."""
from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "import-caffe", help="convert a Caffe deploy .prototxt + .caffemodel to ONNX",
        description="Convert a Caffe network (deploy definition + trained weights) to an ONNX "
                    "forward graph that every deepvis command can load. Every Caffe blob keeps "
                    "its name (after in-place ReLU/Dropout, as the original toolbox shows it) "
                    "and is an output of the graph. Caffe's preprocessing defaults (BGR channel "
                    "order, 0..255 pixels) are recorded in the file.")
    p.add_argument("deploy", metavar="DEPLOY.prototxt",
                   help="the deploy network definition (V0/V1/V2 text format)")
    p.add_argument("weights", metavar="WEIGHTS.caffemodel",
                   help="trained weights, matched to the deploy layers by layer name")
    p.add_argument("-o", "--output", metavar="OUT.onnx", required=True,
                   help="the .onnx file to write")
    p.add_argument("--mean", metavar="FILE",
                   help="mean image (.npy or .binaryproto, e.g. ilsvrc_2012_mean.npy); it is "
                        "centre-cropped to the input size and saved next to OUT "
                        "with the same stem (net.onnx -> net.mean.npy)")
    p.add_argument("--force", action="store_true",
                   help="overwrite OUT (and its mean file) if they exist")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..caffe.convert import import_caffe, mean_sidecar_path

    from ..locks import claimed_outputs

    out = Path(args.output)
    with claimed_outputs([out], overwrite=args.force):
        model = import_caffe(args.deploy, args.weights, mean_path=args.mean, out_path=out,
                             overwrite=args.force)
    print(f"deepvis: wrote {out} ({len(model.graph.node)} nodes)"
          + (f" and {mean_sidecar_path(out)}" if args.mean else ""), file=sys.stderr)
    return 0
