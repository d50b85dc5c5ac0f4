"""The Python API and the layers/forward commands on the embedded model."""
import json

import cv2
import numpy as np
import pytest

import deepvis
from deepvis.cli import main
from deepvis.errors import DeepvisError

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def lite0():
    return deepvis.load_model("efficientnet-lite0", backend="ort")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    paths = {}
    for name in ("chelsea", "coffee"):
        paths[name] = folder / f"{name}.png"
        cv2.imwrite(str(paths[name]), cv2.cvtColor(getattr(skimage_data, name)(), cv2.COLOR_RGB2BGR))
    return paths


def test_blob_names_and_shapes(lite0):
    assert lite0.blob_names[0] == "data" and lite0.blob_names[-2:] == ["fc", "prob"]
    assert lite0.blob_shapes["data"] == (1, 3, 224, 224)
    assert lite0.blob_shapes["stem"] == (1, 32, 112, 112)
    assert lite0.blob_shapes["fc"] == (1, 1000) and lite0.blob_shapes["prob"] == (1, 1000)
    assert list(lite0.blob_shapes) == lite0.blob_names


def test_forward_returns_requested_blobs_for_a_batch(lite0, photos):
    x = np.concatenate([lite0.preprocess(cv2.imread(str(p))) for p in photos.values()])
    out = lite0.forward(x, blobs=["stem", "prob"])
    assert set(out) == {"stem", "prob"}
    assert out["stem"].shape == (2, 32, 112, 112)
    assert np.allclose(out["prob"].sum(axis=1), 1, atol=1e-5)
    assert list(out["prob"].argmax(axis=1)) == [285, 967]
    assert lite0.labels[285] == "Egyptian cat"


def test_forward_errors_name_the_problem(lite0):
    with pytest.raises(DeepvisError, match="no blob named 'conv9'"):
        lite0.forward(np.zeros((1, 3, 224, 224), np.float32), blobs=["conv9"])
    with pytest.raises(DeepvisError, match=r"\(N, 3, 224, 224\)"):
        lite0.forward(np.zeros((1, 3, 100, 100), np.float32))


def test_forward_command_prints_egyptian_cat_first(photos, capsys):
    assert main(["forward", "efficientnet-lite0", "--input", str(photos["chelsea"]), "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("chelsea.png")
    assert lines[1].split(None, 3)[2:] == ["285", "Egyptian cat"]
    assert len(lines) == 4


def test_forward_command_json_npy_input_and_saved_blobs(lite0, photos, tmp_path, capsys):
    x = lite0.preprocess(cv2.imread(str(photos["coffee"])))
    np.save(tmp_path / "x.npy", x[0])
    out = tmp_path / "blobs.npz"
    args = ["forward", "efficientnet-lite0", "--input", str(tmp_path / "x.npy"),
            str(photos["chelsea"]), "--json", "--save-blobs", str(out)]
    assert main(args) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["top"][0]["class"] for r in results] == [967, 285]
    saved = np.load(out)
    assert sorted(saved.files) == sorted(lite0.blob_names)
    assert saved["block16"].shape == (2,) + lite0.blob_shapes["block16"][1:]
    assert main(args) == 1                                           # refuses to overwrite
    assert "--force" in capsys.readouterr().err


def test_layers_command_lists_blobs_in_order(capsys):
    assert main(["layers", "efficientnet-lite0", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0] == {"name": "data", "shape": [1, 3, 224, 224]}
    assert rows[-1] == {"name": "prob", "shape": [1, 1000]}


def test_unknown_model_and_bad_input_are_one_line_errors(tmp_path, capsys):
    assert main(["layers", "no-such-net"]) == 1
    assert "unknown model 'no-such-net'" in capsys.readouterr().err
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["forward", "efficientnet-lite0", "--input", str(bad)]) == 1
    assert "bad.png is not an image" in capsys.readouterr().err


def test_onnx_file_without_metadata_exposes_every_tensor(tmp_path):
    """A user's own ONNX CNN: blobs are the tensors its exporter named."""
    from onnx import TensorProto, helper, numpy_helper, save
    w = numpy_helper.from_array(np.ones((2, 3, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["conv"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["conv"], ["relu"]),
         helper.make_node("GlobalAveragePool", ["relu"], ["gap"])],
        "user", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("gap", TensorProto.FLOAT, None)], [w])
    path = tmp_path / "user.onnx"
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    model = deepvis.load_model(str(path))
    assert model.blob_names == ["input", "conv", "relu", "gap"]
    assert model.blob_shapes["conv"] == (1, 2, 8, 8)
    x = np.ones((1, 3, 8, 8), np.float32)
    # ones * ones 3x3x3 kernel, pad 1: 36 inner pixels see 27, 24 edge pixels 18, 4 corners 12
    assert np.allclose(model.forward(x)["gap"].ravel(), (36 * 27 + 24 * 18 + 4 * 12) / 64)


def test_activation_seeded_pass_equals_two_passes(lite0, photos):
    """forward_backward(seed_times_activation) = forward, then backward seeded with the
    channel's own activations (the toolbox's seed), in one pass."""
    x = lite0.preprocess(cv2.imread(str(photos["chelsea"])))
    act = lite0.forward(x, blobs=["block05"])["block05"]
    seed = np.zeros_like(act)
    seed[:, 7] = act[:, 7]
    mask = np.zeros_like(act)
    mask[:, 7] = 1
    for mode in ("grad", "deconv"):
        two = lite0.backward(x, "block05", seed, mode)
        one, blobs = lite0.forward_backward(x, "block05", mask, mode, blobs=["block05", "prob"],
                                            seed_times_activation=True)
        assert np.abs(two).max() > 0
        assert np.allclose(one, two, rtol=1e-5, atol=1e-6 * np.abs(two).max())
        assert np.array_equal(blobs["block05"], act)
        assert blobs["prob"].argmax() == 285
