"""Independent references for the gradient-graph tests.

onnx's ReferenceEvaluator (onnx 1.23) is the float64 reference, with two of its ops replaced by
NumPy written here: its ConvTranspose mis-slices grouped weights when a group has more than
one channel, its LRN loops over the batch instead of the channels, and its Erf rounds
through float32. Finite differences
evaluate all perturbed inputs as one batch.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

from deepvis.graph.builder import GraphBuilder, _fill_output_types


class ConvTranspose(OpRun):  # ReferenceEvaluator matches replacements by class name
    op_domain = ""

    def _run(self, x, w, bias=None, auto_pad=None, dilations=None, group=None,
             kernel_shape=None, output_padding=None, output_shape=None, pads=None, strides=None):
        assert x.ndim == 4 and output_shape is None and auto_pad in (None, "NOTSET")
        group = group or 1
        s = strides or [1, 1]
        d = dilations or [1, 1]
        op = output_padding or [0, 0]
        p = pads or [0, 0, 0, 0]
        n, c, h, wd = x.shape
        kh, kw = w.shape[2:]
        cin, cout = c // group, w.shape[1]
        full = [s[0] * (h - 1) + d[0] * (kh - 1) + 1 + op[0],
                s[1] * (wd - 1) + d[1] * (kw - 1) + 1 + op[1]]
        out = np.zeros((n, cout * group, *full), dtype=np.float64)
        for g in range(group):
            xg = x[:, g * cin:(g + 1) * cin].astype(np.float64)
            for i in range(kh):
                for j in range(kw):
                    part = np.einsum("nchw,co->nohw", xg, w[g * cin:(g + 1) * cin, :, i, j])
                    out[:, g * cout:(g + 1) * cout,
                        i * d[0]:i * d[0] + s[0] * (h - 1) + 1:s[0],
                        j * d[1]:j * d[1] + s[1] * (wd - 1) + 1:s[1]] += part
        if bias is not None:
            out += bias.reshape(1, -1, 1, 1)
        out = out[:, :, p[0]:full[0] - p[2], p[1]:full[1] - p[3]]
        return (out.astype(x.dtype),)


class LRN(OpRun):
    op_domain = ""

    def _run(self, x, alpha=None, beta=None, bias=None, size=None):
        squares = np.zeros_like(x)
        for c in range(x.shape[1]):
            lo, hi = max(0, c - (size - 1) // 2), min(x.shape[1], c + size // 2 + 1)
            squares[:, c] = (x[:, lo:hi] ** 2).sum(axis=1)
        return ((x / (bias + alpha / size * squares) ** beta).astype(x.dtype),)


class Erf(OpRun):
    """onnx's own Erf rounds through float32; finite differences need float64."""
    op_domain = ""

    def _run(self, x):
        from scipy.special import erf
        return (erf(x).astype(x.dtype),)


class MaxPool(OpRun):
    op_domain = ""

    def _run(self, x, auto_pad=None, ceil_mode=None, dilations=None, kernel_shape=None,
             pads=None, storage_order=None, strides=None):
        assert x.ndim == 4 and auto_pad in (None, "NOTSET") and not storage_order
        k, s = kernel_shape, strides or [1, 1]
        d, p = dilations or [1, 1], pads or [0, 0, 0, 0]
        n, c, h, w = x.shape
        out = [_pooled(size, (k[i] - 1) * d[i] + 1, s[i], p[i], p[i + 2], bool(ceil_mode))
               for i, size in enumerate((h, w))]
        far = [(out[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 for i in range(2)]  # padded extent
        padded = np.full((n, c, max(far[0], h + p[0]), max(far[1], w + p[1])), -np.inf)
        padded[:, :, p[0]:p[0] + h, p[1]:p[1] + w] = x
        taps, rows, cols = [], [], []
        for i in range(k[0]):
            for j in range(k[1]):
                taps.append(padded[:, :, i * d[0]:i * d[0] + s[0] * (out[0] - 1) + 1:s[0],
                                   j * d[1]:j * d[1] + s[1] * (out[1] - 1) + 1:s[1]])
                rows.append(i * d[0] - p[0])
                cols.append(j * d[1] - p[1])
        taps = np.stack(taps)
        best = taps.argmax(axis=0)  # first maximum in row-major window order, like Caffe
        y = np.take_along_axis(taps, best[None], axis=0)[0]
        row = np.asarray(rows)[best] + (np.arange(out[0]) * s[0])[:, None]
        col = np.asarray(cols)[best] + np.arange(out[1]) * s[1]
        plane = (np.arange(n)[:, None, None, None] * c + np.arange(c)[:, None, None]) * h * w
        return y.astype(x.dtype), (plane + row * w + col).astype(np.int64)


def _pooled(size, span, stride, begin, end, ceil):
    room = size + begin + end - span
    out = (-(-room // stride) if ceil else room // stride) + 1
    return out - 1 if ceil and (out - 1) * stride >= size + begin else out


def reference_run(model: onnx.ModelProto, feeds: dict, outputs=None) -> dict:
    evaluator = ReferenceEvaluator(model, new_ops=[ConvTranspose, Erf, LRN, MaxPool])
    names = list(outputs) if outputs is not None else evaluator.output_names
    return dict(zip(names, evaluator.run(names, feeds)))


def ort_run(model: onnx.ModelProto, feeds: dict, outputs=None) -> dict:
    from deepvis.exec import make_executor
    return make_executor(model, "ort").run(feeds, outputs)


def numpy_executor_available() -> bool:
    return importlib.util.find_spec("deepvis.exec.numpy_exec") is not None


def numpy_run(model: onnx.ModelProto, feeds: dict, outputs=None) -> dict:
    from deepvis.exec import make_executor
    return make_executor(model, "numpy").run(feeds, outputs)


def finite_difference(forward: onnx.ModelProto, tensor: str, x: np.ndarray, seed: np.ndarray,
                      coords=None, eps: float = 1e-6) -> np.ndarray:
    """Central differences of sum(seed * tensor) at x (batch 1) for flat input `coords`."""
    coords = np.arange(x.size) if coords is None else np.asarray(coords)
    batch = np.repeat(x.reshape(1, -1), 2 * len(coords), axis=0)
    rows = np.arange(len(coords))
    batch[2 * rows, coords] += eps
    batch[2 * rows + 1, coords] -= eps
    out = reference_run(forward, {"data": batch.reshape(-1, *x.shape[1:])}, [tensor])[tensor]
    f = (out * seed).reshape(len(batch), -1).sum(axis=1)
    return (f[0::2] - f[1::2]) / (2 * eps)


def directional_derivative(forward, tensor, x, seed, direction, eps=1e-5) -> float:
    both = np.concatenate([x + eps * direction, x - eps * direction])
    out = reference_run(forward, {"data": both}, [tensor])[tensor]
    f = (out * seed).reshape(2, -1).sum(axis=1)
    return float((f[0] - f[1]) / (2 * eps))


def assert_close(actual, expected, rtol=1e-4):
    """Agreement relative to the largest magnitude, so near-zero entries do not dominate."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape
    scale = max(np.abs(expected).max(), 1e-12)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def check_finite_differences(make_case, case: str) -> None:
    """A case's float64 gradient graph (reference evaluator) against central differences."""
    forward, shape = make_case(case, np.float64)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, *shape))
    seed = rng.standard_normal(reference_run(forward, {"data": x})["y"].shape)
    from deepvis.grad import build_grad_graph
    grad = reference_run(build_grad_graph(forward, "y", "grad"), {"data": x, "seed": seed})
    expected = finite_difference(forward, "y", x, seed).reshape(x.shape)
    assert np.abs(expected).max() > 1e-3  # the probe really moves the output
    assert_close(grad["grad"], expected, rtol=1e-6)


def check_runtimes_agree(make_case, case: str, mode: str) -> None:
    """A case's gradient graph in `mode`: onnxruntime (float32) against the reference
    evaluator (float64), and the NumPy executor against onnxruntime."""
    from deepvis.grad import build_grad_graph
    forward32, shape = make_case(case, np.float32)
    forward64, _ = make_case(case, np.float64)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, *shape))
    seed = rng.standard_normal(reference_run(forward64, {"data": x})["y"].shape)
    expected = reference_run(build_grad_graph(forward64, "y", mode),
                             {"data": x, "seed": seed})["grad"]
    graph32 = build_grad_graph(forward32, "y", mode)
    feeds32 = {"data": x.astype(np.float32), "seed": seed.astype(np.float32)}
    on_ort = ort_run(graph32, feeds32)["grad"]
    assert_close(on_ort, expected)
    if numpy_executor_available():
        assert_close(numpy_run(graph32, feeds32)["grad"], on_ort)


class Net:
    """A tiny forward graph under construction, reproducible in float32 and float64."""

    def __init__(self, input_shape, dtype=np.float32, seed=0, name="case"):
        self.b = GraphBuilder(name)
        self.dtype = np.dtype(dtype)
        self.rng = np.random.default_rng(seed)
        self.x = self.b.input("data", ["N", *input_shape], dtype)

    def w(self, *shape, scale=1.0, offset=0.0, name="w") -> str:
        values = self.rng.standard_normal(shape) * scale + offset
        return self.b.initializer(values.astype(self.dtype), name)

    def c(self, value, dtype=None) -> str:
        return self.b.const(value, dtype=dtype or self.dtype)

    def op(self, op_type, inputs, outputs=None, **attrs):
        return self.b.node(op_type, inputs, outputs, **attrs)

    def build(self, outputs, metadata=None, opset=None) -> onnx.ModelProto:
        """The model; `opset` raises the default domain's version (for opset-18 ops)."""
        for name in outputs:
            self.b.output(name, self.dtype)
        if opset is None:
            return self.b.build(metadata)
        model = self.b.build(metadata, check=False)
        model.opset_import[0].version = opset
        for out in model.graph.output:
            out.type.tensor_type.ClearField("shape")
        _fill_output_types(model)
        for out in model.graph.output:  # ONNX infers no shape for GroupNormalization-18
            if not out.type.tensor_type.HasField("shape"):
                out.type.CopyFrom(model.graph.input[0].type)
        onnx.checker.check_model(model)
        return model
