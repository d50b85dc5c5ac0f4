"""Every command on one exported network, in-process (tests of own models share it)."""
from __future__ import annotations

import json

import cv2
import numpy as np

from deepvis.cli import main


def make_photos(folder):
    """Three smooth random photos, 80 x 120 (not square: each model crops its own way)."""
    rng = np.random.default_rng(0)
    for i in range(3):
        small = rng.integers(0, 256, (6, 9, 3)).astype(np.uint8)
        cv2.imwrite(str(folder / f"photo{i}.png"),
                    cv2.resize(small, (120, 80), interpolation=cv2.INTER_CUBIC))
    return folder


def run(capsys, *argv) -> str:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    assert code == 0, f"deepvis {' '.join(map(str, argv))} exited {code}:\\n{out.err[-2000:]}"
    return out.out


def run_every_command(path, chw, photos, tmp_path, capsys) -> None:
    """layers, forward (a batch of 2), backprop in three modes, render, optimize, find-maxes
    and crop-max-patches each exit 0 and leave what they promise."""
    images = sorted(photos.iterdir())
    rows = json.loads(run(capsys, "layers", path, "--json"))
    assert rows[0]["shape"] == [1, *chw] and rows[-1]["name"] == "logits"
    spatial = [row["name"] for row in rows[1:] if len(row["shape"]) == 4]
    layer = spatial[len(spatial) // 2]

    results = json.loads(run(capsys, "forward", path, "-i", *images[:2], "--json"))
    assert len(results) == 2 and "score" in results[0]["top"][0]   # a batch of 2, logits

    for mode in ("grad", "deconv", "guided"):
        out = tmp_path / f"{mode}.npy"
        run(capsys, "backprop", path, "-i", images[0], "--layer", layer, "--unit", "0",
            "--mode", mode, "--out", out, "--png", tmp_path / f"{mode}.png")
        grad = np.load(out)
        assert grad.shape == (1, *chw) and np.isfinite(grad).all()

    frame = tmp_path / "frame.png"
    run(capsys, "render", "--model", path, "--input", images[0], "--keys", "down right b",
        "--out", frame)
    assert cv2.imread(str(frame)).std() > 0

    prefix = tmp_path / "opt" / "o"
    run(capsys, "optimize", "--model", path, "--push-layer", "logits", "--push-channel", "1",
        "--max-iter", "2", "--output-prefix", prefix, "--quiet")
    assert any(p.name.endswith("best_X.jpg") for p in prefix.parent.iterdir())

    maxes, units = tmp_path / "maxes.npz", tmp_path / "units"
    run(capsys, "find-maxes", path, "--images", photos, "--layers", f"{layer},logits",
        "-o", maxes)
    run(capsys, "crop-max-patches", path, maxes, "-o", units, "--layers", layer,
        "--units", "0-1", "--no-loose")
    assert len(list((units / "max_im").rglob("*.jpg"))) == 2
