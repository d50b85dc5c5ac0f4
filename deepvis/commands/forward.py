"""`deepvis forward MODEL --input FILE...`: classify images, optionally save every blob."""
from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np

from ..errors import DeepvisError
from ..fileio import read_image, read_network_input, save_npz
from .common import add_model_args, open_model


def register(sub) -> None:
    p = sub.add_parser("forward", help="run a model on images and print the top classes",
                       description="Run a forward pass. Images are preprocessed as the model's "
                                   "settings say (crop or stretch to square, resize, channel "
                                   "swap, mean, scale); a .npy file is taken as the network "
                                   "input itself, (C,H,W) or (N,C,H,W).")
    add_model_args(p)
    p.add_argument("--input", "-i", nargs="+", required=True, metavar="FILE",
                   help="images (jpg, png, ...) or .npy network inputs; all run as one batch")
    p.add_argument("--top", type=positive_int, default=5, metavar="K",
                   help="classes to print (default 5)")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.add_argument("--save-blobs", metavar="OUT.npz",
                   help="write every visible blob, keyed by name, shapes (N,C,H,W) or (N,C)")
    p.add_argument("--force", action="store_true", help="overwrite --save-blobs if it exists")
    p.set_defaults(run=run)


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def refuse_non_finite(output: np.ndarray, names, blob: str) -> None:
    """NaN scores would print as a ranking of nothing: say which input gave them."""
    finite = np.isfinite(output.reshape(len(output), -1)).all(axis=1)
    if not finite.all():
        raise DeepvisError(f"the network's output {blob!r} for {names[int(np.argmin(finite))]} "
                           "is NaN or infinite (check the model's weights and the input)")


def load_inputs(model, files) -> tuple[np.ndarray, list[str]]:
    """Stack every input into one batch; names say which row came from which file."""
    batches, names = [], []
    for file in files:
        path = pathlib.Path(file)
        x = read_network_input(path) if path.suffix == ".npy" else model.preprocess(read_image(path))
        batches.append(x)
        names += [str(path)] if len(x) == 1 else [f"{path}[{i}]" for i in range(len(x))]
    shapes = {tuple(b.shape[1:]) for b in batches}
    if len(shapes) > 1 or shapes != {tuple(model.input_shape[1:])}:
        raise DeepvisError(f"inputs must match the network input {model.input_shape[1:]}, "
                           f"got {sorted(shapes)}")
    return np.concatenate(batches), names


def prob_blob(model) -> str:
    name = model.settings.get("caffevis_prob_layer")
    return name if name in model.blob_names else model.blob_names[-1]


def is_probability(model, blob: str) -> bool:
    """Whether a blob holds probabilities: the output of a Softmax. Anything else (a
    classifier's logits, most exports' last blob) is a score."""
    return any(node.op_type == "Softmax" and blob in node.output
               for node in model.graph.graph.node)


def top_k(probs: np.ndarray, k: int, labels, key: str = "prob") -> list[dict]:
    flat = probs.reshape(-1)
    order = np.argsort(-flat, kind="stable")[:k]
    return [{"class": int(i), "label": labels[i] if labels and i < len(labels) else str(i),
             key: float(flat[i])} for i in order]


def run(args) -> int:
    from ..locks import claimed_outputs
    with claimed_outputs([args.save_blobs], overwrite=args.force):
        return _run(args)


def _run(args) -> int:
    model = open_model(args)
    x, names = load_inputs(model, args.input)
    wanted = None if args.save_blobs else [prob_blob(model)]
    blobs = model.forward(x, blobs=wanted)
    refuse_non_finite(blobs[prob_blob(model)], names, prob_blob(model))
    probs = blobs[prob_blob(model)].reshape(len(x), -1)
    key = "prob" if is_probability(model, prob_blob(model)) else "score"
    results = [{"input": name, "blob": prob_blob(model),
                "top": top_k(p, args.top, model.labels, key)} for name, p in zip(names, probs)]
    if args.save_blobs:
        save_npz(args.save_blobs, blobs, overwrite=args.force)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        if key == "score":
            print(f"(scores of {prob_blob(model)}, not probabilities: it is not the output of "
                  "a Softmax)")
        for result in results:
            print(result["input"])
            for rank, entry in enumerate(result["top"], 1):
                print(f"  {rank}. {entry[key]:.4f}  {entry['class']:>4}  {entry['label']}")
    return 0
