"""Gradient graphs for many (layer, mode) pairs that share one copy of the forward weights.

On disk, a cache folder per forward model (named by a sha256 of its structure and weights)
holds the weights once, as ONNX external data in `weights.bin`, and one small .onnx per
(target, mode, extra outputs) whose initializers point into that file by location and offset.
In memory, the weights are one read-only memory map; onnxruntime sessions receive them as
shared OrtValues through `SessionOptions.add_initializer`, and NumPy executors take the
mapped arrays themselves.

Sessions come in two kinds. Lean ones (the default; the toolbox holds one per layer and
mode) copy nothing: weight prepacking, which would give each session its own packed copy,
is off, and so is the memory arena, which would keep each session's peak activations.
Dedicated ones (`lean=False`, for a loop that runs one graph many times, as the optimizer
does) pack the weights, keep their buffers and may run a batch in slices over the cores
(exec/parallel.py). On CaffeNet packing costs one more copy of the fully connected weights
(about 240 MB) per session and buys about 10% at batch 16; it also makes a batch of one take
the same matrix kernel as larger batches (unpacked, onnxruntime multiplies a single row by a
matrix-vector kernel that rounds otherwise), so an image gets the same bits alone as inside
a batch. The slices' single-threaded session is a second packed copy, made at the first
batch of two or more.
"""
from __future__ import annotations

import hashlib
import json
import pathlib
from typing import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..exec.parallel import BatchParallel, cores
from ..fileio import atomic_path
from ..graph.load import with_outputs
from .builder import build_grad_graph

WEIGHTS_FILE = "weights.bin"
# Part of every cached graph's key: raise it when the builder's output changes, so that
# graphs cached by an older deepvis are rebuilt rather than reused.
GRAPH_FORMAT = 4
# Smaller tensors (shapes, pads, scalars, per-channel scales) stay inside each graph. 16 KiB,
# not less: onnxruntime's graph optimizer mis-broadcasts a shared (C, 1, 1) initializer
# (ConvNeXt's layer scale, 384 floats) in a Mul, and inline copies of such small tensors
# cost nothing.
EXTERNAL_MIN_BYTES = 16384
_ALIGN = 64


class GradCache:
    """Gradient graphs of one forward model, built on demand and kept in `cache_dir`."""

    def __init__(self, forward_model, cache_dir, weights_key: str | None = None):
        """`weights_key`, when given, stands for the weights' bytes in the folder's name (for
        example the source file's path, size and modification time): hashing VGG's 530 MB
        of weights on every load takes a second."""
        forward = _loaded(forward_model)
        self._skeleton, self._layout = _externalized(forward)
        self.digest = _digest(self._skeleton, forward, weights_key)
        self.dir = pathlib.Path(cache_dir) / self.digest
        self.dir.mkdir(parents=True, exist_ok=True)
        if not (self.dir / WEIGHTS_FILE).exists():
            from ..locks import shared_cache_entry     # one process writes it, others wait
            with shared_cache_entry(self.dir / WEIGHTS_FILE, "writing"):
                if not (self.dir / WEIGHTS_FILE).exists():
                    _write_weights(forward, self._layout, self.dir / WEIGHTS_FILE)
        self._arrays: dict[str, np.ndarray] | None = None
        self._ort_values: dict = {}

    # -- graphs ------------------------------------------------------------------
    def path(self, target: str, mode: str = "grad", extra_outputs: Sequence[str] = (),
             seed_times_target: bool = False) -> pathlib.Path:
        """The cached graph file (built and written on first use)."""
        key = json.dumps([GRAPH_FORMAT, target, mode, list(extra_outputs)]
                         + ([1] if seed_times_target else []))
        path = self.dir / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".onnx")
        if not path.exists():
            model = build_grad_graph(self._skeleton, target, mode, extra_outputs,
                                     seed_times_target)
            with atomic_path(path, overwrite=True) as tmp:
                tmp.write_bytes(model.SerializeToString())
        return path

    def model(self, target: str, mode: str = "grad",
              extra_outputs: Sequence[str] = ()) -> onnx.ModelProto:
        """The graph structure; its large initializers still point into weights.bin."""
        return onnx.load(str(self.path(target, mode, extra_outputs)), load_external_data=False)

    def weights(self) -> dict[str, np.ndarray]:
        """The forward's large initializers as read-only arrays over one memory map."""
        if self._arrays is None:
            if not self._layout:  # nothing large enough to share; np.memmap refuses empty files
                self._arrays = {}
                return self._arrays
            mapped = np.memmap(self.dir / WEIGHTS_FILE, dtype=np.uint8, mode="r")
            self._arrays = {name: mapped[offset:offset + length].view(dtype).reshape(dims)
                            for name, (offset, length, dtype, dims) in self._layout.items()}
        return self._arrays

    def forward_path(self, outputs: Sequence[str]) -> pathlib.Path:
        """The forward graph itself with exactly these outputs, sharing the same weights."""
        key = json.dumps([GRAPH_FORMAT, "forward", list(outputs)])
        path = self.dir / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".onnx")
        if not path.exists():
            model = with_outputs(self._skeleton, outputs)
            with atomic_path(path, overwrite=True) as tmp:
                tmp.write_bytes(model.SerializeToString())
        return path

    # -- executors ---------------------------------------------------------------
    def forward_executor(self, outputs: Sequence[str], backend: str = "ort", **options):
        """A forward executor that shares the weights with every gradient graph."""
        return self._executor(self.forward_path(outputs), backend, **options)

    def executor(self, target: str, mode: str = "grad", extra_outputs: Sequence[str] = (),
                 backend: str = "ort", seed_times_target: bool = False, **options):
        """An executor for the graph whose weights are the shared arrays, not copies."""
        path = self.path(target, mode, extra_outputs, seed_times_target)
        return self._executor(path, backend, **options)

    def _executor(self, path: pathlib.Path, backend: str, split: bool = False, **options):
        """`split`: run batches in slices over the cores (exec/parallel.py) on a CPU."""
        if backend == "ort":
            whole = SharedOrtExecutor(path, self._ort_initializers(path), **options)
            workers = cores()
            on_cpu = whole.session.get_providers()[0] == "CPUExecutionProvider"
            if not (split and on_cpu and workers > 1 and not options.get("threads")):
                return whole
            return BatchParallel(whole, lambda: SharedOrtExecutor(
                path, self._ort_initializers(path), **dict(options, threads=1)), workers)
        from ..exec import make_executor
        return make_executor(path, backend, initializers=self.weights(), **options)

    def _ort_initializers(self, path: pathlib.Path) -> dict:
        import onnxruntime as ort

        names = _external_names(onnx.load(str(path), load_external_data=False))
        arrays = self.weights()
        for name in names:
            if name not in self._ort_values:
                self._ort_values[name] = ort.OrtValue.ortvalue_from_numpy(arrays[name])
        return {name: self._ort_values[name] for name in names}


class SharedOrtExecutor:
    """onnxruntime executor whose external initializers come from shared OrtValues."""

    def __init__(self, path, initializers: dict, gpu: bool = False, threads: int | None = None,
                 lean: bool = True, source=None):
        """`source` names the user's model in errors instead of the cached graph file."""
        import onnxruntime as ort

        from ..exec.ort import available_providers, ort_errors, session_options

        options = session_options(threads)
        if lean:  # see the module docstring: sessions come in two kinds
            options.add_session_config_entry("session.disable_prepacking", "1")
            options.enable_cpu_mem_arena = False
        for name, value in initializers.items():
            options.add_initializer(name, value)
        self._initializers = initializers  # the session borrows these buffers
        self._source = source or path
        self._ort_errors = ort_errors
        with ort_errors(self._source, "to load the model"):
            self.session = ort.InferenceSession(str(path), options,
                                                providers=available_providers(gpu))
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray], outputs=None) -> dict[str, np.ndarray]:
        names = list(outputs) if outputs is not None else self.output_names
        with self._ort_errors(self._source, "running the model"):
            return dict(zip(names, self.session.run(names, feeds)))


def export_grad(forward_model, target: str, mode: str, path,
                extra_outputs: Sequence[str] = (), overwrite: bool = False) -> pathlib.Path:
    """Write one standalone gradient graph (weights included) atomically; `forward_model` is a
    ModelProto or an .onnx path."""
    model = build_grad_graph(_loaded(forward_model), target, mode, extra_outputs)
    with atomic_path(path, overwrite) as tmp:
        tmp.write_bytes(model.SerializeToString())
    return pathlib.Path(path)


def _loaded(model) -> onnx.ModelProto:
    return model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))


def _externalized(forward: onnx.ModelProto):
    """A copy of `forward` whose large initializers are references into WEIGHTS_FILE, and the
    file layout {name: (offset, length, dtype, dims)}."""
    skeleton = _copy_without(forward, "graph")
    graph = _copy_without(forward.graph, "initializer")
    layout, offset = {}, 0
    for tensor in forward.graph.initializer:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type))
        length = int(np.prod(tensor.dims, dtype=np.int64)) * dtype.itemsize
        if length < EXTERNAL_MIN_BYTES or tensor.data_location == TensorProto.EXTERNAL:
            graph.initializer.append(tensor)
            continue
        layout[tensor.name] = (offset, length, dtype, tuple(tensor.dims))
        ref = graph.initializer.add(name=tensor.name, data_type=tensor.data_type,
                                    data_location=TensorProto.EXTERNAL)
        ref.dims.extend(tensor.dims)
        for key, value in (("location", WEIGHTS_FILE), ("offset", offset), ("length", length)):
            ref.external_data.add(key=key, value=str(value))
        offset += -(-length // _ALIGN) * _ALIGN
    skeleton.graph.CopyFrom(graph)
    return skeleton, layout


def _copy_without(message, skipped: str):
    """A shallow field-by-field copy of a protobuf message, leaving out one field."""
    out = type(message)()
    for field, value in message.ListFields():
        if field.name == skipped:
            continue
        if hasattr(value, "extend"):  # a repeated field
            getattr(out, field.name).extend(value)
        elif field.message_type is not None:
            getattr(out, field.name).CopyFrom(value)
        else:
            setattr(out, field.name, value)
    return out


def _tensor_bytes(tensor: onnx.TensorProto) -> bytes:
    if tensor.HasField("raw_data"):
        return tensor.raw_data
    return numpy_helper.to_array(tensor).tobytes()


def _digest(skeleton: onnx.ModelProto, forward: onnx.ModelProto,
            weights_key: str | None = None) -> str:
    """sha256 over the model structure and every weight byte (or the key that stands for
    them), without serialising it whole."""
    digest = hashlib.sha256(skeleton.SerializeToString(deterministic=True))
    if weights_key is not None:
        digest.update(b"weights-key:" + weights_key.encode())
        return digest.hexdigest()
    for tensor in forward.graph.initializer:
        digest.update(_tensor_bytes(tensor))
    return digest.hexdigest()


def _write_weights(forward: onnx.ModelProto, layout: dict, path: pathlib.Path) -> None:
    with atomic_path(path, overwrite=True) as tmp, open(tmp, "wb") as f:
        for tensor in forward.graph.initializer:
            if tensor.name in layout:
                offset, length, _, _ = layout[tensor.name]
                f.write(b"\0" * (offset - f.tell()))
                f.write(_tensor_bytes(tensor))


def _external_names(model: onnx.ModelProto) -> list[str]:
    return [t.name for t in model.graph.initializer if t.data_location == TensorProto.EXTERNAL]
