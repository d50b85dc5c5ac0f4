"""Draw toolbox frames for the original's three model templates, on synthetic weights.

Run: python doc/make_template_frames.py doc/
For caffenet-yos, bvlc-googlenet and squeezenet: the bundled deploy.prototxt is imported
with seeded random weights (no download; the pictures show layout and text, not what a
trained net sees), then `deepvis render` draws the bus with the template's settings and
the keys of the original's screenshot for that model. Writes template-<name>.png.
"""
from __future__ import annotations

import pathlib
import subprocess
import sys

import tempfile

import onnx

from deepvis.caffe.convert import net_to_onnx
from deepvis.caffe.parse import read_prototxt

REPO = pathlib.Path(__file__).resolve().parent.parent
# keys: the screenshots' selections (caffenet-yos: the webcam frame, cursor on conv1 and the
# top-5; bvlc-googlenet: inception_4b/output unit 307, deconv; squeezenet: fire9/concat, unit 40).
FRAMES = {
    "caffenet-yos": "",
    "bvlc-googlenet": "o*{i4b} down right*17 down*10 b b b",
    "squeezenet": "o*{f9} down right*4 down*2 b b b",
}


def layer_index(settings_yaml: pathlib.Path, onnx_path: pathlib.Path, blob: str) -> int:
    from deepvis.model import load_model
    from deepvis.toolbox.state import layer_infos
    model = load_model(onnx_path, settings=settings_yaml)
    infos = layer_infos(model.blob_names, model.blob_shapes, 1.0,
                        model.settings.get("caffevis_filter_layers") or ())
    return [i.name for i in infos].index(blob)


def main(out_dir: str) -> None:
    out = pathlib.Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        for name, keys in FRAMES.items():
            folder = REPO / "models" / name
            graph = net_to_onnx(read_prototxt(folder / "deploy.prototxt"), None,
                                random_weights_seed=0,
                                preprocess={"mean": [104.0, 117.0, 123.0]})
            path = pathlib.Path(tmp) / f"{name}-synthetic.onnx"
            onnx.save(graph, path)
            settings = folder / "settings.yaml"
            if "{" in keys:
                keys = keys.format(i4b=layer_index(settings, path, "inception_4b/output")
                                   if name == "bvlc-googlenet" else 0,
                                   f9=layer_index(settings, path, "fire9/concat")
                                   if name == "squeezenet" else 0)
            subprocess.run(["deepvis", "render", "--model", str(path),
                            "--settings", str(settings), "--input", str(REPO / "doc" / "bus.png"),
                            "--keys", keys, "--out", str(out / f"template-{name}.png"), "--force"],
                           check=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "doc")
