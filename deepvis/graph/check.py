"""ONNX files checked at the door, before any executor sees them.

A malformed file must be refused here, naming the file, rather than run with wrong weights
(an initializer whose bytes do not fill its shape would otherwise be read shifted or
padded) or refused later by one executor only. `structural_problems` holds the cheap checks
both executors rely on (the NumPy executor applies them to every graph it is given);
`check_model` adds onnx's own checker with type and shape inference for user files.
"""
from __future__ import annotations

import heapq
import math
import mmap
import pathlib
import stat

import onnx
from onnx import TensorProto

from ..errors import FormatError

# Opsets 1-5 define ops with legacy attributes (consumed_inputs) that onnxruntime has no
# kernels for; newer than onnx itself knows, no executor can know what the ops mean.
MIN_OPSET = 6
# deepvis runs every model once on a zero input of the declared shape: a 1 GiB input is no
# photo (a 8192 x 8192 RGB image at batch 1 has 201 M elements).
MAX_INPUT_ELEMENTS = 1 << 28
# Element types that ONNX convolutions and matrix products take (float kinds only).
FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16}
_FLOAT_WEIGHT_OPS = {"Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (0, 1, 2),
                     "MatMul": (0, 1), "BatchNormalization": (1, 2, 3, 4),
                     "InstanceNormalization": (1, 2), "PRelu": (1,)}
# Typed-field holders and how many entries one element takes in them.
_TYPED_FIELD = {
    TensorProto.FLOAT: ("float_data", 1), TensorProto.COMPLEX64: ("float_data", 2),
    TensorProto.DOUBLE: ("double_data", 1), TensorProto.COMPLEX128: ("double_data", 2),
    TensorProto.INT64: ("int64_data", 1), TensorProto.UINT32: ("uint64_data", 1),
    TensorProto.UINT64: ("uint64_data", 1), TensorProto.STRING: ("string_data", 1),
}
_SUBBYTE = {getattr(TensorProto, n) for n in ("INT4", "UINT4", "FLOAT4E2M1")
            if hasattr(TensorProto, n)}


def max_opset() -> int:
    return onnx.defs.onnx_opset_version()


def check_model(model: onnx.ModelProto, path) -> None:
    """Refuse a user's model that an executor would refuse or misread; errors name `path`,
    the file `model` was loaded from. A valid graph whose nodes are out of order (onnxruntime
    takes any order) is put in topological order in place: blob listing walks the nodes."""
    problems = structural_problems(model, raw_data_sizes(path)) + metadata_problems(model)
    if problems:
        raise FormatError(f"{path}: {problems[0]}")
    light = _without_weight_data(model)
    try:
        onnx.checker.check_model(light)
        onnx.shape_inference.infer_shapes(light, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError,
            UnicodeDecodeError) as exc:  # names and strings must be UTF-8
        raise FormatError(f"{path} is not a valid ONNX model: {_first_line(exc)}") from None
    order = _topological_order(model.graph)
    if order != sorted(order):
        nodes = list(model.graph.node)
        del model.graph.node[:]
        model.graph.node.extend(nodes[k] for k in order)


def structural_problems(model: onnx.ModelProto, raw_sizes: dict | None = None) -> list[str]:
    """Reasons the graph cannot be run as written (cheap checks, no inference)."""
    problems = []
    opset = default_opset(model)
    if opset is None:
        problems.append("the model imports no opset of the default ONNX domain")
    elif not MIN_OPSET <= opset <= max_opset():
        problems.append(f"ONNX opset {opset} is not supported (deepvis runs opsets "
                        f"{MIN_OPSET} to {max_opset()})")
    graph = model.graph
    weights = {t.name for t in graph.initializer}
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim if value.type.HasField("tensor_type") else ()
        sizes = [d.dim_value for d in dims if d.HasField("dim_value")]
        if value.name not in weights and (any(n < 0 for n in sizes) or
                                          math.prod(sizes) > MAX_INPUT_ELEMENTS):
            problems.append(f"input {value.name!r} of shape {sizes} is negative or larger than "
                            f"{MAX_INPUT_ELEMENTS} elements")
    problems += [problem for t in graph.initializer
                 for problem in [initializer_problem(t, raw_sizes)] if problem]
    seen = set()
    for node in graph.node:
        if node.name and node.name in seen:
            problems.append(f"two nodes are named {node.name!r}")
            break
        seen.add(node.name)
    types = {t.name: t.data_type for t in graph.initializer}
    for node in graph.node:
        for index in _FLOAT_WEIGHT_OPS.get(node.op_type, ()) if node.domain in ("", "ai.onnx") \
                else ():
            if index < len(node.input) and types.get(node.input[index], TensorProto.FLOAT) \
                    not in FLOAT_TYPES:
                kind = _type_name(types[node.input[index]])
                problems.append(f"node {node.name!r} ({node.op_type}) takes {kind} weights "
                                f"{node.input[index]!r}; it needs float, double or float16")
    return problems


def default_opset(model: onnx.ModelProto) -> int | None:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return entry.version
    return None


def initializer_problem(tensor: onnx.TensorProto, raw_sizes: dict | None = None) -> str | None:
    """Why the tensor's stored data does not match its declared shape, or None; `raw_sizes`
    gives raw data lengths known without reading the data (see `raw_data_sizes`)."""
    raw_sizes = raw_sizes or {}
    name = tensor.name
    if any(d < 0 for d in tensor.dims):
        return f"initializer {name!r} has a negative dimension {list(tensor.dims)}"
    count = math.prod(tensor.dims)
    if tensor.data_location == TensorProto.EXTERNAL and not tensor.HasField("raw_data"):
        return None  # not loaded; onnx checks the reference when it reads the data
    if tensor.data_type in (TensorProto.UNDEFINED, TensorProto.STRING) and \
            tensor.HasField("raw_data"):
        return f"initializer {name!r} has raw data of type {tensor.data_type}"
    if tensor.HasField("raw_data"):
        try:
            itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
        except (KeyError, TypeError, ValueError):
            return f"initializer {name!r} has an unknown element type {tensor.data_type}"
        expected = (count + 1) // 2 if tensor.data_type in _SUBBYTE else count * itemsize
        got = raw_sizes[name] if name in raw_sizes else len(tensor.raw_data)
        if got != expected:
            return (f"initializer {name!r} of shape {list(tensor.dims)} needs {expected} bytes "
                    f"of data but holds {got}")
        return None
    field, per = _TYPED_FIELD.get(tensor.data_type, ("int32_data", 1))
    if tensor.data_type in _SUBBYTE:
        expected = (count + 1) // 2
    else:
        expected = count * per
    got = len(getattr(tensor, field))
    if got != expected:
        return (f"initializer {name!r} of shape {list(tensor.dims)} needs {expected} values "
                f"in {field} but holds {got}")
    return None


def raw_data_sizes(path) -> dict[str, int]:
    """{initializer name: length of its raw_data} read from the file's wire format by offsets
    (a memory map, nothing copied): asking the loaded protobuf for len(raw_data) copies every
    weight (0.5 s on CaffeNet). Empty when the file cannot be scanned."""
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0,
                                                   access=mmap.ACCESS_READ) as data:
            sizes: dict[str, int] = {}
            for number, start, end in _fields(data, 0, len(data)):
                if number == 7:  # ModelProto.graph
                    for inner, t_start, t_end in _fields(data, start, end):
                        if inner == 5:  # GraphProto.initializer
                            name, raw = None, None
                            for field, v_start, v_end in _fields(data, t_start, t_end):
                                if field == 8:
                                    name = bytes(data[v_start:v_end]).decode("utf-8", "replace")
                                elif field == 9:
                                    raw = v_end - v_start
                            if name is not None and raw is not None:
                                sizes[name] = raw
            return sizes
    except (OSError, ValueError):
        return {}


def _fields(data, pos: int, end: int):
    """(field number, value start, value end) of the length-delimited fields in data[pos:end];
    other wire types are skipped. ValueError on a malformed message."""
    while pos < end:
        tag, pos = _varint(data, pos, end)
        wire = tag & 7
        if wire == 0:
            _, pos = _varint(data, pos, end)
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        elif wire == 2:
            length, pos = _varint(data, pos, end)
            if pos + length > end:
                raise ValueError("truncated field")
            yield tag >> 3, pos, pos + length
            pos += length
        else:
            raise ValueError(f"wire type {wire}")
    if pos != end:
        raise ValueError("truncated message")


def _varint(data, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while pos < end and shift < 70:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
    raise ValueError("truncated varint")


def confined_file(folder, relative: str, what: str) -> pathlib.Path:
    """`relative` inside `folder` as an existing regular file: no absolute path, no `..`
    leading out, no FIFO or device (which would hang or leak a read)."""
    folder = pathlib.Path(folder)
    rel = pathlib.PurePath(str(relative))
    if rel.is_absolute() or not rel.parts or ".." in rel.parts:
        raise FormatError(f"{what} {relative!r} must be a file name inside the model's folder "
                          f"{folder}")
    path = folder / rel
    try:
        resolved = path.resolve(strict=True)
        mode = resolved.stat().st_mode
    except (OSError, RuntimeError):
        raise FormatError(f"{what} {path} does not exist") from None
    if not resolved.is_relative_to(folder.resolve()):
        raise FormatError(f"{what} {relative!r} leads outside the model's folder {folder}")
    if not stat.S_ISREG(mode):
        raise FormatError(f"{what} {path} is not a regular file")
    return resolved


def _without_weight_data(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose large initializers are typed graph inputs instead: onnx's checker then
    checks structure, types and shapes without serialising every weight (2 s on CaffeNet;
    files over 2 GB cannot be serialised at all). The data sizes were checked before
    (`initializer_problem`)."""
    out = onnx.ModelProto()
    graph = model.graph
    for field, value in model.ListFields():
        if field.name != "graph":
            getattr(out, field.name).extend(value) if hasattr(value, "extend") else (
                getattr(out, field.name).CopyFrom(value) if field.message_type is not None
                else setattr(out, field.name, value))
    for field, value in graph.ListFields():
        if field.name == "node":  # onnxruntime sorts nodes itself; the checker wants them sorted
            out.graph.node.extend(_sorted_nodes(graph))
        elif field.name != "initializer":
            getattr(out.graph, field.name).extend(value) if hasattr(value, "extend") else (
                getattr(out.graph, field.name).CopyFrom(value) if field.message_type is not None
                else setattr(out.graph, field.name, value))
    # Exporters leave output types or shapes out, which onnxruntime accepts and onnx's
    # checker refuses: only such declarations are dropped from the copy.
    shapeless = [o for o in out.graph.output if _shapeless(o)]
    for value in shapeless:
        out.graph.output.remove(value)
    keep = [v for v in out.graph.value_info if not _shapeless(v)]
    del out.graph.value_info[:]
    out.graph.value_info.extend(keep)
    declared = {i.name for i in graph.input}
    for tensor in graph.initializer:
        if tensor.data_type == TensorProto.STRING or math.prod(tensor.dims) < _SMALL_ELEMENTS:
            out.graph.initializer.append(tensor)
            continue
        if tensor.name not in declared:
            out.graph.input.append(onnx.helper.make_tensor_value_info(
                tensor.name, tensor.data_type, list(tensor.dims)))
    return out


def _sorted_nodes(graph: onnx.GraphProto) -> list:
    nodes = list(graph.node)
    return [nodes[k] for k in _topological_order(graph)]


def _topological_order(graph: onnx.GraphProto) -> list[int]:
    """Node indices, producers before consumers, otherwise in file order (Kahn's algorithm);
    nodes on a cycle keep their file order at the end, for the checker to report."""
    nodes = graph.node
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    needs = [{producer[i] for i in n.input if i in producer and producer[i] != k}
             for k, n in enumerate(nodes)]
    consumers: dict[int, list[int]] = {}
    for k, before in enumerate(needs):
        for j in before:
            consumers.setdefault(j, []).append(k)
    waiting = [len(before) for before in needs]
    ready = [k for k, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(k)
        for c in consumers.get(k, ()):
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(ready, c)
    placed = set(order)
    return order + [k for k in range(len(nodes)) if k not in placed]


def _shapeless(value: onnx.ValueInfoProto) -> bool:
    """A declaration without a type, or a tensor type without a shape."""
    return not value.HasField("type") or (value.type.HasField("tensor_type") and
                                          not value.type.tensor_type.HasField("shape"))


_SMALL_ELEMENTS = 256  # shapes, axes and pads stay: shape inference reads their values


def _type_name(data_type: int) -> str:
    try:
        return TensorProto.DataType.Name(data_type).lower()
    except ValueError:
        return f"element type {data_type}"


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def _numbers(value) -> bool:
    return isinstance(value, list) and bool(value) and all(_number(v) for v in value)


def _ints(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool)
                                           and v >= 0 for v in value)


# What deepvis's preprocessing metadata may hold (see deepvis.model.preprocessing_from).
_PREPROCESS_TYPES = {
    "channel_swap": (lambda v: v is None or _ints(v), "null or a list of channel indices"),
    "mean": (lambda v: v is None or _number(v) or _numbers(v), "null, a number or a list of "
             "numbers"),
    "mean_file": (lambda v: v is None or isinstance(v, str), "null or a file name"),
    "scale": (lambda v: _number(v) or _numbers(v), "a number or a list of numbers"),
    "stretch": (lambda v: v is None or isinstance(v, bool), "true or false"),
    "input_size": (lambda v: v is None or (_ints(v) and len(v) == 2), "null or [H, W]"),
    "color": (lambda v: v is None or isinstance(v, str), "null or a colour mode name"),
}


def metadata_problems(model: onnx.ModelProto) -> list[str]:
    """deepvis's own metadata (see graph.meta) must be well formed and name real tensors."""
    from . import meta

    try:
        recorded = meta.read(model)
    except ValueError as exc:  # JSON that does not parse
        return [f"its deepvis metadata is not valid JSON: {exc}"]
    blobs, seeds, preprocess = recorded["blobs"], recorded["seeds"], recorded["preprocess"]
    if blobs is not None and not (isinstance(blobs, list) and blobs and
                                  all(isinstance(b, str) for b in blobs)):
        return [f"metadata {meta.BLOBS} must be a non-empty list of tensor names"]
    if not (isinstance(seeds, dict) and all(isinstance(k, str) and isinstance(v, str)
                                            for k, v in seeds.items())):
        return [f"metadata {meta.SEEDS} must map blob names to tensor names"]
    if not isinstance(preprocess, dict):
        return [f"metadata {meta.PREPROCESS} must be a JSON object"]
    for key, value in preprocess.items():
        allowed = _PREPROCESS_TYPES.get(key)
        if allowed and not allowed[0](value):
            return [f"metadata {meta.PREPROCESS} {key!r} must be {allowed[1]}, got {value!r}"]
    graph = model.graph
    known = {v.name for v in graph.input} | {o for n in graph.node for o in n.output}
    unknown = [b for b in (blobs or []) + list(seeds.values()) if b not in known]
    if unknown:
        return [f"its deepvis metadata names tensor {unknown[0]!r}, which the graph does not "
                "compute"]
    if blobs is not None and len(set(blobs)) != len(blobs):
        return [f"metadata {meta.BLOBS} lists a blob twice"]
    return []


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
