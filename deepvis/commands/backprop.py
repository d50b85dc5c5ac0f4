"""`deepvis backprop`: the derivative of one unit at the input, as .npy and as a picture."""
from __future__ import annotations

import pathlib

import numpy as np

from ..errors import DeepvisError
from ..fileio import read_image, read_network_input, save_image, save_npy
from ..grad import MODES
from ..vis.back import FILTERS, back_image
from .common import add_model_args, open_model


def register(sub) -> None:
    p = sub.add_parser("backprop", help="backprop, deconv or guided backprop of one unit",
                       description="Compute the derivative at the network input of one unit "
                                   "(or of a whole channel weighted by its activations) and save "
                                   "it as .npy, optionally rendered as the toolbox's back pane.")
    add_model_args(p)
    p.add_argument("--input", "-i", required=True, metavar="FILE",
                   help="an image, or a .npy holding the network input (C,H,W) or (1,C,H,W)")
    p.add_argument("--layer", required=True, help="blob of the unit (see `deepvis layers`)")
    p.add_argument("--unit", required=True, metavar="C[,Y,X]",
                   help="channel, and for conv layers the location (default: the centre)")
    p.add_argument("--mode", choices=MODES, default="grad",
                   help="grad (true gradient), deconv (Zeiler-Fergus) or guided (default: grad)")
    p.add_argument("--seed", choices=("onehot", "activation"), default="onehot",
                   help="onehot: 1.0 at the unit; activation: the whole channel filled with its "
                        "own forward activations, as the toolbox seeds (default: onehot)")
    p.add_argument("--out", required=True, metavar="G.npy",
                   help="derivative at the network input, shape (1,C,H,W)")
    p.add_argument("--png", metavar="G.png", help="also render it as the toolbox's back pane")
    p.add_argument("--filter", choices=FILTERS, default="raw",
                   help="back pane filter for --png (default: raw)")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.set_defaults(run=run)


def parse_unit(text: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """`C` or `C,Y,X` -> an index into one image's blob (C,) or (C,H,W), checked against shape."""
    try:
        parts = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise DeepvisError(f"--unit {text!r}: expected C or C,Y,X (integers)") from None
    if len(shape) == 3 and len(parts) == 1:
        parts += (shape[1] // 2, shape[2] // 2)
    if len(parts) != len(shape) or len(parts) not in (1, 3):
        raise DeepvisError(f"--unit {text!r} does not fit a blob of shape {shape}")
    for value, size, name in zip(parts, shape, "CYX"):
        if not 0 <= value < size:
            raise DeepvisError(f"--unit {text!r}: {name}={value} is outside 0..{size - 1}")
    return parts


def make_seed(kind: str, unit: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """A seed shaped like the blob (batch 1 included): 1 at the unit, or 1 over its channel
    for the activation seed, which the gradient graph multiplies by the channel's own values
    in the same run (so the seed and every mask come from one forward pass)."""
    seed = np.zeros((1,) + tuple(shape[1:]), dtype=np.float32)
    if kind == "onehot":
        seed[(0, *unit)] = 1.0
    else:
        seed[0, unit[0]] = 1.0
    return seed


def run(args) -> int:
    from ..locks import claimed_outputs
    with claimed_outputs([args.out, args.png], overwrite=args.force, images=[args.png]):
        return _run(args)


def _run(args) -> int:
    outputs = [args.out] + ([args.png] if args.png else [])
    model = open_model(args)
    path = pathlib.Path(args.input)
    x = read_network_input(path) if path.suffix == ".npy" else model.preprocess(read_image(path))
    if x.shape[0] != 1:
        raise DeepvisError(f"{path}: backprop takes one image, got a batch of {x.shape[0]}")
    shape = model.blob_shapes.get(args.layer)
    if shape is None:
        raise DeepvisError(f"no blob named {args.layer!r}; see `deepvis layers {args.model}`")
    unit = parse_unit(args.unit, shape[1:])
    grad, _ = model.forward_backward(x, args.layer, make_seed(args.seed, unit, shape), args.mode,
                                     seed_times_activation=args.seed == "activation")
    save_npy(args.out, grad, overwrite=args.force)
    if args.png:
        image = back_image(grad[0], args.filter, model.preprocessing.channel_swap,
                           model.settings.get("caffevis_grad_norm_blur_radius", 4.0))
        save_image(args.png, image * 255.0, overwrite=args.force)
    where = ",".join(map(str, unit))
    print(f"{args.mode} of {args.layer}[{where}] ({args.seed} seed): |grad| max "
          f"{np.abs(grad).max():.4g}, saved {', '.join(outputs)}")
    return 0
