"""Runs one kind of fuzz case in its own process: `python -m tests.fuzz_worker KIND SEED N DIR`.

Each case builds a hostile input (a random mutation of a valid file, or a value drawn by
hypothesis), hands it to deepvis the way a command would, and is counted as a success (it
ran), a clean error (a DeepvisError, or argparse's usage error) or a crash (anything else,
recorded with its traceback). Before each case the worker prints `case I` and flushes, so
when a case kills the process (a signal) or hangs, the parent test names the case.
The last line is a JSON summary: {"kind", "cases", "ok", "clean", "crashes": [...]}.
"""
from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import json
import os
import pathlib
import random
import shutil
import sys
import tarfile
import traceback

import cv2
import numpy as np
import onnx
import yaml
from onnx import TensorProto, helper, numpy_helper

from deepvis.errors import DeepvisError

KINDS = ("onnx_bytes", "onnx_structure", "prototxt", "caffemodel", "yaml_settings",
         "settings_py", "images", "npy", "maxes", "tarballs")
INPUT_HW = 16


# -- outcomes ------------------------------------------------------------------------------
class Tally:
    def __init__(self, kind: str):
        self.kind, self.cases, self.ok, self.clean, self.crashes = kind, 0, 0, 0, []

    def run(self, index: int, case, *args, **kwargs) -> None:
        print(f"case {index}", flush=True)
        self.cases += 1
        try:
            with contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                outcome = case(*args, **kwargs)
        except DeepvisError:
            self.clean += 1
        except Exception:  # noqa: BLE001 - a crash is what the suite looks for
            self.crashes.append({"case": index, "error": traceback.format_exc()[-3000:]})
        else:
            if not isinstance(outcome, int) or outcome == 0:
                self.ok += 1
            elif outcome in (1, 2):   # the CLI's exit codes for a clean error / usage error
                self.clean += 1
            else:
                self.crashes.append({"case": index, "error": f"unexpected outcome {outcome!r}"})

    def summary(self) -> dict:
        return {"kind": self.kind, "cases": self.cases, "ok": self.ok, "clean": self.clean,
                "crashes": self.crashes}


def cli(*argv) -> int:
    """deepvis's own entry point in this process; argparse's exit becomes its code."""
    from deepvis.cli import main

    try:
        return main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2


# -- byte mutations --------------------------------------------------------------------------
def mutate_bytes(data: bytes, rng: random.Random, protect: int = 0) -> bytes:
    """One to four edits: bit flips, interesting bytes, cuts, repeats, splices, truncation.
    The first `protect` bytes are left alone (a magic number) half of the time."""
    out = bytearray(data)
    lo = protect if rng.random() < 0.5 else 0
    for _ in range(rng.randint(1, 4)):
        if len(out) <= lo + 1:
            out += bytes(rng.randrange(256) for _ in range(8))
        at = rng.randrange(lo, len(out))
        choice = rng.randrange(7)
        if choice == 0:
            out[at] ^= 1 << rng.randrange(8)
        elif choice == 1:
            out[at] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, 0xFE))
        elif choice == 2:
            del out[at:at + rng.randint(1, 64)]
        elif choice == 3:
            chunk = out[at:at + rng.randint(1, 64)]
            out[at:at] = chunk * rng.randint(1, 8)
        elif choice == 4:
            out[at:at + 4] = rng.choice((b"\xff\xff\xff\x7f", b"\x00\x00\x00\x00",
                                         b"\xff\xff\xff\xff", b"\x00\x00\x00\x80"))
        elif choice == 5:
            del out[rng.randrange(lo, len(out)):]
        else:
            src = rng.randrange(len(out))
            out[at:at] = out[src:src + rng.randint(1, 128)]
    return bytes(out)


# -- a small network, as ONNX, prototxt and caffemodel --------------------------------------
def tiny_onnx(folder: pathlib.Path, mean_file: str | None = "mean.npy") -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    c, k = 4, 3
    conv = INPUT_HW - k + 1
    pooled = conv // 2
    w1 = numpy_helper.from_array(rng.standard_normal((c, 3, k, k)).astype(np.float32), "conv1.w")
    b1 = numpy_helper.from_array(np.full(c, 0.1, np.float32), "conv1.b")
    w2 = numpy_helper.from_array(rng.standard_normal((5, c * pooled * pooled)).astype(np.float32)
                                 * 0.1, "fc.w")
    b2 = numpy_helper.from_array(np.zeros(5, np.float32), "fc.b")
    nodes = [helper.make_node("Conv", ["data", "conv1.w", "conv1.b"], ["conv1"], name="conv1",
                              kernel_shape=[k, k]),
             helper.make_node("Relu", ["conv1"], ["relu1"], name="relu1"),
             helper.make_node("MaxPool", ["relu1"], ["pool1"], name="pool1",
                              kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["pool1"], ["flat"], name="flat", axis=1),
             helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["fc"], name="fc", transB=1),
             helper.make_node("Softmax", ["fc"], ["prob"], name="prob", axis=1)]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("data", TensorProto.FLOAT,
                                                      ["N", 3, INPUT_HW, INPUT_HW])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 5])], [w1, b1, w2, b2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    from deepvis.graph import meta
    preprocess = {"channel_swap": [2, 1, 0], "scale": 1.0}
    if mean_file:
        preprocess["mean_file"] = mean_file
        np.save(folder / mean_file, np.array([104.0, 117.0, 123.0], np.float32))
    meta.write(model, preprocess=preprocess, source="fuzz base")
    return model


PROTOTXT = """name: "tiny"
input: "data"
input_dim: 1
input_dim: 3
input_dim: 16
input_dim: 16
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 stride: 1 pad: 0 group: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "norm1" type: "LRN" bottom: "conv1" top: "norm1"
  lrn_param { local_size: 3 alpha: 0.0001 beta: 0.75 } }
layer { name: "pool1" type: "Pooling" bottom: "norm1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool1" top: "fc"
  inner_product_param { num_output: 5 } }
layer { name: "drop" type: "Dropout" bottom: "fc" top: "fc" dropout_param { dropout_ratio: 0.5 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""
LAYER_TYPES = ("Convolution", "ReLU", "Pooling", "InnerProduct", "LRN", "Softmax", "Dropout",
               "Concat", "Eltwise", "Flatten", "Split", "Reshape", "BatchNorm", "Scale",
               "Deconvolution", "Sigmoid", "TanH", "Bogus", "Input", "Data")


def tiny_caffemodel(path: pathlib.Path) -> None:
    from tests.caffe_writer import write_caffemodel

    rng = np.random.default_rng(1)
    write_caffemodel(path, [
        ("conv1", "Convolution", [rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)]),
        ("fc", "InnerProduct", [rng.standard_normal((5, 4 * 7 * 7)), rng.standard_normal(5)]),
    ])


# -- the kinds ---------------------------------------------------------------------------------
def _load_and_run(path, rng: random.Random, image=None):
    from deepvis.model import load_model

    backend = rng.choice(("ort", "numpy"))
    model = load_model(str(path), backend=backend)
    x = np.zeros(model.input_shape, np.float32)
    model.forward(x)
    conv = [b for b in model.blob_names[1:] if len(model.blob_shapes[b]) == 4]
    if conv and rng.random() < 0.3:
        seed = np.zeros(model.blob_shapes[conv[0]], np.float32)
        seed.reshape(-1)[0] = 1.0
        model.backward(x, conv[0], seed, mode=rng.choice(("grad", "deconv", "guided")))
    if image is not None and rng.random() < 0.3:  # the toolbox's frame on the odd model
        return cli("render", "--model", path, "--input", image, "--backend", backend,
                   "--keys", rng.choice(("o*2 down right b", "d b r", "pgdn*3 f", "h")),
                   "--out", path.parent / "frame.png", "--force")
    return None


def kind_onnx_bytes(tally: Tally, rng: random.Random, n: int, root: pathlib.Path) -> None:
    base = root / "base"
    base.mkdir()
    data = tiny_onnx(base).SerializeToString()
    for i in range(n):
        case = root / f"c{i}"
        case.mkdir()
        shutil.copy(base / "mean.npy", case / "mean.npy")
        (case / "m.onnx").write_bytes(mutate_bytes(data, rng))
        tally.run(i, _load_and_run, case / "m.onnx", rng)
        shutil.rmtree(case, ignore_errors=True)


OPS = ("Relu", "Conv", "MaxPool", "Gemm", "Softmax", "Flatten", "Add", "Mul", "Sigmoid",
       "AveragePool", "Identity", "Concat", "Transpose", "Reshape", "Bogus", "LRN", "Dropout",
       "Clip", "BatchNormalization", "GlobalAveragePool", "MatMul", "LeakyRelu", "Sum")
ODD_INTS = (-1, 0, 1, 2, 3, 7, 1000, 2 ** 31, -(2 ** 40))
TYPES = (TensorProto.INT32, TensorProto.INT64, TensorProto.BFLOAT16, TensorProto.FLOAT16,
         TensorProto.DOUBLE, TensorProto.STRING, TensorProto.UINT8, TensorProto.BOOL, 0, 99)


def mutate_structure(model: onnx.ModelProto, rng: random.Random) -> None:
    graph = model.graph
    names = [o for node in graph.node for o in node.output] + ["data", "conv1.w", "nowhere", ""]
    for _ in range(rng.randint(1, 3)):
        choice = rng.randrange(14)
        node = rng.choice(graph.node) if len(graph.node) else None
        if choice == 0 and node is not None:
            node.op_type = rng.choice(OPS)
        elif choice == 1 and node is not None and len(node.input):
            at = rng.randrange(len(node.input))
            node.input[at] = rng.choice(names + list(node.output))
        elif choice == 2 and node is not None:
            graph.node.remove(node)
        elif choice == 3 and node is not None:
            graph.node.append(node)
        elif choice == 4 and node is not None and len(node.attribute):
            attribute = rng.choice(node.attribute)
            if attribute.ints:
                attribute.ints[rng.randrange(len(attribute.ints))] = rng.choice(ODD_INTS)
            else:
                attribute.i = rng.choice(ODD_INTS)
        elif choice == 5 and node is not None:
            node.attribute.append(helper.make_attribute(
                rng.choice(("axis", "kernel_shape", "strides", "pads", "group", "bogus")),
                rng.choice((rng.choice(ODD_INTS), [rng.choice(ODD_INTS)] * rng.randint(1, 4)))))
        elif choice == 6 and len(graph.initializer):
            tensor = rng.choice(graph.initializer)
            if len(tensor.dims):
                tensor.dims[rng.randrange(len(tensor.dims))] = rng.choice((0, 1, 2, 5, 7, 99))
        elif choice == 7 and len(graph.initializer):
            rng.choice(graph.initializer).data_type = rng.choice(TYPES)
        elif choice == 8 and len(graph.initializer):
            tensor = rng.choice(graph.initializer)
            cut = rng.choice((-8, -4, -1, 1, 4, 8))
            tensor.raw_data = tensor.raw_data[:cut] if cut < 0 else tensor.raw_data + b"\0" * cut
        elif choice == 9:
            dim = rng.choice(graph.input[0].type.tensor_type.shape.dim)
            if rng.random() < 0.5:
                dim.dim_value = rng.choice((0, 1, 2, 3, 4, 16, 100000))
            else:
                dim.dim_param = rng.choice(("N", "H", ""))
        elif choice == 10:
            model.opset_import[0].version = rng.choice((1, 5, 6, 7, 11, 13, 17, 21, 99))
        elif choice == 11 and node is not None:
            node.domain = rng.choice(("com.microsoft", "bogus.domain", "ai.onnx.ml"))
        elif choice == 12:
            model.ir_version = rng.choice((0, 1, 3, 7, 8, 10, 99))
        else:
            from deepvis.graph import meta
            value = rng.choice((
                {"mean_file": rng.choice(("../mean.npy", "/etc/hostname", "fifo", "none.npy",
                                          "", "sub/../mean.npy", "mean.npy"))},
                {"scale": rng.choice(("abc", [1, 2], None, -1e40))},
                {"channel_swap": rng.choice(([5, 5, 5], [0], "rgb", [2, 1, 0, 3]))},
                {"stretch": rng.choice(("yes", 3, None))},
                {"mean": rng.choice(([1, 2], "x", [[1]], 5))}))
            for prop in model.metadata_props:
                if prop.key == meta.PREPROCESS:
                    prop.value = json.dumps(value)
            if rng.random() < 0.3:
                model.metadata_props.add(key=meta.BLOBS,
                                         value=rng.choice(('["data", "nope"]', "{", '"x"',
                                                           '["data", "conv1", "conv1"]', "[]")))


def random_cnn(rng: random.Random) -> onnx.ModelProto:
    """A valid but unusual small network: 1, 3 or 4 input channels, odd sizes, 1 to 300
    channels, heads that end 4-D, 3-D, 2-D, with or without a softmax."""
    nrng = np.random.default_rng(rng.randrange(2 ** 32))
    c, h, w = rng.choice((1, 3, 4)), rng.choice((5, 8, 16, 23)), rng.choice((5, 8, 16, 31))
    c0, h0, w0 = c, h, w
    nodes, weights, x, k = [], [], "data", 0

    def add(op, inputs, **attrs):
        nonlocal x, k
        k += 1
        out = f"{op.lower()}{k}"
        nodes.append(helper.make_node(op, [x, *inputs], [out], name=out, **attrs))
        x = out

    def weight(name, array, dtype=np.float32):
        weights.append(numpy_helper.from_array(np.asarray(array, dtype), name))
        return name

    for _ in range(rng.randint(1, 4)):
        op = rng.choice(("Conv", "Conv", "Relu", "MaxPool", "AveragePool", "Sigmoid", "LRN",
                         "BatchNormalization"))
        if op == "Conv":
            out, size, stride = rng.choice((1, 2, 7, 64, 300)), rng.choice((1, 3)), \
                rng.choice((1, 2))
            size = min(size, h, w)
            add("Conv", [weight(f"w{k}", nrng.standard_normal((out, c, size, size)) * 0.1),
                         weight(f"b{k}", nrng.standard_normal(out) * 0.1)],
                kernel_shape=[size, size], strides=[stride, stride])
            c, h, w = out, (h - size) // stride + 1, (w - size) // stride + 1
        elif op in ("MaxPool", "AveragePool") and min(h, w) >= 2:
            add(op, [], kernel_shape=[2, 2], strides=[2, 2])
            h, w = h // 2, w // 2
        elif op == "LRN":
            add("LRN", [], size=3)
        elif op == "BatchNormalization":
            add(op, [weight(f"g{k}", np.ones(c)), weight(f"be{k}", np.zeros(c)),
                     weight(f"m{k}", np.zeros(c)), weight(f"v{k}", np.ones(c))])
        elif op in ("Relu", "Sigmoid"):
            add(op, [])
    head = rng.choice(("none", "gemm", "gap", "reshape3"))
    if head in ("gemm", "gap"):
        if head == "gap":
            add("GlobalAveragePool", [])
            h = w = 1
        add("Flatten", [], axis=1)
        classes = rng.choice((1, 2, 10, 1000))
        add("Gemm", [weight(f"fw{k}", nrng.standard_normal((classes, c * h * w)) * 0.1),
                     weight(f"fb{k}", np.zeros(classes))], transB=1)
        if rng.random() < 0.5:
            add("Softmax", [], axis=1)
    elif head == "reshape3":
        add("Reshape", [weight(f"shape{k}", [1, c, h * w], np.int64)])
    graph = helper.make_graph(
        nodes, "random", [helper.make_tensor_value_info("data", TensorProto.FLOAT,
                                                        [1, c0, h0, w0])],
        [helper.make_empty_tensor_value_info(x)], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def kind_onnx_structure(tally: Tally, rng: random.Random, n: int, root: pathlib.Path) -> None:
    base = root / "base"
    base.mkdir()
    data = tiny_onnx(base).SerializeToString()
    _, image = _model_and_image(root)
    for i in range(n):
        case = root / f"c{i}"
        case.mkdir()
        shutil.copy(base / "mean.npy", case / "mean.npy")
        os.mkfifo(case / "fifo")
        model = onnx.ModelProto()
        if i % 3 == 0:  # a valid network of an unusual shape, as a user might bring
            model = random_cnn(rng)
        else:
            model.ParseFromString(data)
            mutate_structure(model, rng)
        (case / "m.onnx").write_bytes(model.SerializeToString())
        tally.run(i, _load_and_run, case / "m.onnx", rng, image)
        shutil.rmtree(case, ignore_errors=True)


def mutate_prototxt(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 3)):
        choice = rng.randrange(8)
        at = rng.randrange(len(lines)) if lines else 0
        if choice == 0:
            numbers = [(i, w) for i, line in enumerate(lines) for w in line.split()
                       if w.rstrip("}").replace(".", "").isdigit()]
            if numbers:
                i, word = rng.choice(numbers)
                lines[i] = lines[i].replace(word, rng.choice(
                    ("0", "-1", "09", "07", "1e9", "3.5", "abc", str(2 ** 40), "0x10", "-0",
                     "99999", "nan")), 1)
        elif choice == 1 and lines:
            del lines[at]
        elif choice == 2 and lines:
            lines.insert(at, lines[at])
        elif choice == 3 and lines:
            lines[at] = lines[at].replace(f'type: "{rng.choice(LAYER_TYPES)}"',
                                          f'type: "{rng.choice(LAYER_TYPES)}"')
            for word in LAYER_TYPES:
                if f'type: "{word}"' in lines[at] and rng.random() < 0.5:
                    lines[at] = lines[at].replace(word, rng.choice(LAYER_TYPES))
        elif choice == 4:
            lines.insert(at, rng.choice(("{", "}", "layer {", "layers {", ":", "'", '"')))
        elif choice == 5 and lines:
            cut = rng.randrange(len(lines[at]) + 1)
            lines[at] = lines[at][:cut]
        elif choice == 6:
            depth = rng.choice((50, 99, 101, 1000))
            lines.append('layer { name: "deep" type: "ReLU" bottom: "prob" top: "deep" '
                         + "data_param { a " * depth + "}" * depth + " }")
        else:
            lines.insert(at, rng.choice((
                'layer { name: "x" type: "ReLU" top: "x" }',
                'layer { name: "y" type: "Pooling" bottom: "data" top: "y" '
                'pooling_param { kernel_size: 2 stride_h: 0 stride_w: 1 } }',
                'layer { name: "z" type: "Convolution" bottom: "data" top: "z" '
                'convolution_param { num_output: 2 kernel_size: 1 group: 0 } }',
                'layer { name: "e" type: "Eltwise" bottom: "data" bottom: "prob" top: "e" }',
                'layer { name: "c" type: "Concat" bottom: "data" bottom: "conv1" top: "c" }',
                'input_shape { dim: 1 dim: 3 dim: 0 dim: 16 }')))
    return "\n".join(lines)


def _prototxt_case(path: pathlib.Path):
    from deepvis.caffe.convert import net_to_onnx
    from deepvis.caffe.parse import read_prototxt
    from deepvis.caffe.plan import plan_net
    from deepvis.graph.check import check_model

    net = read_prototxt(path)
    plan = plan_net(net)
    params = sum(int(np.prod(s)) for step in plan.steps for s in step.blob_shapes)
    if params <= 1 << 20:
        model = net_to_onnx(net, None, random_weights_seed=0)
        check_model(model, path)


def kind_prototxt(tally: Tally, rng: random.Random, n: int, root: pathlib.Path) -> None:
    for i in range(n):
        path = root / f"c{i}.prototxt"
        path.write_text(mutate_prototxt(PROTOTXT, rng))
        tally.run(i, _prototxt_case, path)
        path.unlink()


def kind_caffemodel(tally: Tally, rng: random.Random, n: int, root: pathlib.Path) -> None:
    deploy = root / "deploy.prototxt"
    deploy.write_text(PROTOTXT)
    base = root / "base.caffemodel"
    tiny_caffemodel(base)
    data = base.read_bytes()
    from deepvis.caffe.convert import import_caffe

    for i in range(n):
        path = root / f"c{i}.caffemodel"
        path.write_bytes(mutate_bytes(data, rng))
        tally.run(i, import_caffe, deploy, path, None, root / "out.onnx", overwrite=True)
        path.unlink()


def _model_and_image(root: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    folder = root / "model"
    folder.mkdir(exist_ok=True)
    onnx.save(tiny_onnx(folder), str(folder / "tiny.onnx"))
    image = root / "photo.png"
    cv2.imwrite(str(image), np.random.default_rng(2).integers(0, 255, (24, 20, 3), np.uint8))
    return folder / "tiny.onnx", image


def _settings_case(path: pathlib.Path, model: pathlib.Path, image: pathlib.Path,
                   out: pathlib.Path, render: bool):
    from deepvis.settings import load_settings

    load_settings(path)
    if render:
        return cli("render", "--settings", path, "--model", model, "--input", image,
                   "--keys", "o*2 down right b", "--out", out, "--force")
    return None


def _yaml_values(keys):
    from hypothesis import strategies as st

    scalars = (st.none() | st.booleans() | st.integers(-(2 ** 40), 2 ** 40)
               | st.sampled_from((0, -1, -5, 1e9, 1e300, -0.0, 0.5, 255, 10 ** 6))
               | st.floats(allow_nan=True, allow_infinity=True)
               | st.text(max_size=12) | st.sampled_from(("FONT_HERSHEY_SIMPLEX", "(a+)+$",
                                                        "%DVT_ROOT%/x", "../../etc", "")))
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                          max_leaves=8)
    return st.dictionaries(st.sampled_from(keys), values, min_size=1, max_size=4)


def perturb(value, rng: random.Random):
    """A default setting nudged or broken: scaled numbers, flipped bools, edited lists."""
    if isinstance(value, bool):
        return rng.choice((not value, None, 2, "yes"))
    if isinstance(value, (int, float)):
        if rng.random() < 0.6:  # plausible: the drawing code must cope with these
            scaled = value * rng.choice((0.5, 2, 3)) + rng.choice((0, 1))
            return type(value)(scaled)
        return rng.choice((value * rng.choice((-1, 0, 1e9, -1e-9)), float("nan"),
                           str(value), [value]))
    if isinstance(value, str):
        return rng.choice((value + "x", "", value * 3, None, 0, "../" + value))
    if isinstance(value, list):
        value = list(value)
        if value and rng.random() < 0.7:
            at = rng.randrange(len(value))
            value[at] = perturb(value[at], rng)
        elif value:
            del value[rng.randrange(len(value))]
        else:
            value.append(rng.choice((0, "x", None, [1, 2])))
        return value
    if isinstance(value, dict):
        return {**value, rng.choice(("x", "conv1", "")): rng.choice((1, "fc", None))}
    return rng.choice((0, -1, 1e9, "x", [0, 0, 0, 0], {"a": 1}))


def kind_yaml_settings(tally: Tally, rng: random.Random, n: int, root: pathlib.Path) -> None:
    from hypothesis import HealthCheck, Phase, given, seed, settings

    from deepvis.settings.loader import defaults

    keys = sorted(defaults())
    model, image = _model_and_image(root)
    counter = iter(range(n))

    @seed(rng.randrange(2 ** 32))
    @settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(_yaml_values(keys))
    def one(values):
        i = next(counter, None)
        if i is None:
            return
        path = root / "s.yaml"
        if i % 2 == 0:  # near the defaults, so that more cases get as far as drawing
            base = defaults()
            values = {key: perturb(base[key], rng) for key in rng.sample(keys, rng.randint(1, 3))}
        text = yaml.safe_dump(values, allow_unicode=True)
        if i % 7 == 3:  # tags and syntax YAML's safe loader must refuse
            text = rng.choice(("!!python/object/apply:os.system ['true']\n", "a: [\n",
                               "deepvis_model: !!binary AAAA\n", "&a [*a]\n", text + "\n\t:")) \
                if rng.random() < 0.5 else text + rng.choice(("x: &a 1\ny: *a\n", "- 1\n"))
        path.write_text(text, encoding="utf-8")
        tally.run(i, _settings_case, path, model, image, root / "frame.png", True)

    one()


SETTINGS_PY = """# -*- coding: utf-8 -*-
# an original toolbox settings_local.py
caffevis_caffe_root      = '/path/to/caffe'
caffevis_labels          = None
caffevis_label_layers    = ('fc', 'prob')
caffevis_prob_layer      = 'prob'
caffevis_jpgvis_layers   = ['conv1', 'fc', 'prob']
caffevis_jpgvis_remap    = {'pool1': 'conv1'}
def caffevis_layer_pretty_name_fn(name):
    return name.replace('pool','p').replace('norm','n')
caffevis_mode_gpu = False
global_scale = 1.0
global_font_size = 1.0
caffevis_data_mean = (104, 117, 123)
static_files_regexp = '.*\\\\.(jpg|jpeg|png)$'
"""
PY_INSERTS = (
    "# -*- coding: latin-1 -*-\n", "# vim: set fileencoding=cp1252 :\n",
    "# -*- coding: bogus-codec -*-\n", "import os\nos.system('true')\n",
    "global_font_size = -5\n", "caffevis_status_fsize = 1e9\n", "global_scale = 0\n",
    "x = 2\n" + "x = x * x\n" * 40 + "global_scale = x\n",
    "global_scale = " + "(" * 500 + "1" + ")" * 500 + "\n",
    "static_files_regexp = '(a+)+$'\n", "caffevis_labels = __import__('os').getcwd()\n",
    "caffevis_jpgvis_layers = [" + "[" * 200 + "]" * 200 + "]\n",
    "exec('global_scale = 2')\n", "caffevis_data_mean = '/dev/zero'\n",
    "global_scale = 1e400\n", "global_scale = float('nan')\n", "del global_scale\n",
    "lambda: 0\n", "class A: pass\n", "caffevis_label_layers = 'fc' * 10**9\n")


def kind_settings_py(tally: Tally, rng: random.Random, n: int, root: pathlib.Path) -> None:
    model, image = _model_and_image(root)
    for i in range(n):
        path = root / "settings_local.py"
        text = SETTINGS_PY
        lines = text.splitlines(keepends=True)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(lines) + 1)
            if rng.random() < 0.6:
                lines.insert(at, rng.choice(PY_INSERTS))
            elif lines:
                del lines[min(at, len(lines) - 1)]
        data = "".join(lines).encode("utf-8")
        if rng.random() < 0.3:
            data = mutate_bytes(data, rng)
        path.write_bytes(data)
        tally.run(i, _settings_case, path, model, image, root / "frame.png", True)


def _images() -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 255, (12, 10, 3), np.uint8)
    out = []
    for suffix, image in ((".png", rgb), (".jpg", rgb), (".bmp", rgb), (".tiff", rgb),
                          (".png", (rgb.astype(np.uint16) * 257)), (".png", rgb[..., 0]),
                          (".png", np.dstack([rgb, rgb[..., :1]])),
                          (".tiff", rgb.astype(np.float32) / 255), (".ppm", rgb),
                          (".webp", rgb)):
        ok, data = cv2.imencode(suffix, image)
        if ok:
            out.append((suffix, data.tobytes()))
    return out


def _image_case(path: pathlib.Path):
    from deepvis.preprocess import Preprocessing, preprocess
    from deepvis.readers import read_image

    x = preprocess(read_image(path), Preprocessing((INPUT_HW, INPUT_HW), mean=np.zeros(3)))
    if not np.isfinite(x).all() or x.shape != (1, 3, INPUT_HW, INPUT_HW):
        raise AssertionError(f"bad network input {x.shape}")


def _find_maxes_case(model: pathlib.Path, folder: pathlib.Path, out: pathlib.Path):
    """find-maxes over a folder of mutated images: unreadable ones are skipped, the rest
    scanned, and crop-max-patches then reads the result."""
    code = cli("find-maxes", model, "--images", folder, "--layers", "conv1,prob", "--top", 2,
               "--batch-size", 3, "-o", out, "--force")
    if code == 0:
        return cli("crop-max-patches", model, out, "-o", folder.parent / "crops", "--force")
    return code


def kind_images(tally: Tally, rng: random.Random, n: int, root: pathlib.Path) -> None:
    bases = _images()
    model, _ = _model_and_image(root)
    folder = root / "scan"
    made = []
    for i in range(n):
        if i % 50 == 49:  # the last dozen images as a folder, through find-maxes
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            for earlier in made[-12:]:
                shutil.copy(earlier, folder)
            tally.run(i, _find_maxes_case, model, folder, root / "maxes.npz")
            continue
        suffix, data = rng.choice(bases)
        path = root / f"c{i}{suffix}"
        path.write_bytes(mutate_bytes(data, rng, protect=8))
        tally.run(i, _image_case, path)
        made.append(path)
        for old in made[:-12]:
            old.unlink()
        del made[:-12]


def _npy_case(path: pathlib.Path):
    from deepvis.readers import read_network_input

    x = read_network_input(path)
    if x.dtype != np.float32 or x.ndim != 4 or not np.isfinite(x).all():
        raise AssertionError(f"accepted {x.dtype} {x.shape}")


def _npy_arrays():
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    dtypes = (hnp.floating_dtypes() | hnp.integer_dtypes() | hnp.boolean_dtypes()
              | hnp.complex_number_dtypes() | hnp.unicode_string_dtypes()
              | hnp.byte_string_dtypes() | st.just(np.dtype([("a", "f4"), ("b", "i4")])))
    shapes = hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4)
    inputs = hnp.arrays(st.sampled_from((np.float32, np.float64, np.uint8, np.int16)),
                        st.sampled_from(((3, 16, 16), (1, 3, 16, 16), (2, 3, 4, 4), (1, 1, 1))),
                        elements=st.integers(0, 255))
    return st.one_of(inputs, hnp.arrays(dtypes, shapes))


def kind_npy(tally: Tally, rng: random.Random, n: int, root: pathlib.Path) -> None:
    from hypothesis import HealthCheck, Phase, given, seed, settings

    counter = iter(range(n))
    path = root / "x.npy"

    @seed(rng.randrange(2 ** 32))
    @settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(_npy_arrays())
    def one(array):
        i = next(counter, None)
        if i is None:
            return
        buffer = io.BytesIO()
        if i % 9 == 4:
            np.savez(buffer, a=array)          # an .npz named .npy
        else:
            np.save(buffer, array, allow_pickle=False)
        data = buffer.getvalue()
        if i % 3 == 1:                         # the header lies (shape, descr) or is damaged
            data = data.replace(b"'shape': (", rng.choice(
                (b"'shape': (70000, 70000, ", b"'shape': (0, ", b"'shape': (-1, ",
                 b"'shape': (2**40, ", b"'shape': (")), 1)
        elif i % 3 == 2:
            data = mutate_bytes(data, rng, protect=6)
        path.write_bytes(data)
        tally.run(i, _npy_case, path)

    one()


def _base_maxes():
    from deepvis.maxes.checkpoint import Coverage, ScanState
    from deepvis.maxes.images import ImageList
    from deepvis.maxes.store import Maxes, to_arrays
    from deepvis.maxes.tracker import TopTable

    rng = np.random.default_rng(4)
    images = ImageList(pathlib.Path("/images"), tuple(f"im{i}.jpg" for i in range(6)),
                       np.full(6, -1, np.int64))
    conv = TopTable(np.sort(rng.random((4, 3)).astype(np.float32))[:, ::-1].copy(),
                    rng.integers(0, 6, (4, 3)), rng.integers(0, 5, (4, 3)),
                    rng.integers(0, 5, (4, 3)))
    fc = TopTable(np.sort(rng.random((5, 3)).astype(np.float32))[:, ::-1].copy(),
                  rng.integers(0, 6, (5, 3)), np.full((5, 3), -1), np.full((5, 3), -1))
    state = ScanState({"conv1": conv, "fc": fc}, Coverage([(0, 6)]), {5: "broken"})
    arrays = to_arrays(Maxes(state.tables, images, state.skipped, {"top": 3}))
    arrays.update(fingerprint=np.asarray("abc"), done=state.done.as_array())
    return arrays


def _maxes_case(path: pathlib.Path):
    from deepvis.maxes.checkpoint import ScanState, load_checkpoint
    from deepvis.maxes.store import read_maxes

    maxes = read_maxes(path)
    list(maxes.tables)
    state = load_checkpoint(path, "abc", {"conv1": 4, "fc": 5}, 3)
    state.absorb(ScanState.empty({"conv1": 4, "fc": 5}, 3))
    state.done.remaining(len(maxes.images))


def mutate_arrays(arrays: dict, rng: random.Random) -> dict:
    arrays = dict(arrays)
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(sorted(arrays))
        array = np.array(arrays[key])
        choice = rng.randrange(6)
        if choice == 0:
            del arrays[key]
        elif choice == 1 and array.size and array.dtype.kind in "iuf":
            flat = array.reshape(-1)
            flat[rng.randrange(flat.size)] = rng.choice((-5, -1, 6, 7, 10 ** 9, 0)) \
                if array.dtype.kind in "iu" else rng.choice((np.nan, -np.inf, np.inf, 1e30))
            arrays[key] = array
        elif choice == 2:
            arrays[key] = array.reshape(-1)[:rng.randrange(array.size + 1)]
        elif choice == 3:
            kind = rng.choice((np.float64, np.int8, np.bool_, str))
            arrays[key] = array.astype(kind) if array.dtype.kind in "iufb" or kind is str \
                else np.zeros(array.shape, kind)
        elif choice == 4:
            arrays[key] = np.asarray(rng.choice(("x", "deepvis-maxes/2", "{", "[]", "")))
        else:
            arrays[key] = np.zeros(rng.choice(((0,), (2, 2), (3, 0), (1, 2, 3))),
                                   rng.choice((np.int64, np.float32)))
    return arrays


def kind_maxes(tally: Tally, rng: random.Random, n: int, root: pathlib.Path) -> None:
    base = _base_maxes()
    buffer = io.BytesIO()
    np.savez(buffer, **base)
    data = buffer.getvalue()
    path = root / "m.npz"
    for i in range(n):
        if i % 4 == 0:
            path.write_bytes(mutate_bytes(data, rng, protect=4))
        else:
            with open(path, "wb") as f:
                np.savez(f, **mutate_arrays(base, rng))
        tally.run(i, _maxes_case, path)


def _tar_members(rng: random.Random) -> list[tuple[tarfile.TarInfo, bytes]]:
    members = []
    for name in ("model/deploy.prototxt", "model/weights.caffemodel", "model/labels.txt"):
        info = tarfile.TarInfo(name)
        data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
        info.size = len(data)
        members.append((info, data))
    hostile = rng.choice(("../escape.txt", "/abs/escape.txt", "model/../../escape.txt",
                          "link", "hard", "fifo", "dev", "model/link/inner.txt", "C:evil",
                          None, None))
    if hostile is None:
        return members
    info = tarfile.TarInfo(hostile if "/" in hostile or "." in hostile else f"model/{hostile}")
    if hostile == "link":
        info.type, info.linkname = tarfile.SYMTYPE, rng.choice(("../..", "/etc", "model"))
    elif hostile == "hard":
        info.type, info.linkname = tarfile.LNKTYPE, rng.choice(("/etc/passwd", "../x"))
    elif hostile == "fifo":
        info.type = tarfile.FIFOTYPE
    elif hostile == "dev":
        info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    elif hostile == "model/link/inner.txt":
        link = tarfile.TarInfo("model/link")
        link.type, link.linkname = tarfile.SYMTYPE, "."
        members.append((link, b""))
    members.append((info, b""))
    return members


def _tar_case(archive: pathlib.Path, target: pathlib.Path, outside: pathlib.Path):
    from deepvis.fetch.unpack import safe_extract

    try:
        safe_extract(archive, target)
    finally:
        allowed = {archive, target.parent, target}
        escaped = [p for p in outside.rglob("*") if p not in allowed and target not in p.parents]
        if escaped:
            raise AssertionError(f"an archive wrote outside its folder: {escaped}")


def kind_tarballs(tally: Tally, rng: random.Random, n: int, root: pathlib.Path) -> None:
    for i in range(n):
        case = root / f"c{i}"
        (case / "jail").mkdir(parents=True)
        archive = case / "a.tar.gz"
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for info, data in _tar_members(rng):
                tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
        data = rng.choice((lambda b: gzip.compress(b, mtime=0), bz2.compress,
                           lambda b: b))(buffer.getvalue())
        if rng.random() < 0.4:
            data = mutate_bytes(data, rng, protect=3)
        archive.write_bytes(data)
        tally.run(i, _tar_case, archive, case / "jail" / "out", case)
        shutil.rmtree(case, ignore_errors=True)


def main(argv) -> int:
    kind, seed_value, count, folder = argv[0], int(argv[1]), int(argv[2]), pathlib.Path(argv[3])
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DEEPVIS_CACHE", str(folder / "cache"))
    rng = random.Random(f"{kind}:{seed_value}")
    np.random.seed(seed_value)
    tally = Tally(kind)
    work = folder / kind
    work.mkdir(exist_ok=True)
    globals()[f"kind_{kind}"](tally, rng, count, work)
    print(json.dumps(tally.summary()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
