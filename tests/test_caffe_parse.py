"""Caffe file parsing: prototxt text, binary caffemodel/binaryproto, normalisation to Net."""
from __future__ import annotations

import math
import mmap
import re

import numpy as np
import pytest

from deepvis.caffe import schema
from deepvis.caffe.parse import (parse_prototxt_text, read_binaryproto, read_caffemodel,
                                 read_prototxt)
from deepvis.errors import FormatError
from tests import caffe_writer as cw

F32 = np.float32


def by_name(net):
    return {layer.name: layer for layer in net.layers}


def summary(net):
    return [(l.name, l.type, l.bottoms, l.tops, l.params) for l in net.layers]


# -- the three original deploy prototxts ---------------------------------------------------
@pytest.mark.parametrize("stem, keyword", [("caffenet-yos", "layers"),
                                           ("bvlc-googlenet", "layer"),
                                           ("squeezenet", "layer")])
def test_original_layer_names_match_the_text(original_models, stem, keyword):
    path = original_models / f"{stem}-deploy.prototxt"
    text = path.read_text()
    blocks = re.split(rf"^{keyword} {{$", text, flags=re.M)[1:]
    names = [re.search(r'^  name: "([^"]*)"$', block, re.M).group(1) for block in blocks]
    net = read_prototxt(path)
    assert [layer.name for layer in net.layers] == names
    assert net.force_backward is True
    assert net.source == str(path)


def test_caffenet_yos(original_models):
    net = read_prototxt(original_models / "caffenet-yos-deploy.prototxt")
    assert net.name == "CaffeNet"
    assert net.inputs == [("data", (1, 3, 227, 227))]
    assert len(net.layers) == 23
    types = [layer.type for layer in net.layers]
    assert types[:5] == ["Convolution", "ReLU", "Pooling", "LRN", "Convolution"]
    assert types.count("InnerProduct") == 3 and types.count("Dropout") == 2
    assert types[-1] == "Softmax"
    layers = by_name(net)
    conv2 = layers["conv2"].param("convolution_param")
    assert conv2 == {"num_output": 256, "pad": [2], "kernel_size": [5], "group": 2}
    assert layers["conv1"].param("convolution_param")["stride"] == [4]
    for pool in ("pool1", "pool2", "pool5"):
        assert layers[pool].param("pooling_param") == {"pool": "MAX", "kernel_size": 3,
                                                       "stride": 2}
    for norm in ("norm1", "norm2"):
        lrn = layers[norm].param("lrn_param")
        assert lrn == {"local_size": 5, "alpha": float(F32(1e-4)), "beta": 0.75}
    assert layers["relu1"].bottoms == ["conv1"] and layers["relu1"].tops == ["conv1"]
    assert layers["fc8"].param("inner_product_param") == {"num_output": 1000}
    assert layers["drop6"].param("dropout_param") == {"dropout_ratio": 0.5}
    assert all(layer.blobs == [] for layer in net.layers)


def test_bvlc_googlenet(original_models):
    net = read_prototxt(original_models / "bvlc-googlenet-deploy.prototxt")
    assert net.name == "GoogleNet"
    assert net.inputs == [("data", (1, 3, 224, 224))]
    assert len(net.layers) == 142
    layers = by_name(net)
    conv1 = layers["conv1/7x7_s2"].param("convolution_param")
    assert (conv1["num_output"], conv1["pad"], conv1["kernel_size"], conv1["stride"]) == \
        (64, [3], [7], [2])
    assert conv1["weight_filler"] == {"type": "xavier", "std": float(F32(0.1))}
    assert layers["pool5/7x7_s1"].param("pooling_param") == {"pool": "AVE", "kernel_size": 7,
                                                             "stride": 1}
    assert layers["pool5/drop_7x7_s1"].param("dropout_param") == {
        "dropout_ratio": float(F32(0.4))}
    concat = layers["inception_3a/output"]
    assert concat.type == "Concat" and len(concat.bottoms) == 4
    assert layers["loss3/classifier"].param("inner_product_param")["num_output"] == 1000
    assert net.layers[-1].type == "Softmax"


def test_squeezenet(original_models):
    net = read_prototxt(original_models / "squeezenet-deploy.prototxt")
    assert net.inputs == [("data", (1, 3, 227, 227))]
    assert len(net.layers) == 66
    layers = by_name(net)
    assert layers["pool10"].param("pooling_param") == {"pool": "AVE", "global_pooling": True}
    conv10 = layers["conv10"].param("convolution_param")
    assert (conv10["num_output"], conv10["pad"], conv10["kernel_size"]) == (1000, [1], [1])
    assert conv10["weight_filler"] == {"type": "gaussian", "mean": 0.0,
                                       "std": float(F32(0.01))}
    assert layers["fire9/concat"].bottoms == ["fire9/expand1x1", "fire9/expand3x3"]


# -- input forms ---------------------------------------------------------------------------
CONV = 'layer { name: "c" type: "Convolution" bottom: "data" top: "c" ' \
       'convolution_param { num_output: 2 kernel_size: 3 } }'


@pytest.mark.parametrize("header", [
    'input: "data" input_dim: 2 input_dim: 3 input_dim: 8 input_dim: 9',
    'input: "data" input_shape { dim: 2 dim: 3 dim: 8 dim: 9 }',
    'layer { name: "in" type: "Input" top: "data" input_param { shape { dim: [2, 3, 8, 9] } } }',
])
def test_three_input_forms_agree(header):
    net = parse_prototxt_text(header + "\n" + CONV)
    assert net.inputs == [("data", (2, 3, 8, 9))]
    assert [layer.name for layer in net.layers] == ["c"]


def test_two_inputs_and_shared_input_layer_shape():
    net = parse_prototxt_text('input: "a" input: "b" input_dim: [1, 3, 4, 4, 1, 1, 2, 2]\n'
                              + CONV)
    assert net.inputs == [("a", (1, 3, 4, 4)), ("b", (1, 1, 2, 2))]
    net = parse_prototxt_text('layer { name: "in" type: "Input" top: "x" top: "y" '
                              'input_param { shape { dim: 1 dim: 5 } } }' + CONV)
    assert net.inputs == [("x", (1, 5)), ("y", (1, 5))]
    assert [layer.name for layer in net.layers] == ["c"]


def test_input_without_dims_is_dropped():
    assert parse_prototxt_text('input: "data"\n' + CONV).inputs == []


@pytest.mark.parametrize("header, message", [
    ('input: "data" input_dim: 1 input_dim: 3 input_dim: 8', "input_dim"),
    ('input: "data" input_dim: [1, 3, 8, 8] input_shape { dim: 1 }', "both"),
    ('input: "a" input: "b" input_shape { dim: 1 }', "input_shape"),
])
def test_inconsistent_inputs_are_rejected(header, message):
    with pytest.raises(FormatError, match=message):
        parse_prototxt_text(header + "\n" + CONV, "bad.prototxt")


# -- phase filtering -----------------------------------------------------------------------
def test_phase_filtering_keeps_test_layers():
    text = """
    state { stage: "deploy" level: 2 }
    layer { name: "train_only" type: "Data" include { phase: TRAIN } }
    layer { name: "test_only" type: "Data" include { phase: TEST } }
    layer { name: "not_in_test" type: "ReLU" exclude { phase: TEST } }
    layer { name: "not_in_train" type: "ReLU" exclude { phase: TRAIN } }
    layer { name: "any_rule" type: "ReLU" include { phase: TRAIN } include { stage: "deploy" } }
    layer { name: "missing_stage" type: "ReLU" include { stage: "other" } }
    layer { name: "not_stage" type: "ReLU" include { not_stage: "deploy" } }
    layer { name: "level_ok" type: "ReLU" include { min_level: 1 max_level: 2 } }
    layer { name: "level_low" type: "ReLU" include { min_level: 3 } }
    layer { name: "always" type: "ReLU" }
    """
    net = parse_prototxt_text(text)
    assert [layer.name for layer in net.layers] == [
        "test_only", "not_in_train", "any_rule", "level_ok", "always"]
    assert net.layers[0].include == [{"phase": "TEST"}]
    assert net.layers[1].exclude == [{"phase": "TRAIN"}]


def test_include_and_exclude_together_is_an_error():
    with pytest.raises(FormatError, match="'both'"):
        parse_prototxt_text('layer { name: "both" type: "ReLU" include { phase: TEST } '
                            'exclude { phase: TRAIN } }')


# -- V1 vs V2, parameter forms -------------------------------------------------------------
V1_NET = """
layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv"
         convolution_param { num_output: 4 kernel_size: 3 stride: 2 group: 2 } }
layers { name: "relu" type: RELU bottom: "conv" top: "conv" relu_param { negative_slope: 0.1 } }
layers { name: "pool" type: POOLING bottom: "conv" top: "pool"
         pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layers { name: "norm" type: LRN bottom: "pool" top: "norm"
         lrn_param { local_size: 3 norm_region: WITHIN_CHANNEL } }
layers { name: "cat" type: CONCAT bottom: "norm" bottom: "pool" top: "cat"
         concat_param { concat_dim: 1 } }
layers { name: "sum" type: ELTWISE bottom: "cat" bottom: "cat" top: "sum"
         eltwise_param { operation: PROD } }
layers { name: "ip" type: INNER_PRODUCT bottom: "sum" top: "ip"
         inner_product_param { num_output: 10 } }
layers { name: "drop" type: DROPOUT bottom: "ip" top: "ip" }
layers { name: "prob" type: SOFTMAX bottom: "ip" top: "prob" }
"""
V2_NET = """
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 stride: 2 group: 2 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" relu_param { negative_slope: 0.1 } }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"
        pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "norm" type: "LRN" bottom: "pool" top: "norm"
        lrn_param { local_size: 3 norm_region: WITHIN_CHANNEL } }
layer { name: "cat" type: "Concat" bottom: "norm" bottom: "pool" top: "cat"
        concat_param { axis: 1 } }
layer { name: "sum" type: "Eltwise" bottom: "cat" bottom: "cat" top: "sum"
        eltwise_param { operation: PROD } }
layer { name: "ip" type: "InnerProduct" bottom: "sum" top: "ip"
        inner_product_param { num_output: 10 } }
layer { name: "drop" type: "Dropout" bottom: "ip" top: "ip" }
layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }
"""


def test_v1_and_v2_give_the_same_net():
    v1, v2 = parse_prototxt_text(V1_NET), parse_prototxt_text(V2_NET)
    assert summary(v1) == summary(v2)
    assert by_name(v1)["relu"].params == {"relu_param": {"negative_slope": float(F32(0.1))}}
    assert by_name(v1)["sum"].param("eltwise_param") == {"operation": "PROD"}
    assert by_name(v1)["cat"].param("concat_param") == {"axis": 1}   # legacy concat_dim


def test_layer_and_layers_together_is_an_error():
    with pytest.raises(FormatError, match="both 'layer'"):
        parse_prototxt_text(V1_NET + V2_NET)


def test_kernel_size_forms():
    net = parse_prototxt_text("""
    layer { name: "scalar" type: "Convolution" convolution_param { kernel_size: 3 } }
    layer { name: "repeated" type: "Convolution"
            convolution_param { kernel_size: 3 kernel_size: 5 pad: 1 pad: 2 stride: [1, 2] } }
    layer { name: "hw" type: "Convolution"
            convolution_param { kernel_h: 3 kernel_w: 5 pad_h: 1 stride_w: 2 } }
    layer { name: "pool_hw" type: "Pooling" pooling_param { kernel_h: 2 kernel_w: 4 } }
    """)
    layers = by_name(net)
    assert layers["scalar"].param("convolution_param") == {"kernel_size": [3]}
    assert layers["repeated"].param("convolution_param") == {
        "kernel_size": [3, 5], "pad": [1, 2], "stride": [1, 2]}
    assert layers["hw"].param("convolution_param") == {
        "kernel_h": 3, "kernel_w": 5, "pad_h": 1, "stride_w": 2}
    assert layers["pool_hw"].param("pooling_param") == {"kernel_h": 2, "kernel_w": 4}


def test_concat_dim_and_axis_together_is_an_error():
    with pytest.raises(FormatError, match="concat_dim and axis"):
        parse_prototxt_text('layer { name: "c" type: "Concat" '
                            'concat_param { concat_dim: 1 axis: 1 } }')


def test_v0_layers_and_padding_fold():
    net = parse_prototxt_text("""
    layers { layer { name: "pad1" type: "padding" pad: 2 } bottom: "data" top: "pad1" }
    layers { layer { name: "conv1" type: "conv" num_output: 8 kernelsize: 5 stride: 2
                     group: 2 biasterm: false } bottom: "pad1" top: "conv1" }
    layers { layer { name: "pool1" type: "pool" pool: AVE kernelsize: 3 stride: 2 }
             bottom: "conv1" top: "pool1" }
    layers { layer { name: "norm1" type: "lrn" local_size: 3 alpha: 0.5 }
             bottom: "pool1" top: "norm1" }
    layers { layer { name: "cat" type: "concat" concat_dim: 1 } bottom: "norm1" top: "cat" }
    """)
    layers = by_name(net)
    assert list(layers) == ["conv1", "pool1", "norm1", "cat"]
    assert layers["conv1"].type == "Convolution" and layers["conv1"].bottoms == ["data"]
    assert layers["conv1"].param("convolution_param") == {
        "num_output": 8, "kernel_size": [5], "stride": [2], "group": 2, "bias_term": False,
        "pad": [2]}
    assert layers["pool1"].param("pooling_param") == {"pool": "AVE", "kernel_size": 3,
                                                      "stride": 2}
    assert layers["norm1"].param("lrn_param") == {"local_size": 3, "alpha": 0.5}
    assert layers["cat"].param("concat_param") == {"axis": 1}


def test_opaque_params_of_train_nets_are_skipped():
    net = parse_prototxt_text("""
    layer { name: "data" type: "Data" top: "data" include { phase: TEST }
            transform_param { mirror: false crop_size: 227 mean_value: [104, 117, 123] }
            data_param { source: "x_lmdb" batch_size: 50 backend: LMDB
                         nested { a: 1 b: [1, 2] c { } } } }
    layer { name: "loss" type: "SoftmaxWithLoss" bottom: "data" top: "loss"
            loss_param { ignore_label: -1 normalization: VALID } }
    """)
    data = by_name(net)["data"]
    assert data.params == {"transform_param": {"mirror": False, "crop_size": 227,
                                               "mean_value": [104.0, 117.0, 123.0]}}
    assert by_name(net)["loss"].params == {"loss_param": {"ignore_label": -1,
                                                          "normalization": "VALID"}}


# -- text syntax ---------------------------------------------------------------------------
def test_text_syntax_variants():
    net = parse_prototxt_text(r"""
    # a comment
    name: 'it''s' "\x41\102\u00e9\n"   # adjacent strings join; escapes
    force_backward: t
    layer: {   # the colon before a block is allowed
      name: "a\"b" type: 'Power'
      power_param < power: 1e-4 scale: -inf shift: nan >;
    }
    layer { name: "e" type: "Eltwise" eltwise_param { operation: 2, coeff: [1.5, -2] } }
    layer { name: "r" type: "Reshape" reshape_param { shape { dim: 0 dim: -1 } axis: 0x1 } }
    layer { name: "lrn" type: "LRN" lrn_param { deconv_ignore: True k: 2 } }
    """)
    assert net.name == "its" + "AB\u00e9\n"
    assert net.force_backward is True
    power = net.layers[0]
    assert power.name == 'a"b'
    p = power.param("power_param")
    assert p["power"] == float(F32(1e-4)) and p["scale"] == -math.inf and math.isnan(p["shift"])
    assert net.layers[1].param("eltwise_param") == {"operation": "MAX", "coeff": [1.5, -2.0]}
    assert net.layers[2].param("reshape_param") == {"shape": {"dim": [0, -1]}, "axis": 1}
    assert net.layers[3].param("lrn_param") == {"deconv_ignore": True, "k": 2.0}


@pytest.mark.parametrize("text, line, col, message", [
    ('name: "x"\nlayer {\n  name: "a"\n  nmae: "b"\n}', 4, 3, "no field 'nmae'"),
    ('layer {\n  name: "a"\n', 3, 1, "end of file"),
    ('layer { name: "a" name: "b" }', 1, 19, "more than once"),
    ('layer {\n name: "a" type: "Pooling"\n pooling_param { pool: MEDIAN } }', 3, 24,
     "MAX, AVE, STOCHASTIC"),
    ('input_dim: 1.5', 1, 12, "integer"),
    ('force_backward: maybe', 1, 17, "true or false"),
    ('name "x"', 1, 6, "expected ':'"),
    ('name: "unterminated', 1, 7, "unexpected character"),
    ('layer { name: "a" } }', 1, 21, "field name"),
    ('name: "a" @', 1, 11, "unexpected character '@'"),
    ('input_dim: 8layer {}', 1, 12, "malformed number"),
])
def test_syntax_errors_name_file_line_and_column(text, line, col, message):
    with pytest.raises(FormatError) as info:
        parse_prototxt_text(text, "net.prototxt")
    assert f"net.prototxt:{line}:{col}:" in str(info.value)
    assert message in str(info.value)


def test_prototxt_file_errors(tmp_path):
    with pytest.raises(FormatError, match="missing.prototxt"):
        read_prototxt(tmp_path / "missing.prototxt")
    empty = tmp_path / "empty.prototxt"
    empty.write_text("# nothing\n")
    with pytest.raises(FormatError, match="empty.prototxt.*no layers"):
        read_prototxt(empty)
    binary = tmp_path / "model.caffemodel"
    cw.write_caffemodel(binary, [("ip", "InnerProduct", [np.full((2, 2), -1.5)])])
    with pytest.raises(FormatError, match="model.caffemodel"):
        read_prototxt(binary)


# -- binary caffemodels --------------------------------------------------------------------
def caffenet_like(rng):
    return [
        ("data", "Data", []),
        ("conv1", "Convolution", [rng.standard_normal((6, 3, 3, 3)), rng.standard_normal(6)]),
        ("relu1", "ReLU", []),
        ("pool1", "Pooling", []),
        ("norm1", "LRN", []),
        ("fc6", "InnerProduct", [rng.standard_normal((5, 24)), rng.standard_normal(5)]),
        ("drop6", "Dropout", []),
        ("prob", "Softmax", []),
    ]


def legacy_shape(shape):
    return (1,) * (4 - len(shape)) + tuple(shape)


@pytest.mark.parametrize("fmt, legacy", [("v2", False), ("v2", True), ("v1", False),
                                         ("v1", True), ("v0", True)])
def test_caffemodel_round_trip(tmp_path, fmt, legacy):
    layers = caffenet_like(np.random.default_rng(1))
    path = tmp_path / f"{fmt}.caffemodel"
    cw.write_caffemodel(path, layers, fmt=fmt, legacy_dims=legacy)
    net = read_caffemodel(path)
    assert net.name == "synthetic" and net.source == str(path)
    assert [(l.name, l.type) for l in net.layers] == [(n, t) for n, t, _ in layers]
    for layer, (_, _, arrays) in zip(net.layers, layers):
        assert len(layer.blobs) == len(arrays)
        for blob, array in zip(layer.blobs, arrays):
            expected = array.astype(F32)
            assert blob.dtype == F32
            assert blob.shape == (legacy_shape(array.shape) if legacy else array.shape)
            assert blob.tobytes() == expected.tobytes()      # bitwise equal


def test_packed_and_unpacked_floats_read_the_same(tmp_path):
    rng = np.random.default_rng(2)
    layers = [("fc", "InnerProduct", [rng.standard_normal((7, 300)), rng.standard_normal(7)])]
    packed, unpacked = tmp_path / "packed.caffemodel", tmp_path / "unpacked.caffemodel"
    cw.write_caffemodel(packed, layers, packed=True)
    cw.write_caffemodel(unpacked, layers, packed=False)
    assert unpacked.stat().st_size > packed.stat().st_size    # really written differently
    for a, b in zip(read_caffemodel(packed).layers[0].blobs,
                    read_caffemodel(unpacked).layers[0].blobs):
        assert a.tobytes() == b.tobytes()


def test_unpacked_ints_and_mixed_float_runs(tmp_path):
    shape = cw.int_field(1, 2) + cw.int_field(1, 3)                     # unpacked dims
    data = (cw.unpacked_floats(5, [1, 2]) + cw.packed_floats(5, [3, 4])
            + cw.float_field(5, 5) + cw.unpacked_floats(5, [6]))
    blob = cw.bytes_field(7, shape) + data
    conv = cw.bytes_field(106, cw.int_field(4, 3) + cw.packed_ints(4, [5]))  # kernel_size
    layer = cw.string_field(1, "c") + cw.string_field(2, "Convolution") + conv \
        + cw.bytes_field(7, blob)
    path = tmp_path / "mixed.caffemodel"
    cw.write_bytes(path, cw.bytes_field(100, layer))
    net = read_caffemodel(path)
    assert net.layers[0].param("convolution_param") == {"kernel_size": [3, 5]}
    np.testing.assert_array_equal(net.layers[0].blobs[0], [[1, 2, 3], [4, 5, 6]])


def test_unknown_fields_are_skipped_and_last_scalar_wins(tmp_path):
    unknown = (cw.int_field(999, 7) + cw.bytes_field(998, b"\x00\xff junk")
               + cw.float_field(997, 1.0) + cw.double_field(996, 2.0))
    blob = cw.blob_proto(np.arange(4.0)) + cw.int_field(20, 1)
    lrn = cw.int_field(1, 3) + cw.int_field(7, 1) + cw.int_field(50, 9)   # 7: deconv_ignore
    flatten = cw.int_field(2, -1)                                          # 10-byte varint
    layer = (cw.string_field(1, "first") + cw.string_field(1, "norm") + unknown
             + cw.string_field(2, "LRN") + cw.bytes_field(118, lrn)
             + cw.bytes_field(135, flatten) + cw.bytes_field(7, blob)
             + cw.bytes_field(118, cw.float_field(3, 0.5)))    # merged into lrn_param
    path = tmp_path / "unknown.caffemodel"
    cw.write_bytes(path, unknown + cw.bytes_field(100, layer) + cw.int_field(5, 1)
                   + cw.bytes_field(101, b"future"))
    net = read_caffemodel(path)
    assert net.force_backward is True
    (layer,) = net.layers
    assert layer.name == "norm"
    assert layer.params == {"lrn_param": {"local_size": 3, "deconv_ignore": True, "beta": 0.5},
                            "flatten_param": {"end_axis": -1}}
    np.testing.assert_array_equal(layer.blobs[0], np.arange(4.0))


def test_wire_type_mismatch_is_an_error(tmp_path):
    path = tmp_path / "mismatch.caffemodel"
    cw.write_bytes(path, cw.int_field(1, 5))             # name must be length-delimited
    with pytest.raises(FormatError, match="mismatch.caffemodel.*NetParameter.name"):
        read_caffemodel(path)


def test_truncated_caffemodel_names_file_and_offset(tmp_path):
    data = cw.net_message([("fc", "InnerProduct", [np.ones((4, 50))])], name="t")
    for cut in (1, 2, 5, 9, 40, len(data) // 2, len(data) - 3, len(data) - 1):
        path = tmp_path / f"cut{cut}.caffemodel"
        cw.write_bytes(path, data[:cut])
        with pytest.raises(FormatError, match=rf"cut{cut}\.caffemodel.*byte offset \d+"):
            read_caffemodel(path)


def test_non_caffe_files_are_rejected(tmp_path, original_models):
    garbage = tmp_path / "garbage.caffemodel"
    cw.write_bytes(garbage, b"\x89PNG\r\n\x1a\n" + np.random.default_rng(3).bytes(4000))
    with pytest.raises(FormatError, match="garbage.caffemodel"):
        read_caffemodel(garbage)
    prototxt = original_models / "caffenet-yos-deploy.prototxt"
    with pytest.raises(FormatError, match="caffenet-yos-deploy.prototxt"):
        read_caffemodel(prototxt)
    with pytest.raises(FormatError, match="missing.caffemodel"):
        read_caffemodel(tmp_path / "missing.caffemodel")
    empty = tmp_path / "empty.caffemodel"
    cw.write_bytes(empty, b"")
    with pytest.raises(FormatError, match="empty.caffemodel.*empty"):
        read_caffemodel(empty)
    with pytest.raises(FormatError, match="blob shape"):
        bad = tmp_path / "count.caffemodel"
        blob = cw.bytes_field(7, cw.packed_ints(1, [3])) + cw.packed_floats(5, [1, 2])
        layer = cw.string_field(1, "x") + cw.bytes_field(7, blob)
        cw.write_bytes(bad, cw.bytes_field(100, layer))
        read_caffemodel(bad)


def test_big_blob_is_a_view_of_the_mapped_file(tmp_path):
    values = np.arange(8 << 20, dtype=F32) * F32(0.5)
    path = tmp_path / "big.caffemodel"
    cw.write_caffemodel(path, [("fc", "InnerProduct", [values.reshape(2048, 4096)])])
    blob = read_caffemodel(path).layers[0].blobs[0]
    assert blob.shape == (2048, 4096)
    assert np.array_equal(blob.ravel(), values)
    base = blob
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap)
    assert not blob.flags.writeable


def test_big_unpacked_blob(tmp_path):
    values = np.random.default_rng(4).standard_normal(300_000).astype(F32)
    path = tmp_path / "unpacked.caffemodel"
    cw.write_caffemodel(path, [("ip", "InnerProduct", [values])], packed=False)
    assert read_caffemodel(path).layers[0].blobs[0].tobytes() == values.tobytes()


# -- binaryproto ---------------------------------------------------------------------------
def test_binaryproto_mean_round_trip(tmp_path):
    mean = np.random.default_rng(5).uniform(0, 255, (3, 16, 12)).astype(F32)
    legacy, shaped = tmp_path / "legacy.binaryproto", tmp_path / "shaped.binaryproto"
    cw.write_binaryproto(legacy, mean)
    cw.write_binaryproto(shaped, mean, legacy_dims=False)
    out = read_binaryproto(legacy)
    assert out.shape == (1, 3, 16, 12) and out.dtype == F32
    assert out.tobytes() == mean.tobytes()
    assert read_binaryproto(shaped).shape == (3, 16, 12)


def test_binaryproto_prefers_double_data(tmp_path):
    path = tmp_path / "both.binaryproto"
    doubles = np.array([[0.1, 1e-3], [7.0, -2.5]])
    cw.write_bytes(path, cw.blob_proto(doubles, double=True) + cw.packed_floats(5, [9] * 4))
    np.testing.assert_array_equal(read_binaryproto(path), doubles.astype(F32))


def test_binaryproto_errors(tmp_path):
    net = tmp_path / "net.binaryproto"
    cw.write_caffemodel(net, [("ip", "InnerProduct", [np.ones(3)])])
    with pytest.raises(FormatError, match="net.binaryproto"):
        read_binaryproto(net)
    cut = tmp_path / "cut.binaryproto"
    cw.write_bytes(cut, cw.blob_proto(np.ones((3, 4, 4)), legacy_dims=True)[:-7])
    with pytest.raises(FormatError, match="cut.binaryproto.*truncated"):
        read_binaryproto(cut)


# -- schema defaults -----------------------------------------------------------------------
@pytest.mark.parametrize("message, field, value", [
    ("PoolingParameter", "pool", "MAX"), ("PoolingParameter", "stride", 1),
    ("PoolingParameter", "pad", 0), ("PoolingParameter", "round_mode", "CEIL"),
    ("ConvolutionParameter", "pad", []), ("ConvolutionParameter", "group", 1),
    ("ConvolutionParameter", "bias_term", True), ("LRNParameter", "alpha", 1.0),
    ("LRNParameter", "k", 1.0), ("LRNParameter", "norm_region", "ACROSS_CHANNELS"),
    ("LRNParameter", "deconv_ignore", False), ("EltwiseParameter", "operation", "SUM"),
    ("BatchNormParameter", "eps", float(F32(1e-5))), ("ScaleParameter", "bias_term", False),
    ("FlattenParameter", "end_axis", -1), ("ReshapeParameter", "num_axes", -1),
    ("DropoutParameter", "dropout_ratio", 0.5), ("SoftmaxParameter", "axis", 1),
    ("NetState", "phase", "TEST"), ("ReshapeParameter", "shape", {}),
])
def test_schema_defaults(message, field, value):
    assert schema.default(message, field) == value
