"""`deepvis convert-original PICKLE -o OUT`: the original toolbox's pickles as deepvis files.

- a NetMaxTracker from find_max_acts.py -> a MAXES .npz (needs the file list it read),
  which crop-max-patches and the toolbox use as find-maxes output;
- info.pkl / info_big.pkl from optimize_image.py -> deepvis's own form of them: a pickle
  (or .json) of a (params, results) tuple of plain dicts, which the same restricted reader
  opens (`params, results = deepvis.original_pickles.load(path); params["max_iter"]`).
The pickles are read by deepvis.original_pickles, which never runs code from them.
"""
from __future__ import annotations

import json
import pathlib
import pickle

from ..errors import DeepvisError, FormatError
from ..fileio import atomic_path, refuse_overwrite


def register(sub) -> None:
    p = sub.add_parser("convert-original", help="read the original toolbox's pickles",
                       description="Convert a pickle of the original toolbox without running "
                                   "any of its code: find_max_acts.py's NetMaxTracker to a "
                                   "MAXES .npz; optimize_image.py's info.pkl or info_big.pkl "
                                   "to a plain (params, results) pickle or JSON.")
    p.add_argument("pickle", metavar="PICKLE")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="MAXES.npz for a tracker; .pkl or .json for optimizer info")
    p.add_argument("--file-list", metavar="LIST",
                   help="the `filename label` list find_max_acts.py read (for a tracker)")
    p.add_argument("--datadir", metavar="DIR",
                   help="the folder those file names are in (default: the list's folder)")
    p.add_argument("--force", action="store_true", help="overwrite OUT")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..original_pickles import load

    refuse_overwrite(args.output, args.force)
    data = load(args.pickle)
    out = pathlib.Path(args.output)
    if isinstance(data, dict) and data.get("__class__") == "NetMaxTracker":
        from ..maxes.original import read_file_list, tracker_to_maxes
        from ..maxes.store import write_maxes
        if not args.file_list:
            raise DeepvisError("a NetMaxTracker holds image indices only: give --file-list, the "
                               "list find_max_acts.py read")
        if out.suffix != ".npz":
            raise DeepvisError(f"{out}: a tracker converts to a MAXES .npz file")
        maxes = tracker_to_maxes(data, read_file_list(args.file_list, args.datadir),
                                 args.pickle)
        write_maxes(out, maxes, overwrite=args.force)
        print(f"{len(maxes.tables)} layers, {len(maxes.images)} images -> {out}")
        return 0
    from ..optimize.results import jsonable, plain
    params, results = (plain(d) for d in optimize_info(data, args.pickle))
    if out.suffix == ".json":
        payload = (json.dumps({"params": jsonable(params), "results": jsonable(_lists(results))},
                              indent=1) + "\n").encode()
    elif out.suffix == ".pkl":
        payload = pickle.dumps((params, results), protocol=4)
    else:
        raise DeepvisError(f"{out}: optimizer info converts to .pkl or .json")
    with atomic_path(out, args.force) as tmp:
        tmp.write_bytes(payload)
    print(f"FindParams ({len(params)} fields) and FindResults ({len(results)} fields) -> {out}")
    return 0


def optimize_info(data, where) -> tuple[dict, dict]:
    """(params, results) dicts from optimize_image.py's (FindParams, FindResults) tuple."""
    if not (isinstance(data, tuple) and len(data) == 2
            and all(isinstance(d, dict) for d in data)
            and [d.get("__class__") for d in data] == ["FindParams", "FindResults"]):
        raise FormatError(f"{where}: neither a NetMaxTracker nor a (FindParams, FindResults) "
                          "tuple")
    return tuple({k: v for k, v in d.items() if k != "__class__"} for d in data)


def _lists(results: dict) -> dict:
    """Arrays as nested lists, for JSON."""
    import numpy as np
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in results.items()}
