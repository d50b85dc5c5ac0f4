"""`deepvis render`: the frame the toolbox window would show, written to a file."""
from __future__ import annotations

from .toolbox import add_toolbox_model_args, open_toolbox_model, uses_original_settings


def register(sub) -> None:
    p = sub.add_parser("render", help="draw a toolbox frame to an image file (no display)",
                       description="Replay keys as the toolbox window would (same key names: "
                                   "letters, digits, left, right, up, down, pgup, pgdn, esc) "
                                   "and write the frame it would then show. The network work "
                                   "runs after each key, synchronously.")
    add_toolbox_model_args(p)
    p.add_argument("--input", required=True, metavar="IMAGE",
                   help="an image, or a folder of images (navigate with e / w)")
    p.add_argument("--keys", default="", metavar="KEYS",
                   help="keys separated by spaces or commas; 'ooo' is three o's, 'right*5' five "
                        "right arrows, e.g. --keys 'o*8 down right*3 b b b'")
    p.add_argument("--out", required=True, metavar="FRAME.png", help="where to write the frame")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(run=run)


def write_frame(path, rgb, overwrite: bool) -> None:
    """PNG at full compression (frames are for READMEs and tests); other formats by suffix."""
    import pathlib

    import cv2

    from ..errors import DeepvisError
    from ..fileio import atomic_path

    suffix = pathlib.Path(path).suffix.lower() or ".png"
    params = [cv2.IMWRITE_PNG_COMPRESSION, 9] if suffix == ".png" else []
    ok, data = cv2.imencode(suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise DeepvisError(f"cannot write a {suffix} image: {path}")
    with atomic_path(path, overwrite) as tmp:
        tmp.write_bytes(data.tobytes())


def run(args) -> int:
    from ..locks import claimed_outputs
    with claimed_outputs([args.out], overwrite=args.force, images=[args.out]):
        return _run(args)


def _run(args) -> int:
    from ..errors import DeepvisError
    from ..fileio import refuse_overwrite
    from ..toolbox.keys import parse_keys
    from ..toolbox.session import Session, replay, static_files_for

    try:
        keys = parse_keys(args.keys)
    except ValueError as exc:
        raise DeepvisError(str(exc)) from None
    refuse_overwrite(args.out, args.force)
    model = open_toolbox_model(args)
    session = Session(model, static_files_for(model.settings, args.input,
                                              uses_original_settings(args)))
    scene = replay(session, keys)
    write_frame(args.out, session.drawer.draw(scene), overwrite=args.force)
    print(f"wrote {args.out} ({session.drawer.shape[1]}x{session.drawer.shape[0]})")
    return 0
