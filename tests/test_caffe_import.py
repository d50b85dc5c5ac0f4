"""Whole-network Caffe import: CaffeNet blob names/shapes/seeds, V1 (legacy dims) vs V2 weight
files, the original toolbox prototxts, weight-matching errors, the mean, `deepvis import-caffe`."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from deepvis import cli
from deepvis.caffe.convert import import_caffe, net_to_onnx
from deepvis.caffe.mean import load_mean
from deepvis.caffe.plan import plan_net
from deepvis.caffe.parse import parse_prototxt_text, read_caffemodel, read_prototxt
from deepvis.errors import DeepvisError, FormatError, UnsupportedError
from deepvis.exec import make_executor
from deepvis.graph import meta
from tests.caffe_writer import write_binaryproto, write_caffemodel
from tests.fixtures_caffenet import DEPLOY, synthetic_caffenet_onnx

CAFFENET_SHAPES = {
    "data": (1, 3, 227, 227), "conv1": (1, 96, 55, 55), "pool1": (1, 96, 27, 27),
    "norm1": (1, 96, 27, 27), "conv2": (1, 256, 27, 27), "pool2": (1, 256, 13, 13),
    "norm2": (1, 256, 13, 13), "conv3": (1, 384, 13, 13), "conv4": (1, 384, 13, 13),
    "conv5": (1, 256, 13, 13), "pool5": (1, 256, 6, 6), "fc6": (1, 4096), "fc7": (1, 4096),
    "fc8": (1, 1000), "prob": (1, 1000),
}


@pytest.fixture(scope="module")
def caffenet_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("caffenet")
    synthetic_caffenet_onnx(folder, seed=0)
    return folder


@pytest.fixture(scope="module")
def caffenet(caffenet_dir):
    return onnx.load(str(caffenet_dir / "caffenet-synthetic-0.onnx"))


@pytest.fixture(scope="module")
def caffenet_run(caffenet):
    """Every blob plus the pre-ReLU tensors, for one pixel-scale input."""
    model = onnx.ModelProto()
    model.CopyFrom(caffenet)
    for name in ("conv1@conv1", "fc6@fc6", "fc6@relu6"):
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                                                     None))
    x = np.random.default_rng(0).uniform(-120, 120, (1, 3, 227, 227)).astype(np.float32)
    return make_executor(model, "ort").run({"data": x})


def test_caffenet_blob_shapes(caffenet_run):
    for blob, shape in CAFFENET_SHAPES.items():
        assert caffenet_run[blob].shape == shape, blob
    assert caffenet_run["prob"].sum() == pytest.approx(1.0, abs=1e-5)


def test_caffenet_activations_stay_order_one(caffenet_run):
    """Seeded weights: no blob explodes or dies (the point of the synthetic fixture)."""
    for blob in CAFFENET_SHAPES:
        if blob in ("data", "prob"):
            continue
        rms = float(np.sqrt(np.mean(caffenet_run[blob] ** 2)))
        assert 0.1 < rms < 30, (blob, rms)
        assert (caffenet_run[blob] > 0).mean() > 0.2, blob


def test_caffenet_metadata(caffenet):
    info = meta.read(caffenet)
    assert info["blobs"] == list(CAFFENET_SHAPES)
    assert [o.name for o in caffenet.graph.output] == list(CAFFENET_SHAPES)
    assert info["seeds"] == {blob: f"{blob}@{blob}" for blob in
                             ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")}
    assert info["preprocess"] == {"channel_swap": [2, 1, 0], "mean": None, "mean_file": None,
                                  "scale": 1.0, "input_size": [227, 227], "stretch": False}
    (graph_input,) = caffenet.graph.input
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert (graph_input.name, dims) == ("data", ["N", 3, 227, 227])
    weights = {t.name: tuple(t.dims) for t in caffenet.graph.initializer}
    assert weights["conv1.weight"] == (96, 3, 11, 11) and weights["conv1.bias"] == (96,)
    assert weights["conv2.weight"] == (256, 48, 5, 5) and weights["fc6.weight"] == (4096, 9216)


def test_in_place_relu_versions(caffenet, caffenet_run):
    """The visible conv1 is relu(conv1@conv1); fc6 is rewritten twice (relu6, then drop6)."""
    pre = caffenet_run["conv1@conv1"]
    assert (pre < 0).any()
    np.testing.assert_array_equal(caffenet_run["conv1"], np.maximum(pre, 0))
    np.testing.assert_array_equal(caffenet_run["fc6"], caffenet_run["fc6@relu6"])
    np.testing.assert_array_equal(caffenet_run["fc6"], np.maximum(caffenet_run["fc6@fc6"], 0))
    producers = {out: node for node in caffenet.graph.node for out in node.output}
    assert producers["conv1"].op_type == "Relu"
    assert list(producers["conv1"].input) == ["conv1@conv1"]
    assert list(producers["pool1"].input) == ["conv1"]      # consumers read the ReLU'd version
    assert list(producers["fc6"].input) == ["fc6@relu6"]


SMALL_NET = """
name: "small"
input: "data"
input_shape { dim: 1 dim: 3 dim: 4 dim: 4 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 2 kernel_size: 2 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc"
        inner_product_param { num_output: 2 } }
"""


def small_prototxt(folder):
    path = folder / "small.prototxt"
    path.write_text(SMALL_NET)
    return path


def test_weights_ignore_unmatched_layers_and_reshape_legacy_dims(tmp_path):
    w, b = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2), np.array([1, -1], np.float32)
    fc = np.arange(2 * 18, dtype=np.float32).reshape(2, 18)
    layers = [("data", "Data", []), ("conv", "Convolution", [w, b]),
              ("fc", "InnerProduct", [fc, np.zeros(2, np.float32)]),
              ("loss", "SoftmaxWithLoss", [])]
    write_caffemodel(tmp_path / "v1.caffemodel", layers, fmt="v1", legacy_dims=True)
    write_caffemodel(tmp_path / "v2.caffemodel", layers, fmt="v2")
    from_v1 = import_caffe(small_prototxt(tmp_path), tmp_path / "v1.caffemodel")
    from_v2 = import_caffe(small_prototxt(tmp_path), tmp_path / "v2.caffemodel")
    assert from_v1.graph == from_v2.graph
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in from_v1.graph.initializer}
    np.testing.assert_array_equal(weights["conv.weight"], w)
    np.testing.assert_array_equal(weights["conv.bias"], b)       # stored (1, 1, 1, 2)
    np.testing.assert_array_equal(weights["fc.weight"], fc)      # stored (1, 1, 2, 18)
    assert read_caffemodel(tmp_path / "v1.caffemodel").layers[2].blobs[0].shape == (1, 1, 2, 18)


def test_weight_shape_mismatch_names_layer_shapes_and_file(tmp_path):
    path = tmp_path / "bad.caffemodel"
    write_caffemodel(path, [("conv", "Convolution", [np.zeros((2, 3, 3, 3), np.float32),
                                                    np.zeros(2, np.float32)])])
    with pytest.raises(FormatError) as error:
        import_caffe(small_prototxt(tmp_path), path)
    message = str(error.value)
    for part in ("'conv'", "(2, 3, 3, 3)", "(2, 3, 2, 2)", "bad.caffemodel"):
        assert part in message


def test_blob_count_mismatch(tmp_path):
    path = tmp_path / "nobias.caffemodel"
    write_caffemodel(path, [("conv", "Convolution", [np.zeros((2, 3, 2, 2), np.float32)])])
    with pytest.raises(FormatError, match=r"'conv' has 1 blobs .* takes 2"):
        import_caffe(small_prototxt(tmp_path), path)


def test_missing_weights_error_and_random_fallback(tmp_path):
    path = tmp_path / "partial.caffemodel"
    w = np.ones((2, 3, 2, 2), np.float32)
    write_caffemodel(path, [("conv", "Convolution", [w, np.zeros(2, np.float32)])])
    with pytest.raises(FormatError, match=r"layer 'fc' \(InnerProduct\) needs weights but "
                                          r".*partial.caffemodel has none"):
        import_caffe(small_prototxt(tmp_path), path)
    deploy = parse_prototxt_text(SMALL_NET)
    model = net_to_onnx(deploy, read_caffemodel(path), random_weights_seed=5)
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    np.testing.assert_array_equal(weights["conv.weight"], w)
    again = net_to_onnx(deploy, None, random_weights_seed=5)
    same = {t.name: onnx.numpy_helper.to_array(t) for t in again.graph.initializer}
    np.testing.assert_array_equal(weights["fc.weight"], same["fc.weight"])   # seeded per layer
    assert np.abs(weights["fc.weight"]).sum() > 0


def test_unknown_layer_type_names_layer_and_type():
    net = parse_prototxt_text(SMALL_NET.replace('name: "relu" type: "ReLU"',
                                                'name: "relu" type: "Crop"'))
    with pytest.raises(UnsupportedError, match=r"'relu' has type 'Crop'"):
        net_to_onnx(net, None, random_weights_seed=0)


# -- the original toolbox prototxts ---------------------------------------------------------
def _output_shapes(model, size):
    x = np.zeros((1, 3, size, size), np.float32)
    return {k: v.shape for k, v in make_executor(model, "ort").run({"data": x}).items()}


def test_original_caffenet_matches_our_deploy(original_models):
    """The V1 original and our V2 deploy plan the same layers, tensors and shapes."""
    ours = plan_net(read_prototxt(DEPLOY))
    theirs = plan_net(read_prototxt(original_models / "caffenet-yos-deploy.prototxt"))
    summary = [[(s.layer.name, s.layer.type, s.inputs, s.outputs, s.out_shapes, s.blob_shapes)
                for s in plan.steps] for plan in (ours, theirs)]
    assert summary[0] == summary[1]
    assert ours.blobs == theirs.blobs == list(CAFFENET_SHAPES)
    assert {b: ours.shapes[b] for b in ours.blobs} == CAFFENET_SHAPES


def test_original_googlenet(original_models):
    net = read_prototxt(original_models / "bvlc-googlenet-deploy.prototxt")
    model = net_to_onnx(net, None, random_weights_seed=0)
    shapes = _output_shapes(model, 224)
    assert shapes["prob"] == (1, 1000)
    assert shapes["pool5/7x7_s1"] == (1, 1024, 1, 1)
    # ceil-mode pooling: floor would give 55, 27, 13, 6
    assert [shapes[p][2] for p in ("pool1/3x3_s2", "pool2/3x3_s2", "pool3/3x3_s2",
                                   "pool4/3x3_s2")] == [56, 28, 14, 7]
    assert meta.read(model)["blobs"][0] == "data" and len(shapes) == len(meta.read(model)["blobs"])


def test_original_squeezenet(original_models):
    net = read_prototxt(original_models / "squeezenet-deploy.prototxt")
    model = net_to_onnx(net, None, random_weights_seed=0)
    shapes = _output_shapes(model, 227)
    assert [shapes[p][2] for p in ("conv1", "pool1", "pool4", "pool8")] == [111, 55, 27, 13]
    # this deploy's conv10 is 1x1 with pad 1, so 13x13 grows to 15x15 before global pooling
    assert shapes["conv10"] == (1, 1000, 15, 15)
    assert shapes["pool10"] == (1, 1000, 1, 1)
    assert shapes["prob"] == (1, 1000, 1, 1)


# -- mean -----------------------------------------------------------------------------------------
def test_load_mean_crops_the_centre(tmp_path):
    mean = np.arange(3 * 10 * 12, dtype=np.float32).reshape(3, 10, 12)
    np.save(tmp_path / "m.npy", mean)
    np.testing.assert_array_equal(load_mean(tmp_path / "m.npy", (7, 7)), mean[:, 1:8, 2:9])
    write_binaryproto(tmp_path / "m.binaryproto", mean[None])       # legacy (1, 3, 10, 12)
    np.testing.assert_array_equal(load_mean(tmp_path / "m.binaryproto", (10, 11)),
                                  mean[:, :, 0:11])
    per_channel = load_mean((104, 117, 123), (2, 3))
    assert per_channel.shape == (3, 2, 3) and per_channel[2, 1, 2] == 123


def test_load_mean_smaller_than_input(tmp_path):
    np.save(tmp_path / "m.npy", np.zeros((3, 8, 8), np.float32))
    with pytest.raises(FormatError, match=r"8x8, smaller than the 9x8 input"):
        load_mean(tmp_path / "m.npy", (9, 8))


def test_load_mean_refuses_pickles(tmp_path):
    np.save(tmp_path / "p.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FormatError):
        load_mean(tmp_path / "p.npy", (1, 1))


# -- command line ---------------------------------------------------------------------------------
def _small_weights(tmp_path):
    path = tmp_path / "small.caffemodel"
    rng = np.random.default_rng(0)
    write_caffemodel(path, [("conv", "Convolution", [rng.standard_normal((2, 3, 2, 2)),
                                                    rng.standard_normal(2)]),
                            ("fc", "InnerProduct", [rng.standard_normal((2, 18)),
                                                    rng.standard_normal(2)])])
    return path


def test_cli_writes_onnx_and_mean_and_refuses_to_overwrite(tmp_path, capsys):
    deploy, weights = small_prototxt(tmp_path), _small_weights(tmp_path)
    mean = np.random.default_rng(1).uniform(0, 255, (3, 6, 7)).astype(np.float32)
    np.save(tmp_path / "mean.npy", mean)
    out = tmp_path / "small.onnx"
    args = ["import-caffe", str(deploy), str(weights), "-o", str(out),
            "--mean", str(tmp_path / "mean.npy")]
    assert cli.main(args) == 0
    model = onnx.load(str(out))
    assert meta.read(model)["blobs"] == ["data", "conv", "fc"]
    assert json.loads(dict((p.key, p.value) for p in model.metadata_props)[meta.PREPROCESS])[
        "mean_file"] == "small.mean.npy"
    np.testing.assert_array_equal(np.load(tmp_path / "small.mean.npy"), mean[:, 1:5, 1:5])

    before = out.read_bytes()
    assert cli.main(args) == 1
    assert "--force" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert cli.main(args + ["--force"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "mean.npy", "small.caffemodel", "small.mean.npy", "small.onnx", "small.prototxt"]


def test_import_caffe_refuses_to_overwrite(tmp_path):
    out = tmp_path / "x.onnx"
    out.write_bytes(b"keep")
    with pytest.raises(DeepvisError, match="refusing to overwrite"):
        import_caffe(small_prototxt(tmp_path), _small_weights(tmp_path), out_path=out)
    assert out.read_bytes() == b"keep"


def test_cli_help_names_the_arguments(capsys):
    with pytest.raises(SystemExit):
        cli.main(["import-caffe", "--help"])
    text = capsys.readouterr().out
    for part in ("DEPLOY.prototxt", "WEIGHTS.caffemodel", "--mean", "--force", "-o"):
        assert part in text
