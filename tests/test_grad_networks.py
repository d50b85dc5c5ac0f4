"""End to end on small networks built here: a GoogLeNet-style graph (in-place ReLUs, ceil-style
pooling pads, LRN, an inception block with Concat, average pooling, fc, softmax) and a
ResNet-style graph (BatchNormalization, residual Add). Unit gradients are checked against
finite differences at sampled input coordinates, and the runtimes against each other.
Then the full-size CaffeNet with synthetic weights, through GradCache, against float64
directional derivatives."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from deepvis.exec import make_executor
from deepvis.graph import meta
from deepvis.grad import MODES, GradCache, build_grad_graph, seed_tensor_for

from .grad_helpers import (Net, assert_close, directional_derivative, finite_difference,
                           numpy_executor_available, numpy_run, ort_run, reference_run)


def _conv_relu(net, x, name, c_in, c_out, k=1, seeds=None, **attrs):
    """Conv + in-place ReLU: visible blob `name` is post-ReLU, the seed enters at name/pre."""
    weight = net.w(c_out, c_in, k, k, scale=(1.0 / (c_in * k * k)) ** 0.5, name=f"{name}/w")
    net.op("Conv", [x, weight, net.w(c_out, scale=0.1, name=f"{name}/b")], [f"{name}/pre"],
           pads=[k // 2] * 4, **attrs)
    seeds[name] = f"{name}/pre"
    return net.op("Relu", [f"{name}/pre"], [name])


def googlenet_like(dtype):
    net, seeds = Net((3, 15, 15), dtype, seed=1, name="tiny_googlenet"), {}
    _conv_relu(net, net.x, "conv1", 3, 4, k=3, seeds=seeds, strides=[2, 2])          # 8x8
    net.op("MaxPool", ["conv1"], ["pool1"], kernel_shape=[3, 3], strides=[2, 2],
           pads=[0, 0, 1, 1])                                                        # 4x4
    net.op("LRN", ["pool1"], ["norm1"], size=5, alpha=0.5, beta=0.75, bias=1.0)
    b1 = _conv_relu(net, "norm1", "inc/1x1", 4, 2, seeds=seeds)
    _conv_relu(net, "norm1", "inc/3x3_reduce", 4, 3, seeds=seeds)
    b2 = _conv_relu(net, "inc/3x3_reduce", "inc/3x3", 3, 2, k=3, seeds=seeds)
    net.op("MaxPool", ["norm1"], ["inc/pool"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    b3 = _conv_relu(net, "inc/pool", "inc/pool_proj", 4, 2, seeds=seeds)
    net.op("Concat", [b1, b2, b3], ["inc/output"], axis=1)
    net.op("AveragePool", ["inc/output"], ["pool5"], kernel_shape=[4, 4])
    flat = net.op("Flatten", ["pool5"])
    net.op("Gemm", [flat, net.w(5, 6, name="fc/w"), net.w(5, name="fc/b")], ["fc"], transB=1)
    net.op("Softmax", ["fc"], ["prob"], axis=1)
    blobs = ["data", "conv1", "pool1", "norm1", "inc/output", "pool5", "fc", "prob"]
    return net.build(blobs[1:], meta.encode(blobs=blobs, seeds=seeds))


def resnet_like(dtype):
    net, seeds = Net((3, 8, 8), dtype, seed=2, name="tiny_resnet"), {}

    def conv_bn(x, name, c_in, c_out):
        weight = net.w(c_out, c_in, 3, 3, scale=(1.0 / (9 * c_in)) ** 0.5, name=f"{name}/w")
        conv = net.op("Conv", [x, weight], [f"{name}/conv"], pads=[1, 1, 1, 1])
        stats = [net.w(c_out, name=f"{name}/gamma"), net.w(c_out, scale=0.1, name=f"{name}/beta"),
                 net.w(c_out, scale=0.1, name=f"{name}/mean"),
                 net.w(c_out, scale=0.1, offset=1.0, name=f"{name}/var")]
        return net.op("BatchNormalization", [conv, *stats], [f"{name}/bn"])

    seeds["conv1"] = conv_bn(net.x, "conv1", 3, 4)
    net.op("Relu", ["conv1/bn"], ["conv1"])
    net.op("Relu", [conv_bn("conv1", "res2a_branch2a", 4, 4)], ["res2a_branch2a"])
    branch = conv_bn("res2a_branch2a", "res2a_branch2b", 4, 4)
    seeds["res2a"] = net.op("Add", ["conv1", branch], ["res2a/sum"])
    net.op("Relu", ["res2a/sum"], ["res2a"])
    net.op("MaxPool", ["res2a"], ["pool"], kernel_shape=[2, 2], strides=[2, 2])
    net.op("GlobalAveragePool", ["pool"], ["gap"])
    flat = net.op("Flatten", ["gap"])
    net.op("Gemm", [flat, net.w(3, 4, name="fc/w"), net.w(3, name="fc/b")], ["fc"], transB=1)
    net.op("Softmax", ["fc"], ["prob"], axis=1)
    blobs = ["data", "conv1", "res2a", "pool", "gap", "fc", "prob"]
    return net.build(blobs[1:], meta.encode(blobs=blobs, seeds=seeds))


NETWORKS = {"googlenet": googlenet_like, "resnet": resnet_like}
UNITS = {  # (net, blob, channel, spatial position or None)
    "googlenet": [("conv1", 2, (3, 4)), ("pool1", 1, (1, 2)), ("norm1", 0, (2, 2)),
                  ("inc/output", 3, (1, 1)), ("inc/output", 5, (2, 0)), ("pool5", 2, None),
                  ("fc", 3, None), ("prob", 1, None)],
    "resnet": [("conv1", 1, (4, 4)), ("res2a", 2, (3, 5)), ("pool", 0, (1, 2)), ("gap", 3, None),
               ("fc", 2, None), ("prob", 0, None)],
}
CASES = [(net, *unit) for net, units in UNITS.items() for unit in units]


def _input_shape(forward):
    dims = forward.graph.input[0].type.tensor_type.shape.dim
    return tuple(d.dim_value for d in dims[1:])


def _one_hot(shape, channel, position):
    seed = np.zeros((1, *shape[1:]))
    index = (0, channel) + ((tuple(position) if position else (0,) * (len(shape) - 2)))
    seed[index] = 1.0
    return seed


@pytest.mark.parametrize("net, blob, channel, position", CASES)
def test_unit_gradient_matches_finite_differences(net, blob, channel, position):
    forward = NETWORKS[net](np.float64)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, *_input_shape(forward)))
    at = seed_tensor_for(forward, blob)
    seed = _one_hot(reference_run(forward, {"data": x}, [at])[at].shape, channel, position)
    grad = reference_run(build_grad_graph(forward, blob), {"data": x, "seed": seed})["grad"]
    assert np.abs(grad).max() > 1e-6
    flat = np.abs(grad).ravel()
    probes = np.concatenate([np.argsort(flat)[-4:], rng.choice(flat.size, 4, replace=False)])
    expected = finite_difference(forward, at, x, seed, probes)
    assert_close(grad.ravel()[probes], expected, rtol=1e-5)
    direction = rng.standard_normal(x.shape)
    slope = directional_derivative(forward, at, x, seed, direction)
    assert abs(float((grad * direction).sum()) - slope) <= 1e-6 * max(1.0, abs(slope))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("net", sorted(NETWORKS))
def test_runtimes_agree_on_networks(net, mode):
    forward32, forward64 = NETWORKS[net](np.float32), NETWORKS[net](np.float64)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, *_input_shape(forward64)))
    for blob, _, _ in UNITS[net]:
        at = seed_tensor_for(forward64, blob)
        seed = rng.standard_normal(reference_run(forward64, {"data": x}, [at])[at].shape)
        expected = reference_run(build_grad_graph(forward64, blob, mode),
                                 {"data": x, "seed": seed})["grad"]
        graph32 = build_grad_graph(forward32, blob, mode, extra_outputs=[blob])
        feeds = {"data": x.astype(np.float32), "seed": seed.astype(np.float32)}
        on_ort = ort_run(graph32, feeds)
        assert_close(on_ort["grad"], expected)
        assert_close(on_ort[blob], ort_run(forward32, {"data": feeds["data"]})[blob], rtol=1e-6)
        if numpy_executor_available():
            assert_close(numpy_run(graph32, feeds)["grad"], on_ort["grad"])


def test_modes_differ_on_a_network_with_relus():
    forward = NETWORKS["googlenet"](np.float64)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, *_input_shape(forward)))
    seed = rng.standard_normal(reference_run(forward, {"data": x})["fc"].shape)
    grads = {mode: reference_run(build_grad_graph(forward, "fc", mode),
                                 {"data": x, "seed": seed})["grad"] for mode in MODES}
    assert not np.allclose(grads["grad"], grads["deconv"])
    assert not np.allclose(grads["grad"], grads["guided"])
    assert not np.allclose(grads["deconv"], grads["guided"])


@pytest.fixture(scope="module")
def caffenet(tmp_path_factory):
    """The synthetic CaffeNet and one GradCache over it, shared by the tests below."""
    fixtures = pytest.importorskip("tests.fixtures_caffenet")
    folder = tmp_path_factory.mktemp("caffenet")
    model = onnx.load(str(fixtures.synthetic_caffenet_onnx(folder)))
    return model, GradCache(model, folder / "grad-cache")


def _as_float64(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for tensor in out.graph.initializer:
        if tensor.data_type == TensorProto.FLOAT:
            values = numpy_helper.to_array(tensor).astype(np.float64)
            tensor.ClearField("float_data")
            tensor.data_type = TensorProto.DOUBLE
            tensor.raw_data = values.tobytes()
    for value in list(out.graph.input) + list(out.graph.output) + list(out.graph.value_info):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.DOUBLE
    return out


CAFFENET_UNITS = [("conv1", 5), ("pool1", 7), ("norm1", 40), ("conv2", 100), ("pool2", 3),
                  ("norm2", 200), ("conv3", 17), ("conv4", 300), ("conv5", 99), ("pool5", 12),
                  ("fc6", 2000), ("fc7", 7), ("fc8", 281), ("prob", 281)]


def test_caffenet_unit_gradients(caffenet):
    caffenet, cache = caffenet
    x = np.random.default_rng(0).uniform(-100, 100, (1, 3, 227, 227))
    _check_units_along_a_direction(caffenet, CAFFENET_UNITS, cache.executor, x)


def _check_units_along_a_direction(forward, units, grad_executor, x, eps=1e-7):
    """<grad, v> of one unit per layer against (f(x + eps v) - f(x - eps v)) / 2 eps, the
    forward evaluated in float64 by the NumPy executor (independent of onnxruntime). A tiny
    eps keeps the probe off the ReLU/ReLU6 kinks of deep nets, which a step of 1e-4 crosses."""
    if not numpy_executor_available():
        pytest.skip("the float64 forward needs the NumPy executor")
    direction = np.random.default_rng(1).standard_normal(x.shape)
    tensors = [seed_tensor_for(forward, blob) for blob, _ in units]
    forward64 = make_executor(_as_float64(forward), "numpy")
    moved = forward64.run({"data": np.concatenate([x + eps * direction, x - eps * direction])},
                          tensors)
    for (blob, channel), tensor in zip(units, tensors):
        plane = np.abs(moved[tensor][0, channel])  # the channel's strongest unit: never dead
        position = np.unravel_index(plane.argmax(), plane.shape) if plane.ndim else None
        seed = _one_hot(moved[tensor].shape, channel, position)
        grad = grad_executor(blob).run({"data": x.astype(np.float32),
                                        "seed": seed.astype(np.float32)})["grad"]
        terms = grad * direction
        assert np.abs(terms).sum() > 0, blob
        slope = float(((moved[tensor][0] - moved[tensor][1]) * seed[0]).sum() / (2 * eps))
        assert abs(terms.sum() - slope) <= 1e-4 * np.abs(terms).sum(), blob


@pytest.mark.parametrize("blob, mode", [("conv5", "deconv"), ("norm2", "guided")])
def test_caffenet_runtimes_agree(caffenet, blob, mode):
    if not numpy_executor_available():
        pytest.skip("the NumPy executor is not there yet")
    cache = caffenet[1]
    rng = np.random.default_rng(1)
    x = rng.uniform(-100, 100, (2, 3, 227, 227)).astype(np.float32)
    on_ort = cache.executor(blob, mode)
    seed_shape = [2] + on_ort.session.get_inputs()[1].shape[1:]
    feeds = {"data": x, "seed": rng.standard_normal(seed_shape).astype(np.float32)}
    expected = on_ort.run(feeds)["grad"]
    assert np.abs(expected).max() > 0
    assert_close(cache.executor(blob, mode, backend="numpy").run(feeds)["grad"], expected)


@pytest.fixture(scope="module")
def lite0():
    from deepvis.errors import DeepvisError
    from deepvis.zoo import efficientnet_lite
    try:
        return efficientnet_lite.build(0)
    except DeepvisError as exc:
        pytest.skip(str(exc))


def test_efficientnet_lite_unit_gradients(lite0):
    """Depthwise convs with asymmetric SAME pads, Clip (ReLU6), residual Adds, global pooling."""
    units = [("stem", 3), ("block07", 30), ("head", 500), ("fc", 281), ("prob", 281)]
    x = np.random.default_rng(2).standard_normal((1, 3, 224, 224))
    _check_units_along_a_direction(lite0, units, lambda blob: make_executor(
        build_grad_graph(lite0, blob), "ort"), x)


@pytest.mark.parametrize("mode", ["deconv", "guided"])
def test_efficientnet_lite_runtimes_agree(lite0, mode):
    if not numpy_executor_available():
        pytest.skip("the NumPy executor is not there yet")
    graph = build_grad_graph(lite0, "block10", mode)
    rng = np.random.default_rng(3)
    feeds = {"data": rng.standard_normal((1, 3, 224, 224)).astype(np.float32),
             "seed": rng.standard_normal((1, 112, 14, 14)).astype(np.float32)}
    expected = ort_run(graph, feeds)["grad"]
    assert np.abs(expected).max() > 0
    assert_close(numpy_run(graph, feeds)["grad"], expected)
