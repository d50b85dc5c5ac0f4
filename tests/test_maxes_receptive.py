"""Receptive fields from the graph: CaffeNet's known values, and exact regions against
brute-force dependence on a small graph with padding, dilation, ceil pooling and a
residual branch."""
from __future__ import annotations

import re

import numpy as np
import onnxruntime as ort
import pytest

from deepvis.graph.builder import GraphBuilder
from deepvis.maxes.receptive import RegionComputer

# original-toolbox §8: receptive field and effective stride of CaffeNet's layers
CAFFENET = {"conv1": (11, 4), "pool1": (19, 8), "norm1": (19, 8), "conv2": (51, 8),
            "pool2": (67, 16), "norm2": (67, 16), "conv3": (99, 16), "conv4": (131, 16),
            "conv5": (163, 16), "pool5": (195, 32)}


def slim_caffenet():
    """CaffeNet's deploy file with every num_output divided by 16: the same layers, kernels,
    strides, pads and groups (so the same receptive fields), converted by deepvis with
    seeded random weights, small enough to run fast."""
    from deepvis.caffe.convert import net_to_onnx
    from deepvis.caffe.parse import parse_prototxt_text
    from deepvis.resources import models_dir

    text = (models_dir() / "caffenet-yos" / "deploy.prototxt").read_text()
    text = re.sub(r"num_output: (\d+)", lambda m: f"num_output: {int(m[1]) // 16}", text)
    return net_to_onnx(parse_prototxt_text(text), None, random_weights_seed=0)


@pytest.fixture(scope="module")
def caffenet_graph():
    return slim_caffenet()


def test_caffenet_fields_and_strides_are_the_known_values(caffenet_graph):
    rc = RegionComputer(caffenet_graph)
    for layer, (size, stride) in CAFFENET.items():
        field = rc.field(layer)
        assert field.size == (size, size), layer
        assert field.stride == (stride, stride), layer
    assert rc.field("fc6") is None and rc.canvas("fc6") == (227, 227)
    assert rc.canvas("conv5") == (163, 163)


def test_caffenet_regions_follow_the_original_region_computer(caffenet_graph):
    """Hand-run of the original's slice mapping (clip, then start = a*s - p,
    end = (b-1)*s + k - p) for conv5 units at the corner and in the middle."""
    rc = RegionComputer(caffenet_graph)
    assert rc.region("conv5", 0, 0) == ((0, 99), (0, 99))
    assert rc.region("conv5", 6, 6) == ((32, 195), (32, 195))
    assert rc.region("conv5", 12, 3) == ((128, 227), (0, 147))
    assert rc.region("conv1", 54, 54) == ((216, 227), (216, 227))


def small_graph():
    """Positive weights, zero biases: a unit is > 0 exactly when a pixel it depends on is lit."""
    rng = np.random.default_rng(0)
    g = GraphBuilder("receptive-test")
    x = g.input("data", ["N", 2, 23, 21])

    def conv(inp, k, name, **attrs):
        w = g.initializer(rng.uniform(0.1, 1.0, (2, 2, k, k)).astype(np.float32), f"{name}.w")
        return g.node("Conv", [inp, w], name=name, kernel_shape=[k, k], **attrs)

    a = g.node("Relu", [conv(x, 3, "a", strides=[2, 2], pads=[0, 0, 1, 1])], name="a_relu")
    b = g.node("MaxPool", [a], name="b", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
               ceil_mode=1)
    c = conv(b, 3, "c", dilations=[2, 2], pads=[2, 2, 2, 2])
    skip = conv(b, 1, "skip")
    d = g.node("Add", [c, skip], name="d")
    e = g.node("LRN", [g.node("AveragePool", [d], name="pool", kernel_shape=[2, 2],
                              strides=[1, 1])], name="e", size=3)
    f = g.node("Gemm", [g.node("Flatten", [e], name="flat"),
                        g.initializer(rng.uniform(0.1, 1, (3, 2 * 5 * 5)).astype(np.float32),
                                      "fc.w")], name="f", transB=1)
    blobs = {"a": a, "b": b, "d": d, "e": e, "f": f}
    for name in blobs.values():
        g.output(name)
    return g.build(), blobs


def dependence(model, blob, h, w):
    """For every input pixel lit alone (all channels 1), the blob's channel-0 response."""
    session = ort.InferenceSession(model.SerializeToString())
    x = np.zeros((h * w, 2, h, w), np.float32)
    x[np.arange(h * w), :, np.arange(h * w) // w, np.arange(h * w) % w] = 1
    return session.run([blob], {"data": x})[0][:, 0].reshape(h, w, *session.run(
        [blob], {"data": x[:1]})[0].shape[2:])


@pytest.mark.parametrize("blob", ["a", "b", "d", "e"])
def test_regions_are_the_bounding_boxes_of_true_dependence(blob):
    model, names = small_graph()
    rc = RegionComputer(model)
    response = dependence(model, names[blob], 23, 21)
    assert rc.spatial_size(names[blob]) == response.shape[2:]
    for y in range(response.shape[2]):
        for x in range(response.shape[3]):
            rows, cols = np.nonzero(response[:, :, y, x] > 0)
            expected = ((rows.min(), rows.max() + 1), (cols.min(), cols.max() + 1))
            assert rc.region(names[blob], y, x) == expected, (blob, y, x)


def test_unclipped_fields_of_the_small_graph_are_hand_derived():
    model, names = small_graph()
    rc = RegionComputer(model)
    # a: k3 s2 -> 3, stride 2. b: (3-1)*2 + 3 = 7, stride 4, start -1*2 = -2.
    # c (dilation 2, k3): (5-1)*4 + 7 = 23, start -2 - 2*4 = -10; the 1x1 skip is inside it.
    # e: AveragePool k2 s1 adds 4 -> 27.
    assert (rc.field(names["a"]).size, rc.field(names["a"]).stride) == ((3, 3), (2, 2))
    assert (rc.field(names["b"]).size, rc.field(names["b"]).start) == ((7, 7), (-2, -2))
    assert (rc.field(names["d"]).size, rc.field(names["d"]).start) == ((23, 23), (-10, -10))
    assert rc.field(names["e"]).size == (27, 27)
    assert rc.field(names["f"]) is None
    assert rc.region(names["f"], 0, 0) == ((0, 23), (0, 21))
