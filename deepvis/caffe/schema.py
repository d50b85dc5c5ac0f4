"""The part of caffe.proto that deepvis reads, as plain data.

One table drives both the binary (.caffemodel) and the text (.prototxt) parser, so
the two agree on field names, repetition, enum names and defaults without protoc or
the protobuf package. Message types named by a field but not described here are
"opaque": both parsers skip them (data-layer and loss settings, fork-only params).

Field specs read ``(number, name, kind[, default])``; a kind ending in ``*`` is
repeated; a kind starting with a capital letter names an enum or a message.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SCALAR_KINDS = ("int", "bool", "enum", "float", "double", "string", "bytes")

WIRE_VARINT, WIRE_FIXED64, WIRE_LEN, WIRE_FIXED32 = 0, 1, 2, 5
_WIRE_OF_KIND = {"int": WIRE_VARINT, "bool": WIRE_VARINT, "enum": WIRE_VARINT,
                 "float": WIRE_FIXED32, "double": WIRE_FIXED64,
                 "string": WIRE_LEN, "bytes": WIRE_LEN, "message": WIRE_LEN}
FLOAT_DTYPES = {"float": np.dtype("<f4"), "double": np.dtype("<f8")}

_ENGINE = {0: "DEFAULT", 1: "CAFFE", 2: "CUDNN"}
_POOL = {0: "MAX", 1: "AVE", 2: "STOCHASTIC"}

# Enum type -> {value: name}, in declaration order (the first is the proto2 default).
ENUMS: dict[str, dict[int, str]] = {
    "Phase": {0: "TRAIN", 1: "TEST"},
    "DimCheckMode": {0: "STRICT", 1: "PERMISSIVE"},
    "VarianceNorm": {0: "FAN_IN", 1: "FAN_OUT", 2: "AVERAGE"},
    "Engine": _ENGINE,
    "PoolMethod": _POOL,
    "RoundMode": {0: "CEIL", 1: "FLOOR"},
    "NormRegion": {0: "ACROSS_CHANNELS", 1: "WITHIN_CHANNEL"},
    "EltwiseOp": {0: "PROD", 1: "SUM", 2: "MAX"},
    "ReductionOp": {1: "SUM", 2: "ASUM", 3: "SUMSQ", 4: "MEAN"},
    "NormalizationMode": {0: "FULL", 1: "VALID", 2: "BATCH_SIZE", 3: "NONE"},
    "V1LayerType": {
        0: "NONE", 35: "ABSVAL", 1: "ACCURACY", 30: "ARGMAX", 2: "BNLL", 3: "CONCAT",
        37: "CONTRASTIVE_LOSS", 4: "CONVOLUTION", 5: "DATA", 39: "DECONVOLUTION",
        6: "DROPOUT", 32: "DUMMY_DATA", 7: "EUCLIDEAN_LOSS", 25: "ELTWISE", 38: "EXP",
        8: "FLATTEN", 9: "HDF5_DATA", 10: "HDF5_OUTPUT", 28: "HINGE_LOSS", 11: "IM2COL",
        12: "IMAGE_DATA", 13: "INFOGAIN_LOSS", 14: "INNER_PRODUCT", 15: "LRN",
        29: "MEMORY_DATA", 16: "MULTINOMIAL_LOGISTIC_LOSS", 34: "MVN", 17: "POOLING",
        26: "POWER", 18: "RELU", 19: "SIGMOID", 27: "SIGMOID_CROSS_ENTROPY_LOSS",
        36: "SILENCE", 20: "SOFTMAX", 21: "SOFTMAX_LOSS", 22: "SPLIT", 33: "SLICE",
        23: "TANH", 24: "WINDOW_DATA", 31: "THRESHOLD"},
}

# V1 LayerType enum name -> V2 type string (Caffe's V1 -> V2 upgrade).
V1_LAYER_TYPES: dict[str, str] = {
    "NONE": "", "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax",
    "BNLL": "BNLL", "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss",
    "CONVOLUTION": "Convolution", "DATA": "Data", "DECONVOLUTION": "Deconvolution",
    "DROPOUT": "Dropout", "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss",
    "ELTWISE": "Eltwise", "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data",
    "HDF5_OUTPUT": "HDF5Output", "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData", "INFOGAIN_LOSS": "InfogainLoss",
    "INNER_PRODUCT": "InnerProduct", "LRN": "LRN", "MEMORY_DATA": "MemoryData",
    "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss", "MVN": "MVN",
    "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence",
    "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split",
    "SLICE": "Slice", "TANH": "TanH", "WINDOW_DATA": "WindowData",
    "THRESHOLD": "Threshold",
}

# V0 (pre-2014) type strings -> V2 type strings; "padding" layers are folded away.
V0_LAYER_TYPES: dict[str, str] = {
    "accuracy": "Accuracy", "bnll": "BNLL", "concat": "Concat", "conv": "Convolution",
    "data": "Data", "dropout": "Dropout", "euclidean_loss": "EuclideanLoss",
    "flatten": "Flatten", "hdf5_data": "HDF5Data", "hdf5_output": "HDF5Output",
    "im2col": "Im2col", "images": "ImageData", "infogain_loss": "InfogainLoss",
    "innerproduct": "InnerProduct", "lrn": "LRN",
    "multinomial_logistic_loss": "MultinomialLogisticLoss", "pool": "Pooling",
    "relu": "ReLU", "sigmoid": "Sigmoid", "softmax": "Softmax",
    "softmax_loss": "SoftmaxWithLoss", "split": "Split", "tanh": "TanH",
    "window_data": "WindowData",
}

# LayerParameter (V2) *_param fields: name -> (number, message type). V1 numbers differ.
_V2_PARAMS = [
    (100, "transform_param", "TransformationParameter"), (101, "loss_param", "LossParameter"),
    (102, "accuracy_param", "AccuracyParameter"), (103, "argmax_param", "ArgMaxParameter"),
    (104, "concat_param", "ConcatParameter"),
    (105, "contrastive_loss_param", "ContrastiveLossParameter"),
    (106, "convolution_param", "ConvolutionParameter"), (107, "data_param", "DataParameter"),
    (108, "dropout_param", "DropoutParameter"),
    (109, "dummy_data_param", "DummyDataParameter"),
    (110, "eltwise_param", "EltwiseParameter"), (111, "exp_param", "ExpParameter"),
    (112, "hdf5_data_param", "HDF5DataParameter"),
    (113, "hdf5_output_param", "HDF5OutputParameter"),
    (114, "hinge_loss_param", "HingeLossParameter"),
    (115, "image_data_param", "ImageDataParameter"),
    (116, "infogain_loss_param", "InfogainLossParameter"),
    (117, "inner_product_param", "InnerProductParameter"), (118, "lrn_param", "LRNParameter"),
    (119, "memory_data_param", "MemoryDataParameter"), (120, "mvn_param", "MVNParameter"),
    (121, "pooling_param", "PoolingParameter"), (122, "power_param", "PowerParameter"),
    (123, "relu_param", "ReLUParameter"), (124, "sigmoid_param", "SigmoidParameter"),
    (125, "softmax_param", "SoftmaxParameter"), (126, "slice_param", "SliceParameter"),
    (127, "tanh_param", "TanHParameter"), (128, "threshold_param", "ThresholdParameter"),
    (129, "window_data_param", "WindowDataParameter"),
    (130, "python_param", "PythonParameter"), (131, "prelu_param", "PReLUParameter"),
    (132, "spp_param", "SPPParameter"), (133, "reshape_param", "ReshapeParameter"),
    (134, "log_param", "LogParameter"), (135, "flatten_param", "FlattenParameter"),
    (136, "reduction_param", "ReductionParameter"), (137, "embed_param", "EmbedParameter"),
    (138, "tile_param", "TileParameter"), (139, "batch_norm_param", "BatchNormParameter"),
    (140, "elu_param", "ELUParameter"), (141, "bias_param", "BiasParameter"),
    (142, "scale_param", "ScaleParameter"), (143, "input_param", "InputParameter"),
    (144, "crop_param", "CropParameter"), (145, "parameter_param", "ParameterParameter"),
    (146, "recurrent_param", "RecurrentParameter"), (147, "swish_param", "SwishParameter"),
    (148, "clip_param", "ClipParameter"),
]
_V1_PARAM_NUMBERS = {
    "concat_param": 9, "convolution_param": 10, "data_param": 11, "dropout_param": 12,
    "hdf5_data_param": 13, "hdf5_output_param": 14, "image_data_param": 15,
    "infogain_loss_param": 16, "inner_product_param": 17, "lrn_param": 18,
    "pooling_param": 19, "window_data_param": 20, "power_param": 21,
    "memory_data_param": 22, "argmax_param": 23, "eltwise_param": 24,
    "threshold_param": 25, "dummy_data_param": 26, "accuracy_param": 27,
    "hinge_loss_param": 29, "relu_param": 30, "slice_param": 31, "mvn_param": 34,
    "transform_param": 36, "tanh_param": 37, "sigmoid_param": 38, "softmax_param": 39,
    "contrastive_loss_param": 40, "exp_param": 41, "loss_param": 42,
}
_PARAM_TYPES = {name: type_ for _, name, type_ in _V2_PARAMS}

_SPECS: dict[str, list[tuple]] = {
    "NetParameter": [
        (1, "name", "string"), (2, "layers", "V1LayerParameter*"), (3, "input", "string*"),
        (4, "input_dim", "int*"), (5, "force_backward", "bool"), (6, "state", "NetState"),
        (7, "debug_info", "bool"), (8, "input_shape", "BlobShape*"),
        (100, "layer", "LayerParameter*"),
    ],
    "LayerParameter": [
        (1, "name", "string"), (2, "type", "string"), (3, "bottom", "string*"),
        (4, "top", "string*"), (5, "loss_weight", "float*"), (6, "param", "ParamSpec*"),
        (7, "blobs", "BlobProto*"), (8, "include", "NetStateRule*"),
        (9, "exclude", "NetStateRule*"), (10, "phase", "Phase"),
        (11, "propagate_down", "bool*"),
    ] + [(number, name, type_) for number, name, type_ in _V2_PARAMS],
    "V1LayerParameter": [
        (1, "layer", "V0LayerParameter"), (2, "bottom", "string*"), (3, "top", "string*"),
        (4, "name", "string"), (5, "type", "V1LayerType"), (6, "blobs", "BlobProto*"),
        (7, "blobs_lr", "float*"), (8, "weight_decay", "float*"),
        (32, "include", "NetStateRule*"), (33, "exclude", "NetStateRule*"),
        (35, "loss_weight", "float*"), (1001, "param", "string*"),
        (1002, "blob_share_mode", "DimCheckMode*"),
    ] + [(number, name, _PARAM_TYPES[name]) for name, number in _V1_PARAM_NUMBERS.items()],
    "V0LayerParameter": [
        (1, "name", "string"), (2, "type", "string"), (3, "num_output", "int"),
        (4, "biasterm", "bool", True), (5, "weight_filler", "FillerParameter"),
        (6, "bias_filler", "FillerParameter"), (7, "pad", "int", 0), (8, "kernelsize", "int"),
        (9, "group", "int", 1), (10, "stride", "int", 1), (11, "pool", "PoolMethod"),
        (12, "dropout_ratio", "float", 0.5), (13, "local_size", "int", 5),
        (14, "alpha", "float", 1.0), (15, "beta", "float", 0.75), (16, "source", "string"),
        (17, "scale", "float", 1.0), (18, "meanfile", "string"), (19, "batchsize", "int"),
        (20, "cropsize", "int", 0), (21, "mirror", "bool"), (22, "k", "float", 1.0),
        (50, "blobs", "BlobProto*"), (51, "blobs_lr", "float*"),
        (52, "weight_decay", "float*"), (53, "rand_skip", "int", 0),
        (65, "concat_dim", "int", 1),
    ],
    "BlobShape": [(1, "dim", "int*")],
    "BlobProto": [
        (1, "num", "int"), (2, "channels", "int"), (3, "height", "int"), (4, "width", "int"),
        (5, "data", "float*"), (6, "diff", "float*"), (7, "shape", "BlobShape"),
        (8, "double_data", "double*"), (9, "double_diff", "double*"),
    ],
    "BlobProtoVector": [(1, "blobs", "BlobProto*")],
    "NetState": [(1, "phase", "Phase", "TEST"), (2, "level", "int"), (3, "stage", "string*")],
    "NetStateRule": [
        (1, "phase", "Phase"), (2, "min_level", "int"), (3, "max_level", "int"),
        (4, "stage", "string*"), (5, "not_stage", "string*"),
    ],
    "ParamSpec": [
        (1, "name", "string"), (2, "share_mode", "DimCheckMode"),
        (3, "lr_mult", "float", 1.0), (4, "decay_mult", "float", 1.0),
    ],
    "FillerParameter": [
        (1, "type", "string", "constant"), (2, "value", "float"), (3, "min", "float"),
        (4, "max", "float", 1.0), (5, "mean", "float"), (6, "std", "float", 1.0),
        (7, "sparse", "int", -1), (8, "variance_norm", "VarianceNorm"),
    ],
    "ConvolutionParameter": [
        (1, "num_output", "int"), (2, "bias_term", "bool", True), (3, "pad", "int*"),
        (4, "kernel_size", "int*"), (5, "group", "int", 1), (6, "stride", "int*"),
        (7, "weight_filler", "FillerParameter"), (8, "bias_filler", "FillerParameter"),
        (9, "pad_h", "int", 0), (10, "pad_w", "int", 0), (11, "kernel_h", "int"),
        (12, "kernel_w", "int"), (13, "stride_h", "int"), (14, "stride_w", "int"),
        (15, "engine", "Engine"), (16, "axis", "int", 1), (17, "force_nd_im2col", "bool"),
        (18, "dilation", "int*"),
    ],
    "PoolingParameter": [
        (1, "pool", "PoolMethod"), (2, "kernel_size", "int"), (3, "stride", "int", 1),
        (4, "pad", "int", 0), (5, "kernel_h", "int"), (6, "kernel_w", "int"),
        (7, "stride_h", "int"), (8, "stride_w", "int"), (9, "pad_h", "int", 0),
        (10, "pad_w", "int", 0), (11, "engine", "Engine"), (12, "global_pooling", "bool"),
        (13, "round_mode", "RoundMode"),
    ],
    "LRNParameter": [
        (1, "local_size", "int", 5), (2, "alpha", "float", 1.0), (3, "beta", "float", 0.75),
        (4, "norm_region", "NormRegion"), (5, "k", "float", 1.0), (6, "engine", "Engine"),
        (7, "deconv_ignore", "bool"),   # yosinski/caffe deconv fork only
    ],
    "InnerProductParameter": [
        (1, "num_output", "int"), (2, "bias_term", "bool", True),
        (3, "weight_filler", "FillerParameter"), (4, "bias_filler", "FillerParameter"),
        (5, "axis", "int", 1), (6, "transpose", "bool"),
    ],
    "DropoutParameter": [(1, "dropout_ratio", "float", 0.5)],
    "SoftmaxParameter": [(1, "engine", "Engine"), (2, "axis", "int", 1)],
    "ConcatParameter": [(1, "concat_dim", "int", 1), (2, "axis", "int", 1)],
    "EltwiseParameter": [
        (1, "operation", "EltwiseOp", "SUM"), (2, "coeff", "float*"),
        (3, "stable_prod_grad", "bool", True),
    ],
    "BatchNormParameter": [
        (1, "use_global_stats", "bool"), (2, "moving_average_fraction", "float", 0.999),
        (3, "eps", "float", 1e-5),
    ],
    "ScaleParameter": [
        (1, "axis", "int", 1), (2, "num_axes", "int", 1), (3, "filler", "FillerParameter"),
        (4, "bias_term", "bool"), (5, "bias_filler", "FillerParameter"),
    ],
    "BiasParameter": [
        (1, "axis", "int", 1), (2, "num_axes", "int", 1), (3, "filler", "FillerParameter"),
    ],
    "ReLUParameter": [(1, "negative_slope", "float"), (2, "engine", "Engine")],
    "FlattenParameter": [(1, "axis", "int", 1), (2, "end_axis", "int", -1)],
    "ReshapeParameter": [
        (1, "shape", "BlobShape"), (2, "axis", "int", 0), (3, "num_axes", "int", -1),
    ],
    "InputParameter": [(1, "shape", "BlobShape*")],
    "PowerParameter": [
        (1, "power", "float", 1.0), (2, "scale", "float", 1.0), (3, "shift", "float", 0.0),
    ],
    "TransformationParameter": [
        (1, "scale", "float", 1.0), (2, "mirror", "bool"), (3, "crop_size", "int", 0),
        (4, "mean_file", "string"), (5, "mean_value", "float*"), (6, "force_color", "bool"),
        (7, "force_gray", "bool"),
    ],
    # Small layers whose settings are cheap to keep for the converter's error messages.
    "SigmoidParameter": [(1, "engine", "Engine")],
    "TanHParameter": [(1, "engine", "Engine")],
    "ELUParameter": [(1, "alpha", "float", 1.0)],
    "PReLUParameter": [(1, "filler", "FillerParameter"), (2, "channel_shared", "bool")],
    "ThresholdParameter": [(1, "threshold", "float", 0.0)],
    "ExpParameter": [
        (1, "base", "float", -1.0), (2, "scale", "float", 1.0), (3, "shift", "float", 0.0),
    ],
    "LogParameter": [
        (1, "base", "float", -1.0), (2, "scale", "float", 1.0), (3, "shift", "float", 0.0),
    ],
    "SliceParameter": [
        (1, "slice_dim", "int", 1), (2, "slice_point", "int*"), (3, "axis", "int", 1),
    ],
    "CropParameter": [(1, "axis", "int", 2), (2, "offset", "int*")],
    "ArgMaxParameter": [
        (1, "out_max_val", "bool"), (2, "top_k", "int", 1), (3, "axis", "int"),
    ],
    "MVNParameter": [
        (1, "normalize_variance", "bool", True), (2, "across_channels", "bool"),
        (3, "eps", "float", 1e-9),
    ],
    "ReductionParameter": [
        (1, "operation", "ReductionOp", "SUM"), (2, "axis", "int", 0),
        (3, "coeff", "float", 1.0),
    ],
    "TileParameter": [(1, "axis", "int", 1), (2, "tiles", "int")],
    "ClipParameter": [(1, "min", "float"), (2, "max", "float")],
    "SwishParameter": [(1, "beta", "float", 1.0)],
    "ParameterParameter": [(1, "shape", "BlobShape")],
    "AccuracyParameter": [
        (1, "top_k", "int", 1), (2, "axis", "int", 1), (3, "ignore_label", "int"),
    ],
    "LossParameter": [
        (1, "ignore_label", "int"), (2, "normalize", "bool"),
        (3, "normalization", "NormalizationMode", "VALID"),
    ],
}


@dataclass(frozen=True)
class Field:
    number: int
    name: str
    kind: str            # one of SCALAR_KINDS or "message"
    repeated: bool
    type: str | None     # enum or message type name
    default: Any

    @property
    def wire_type(self) -> int:
        return _WIRE_OF_KIND[self.kind]

    @property
    def packable(self) -> bool:
        """Repeated numbers may arrive packed (one length-delimited run)."""
        return self.repeated and self.kind in ("int", "bool", "enum", "float", "double")


@dataclass(frozen=True)
class Message:
    name: str
    by_number: dict[int, Field]
    by_name: dict[str, Field]


def _field(spec: tuple) -> Field:
    number, name, kind = spec[:3]
    repeated = kind.endswith("*")
    kind = kind.rstrip("*")
    type_ = None
    if kind[0].isupper():
        type_, kind = kind, ("enum" if kind in ENUMS else "message")
    default = spec[3] if len(spec) > 3 else None
    if kind == "float" and default is not None:
        default = float(np.float32(default))   # what Caffe itself holds
    return Field(number, name, kind, repeated, type_, default)


def _message(name: str, specs: list[tuple]) -> Message:
    fields = [_field(spec) for spec in specs]
    return Message(name, {f.number: f for f in fields}, {f.name: f for f in fields})


MESSAGES: dict[str, Message] = {name: _message(name, specs) for name, specs in _SPECS.items()}

_ZERO = {"int": 0, "bool": False, "float": 0.0, "double": 0.0, "string": "", "bytes": b""}


def message(name: str) -> Message | None:
    """The described message type, or None for an opaque one that parsers skip."""
    return MESSAGES.get(name)


def field(message_name: str, field_name: str) -> Field:
    return MESSAGES[message_name].by_name[field_name]


def default(message_name: str, field_name: str) -> Any:
    """The proto2 value of an unset field: [] when repeated, {} for a message, enum names."""
    f = field(message_name, field_name)
    if f.repeated:
        return []
    if f.default is not None:
        return f.default
    if f.kind == "enum":
        return next(iter(ENUMS[f.type].values()))
    if f.kind == "message":
        return {}
    return _ZERO[f.kind]


def is_layer_param(name: str) -> bool:
    """Whether a LayerParameter/V1LayerParameter field is a described ``*_param`` message."""
    return name in _PARAM_TYPES and _PARAM_TYPES[name] in MESSAGES
