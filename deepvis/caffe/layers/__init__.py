"""Caffe layer type -> converter (see `base.Converter`).

Every converter emits only these standard ONNX ops (opset 17), which is the set an
executor must implement to run any imported Caffe network:

    Conv, MaxPool, AveragePool, GlobalMaxPool, GlobalAveragePool, LRN, Relu, LeakyRelu,
    Gemm, MatMul, Add, Sub, Mul, Pow, Sum, Max, Softmax, Concat, Flatten, Reshape, Identity

Attributes used: Conv (kernel_shape, strides, pads, dilations, group); MaxPool (kernel_shape,
strides, pads, ceil_mode=0; pads may be asymmetric); AveragePool (kernel_shape, strides,
symmetric pads, count_include_pad=1, ceil_mode=0); LRN (size, alpha, beta, bias); LeakyRelu
(alpha); Gemm (transB 0/1); Softmax, Concat, Flatten (axis). Reshape shapes use 0 (copy)
and -1 (infer). Add/Sub/Mul/Pow broadcast numpy-style.
"""
from __future__ import annotations

from ...errors import UnsupportedError
from .base import Converter
from .concat import CONCAT
from .convolution import CONVOLUTION
from .eltwise import ELTWISE
from .identity import DROPOUT, SPLIT
from .inner_product import INNER_PRODUCT
from .lrn import LRN
from .normalization import BATCH_NORM, SCALE
from .pooling import POOLING
from .relu import RELU
from .reshape import FLATTEN, RESHAPE
from .softmax import SOFTMAX

CONVERTERS: dict[str, Converter] = {
    "Convolution": CONVOLUTION,
    "Pooling": POOLING,
    "LRN": LRN,
    "ReLU": RELU,
    "InnerProduct": INNER_PRODUCT,
    "Dropout": DROPOUT,
    "Softmax": SOFTMAX,
    "Concat": CONCAT,
    "Eltwise": ELTWISE,
    "BatchNorm": BATCH_NORM,
    "Scale": SCALE,
    "Flatten": FLATTEN,
    "Reshape": RESHAPE,
    "Split": SPLIT,
}

ONNX_OPS = ("Conv", "MaxPool", "AveragePool", "GlobalMaxPool", "GlobalAveragePool", "LRN", "Relu",
            "LeakyRelu", "Gemm", "MatMul", "Add", "Sub", "Mul", "Pow", "Sum", "Max", "Softmax",
            "Concat", "Flatten", "Reshape", "Identity")


def converter_for(layer) -> Converter:
    try:
        return CONVERTERS[layer.type]
    except KeyError:
        raise UnsupportedError(f"layer {layer.name!r} has type {layer.type!r}, which deepvis "
                               f"cannot convert (supported: {', '.join(sorted(CONVERTERS))})"
                               ) from None
