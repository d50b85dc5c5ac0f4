"""Hand-made hostile inputs (issue 14): each is refused with a clear DeepvisError that names
the file, layer, key or flag, where deepvis used to crash, hang, or run on wrong data."""
from __future__ import annotations

import os
import pathlib
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from deepvis.cli import main
from deepvis.errors import DeepvisError, FormatError
from tests.fuzz_worker import PROTOTXT, _base_maxes, tiny_onnx

REPO = pathlib.Path(__file__).resolve().parent.parent


def _saved(model: onnx.ModelProto, folder: pathlib.Path, name: str = "m.onnx") -> pathlib.Path:
    path = folder / name
    path.write_bytes(model.SerializeToString())
    return path


def _weight(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(t for t in model.graph.initializer if t.name == name)


# -- ONNX at the door ------------------------------------------------------------------------
def test_the_unmutated_base_model_loads_and_runs(tmp_path):
    from deepvis.model import load_model

    model = load_model(str(_saved(tiny_onnx(tmp_path), tmp_path)), backend="numpy")
    probs = model.forward(np.zeros(model.input_shape, np.float32))["prob"]
    assert probs.shape == (1, 5) and np.isclose(probs.sum(), 1.0)


def test_outputs_declared_without_type_or_shape_pass_the_door(tmp_path):
    """onnxruntime runs them (exporters write them); onnx's checker alone would refuse."""
    from deepvis.model import load_model

    model = tiny_onnx(tmp_path)
    del model.graph.output[:]
    model.graph.output.append(helper.make_empty_tensor_value_info("prob"))
    model.graph.output.append(helper.make_tensor_value_info("fc", TensorProto.FLOAT, None))
    loaded = load_model(str(_saved(model, tmp_path)), backend="ort")
    assert loaded.blob_shapes["prob"] == (1, 5)


def test_unsorted_nodes_pass_as_onnxruntime_sorts_them_but_a_cycle_is_refused(tmp_path):
    from deepvis.model import load_model

    model = tiny_onnx(tmp_path)
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(reversed(nodes))
    for backend in ("ort", "numpy"):
        loaded = load_model(str(_saved(model, tmp_path)), backend=backend)
        assert loaded.forward(np.zeros((1, 3, 16, 16), np.float32))["prob"].shape == (1, 5)
    model.graph.node[-1].input[0] = "relu1"  # conv1 now reads relu1, which reads conv1
    with pytest.raises(FormatError, match="m.onnx is not a valid ONNX model"):
        load_model(str(_saved(model, tmp_path)), backend="numpy")


@pytest.mark.parametrize("delta", [-4, -1, 1, 4])
def test_an_onnx_file_with_a_short_or_long_initializer_is_refused(tmp_path, delta):
    """onnxruntime refuses such a file; deepvis used to read the next tensor shifted (long)
    or zero-pad (short) and exit 0."""
    from deepvis.exec.numpy_exec import NumpyExecutor
    from deepvis.model import load_model

    model = tiny_onnx(tmp_path)
    tensor = _weight(model, "conv1.w")
    tensor.raw_data = tensor.raw_data[:delta] if delta < 0 else tensor.raw_data + b"\1" * delta
    path = _saved(model, tmp_path)
    for backend in ("ort", "numpy"):
        with pytest.raises(FormatError, match=r"m\.onnx.*'conv1\.w'.*needs 432 bytes"):
            load_model(str(path), backend=backend)
    with pytest.raises(FormatError, match="conv1.w"):
        NumpyExecutor(path)
    import onnxruntime as ort  # the reference: onnxruntime refuses the same file
    with pytest.raises(Exception, match="raw_data size"):
        ort.InferenceSession(str(path))


def _int_conv(model):
    tensor = _weight(model, "conv1.w")
    array = numpy_helper.to_array(tensor).astype(np.int32)
    tensor.CopyFrom(numpy_helper.from_array(array, "conv1.w"))


def _bfloat16_conv(model):
    tensor = _weight(model, "conv1.w")
    tensor.data_type = TensorProto.BFLOAT16
    tensor.raw_data = tensor.raw_data[: len(tensor.raw_data) // 2]


def _duplicate_names(model):
    model.graph.node[1].name = model.graph.node[0].name


def _opset_99(model):
    model.opset_import[0].version = 99


@pytest.mark.parametrize("breaks, says", [
    (_int_conv, "int32 weights"), (_bfloat16_conv, "bfloat16 weights"),
    (_duplicate_names, "two nodes are named 'conv1'"), (_opset_99, "opset 99")])
def test_what_onnxruntime_refuses_both_executors_refuse(tmp_path, breaks, says):
    import onnxruntime as ort

    from deepvis.exec.numpy_exec import NumpyExecutor
    from deepvis.model import load_model

    model = tiny_onnx(tmp_path)
    breaks(model)
    path = _saved(model, tmp_path)
    with pytest.raises(Exception):  # the reference
        ort.InferenceSession(str(path))
    with pytest.raises(FormatError, match=says):
        load_model(str(path), backend="numpy")
    with pytest.raises(FormatError, match=says):
        NumpyExecutor(model)


def test_onnxruntime_errors_name_the_users_file_and_node(tmp_path):
    """Sessions run deepvis's cached copies; the message names the user's model instead."""
    from deepvis.errors import ExecutionError
    from deepvis.exec.ort import OrtExecutor

    model = tiny_onnx(tmp_path)
    _duplicate_names(model)
    cached = _saved(model, tmp_path, "0123456789abcdef0123456789abcdef.onnx")
    with pytest.raises(ExecutionError) as caught:
        OrtExecutor(cached, source="mynet.onnx")
    text = str(caught.value)
    assert text.startswith("mynet.onnx: onnxruntime failed to load the model at node 'conv1'")
    assert "0123456789abcdef" not in text and "[ONNXRuntimeError]" not in text
    good = OrtExecutor(_saved(tiny_onnx(tmp_path), tmp_path, "fedcba9876543210fedcba9876543210"
                                                              ".onnx"), source="mynet.onnx")
    with pytest.raises(ExecutionError, match=r"^mynet\.onnx: onnxruntime failed running"):
        good.run({"data": np.zeros((1, 3, 5, 5), np.float32)})
    shape = numpy_helper.from_array(np.array([5, 7], np.int64), "shape")
    reshape = helper.make_model(helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape7")], "r",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [shape]),
        opset_imports=[helper.make_opsetid("", 13)])
    runs = OrtExecutor(_saved(reshape, tmp_path, "00112233445566778899aabbccddeeff.onnx"),
                       source="mynet.onnx")
    with pytest.raises(ExecutionError, match=r"^mynet\.onnx: onnxruntime failed running the "
                                             r"model at node 'reshape7': .*cannot be reshaped"):
        runs.run({"x": np.zeros((2, 3), np.float32)})


@pytest.mark.parametrize("mean_file", ["/etc/hostname", "../outside.npy", "sub/../../outside.npy",
                                       "fifo", "folder", "missing.npy"])
def test_metadata_mean_file_stays_in_the_models_folder_as_a_regular_file(tmp_path, mean_file):
    from deepvis.model import load_model

    folder = tmp_path / "model"
    folder.mkdir()
    np.save(tmp_path / "outside.npy", np.zeros(3, np.float32))
    os.mkfifo(folder / "fifo")  # opening it would block forever
    (folder / "folder").mkdir()
    model = tiny_onnx(folder, mean_file=None)
    from deepvis.graph import meta
    meta.write(model, preprocess={"mean_file": mean_file})
    with pytest.raises(FormatError, match="mean_file"):
        load_model(str(_saved(model, folder)), backend="numpy")


def test_a_mean_file_beside_the_model_is_used(tmp_path):
    from deepvis.model import load_model

    model = load_model(str(_saved(tiny_onnx(tmp_path), tmp_path)), backend="numpy")
    assert np.allclose(model.preprocessing.mean[:, 0, 0], [104, 117, 123])


# -- prototxt ---------------------------------------------------------------------------------
@pytest.mark.parametrize("old, new, says", [
    ("kernel_size: 3 stride: 1", "kernel_size: 3 stride: 0", "'conv1'.*stride"),
    ("group: 1", "group: 0", "'conv1'.*group 0"),
    ("pool: MAX kernel_size: 2 stride: 2", "pool: MAX kernel_size: 2 stride_h: 0 stride_w: 2",
     "'pool1'.*stride"),
    ("input_dim: 3", "input_dim: 09", "4:12: expected an integer for 'input_dim'"),
    ('bottom: "pool1" top: "fc"', 'top: "fc"', "'fc' .InnerProduct. has no bottom"),
    ("input_dim: 16\ninput_dim: 16", "input_dim: 16\ninput_dim: 99999999999", "elements"),
    ('layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }',
     'layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }\n'
     'layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }',
     "two layers are named 'relu1'"),
    ('dropout_param { dropout_ratio: 0.5 }',
     "dropout_param { dropout_ratio: 0.5 } data_param " + "{ a " * 150 + "}" * 150,
     "nested more than 100 deep"),
])
def test_prototxt_that_used_to_crash_gives_a_clean_error(tmp_path, old, new, says):
    from deepvis.caffe.convert import net_to_onnx
    from deepvis.caffe.parse import read_prototxt

    assert old in PROTOTXT
    path = tmp_path / "deploy.prototxt"
    path.write_text(PROTOTXT.replace(old, new, 1))
    with pytest.raises(FormatError, match=says):
        net_to_onnx(read_prototxt(path), None, random_weights_seed=0)


def test_octal_numbers_still_parse_as_protobuf_reads_them(tmp_path):
    from deepvis.caffe.parse import parse_prototxt_text

    net = parse_prototxt_text(PROTOTXT.replace("input_dim: 3", "input_dim: 03"))
    assert net.inputs[0][1][1] == 3


# -- images and .npy inputs --------------------------------------------------------------------
def _png_header(width: int, height: int) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0,
                                                               0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b""))


def test_an_image_header_claiming_100000_squared_pixels_is_refused(tmp_path):
    from deepvis.readers import read_image

    path = tmp_path / "huge.png"
    path.write_bytes(_png_header(100000, 100000))
    with pytest.raises(FormatError, match="huge.png: the image is larger than"):
        read_image(path)


def test_a_nan_tiff_is_refused(tmp_path):
    from deepvis.readers import read_image

    image = np.full((4, 4, 3), 0.5, np.float32)
    image[1, 2] = np.nan
    path = tmp_path / "nan.tiff"
    assert cv2.imwrite(str(path), image)
    with pytest.raises(FormatError, match="nan.tiff: the image has NaN"):
        read_image(path)


def test_16_bit_images_are_converted_alike_by_forward_and_the_toolbox(tmp_path):
    """Both shift right by 8 bits, as OpenCV's own IMREAD_COLOR (the reference) does."""
    from deepvis.preprocess import as_rgb
    from deepvis.readers import read_image
    from deepvis.toolbox.inputs import read_rgb_file

    deep = (np.arange(6 * 5 * 3).reshape(6, 5, 3) * 700 % 65536).astype(np.uint16)
    path = tmp_path / "deep.png"
    assert cv2.imwrite(str(path), deep)
    forward_view = as_rgb(read_image(path))
    toolbox_view = read_rgb_file(path)
    opencv_view = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(forward_view, toolbox_view)
    np.testing.assert_array_equal(forward_view, opencv_view)
    np.testing.assert_array_equal(forward_view, (deep >> 8).astype(np.uint8)[..., ::-1])


def _npy(path, array):
    np.save(path, array, allow_pickle=False)
    return path


def _lying_header(path):
    header = {"descr": "<f4", "fortran_order": False, "shape": (1, 3, 70000, 70000)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 64)
    return path


def _npz_named_npy(path):
    with open(path, "wb") as f:
        np.savez(f, x=np.zeros((1, 3, 16, 16), np.float32))
    return path


@pytest.mark.parametrize("make, says", [
    (lambda p: _npy(p, np.zeros((0, 3, 16, 16), np.float32)), "is empty"),
    (lambda p: _npy(p, np.array(["a", "b"])), "holds <U1 values"),
    (lambda p: _npy(p, np.zeros(3, [("a", "f4"), ("b", "i4")])), "holds"),
    (_npz_named_npy, "is a .npz archive"),
    (_lying_header, "declares 58800000000 bytes"),
    (lambda p: _npy(p, np.full((3, 16, 16), np.nan, np.float32)), "NaN or infinite"),
])
def test_npy_inputs_that_used_to_crash_are_refused(tmp_path, make, says):
    from deepvis.readers import read_network_input

    path = make(tmp_path / "x.npy")
    with pytest.raises(FormatError, match=says):
        read_network_input(path)


@pytest.fixture
def tiny_model_file(tmp_path):
    return _saved(tiny_onnx(tmp_path), tmp_path)


def test_forward_on_a_nan_input_is_an_error_not_nan_probabilities(tmp_path, tiny_model_file,
                                                                   capsys):
    path = _npy(tmp_path / "nan.npy", np.full((1, 3, 16, 16), np.nan, np.float32))
    assert main(["forward", str(tiny_model_file), "--input", str(path), "--backend",
                 "numpy"]) == 1
    out, err = capsys.readouterr()
    assert "nan.npy: the input has NaN" in err and "nan" not in out.lower()


def test_top_must_be_at_least_one(tiny_model_file, tmp_path, capsys):
    path = _npy(tmp_path / "x.npy", np.zeros((1, 3, 16, 16), np.float32))
    with pytest.raises(SystemExit) as caught:
        main(["forward", str(tiny_model_file), "--input", str(path), "--top", "-997"])
    assert caught.value.code == 2 and "--top: must be at least 1" in capsys.readouterr().err


def test_find_maxes_images_must_be_a_folder_or_a_list_of_images(tmp_path):
    from deepvis.maxes.images import list_images

    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/bin/sh\n")
    with pytest.raises(DeepvisError, match=r"passwd:1: 'root:x:0:0.* is not an image file"):
        list_images(passwd)
    good = tmp_path / "list.txt"
    good.write_text("a.jpg 3\n# a comment\nsub/b.PNG\n")
    assert list_images(good).paths == ("a.jpg", "sub/b.PNG")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_optimize_refuses_a_non_finite_decay(value):
    from deepvis.optimize.params import FindParams

    with pytest.raises(DeepvisError, match="--decay must be a number"):
        FindParams(decay=value)


def test_render_keys_repetition_is_bounded(tiny_model_file, tmp_path, capsys):
    from deepvis.toolbox.keys import parse_keys

    with pytest.raises(ValueError, match="out of range"):
        parse_keys("o*100000000000")
    assert len(parse_keys("o*3 down")) == 4
    assert main(["render", "--model", str(tiny_model_file), "--input", "x.png", "--keys",
                 "o*100000000000", "--out", str(tmp_path / "f.png")]) == 1
    assert "repeat count 100000000000" in capsys.readouterr().err


# -- MAXES and checkpoints ---------------------------------------------------------------------
def _write_npz(path, arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def test_a_crafted_maxes_file_with_an_index_out_of_range_is_refused(tmp_path):
    from deepvis.maxes.store import read_maxes

    arrays = _base_maxes()
    assert len(read_maxes(_write_npz(tmp_path / "ok.npz", arrays)).tables) == 2
    index = arrays["conv1/image_index"].copy()
    index[0, 0] = 6  # there are 6 images: 0..5
    arrays["conv1/image_index"] = index
    with pytest.raises(FormatError, match="'conv1': an image index is outside 0..5"):
        read_maxes(_write_npz(tmp_path / "bad.npz", arrays))


@pytest.mark.parametrize("done, says", [
    (np.array([[0, 9]]), "impossible for 6 images"),
    (np.array([[3, 1]]), "impossible"),
    (np.array([[0, 2]]), "has not scanned"),
])
def test_a_checkpoint_with_impossible_progress_is_refused(tmp_path, done, says):
    from deepvis.maxes.checkpoint import load_checkpoint

    arrays = _base_maxes()
    good = load_checkpoint(_write_npz(tmp_path / "ok.checkpoint", arrays), "abc",
                           {"conv1": 4, "fc": 5}, 3)
    assert good.done.ranges == [(0, 6)]
    arrays["done"] = done
    with pytest.raises(DeepvisError, match=says):
        load_checkpoint(_write_npz(tmp_path / "bad.checkpoint", arrays), "abc")


def test_a_checkpoint_of_other_channel_counts_is_refused(tmp_path):
    from deepvis.maxes.checkpoint import load_checkpoint

    path = _write_npz(tmp_path / "m.checkpoint", _base_maxes())
    with pytest.raises(DeepvisError, match="do not match the layers' channels"):
        load_checkpoint(path, "abc", {"conv1": 8, "fc": 5}, 3)


# -- no display ----------------------------------------------------------------------------------
def test_toolbox_without_a_display_says_so_and_suggests_render_or_serve(tmp_path):
    from deepvis.commands.toolbox import display_problem

    assert display_problem({}, "linux") == "no display (DISPLAY is not set)"
    assert display_problem({"DISPLAY": ":4242"}, "linux") == "no X server for DISPLAY=:4242"
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert display_problem({}, "darwin") is None
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY",
                                                            "QT_QPA_PLATFORM")}
    done = subprocess.run([sys.executable, "-m", "deepvis.cli", "toolbox"], cwd=tmp_path,
                          env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1, done.stderr  # not -6 (SIGABRT from Qt)
    assert "no display" in done.stderr and "deepvis render" in done.stderr and \
        "deepvis serve" in done.stderr
