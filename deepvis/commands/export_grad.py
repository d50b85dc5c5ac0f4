"""`deepvis export-grad MODEL --layer L --mode M -o OUT.onnx`: a standalone gradient graph."""
from __future__ import annotations

from ..grad import MODES
from .common import add_model_args, open_model


def register(sub) -> None:
    p = sub.add_parser("export-grad", help="write the backward pass of a layer as an ONNX graph",
                       description="Write an ONNX graph with inputs `data` (the network input) "
                                   "and `seed` (shaped like the layer's output, any batch size) "
                                   "and output `grad`, the derivative at `data` of "
                                   "sum(seed * layer) in the chosen mode. It uses only standard "
                                   "ONNX ops, so stock onnxruntime runs it on CPU or CUDA.")
    add_model_args(p, backend=False)
    p.add_argument("--layer", required=True, help="blob the seed enters at (see `deepvis layers`)")
    p.add_argument("--mode", choices=MODES, default="grad",
                   help="grad: true gradient; deconv: Zeiler-Fergus deconvnet (ReLU rectifies "
                        "the signal, ignores its forward mask); guided: guided backprop "
                        "(forward mask and rectification). Default: grad")
    p.add_argument("-o", "--out", required=True, metavar="OUT.onnx")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..locks import claimed_outputs
    with claimed_outputs([args.out], overwrite=args.force):
        return _run(args)


def _run(args) -> int:
    model = open_model(args, backend="auto")
    model.export_grad(args.layer, args.mode, args.out, overwrite=args.force)
    print(f"wrote {args.out}: d(sum(seed * {args.layer}))/d({model.input_name}), mode {args.mode}")
    return 0
