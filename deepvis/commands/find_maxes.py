"""`deepvis find-maxes MODEL --images DIR|LIST -o MAXES.npz`: top-N images of every unit.

The file format is described in deepvis.maxes.store. A checkpoint `MAXES.npz.checkpoint`
is saved every --checkpoint-every batches (or partitions); after a kill, the same
command resumes from it and ends with exactly the result of an uninterrupted run.
"""
from __future__ import annotations

import pathlib
import sys

from ..errors import DeepvisError
from ..fileio import refuse_overwrite
from .common import add_model_args, open_model, setting_overrides


def register(sub) -> None:
    p = sub.add_parser("find-maxes", help="find the images that excite each unit most",
                       description="Scan images and keep, for every unit of the chosen "
                                   "layers, its top-N activations (max over space for conv "
                                   "units) with image index and location. Unreadable images "
                                   "are skipped and listed in the output.")
    add_model_args(p)
    p.add_argument("--images", required=True, metavar="DIR|LIST",
                   help="a folder (scanned recursively, sorted) or a list file of "
                        "'path [label]' lines, paths relative to the list's folder")
    p.add_argument("--layers", metavar="L1,L2",
                   help="comma-separated layers to scan (default: every blob but the input)")
    p.add_argument("--top", type=int, default=9, metavar="N", help="entries per unit (9)")
    p.add_argument("--framing", choices=("auto", "squash", "square"), default="auto",
                   help="how a photo becomes the input: squash (the original find_max_acts: "
                        "resize to 256x256 ignoring the aspect ratio, cut the input-sized "
                        "centre), square (the toolbox: the centred square, resized to the "
                        "input); auto (default): squash for Caffe models, else square. "
                        "crop-max-patches reuses the framing recorded in MAXES")
    p.add_argument("--batch-size", type=int, default=32, metavar="B",
                   help="images per forward (32)")
    p.add_argument("-o", "--output", required=True, metavar="MAXES.npz")
    p.add_argument("--checkpoint-every", type=int, default=20, metavar="K",
                   help="save a checkpoint every K batches (with Dask: every K partitions)")
    p.add_argument("--decode-threads", type=int, default=2, metavar="T",
                   help="threads decoding images ahead of the network (0: decode inline)")
    cluster = p.add_mutually_exclusive_group()
    cluster.add_argument("--scheduler", metavar="ADDRESS",
                         help="run on the Dask cluster at ADDRESS (tcp://host:8786)")
    cluster.add_argument("--workers", type=int, metavar="N",
                         help="run on a local Dask cluster of N worker processes")
    p.add_argument("--partition-size", type=int, metavar="IMAGES",
                   help="images per Dask task (default: about 4 tasks per worker, at most "
                        "64 batches each)")
    p.add_argument("--force", action="store_true",
                   help="overwrite MAXES and discard a checkpoint of a different run")
    p.set_defaults(run=run)


def run(args) -> int:
    """Hold the output's lock for the whole scan: a second find-maxes on the same output
    stops at once instead of deleting this one's checkpoint files."""
    from ..fileio import check_destination
    from ..locks import exclusive_output
    from ..maxes.checkpoint import checkpoint_path

    output = pathlib.Path(args.output)
    check_destination(output, overwrite=True)          # kind and folder, before the work
    check_destination(checkpoint_path(output), overwrite=True)
    with exclusive_output(output, "finding maxes into"):
        if not args.force and output.exists() and not checkpoint_path(output).exists():
            refuse_overwrite(output, args.force)
        return _run(args)


def _run(args) -> int:
    from ..maxes.framing import Framing, default_framing
    from ..maxes.checkpoint import (ScanState, checkpoint_path, discard_checkpoint,
                                    fingerprint, load_checkpoint, remove_temporaries,
                                    save_checkpoint)
    from ..maxes.images import list_images
    from ..maxes.scan import layer_channels
    from ..maxes.store import Maxes, write_maxes

    if args.top < 1 or args.batch_size < 1 or args.checkpoint_every < 1:
        raise DeepvisError("--top, --batch-size and --checkpoint-every must be at least 1")
    if args.workers is not None and args.workers < 1:
        raise DeepvisError("--workers must be at least 1")
    model = open_model(args)
    layers = layer_list(args.layers) or model.blob_names[1:]
    channels = layer_channels(model, layers)
    images = list_images(args.images)
    output = pathlib.Path(args.output)
    framing = default_framing(model) if args.framing == "auto" else Framing(args.framing)
    info = {"model": str(args.model), "settings": args.settings, "backend": model.backend,
            "top": args.top, "layers": layers, "image_count": len(images),
            "framing": framing.as_dict()}
    # --input-size and --preprocess change the tables; only when given, so that the
    # checkpoints of runs without them keep their fingerprint and still resume
    overrides = setting_overrides(args)
    digest = fingerprint(model.path, images, layers=layers, top=args.top,
                         backend=model.backend, settings=args.settings,
                         framing=framing.as_dict(),
                         **({"overrides": overrides} if overrides else {}))
    ckpt = checkpoint_path(output)
    remove_temporaries(output)
    if args.force:
        discard_checkpoint(ckpt)
    state = load_checkpoint(ckpt, digest, channels, args.top)
    if state is None:
        refuse_overwrite(output, args.force)
        state = ScanState.empty(channels, args.top)
    todo = state.done.remaining(len(images))

    saver = PeriodicSaver(lambda: save_checkpoint(ckpt, state, images, info, digest),
                          args.checkpoint_every)
    with progress(len(images), state.done.count()) as bar:
        def absorbed(part_images: int, skipped: dict) -> None:
            for index, why in sorted(skipped.items()):
                bar.write(f"deepvis find-maxes: skipped {images.file(index)}: {why}",
                          file=sys.stderr)
            bar.update(part_images)
            saver.tick()

        if args.scheduler or args.workers:
            run_on_cluster(args, model, images, layers, state, todo, absorbed, framing)
        else:
            from ..maxes.scan import scan
            scan(model, images, layers, state, todo, args.batch_size, args.decode_threads,
                 on_batch=lambda batch, _: absorbed(batch.end - batch.start, batch.skipped),
                 preprocess=framing.preprocessor(model))
    if len(images) and len(state.skipped) == len(images):
        discard_checkpoint(ckpt)
        first = next(iter(sorted(state.skipped.items())))
        raise DeepvisError(f"every one of the {len(images)} images was skipped, so {output} was "
                           f"not written; the first, {images.file(first[0])}: {first[1]}")
    write_maxes(output, Maxes(state.tables, images, state.skipped, info), overwrite=True)
    discard_checkpoint(ckpt)
    print(f"{len(images) - len(state.skipped)} images scanned, {len(state.skipped)} skipped, "
          f"{len(layers)} layers -> {output}")
    return 0


def run_on_cluster(args, model, images, layers, state, todo, absorbed, framing) -> None:
    from ..maxes.distributed import local_threads, open_client, scan_on_cluster

    spec = model_spec(args, model)

    def arrived(part) -> None:
        state.absorb(part)
        absorbed(part.done.count(), part.skipped)

    with open_client(args.scheduler, args.workers) as client:
        scan_on_cluster(client, spec, images, layers, args.top, args.batch_size, todo,
                        args.partition_size, arrived, decode_threads=min(args.decode_threads, 1),
                        threads=local_threads(args.workers) if args.workers else None,
                        framing=framing.as_dict())


def model_spec(args, model):
    """What a worker needs to load the same model: paths made absolute, and the command
    line's --input-size and --preprocess."""
    from ..maxes.distributed import ModelSpec

    def absolute(text):
        return str(pathlib.Path(text).resolve()) if text and pathlib.Path(text).exists() else text

    return ModelSpec(absolute(str(args.model)), absolute(args.settings), model.backend,
                     tuple(sorted(setting_overrides(args).items())))


def layer_list(text: str | None) -> list[str]:
    """'conv1, conv5,conv1' -> ['conv1', 'conv5']."""
    return list(dict.fromkeys(name.strip() for name in (text or "").split(",") if name.strip()))


class PeriodicSaver:
    """Calls save() every `every` ticks."""

    def __init__(self, save, every: int):
        self.save, self.every, self.ticks = save, every, 0

    def tick(self) -> None:
        self.ticks += 1
        if self.ticks % self.every == 0:
            self.save()


def progress(total: int, done: int):
    from tqdm import tqdm
    return tqdm(total=total, initial=done, unit="img", file=sys.stderr, smoothing=0.1,
                dynamic_ncols=True, mininterval=0.5)
