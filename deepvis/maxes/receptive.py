"""Which input pixels a unit sees: receptive fields read from the ONNX graph.

A unit at (y, x) of a blob depends on a rectangle of the network input. Walking the
graph from the blob down to the input, a window op (Conv, MaxPool, AveragePool,
LpPool) maps a range [a, b) of its output to [a*s - p, (b-1)*s - p + (k-1)*d + 1)
of its input; per-pixel ops (ReLU, Clip, LRN, BatchNormalization, Add, Mul, channel
Concat, ...) pass the range through; anything else that mixes positions (global
pooling, Flatten, Gemm, ops deepvis does not know) makes its whole input visible.
Where paths meet (residual blocks) ranges merge into their hull.

Clipped (the default), each step keeps only the input positions its windows really
read, layer by layer, so regions stay inside the image as with the original's
hard-coded region computer (original-toolbox §10.3), and are exact bounding boxes of
what a unit depends on even with dilation. Unclipped, one unit's range is the textbook
receptive field (CaffeNet conv5: 163 pixels, stride 16).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import onnx
from onnx import helper

from ..errors import DeepvisError
from ..graph.load import graph_input

WINDOW_OPS = {"Conv", "MaxPool", "AveragePool", "LpPool"}
POINTWISE_OPS = {
    "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Sigmoid", "HardSigmoid", "HardSwish",
    "Tanh", "Softplus", "Softsign", "Clip", "Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal",
    "Erf", "Gelu", "Mish", "Identity", "Dropout", "Cast", "BatchNormalization", "LRN",
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Where",
}
CHANNEL_AXIS_OPS = {"Concat", "Split", "Softmax", "LogSoftmax"}  # per pixel when axis is 1

Range = tuple[int, int]
Region = tuple[Range, Range]     # ((y0, y1), (x0, x1)), half-open


@dataclass(frozen=True)
class Window:
    """One spatial axis of a sliding-window op."""
    kernel: int
    stride: int = 1
    dilation: int = 1
    pad_begin: int = 0
    pad_end: int = 0
    ceil: bool = False

    @property
    def extent(self) -> int:
        return (self.kernel - 1) * self.dilation + 1

    def out_size(self, size: int) -> int:
        span = size + self.pad_begin + self.pad_end - self.extent
        steps = math.ceil(span / self.stride) if self.ceil else span // self.stride
        if self.ceil and steps * self.stride >= size + self.pad_begin:
            steps -= 1  # the last window must start inside the input or its leading pad
        return steps + 1

    def to_input(self, lo: int, hi: int) -> Range:
        """Input indices under the windows of outputs [lo, hi), padding included."""
        start = lo * self.stride - self.pad_begin
        return start, start + (hi - 1 - lo) * self.stride + self.extent

    def taps_within(self, lo: int, hi: int, size: int) -> Range | None:
        """The hull of the real input indices (0 <= i < size) the windows of outputs
        [lo, hi) read; with dilation this can be narrower than clipping to_input."""
        s, p, d = self.stride, self.pad_begin, self.dilation
        first, last = [], []
        for j in range(self.kernel):
            o = max(lo, -((j * d - p) // s))        # first output whose tap j is >= 0
            if o < hi:
                first.append(o * s - p + j * d)
            o = min(hi - 1, (size - 1 + p - j * d) // s)  # last output whose tap j is < size
            if o >= lo:
                last.append(o * s - p + j * d)
        if not first or not last or min(first) > max(last):
            return None
        return min(first), max(last) + 1


def clip(r: Range, size: int) -> Range:
    return max(r[0], 0), min(r[1], size)


def hull(a: Range | None, b: Range) -> Range:
    return b if a is None else (min(a[0], b[0]), max(a[1], b[1]))


@dataclass(frozen=True)
class Field:
    """Receptive field of one unit: size in input pixels, stride between neighbours, and
    the input coordinate where unit 0's field starts (negative where it starts in padding)."""
    size: tuple[int, int]
    stride: tuple[int, int]
    start: tuple[int, int]


class RegionComputer:
    """Regions of the network input seen by units of any blob of one graph."""

    def __init__(self, graph: onnx.ModelProto):
        self.input_name = graph_input(graph).name
        dims = [d.dim_value for d in graph_input(graph).type.tensor_type.shape.dim]
        if len(dims) != 4 or not all(dims[2:]):
            raise DeepvisError("receptive fields need a 4-D network input with fixed H and W")
        self.input_size = (dims[2], dims[3])
        self._steps = list(_plan(graph, self.input_name, self.input_size))
        self._sizes = {self.input_name: self.input_size}
        for step in self._steps:
            self._sizes.update(step.out_sizes)
        self.region = lru_cache(maxsize=65536)(self._region)

    def spatial_size(self, blob: str) -> tuple[int, int] | None:
        """(H, W) of a blob whose positions map to input regions; None for FC-like blobs."""
        if blob not in self._sizes:
            raise DeepvisError(f"{blob!r} is not computed from the network input")
        return self._sizes[blob]

    def _region(self, blob: str, y: int = 0, x: int = 0, clipped: bool = True) -> Region:
        """Input rows and columns [y0, y1) x [x0, x1) that unit (y, x) of `blob` depends on
        (cached: `region` is this function behind an LRU cache)."""
        whole = (0, self.input_size[0]), (0, self.input_size[1])
        if self.spatial_size(blob) is None:
            return whole
        need: dict[str, Region | None] = {blob: ((y, y + 1), (x, x + 1))}
        for step in reversed(self._steps):
            wanted = [need[o] for o in step.outputs if o in need]
            if not wanted:
                continue
            for name, region in step.demand(_merge(wanted), clipped, self._sizes):
                need[name] = _join(need[name], region) if name in need else region
        found = need.get(self.input_name, whole) or whole
        return tuple(clip(r, s) for r, s in zip(found, self.input_size)) if clipped else found

    def field(self, blob: str) -> Field | None:
        """Unclipped receptive field of the blob's units; None when each unit sees everything."""
        if self.spatial_size(blob) is None:
            return None
        (y0, y1), (x0, x1) = self.region(blob, 0, 0, clipped=False)
        (y2, _), (x2, _) = self.region(blob, 1, 1, clipped=False)
        return Field(size=(y1 - y0, x1 - x0), stride=(y2 - y0, x2 - x0), start=(y0, x0))

    def canvas(self, blob: str) -> tuple[int, int]:
        """Size of the tile a crop of this blob is shown on: its field, at most the image."""
        field = self.field(blob)
        if field is None:
            return self.input_size
        return tuple(min(f, s) for f, s in zip(field.size, self.input_size))


def _merge(regions) -> Region | None:
    out = regions[0]
    for r in regions[1:]:
        out = _join(out, r)
    return out


def _join(a: Region | None, b: Region | None) -> Region | None:
    """None stands for 'the whole tensor'."""
    if a is None or b is None:
        return None
    return hull(a[0], b[0]), hull(a[1], b[1])


@dataclass
class _Step:
    """One node on a path from the input: how a range of its output maps to its inputs."""
    kind: str                       # "window", "pointwise" or "full"
    inputs: list[str]               # the inputs that depend on the network input
    outputs: list[str]
    out_sizes: dict                 # output -> (H, W) or None
    windows: tuple[Window, Window] | None = None

    def demand(self, region: Region | None, clipped: bool, sizes: dict):
        out_size = self.out_sizes[self.outputs[0]]
        for name in self.inputs:
            size = sizes[name]
            if self.kind == "full" or region is None or size is None:
                yield name, _whole(size)
            elif self.kind == "window":
                mapped = tuple(self._through_window(w, r, o, s, clipped) for w, r, o, s
                               in zip(self.windows, region, out_size, size))
                if None not in mapped:   # None: the windows read only padding
                    yield name, mapped
            elif size == (1, 1) and out_size != (1, 1):
                yield name, ((0, 1), (0, 1))   # broadcast, e.g. a squeeze-excite scale
            else:
                yield name, region

    @staticmethod
    def _through_window(window: Window, r: Range, out_size: int, size: int, clipped: bool):
        if not clipped:
            return window.to_input(*r)
        lo, hi = clip(r, out_size)
        return window.taps_within(lo, hi, size) if lo < hi else None


def _whole(size) -> Region | None:
    return None if size is None else ((0, size[0]), (0, size[1]))


def _plan(graph: onnx.ModelProto, input_name: str, input_size):
    """The steps of every node reached from the input, in graph (topological) order."""
    shapes = {t.name: tuple(t.dims) for t in graph.graph.initializer}
    sizes = {input_name: tuple(input_size)}
    for node in graph.graph.node:
        inputs = [i for i in node.input if i in sizes]
        if not inputs:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        outputs = [o for o in node.output if o]
        kind, windows, size = _classify(node, attrs, [sizes[i] for i in inputs], shapes)
        out_sizes = {o: size for o in outputs}
        sizes.update(out_sizes)
        yield _Step(kind, inputs, outputs, out_sizes, windows)


def _classify(node, attrs, in_sizes, shapes):
    """(kind, windows, output size) of one node."""
    op = node.op_type
    first = in_sizes[0]
    if op in WINDOW_OPS and first is not None and len(in_sizes) == 1:
        windows = _windows(node, attrs, first, shapes)
        if windows is not None:
            return "window", windows, tuple(w.out_size(s) for w, s in zip(windows, first))
    if op in POINTWISE_OPS or op in CHANNEL_AXIS_OPS and attrs.get("axis", 1) in (1, -3):
        known = [s for s in in_sizes if s is not None]
        if len(known) == len(in_sizes):
            return "pointwise", None, tuple(max(d) for d in zip(*known))
    if op in ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool") and first is not None:
        return "full", None, (1, 1)
    return "full", None, None


def _windows(node, attrs, in_size, shapes):
    kernel = attrs.get("kernel_shape")
    if kernel is None and node.op_type == "Conv" and node.input[1] in shapes:
        kernel = shapes[node.input[1]][2:]
    if kernel is None or len(kernel) != 2:
        return None
    strides = attrs.get("strides", [1, 1])
    dilations = attrs.get("dilations", [1, 1])
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        for axis in range(2):
            out = -(-in_size[axis] // strides[axis])
            total = max((out - 1) * strides[axis] + (kernel[axis] - 1) * dilations[axis] + 1
                        - in_size[axis], 0)
            small, large = total // 2, total - total // 2
            upper = auto_pad == "SAME_UPPER"
            pads[axis], pads[axis + 2] = (small, large) if upper else (large, small)
    elif auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    ceil = bool(attrs.get("ceil_mode", 0))
    return tuple(Window(kernel[a], strides[a], dilations[a], pads[a], pads[a + 2], ceil)
                 for a in range(2))
