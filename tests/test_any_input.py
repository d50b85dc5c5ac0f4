"""Own networks as exporters write them: fixed or dynamic batch and size, 1/3/4 channels,
non-square inputs, preprocessing conventions and metadata, any tensor name as a file name."""
from __future__ import annotations

import json

import cv2
import numpy as np
import onnx
import pytest
from hypothesis import given, settings as hsettings, strategies as st
from onnx import TensorProto, helper, numpy_helper

from deepvis import conventions
from deepvis.cli import main
from deepvis.errors import DeepvisError
from deepvis.model import Model, load_model
from deepvis.names import blob_name, file_name, match_blob, short_name, short_names
from deepvis.preprocess import Preprocessing, input_to_rgb, preprocess, rgb_to_input
from deepvis.settings import load_settings


def small_cnn(path, channels=3, hw=(8, 8), batch=1, flatten="reshape", names=None, props=None,
              softmax=False):
    """Conv(4) -> Relu -> flatten -> Gemm(5), as torch.onnx.export writes it with a fixed
    batch: the flatten is a Reshape to the constant [batch, -1] (or Flatten, or Expand)."""
    rng = np.random.default_rng(0)
    h, w = hw
    n = names or {}
    conv, relu, flat, out = (n.get(k, k) for k in ("conv", "relu", "flat", "logits"))
    dims = [batch if batch else "N", channels, h if h else "H", w if w else "W"]
    wc = rng.normal(0, 0.3, (4, channels, 3, 3)).astype(np.float32)
    wg = rng.normal(0, 0.3, (5, 4 * (h or 8) * (w or 8))).astype(np.float32)
    inits = [numpy_helper.from_array(wc, "wc"), numpy_helper.from_array(wg, "wg"),
             numpy_helper.from_array(np.array([batch or 1, -1], np.int64), "shape")]
    nodes = [helper.make_node("Conv", ["x", "wc"], [conv], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", [conv], [relu], name="relu")]
    if flatten == "reshape":
        nodes.append(helper.make_node("Reshape", [relu, "shape"], [flat], name="flatten"))
    elif flatten == "constant":   # a batch spelled out where no rewrite applies
        inits.append(numpy_helper.from_array(np.array([batch, 4 * h * w], np.int64), "cshape"))
        nodes += [helper.make_node("Flatten", [relu], ["f0"], axis=1),
                  helper.make_node("ConstantOfShape", ["cshape"], ["zeros"], name="zeros"),
                  helper.make_node("Add", ["f0", "zeros"], [flat], name="add")]
    elif flatten == "computed":   # a shape computed from constants: only a run can tell
        nodes += [helper.make_node("Constant", [], ["b"], value=numpy_helper.from_array(
                      np.array([batch], np.int64))),
                  helper.make_node("Constant", [], ["rest"], value=numpy_helper.from_array(
                      np.array([-1], np.int64))),
                  helper.make_node("Concat", ["b", "rest"], ["cat"], axis=0),
                  helper.make_node("Reshape", [relu, "cat"], [flat], name="flatten")]
    else:
        nodes.append(helper.make_node("Flatten", [relu], [flat], axis=1, name="flatten"))
    nodes.append(helper.make_node("Gemm", [flat, "wg"], [out], transB=1, name="fc"))
    outputs = [out]
    if softmax:
        nodes.append(helper.make_node("Softmax", [out], ["prob"], axis=1))
        outputs.append("prob")
    graph = helper.make_graph(
        nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs[-1:]],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (props or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (30, 40, 3)).astype(np.uint8)
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), image)
    return path


def one_by_one(model, x, blob):
    return np.concatenate([model.forward(x[i:i + 1], blobs=[blob])[blob] for i in range(len(x))])


# -- batch --------------------------------------------------------------------------------

def test_fixed_batch_reshape_becomes_symbolic(tmp_path, capsys):
    model = load_model(small_cnn(tmp_path / "fixed.onnx"), backend="ort")
    assert model.batch_limit is None
    x = np.random.default_rng(2).normal(size=(5, 3, 8, 8)).astype(np.float32)
    together = model.forward(x, blobs=["logits"])["logits"]
    assert together.shape == (5, 5)
    assert np.allclose(together, one_by_one(model, x, "logits"), atol=1e-5)
    assert "at a time" not in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["ort", "numpy"])
@pytest.mark.parametrize("flatten, batch", [("constant", 2), ("computed", 1)])
def test_batch_spelled_out_runs_in_slices_with_one_notice(tmp_path, capsys, backend, flatten,
                                                          batch):
    path = small_cnn(tmp_path / "fixed.onnx", batch=batch, flatten=flatten)
    model = load_model(path, backend=backend)
    if flatten == "constant":           # seen in the graph: slices from the start
        assert model.batch_limit == 2
    else:                               # seen on the first batch of several images
        assert model.batch_limit is None
        model.forward(np.zeros((3, 3, 8, 8), np.float32), blobs=["logits"])
        assert model.batch_limit == 1
    assert capsys.readouterr().err.count(f"running {batch} at a time") == 1
    x = np.random.default_rng(3).normal(size=(5, 3, 8, 8)).astype(np.float32)
    out = model.forward(x, blobs=["logits", "relu"])
    assert out["logits"].shape == (5, 5) and out["relu"].shape == (5, 4, 8, 8)
    assert np.allclose(out["logits"], one_by_one(model, x, "logits"), atol=1e-5)
    seed = np.zeros((5, 5), np.float32)
    seed[:, 1] = 1
    grad = model.backward(x, "logits", seed)
    assert grad.shape == x.shape
    assert np.allclose(grad[4], model.backward(x[4:5], "logits", seed[4:5])[0], atol=1e-5)


def test_symbolic_height_and_width_need_a_size(tmp_path):
    path = small_cnn(tmp_path / "dyn.onnx", batch=0, hw=(0, 0), flatten="flatten")
    with pytest.raises(DeepvisError, match="deepvis_input_size"):
        load_model(path)
    model = load_model(path, overrides={"deepvis_input_size": "8x8"})
    assert model.input_shape == (1, 3, 8, 8)
    assert main(["layers", str(path), "--input-size", "8x8"]) == 0
    assert main(["layers", str(path)]) == 1


# -- channels, shapes, conventions -----------------------------------------------------------

def test_one_channel_network_gets_gray(tmp_path, photo):
    model = load_model(small_cnn(tmp_path / "gray.onnx", channels=1), backend="ort")
    spec = model.preprocessing
    assert spec.color == "gray" and spec.channel_swap is None
    x = model.preprocess(cv2.imread(str(photo)))
    assert x.shape == (1, 1, 8, 8)
    rgb = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)[:, 5:35]
    gray = cv2.cvtColor(cv2.resize(rgb, (8, 8), interpolation=cv2.INTER_LINEAR),
                        cv2.COLOR_RGB2GRAY).astype(np.float32)
    mean = np.mean(conventions.CONVENTIONS["torchvision"]["mean"])
    scale = np.mean(conventions.CONVENTIONS["torchvision"]["scale"])
    assert np.allclose(x[0, 0], (gray - mean) * scale, atol=1e-4)
    assert input_to_rgb(x[0], spec).shape == (8, 8, 3)


def test_four_channel_network_gets_rgba(tmp_path, photo):
    model = load_model(small_cnn(tmp_path / "rgba.onnx", channels=4), backend="ort")
    x = model.preprocess(cv2.imread(str(photo)))
    assert x.shape == (1, 4, 8, 8)
    assert np.allclose(x[0, 3], 255.0)   # alpha, mean 0 and scale 1 beyond the RGB three
    bgra = np.zeros((8, 8, 4), np.uint8)
    bgra[..., 3] = 7
    assert np.allclose(model.preprocess(bgra)[0, 3], 7)


def test_six_channel_input_is_rgba_then_zeros():
    spec = Preprocessing(input_size=(4, 4), color="rgba", channels=6)
    x = rgb_to_input(np.full((4, 4, 3), 9, np.uint8), spec)
    assert x.shape == (1, 6, 4, 4)
    assert np.allclose(x[0, :3], 9) and np.allclose(x[0, 3], 255) and np.allclose(x[0, 4:], 0)


def test_non_square_input_keeps_the_aspect_ratio():
    # a 40 x 40 photo with a white band in the middle rows; a 2:1 (H 4, W 8) input crops
    # the centre band of 20 rows instead of stretching the whole square
    image = np.zeros((40, 40, 3), np.uint8)
    image[10:30] = 255
    x = preprocess(image, Preprocessing(input_size=(4, 8)))
    assert x.shape == (1, 3, 4, 8) and np.allclose(x, 255)
    stretched = preprocess(image, Preprocessing(input_size=(4, 8), stretch=True))
    assert stretched[0, 0, 0].max() < 255


def test_resize_shorter_then_centre_crop():
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 96:104] = 255               # a stripe around the centre column
    spec = Preprocessing(input_size=(8, 8), resize_shorter=10)
    x = preprocess(image, spec)          # 100x200 -> 10x20, then the middle 8x8: columns 6..13
    resized = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (20, 10),
                         interpolation=cv2.INTER_LINEAR)
    assert np.allclose(x[0].transpose(1, 2, 0), resized[1:9, 6:14])


@pytest.mark.parametrize("name", sorted(conventions.CONVENTIONS))
def test_conventions_by_name(tmp_path, photo, name):
    path = small_cnn(tmp_path / f"{name}.onnx")
    model = load_model(path, overrides={"deepvis_preprocess": name})
    want = conventions.CONVENTIONS[name]
    spec = model.preprocessing
    assert spec.channel_swap == (tuple(want["channel_swap"]) if want["channel_swap"] else None)
    x = model.preprocess(cv2.imread(str(photo)))
    rgb = input_to_rgb(x[0], spec)   # the inverse of the convention gives the pixels back
    crop = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)[:, 5:35]
    assert np.allclose(rgb, cv2.resize(crop, (8, 8), interpolation=cv2.INTER_LINEAR), atol=1e-3)
    if name == "tf":
        assert -1 - 1e-6 <= x.min() and x.max() <= 1 + 1e-6


def test_plain_onnx_says_which_convention_it_assumed(tmp_path, capsys):
    model = load_model(small_cnn(tmp_path / "plain.onnx"))
    err = capsys.readouterr().err
    assert "assuming torchvision" in err and "--preprocess" in err
    assert model.preprocessing.channel_swap is None
    assert np.allclose(model.preprocessing.mean[:, 0, 0], [123.675, 116.28, 103.53])
    settings_file = tmp_path / "s.yaml"
    settings_file.write_text("deepvis_preprocess: caffe\n")
    load_model(tmp_path / "plain.onnx", settings=settings_file)
    assert "assuming" not in capsys.readouterr().err


def test_metadata_props_are_honoured(tmp_path, capsys):
    path = small_cnn(tmp_path / "meta.onnx", props={"mean": "[0.5, 0.5, 0.5]",
                                                    "std": "0.25, 0.25, 0.25",
                                                    "channel_order": "BGR"})
    spec = load_model(path).preprocessing
    assert "assuming" not in capsys.readouterr().err
    assert spec.channel_swap == (2, 1, 0)
    assert np.allclose(spec.mean[:, 0, 0], 127.5) and np.allclose(spec.scale[:, 0, 0], 1 / 63.75)
    winml = small_cnn(tmp_path / "winml.onnx", props={"Image.BitmapPixelFormat": "Rgb8",
                                                      "Image.NominalPixelRange": "Normalized_1_1"})
    spec = load_model(winml).preprocessing
    assert spec.channel_swap is None and spec.scale == pytest.approx(1 / 127.5)
    named = small_cnn(tmp_path / "named.onnx", props={"deepvis.convention": "lite"})
    assert load_model(named).preprocessing.scale == pytest.approx(1 / 128)


def test_settings_win_over_metadata(tmp_path):
    path = small_cnn(tmp_path / "meta.onnx", props={"deepvis.convention": "caffe"})
    settings_file = tmp_path / "s.yaml"
    settings_file.write_text("caffe_net_channel_swap: null\n")
    spec = load_model(path, settings=settings_file).preprocessing
    assert spec.channel_swap is None                             # the setting
    assert np.allclose(spec.mean[:, 0, 0], [103.939, 116.779, 123.68])   # the metadata


def test_wrong_length_swap_is_a_clear_error(tmp_path):
    settings_file = tmp_path / "s.yaml"
    settings_file.write_text("caffe_net_channel_swap: [1, 0]\n")
    with pytest.raises(DeepvisError, match="caffe_net_channel_swap"):
        load_model(small_cnn(tmp_path / "m.onnx"), settings=settings_file)


# -- commands ---------------------------------------------------------------------------------

def test_forward_json_says_score_for_logits_and_prob_for_softmax(tmp_path, photo, capsys):
    logits = small_cnn(tmp_path / "logits.onnx")
    assert main(["forward", str(logits), "-i", str(photo), "--json", "--top", "2"]) == 0
    result = json.loads(capsys.readouterr().out)[0]
    assert result["blob"] == "logits" and set(result["top"][0]) == {"class", "label", "score"}
    probs = small_cnn(tmp_path / "prob.onnx", softmax=True)
    assert main(["forward", str(probs), "-i", str(photo), "--json"]) == 0
    top = json.loads(capsys.readouterr().out)[0]["top"]
    assert "prob" in top[0] and 0 < top[0]["prob"] <= 1


def test_find_maxes_fails_when_every_image_is_skipped(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        (images / f"broken{i}.jpg").write_bytes(b"not a jpeg")
    path = small_cnn(tmp_path / "m.onnx")
    out = tmp_path / "maxes.npz"
    assert main(["find-maxes", str(path), "--images", str(images), "-o", str(out)]) == 1
    assert "every one of the 2 images was skipped" in capsys.readouterr().err
    assert not out.exists()


def test_exporter_names_become_flat_files_and_map_back(tmp_path, photo):
    names = {"conv": "/features/conv:0", "relu": "/features/relu/Relu_output_0",
             "flat": "/Flatten_output_0", "logits": "logits"}
    path = small_cnn(tmp_path / "named.onnx", names=names)
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        cv2.imwrite(str(images / f"{i}.png"),
                    np.random.default_rng(i).integers(0, 256, (20, 20, 3)).astype(np.uint8))
    maxes, units = tmp_path / "maxes.npz", tmp_path / "units"
    layer = names["relu"]
    assert main(["find-maxes", str(path), "--images", str(images), "--layers", layer,
                 "-o", str(maxes)]) == 0
    assert main(["crop-max-patches", str(path), str(maxes), "-o", str(units),
                 "--units", "0-1"]) == 0
    folders = sorted(p.name for p in (units / "max_im").iterdir())
    assert folders == [file_name(layer)] and "/" not in folders[0]
    assert blob_name(folders[0]) == layer
    assert (units / "max_im" / folders[0] / f"{folders[0]}_0001.jpg").is_file()
    prefix = tmp_path / "opt" / "o"
    assert main(["optimize", "--model", str(path), "--push-layer", layer, "--push-channel", "1",
                 "--push-spatial", "(4, 4)", "--max-iter", "2", "--output-prefix", str(prefix),
                 "--quiet"]) == 0
    written = [p.name for p in (tmp_path / "opt").iterdir()]
    assert written and all(p.startswith("o_" + file_name(layer) + "_0001") for p in written)


@hsettings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=300))
def test_file_names_round_trip(name):
    flat = file_name(name)
    assert "/" not in flat and "\\" not in flat and ":" not in flat and "\0" not in flat
    assert not flat.startswith(".") and 0 < len(flat) <= 220
    assert blob_name(flat) in (name, None)
    assert match_blob(flat, ["other", name]) == name


def test_short_names_as_the_toolbox_shows_them():
    blobs = ["input", "/conv1/Conv_output_0", "/layer1/layer1.0/conv1/Conv_output_0",
             "/layer1/layer1.0/relu/Relu_output_0", "/layer1/layer1.0/relu/Relu_1_output_0",
             "/Flatten_output_0", "logits"]
    assert short_name(blobs[2]) == "layer1.0.conv1"
    shown = short_names(blobs)
    assert shown[:4] == ["input", "conv1", "layer1.0.conv1", "layer1.0.relu.Relu"]
    assert shown[4] == "layer1.0.relu.Relu_1" and shown[5:] == ["Flatten", "logits"]
    assert len(set(shown)) == len(shown)


def test_model_from_a_graph_is_not_edited(tmp_path):
    graph = onnx.load(str(small_cnn(tmp_path / "m.onnx")))
    before = graph.SerializeToString()
    Model(graph, load_settings(None, model=str(tmp_path / "m.onnx")), backend="numpy")
    assert graph.SerializeToString() == before


def test_find_maxes_takes_npy_inputs_beside_images(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(4)
    for i in range(2):
        cv2.imwrite(str(images / f"{i}.png"), rng.integers(0, 256, (20, 20, 3)).astype(np.uint8))
    strong = np.full((3, 8, 8), 50.0, np.float32)                  # the network input itself
    np.save(images / "strong.npy", strong)
    np.save(images / "wrong.npy", np.zeros((3, 4, 4), np.float32))
    path = small_cnn(tmp_path / "m.onnx")
    out = tmp_path / "maxes.npz"
    assert main(["find-maxes", str(path), "--images", str(images), "--layers", "relu",
                 "-o", str(out)]) == 0
    assert "3 images scanned, 1 skipped" in capsys.readouterr().out
    from deepvis.maxes.store import read_maxes
    maxes = read_maxes(out)
    want = load_model(path).forward(strong[None], blobs=["relu"])["relu"][0].max(axis=(1, 2))
    strong_index = [maxes.images.file(i).name for i in range(3)].index("strong.npy")
    table = maxes.tables["relu"]
    for unit in range(4):   # each unit's entry for the .npy holds the forward's own maximum
        hits = table.values[unit][table.image_index[unit] == strong_index]
        assert len(hits) == 1 and np.allclose(hits, want[unit], rtol=1e-5)


@pytest.mark.parametrize("channels", [1, 4])
def test_toolbox_frame_and_back_pane_for_gray_and_rgba_networks(tmp_path, photo, channels):
    path = small_cnn(tmp_path / f"c{channels}.onnx", channels=channels)
    frame = tmp_path / "frame.png"
    assert main(["render", "--model", str(path), "--input", str(photo), "--keys", "b",
                 "--out", str(frame)]) == 0
    assert cv2.imread(str(frame)).shape[2] == 3
    png = tmp_path / "g.png"
    assert main(["backprop", str(path), "-i", str(photo), "--layer", "relu", "--unit", "1",
                 "--out", str(tmp_path / "g.npy"), "--png", str(png)]) == 0
    shown = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    assert shown.shape == (8, 8, 3)
    if channels == 1:   # gray: the three colour channels are equal
        assert (shown[..., 0] == shown[..., 1]).all() and (shown[..., 1] == shown[..., 2]).all()


def test_find_maxes_on_a_graph_tied_to_its_batch(tmp_path, photo, capsys):
    path = small_cnn(tmp_path / "tied.onnx", batch=2, flatten="constant")
    images = tmp_path / "images"
    images.mkdir()
    for i in range(5):
        cv2.imwrite(str(images / f"{i}.png"),
                    np.random.default_rng(i).integers(0, 256, (20, 20, 3)).astype(np.uint8))
    out = tmp_path / "maxes.npz"
    assert main(["find-maxes", str(path), "--images", str(images), "--layers", "relu,logits",
                 "-o", str(out)]) == 0
    assert "5 images scanned, 0 skipped" in capsys.readouterr().out
    from deepvis.maxes.store import read_maxes
    model = load_model(path)
    x = np.concatenate([model.preprocess(cv2.imread(str(images / f"{i}.png"))) for i in range(5)])
    want = model.forward(x, blobs=["logits"])["logits"]
    table = read_maxes(out).tables["logits"]
    assert np.allclose(table.values[:, 0], want.max(axis=0), rtol=1e-5)
