"""One finished cell on disk: `<key>_best_Xpm.jpg` (the picture a user sees, as
`deepvis optimize` saves it) and `<key>.json` (params and objective).

The image is written first and the JSON last, each atomically, so a JSON on disk means a
complete cell: a run killed at any moment loses at most the batches still in flight, and
the next run skips every cell whose JSON holds the same params.
"""
from __future__ import annotations

import json
import pathlib

import cv2
import numpy as np

from ..errors import DeepvisError
from ..fileio import atomic_path, save_image
from ..optimize.results import image_xpm, jsonable, plain


def outcome(params, results, space) -> dict:
    """What a sheet keeps of one FindResults: the best picture and the objective's path
    (a module-level function, so Dask can send it to workers)."""
    obj = [float(v) for v in results.obj]
    return {
        "image": (image_xpm(results.best_xx, space) if results.best_xx is not None
                  else np.zeros(space.shape[1:] + (3,), np.uint8)),
        "first_obj": obj[0] if obj else None,
        "best_obj": None if results.best_obj is None else float(results.best_obj),
        "best_ii": getattr(results, "best_ii", None),
        "last_obj": obj[-1] if obj else None,
        "iterations": len(obj),
        "majority_ii": getattr(results, "majority_ii", None),
        "meta_result": results.meta_result,
    }


def params_doc(params) -> dict:
    return jsonable(plain(params.as_dict()))


def image_path(folder, job) -> pathlib.Path:
    return pathlib.Path(folder) / f"{job.key}_best_Xpm.jpg"


def record_path(folder, job) -> pathlib.Path:
    return pathlib.Path(folder) / f"{job.key}.json"


def write(folder, job, result: dict) -> dict:
    """Save one cell; returns its record (the JSON's content)."""
    save_image(image_path(folder, job), result["image"], overwrite=True)
    record = {"key": job.key, "row": job.row, "setting": job.setting, "layer": job.layer,
              "unit": job.unit, "image": image_path(folder, job).name,
              "params": params_doc(job.params),
              **{k: jsonable(plain(v)) for k, v in result.items() if k != "image"}}
    with atomic_path(record_path(folder, job), overwrite=True) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    return record


def read(folder, job, redo_changed: bool = False) -> dict | None:
    """The cell's record if it is finished with these params; None if it is still to do.
    A record made with other params is an error (a different sheet in the same folder)
    unless redo_changed."""
    path = record_path(folder, job)
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None                      # cannot be a finished write; redo it
    if record.get("params") != params_doc(job.params):
        if redo_changed:
            return None
        raise DeepvisError(f"{path} was made with other settings; use another --out folder "
                           "or pass --brave to redo such cells")
    if not image_path(folder, job).exists():
        return None
    return record


def load_image(folder, record: dict) -> np.ndarray:
    """A cell's saved picture, RGB uint8."""
    bgr = cv2.imread(str(pathlib.Path(folder) / record["image"]))
    if bgr is None:
        raise DeepvisError(f"cannot read {pathlib.Path(folder) / record['image']}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
