"""onnxruntime executor (CPU, or CUDA when onnxruntime-gpu is installed and asked for)."""
from __future__ import annotations

import contextlib
import re
import sys

import numpy as np
import onnx

from ..errors import ExecutionError

_warned_cuda = False


def available_providers(gpu: bool) -> list[str]:
    """CUDA first when requested and present, CPU always; says once when CUDA is missing."""
    global _warned_cuda
    import onnxruntime as ort

    have = ort.get_available_providers()
    if gpu and "CUDAExecutionProvider" in have:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if gpu and not _warned_cuda:
        _warned_cuda = True
        print("deepvis: CUDA execution provider not available (install onnxruntime-gpu and a "
              "CUDA runtime); running on CPU.", file=sys.stderr)
    return ["CPUExecutionProvider"]


def session_options(threads: int | None = None):
    """Options every deepvis session shares. Worker threads sleep between runs instead of
    spinning: on a small machine a spinning pool steals the cores that the optimizer's
    regularizers, the toolbox's drawing and the image decoders need between runs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # errors reach the user translated (ort_error), once
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    return options


_STATUS = re.compile(r"\[ONNXRuntimeError\] : \d+ : \w+ : ")
_CODE_PLACE = re.compile(r"(?:/\S+/)?\w+\.(?:cc|h|cpp):\d+ "
                         r"(?:[\w:<>~,&* ]*\([^)]*\) |\w+ )?")
_LOAD_FAILED = re.compile(r"Load model from .* failed: ?")
_FILE = re.compile(r"/[^\s'\"]+\.onnx|\b[0-9a-f]{32}\.onnx")  # deepvis's cache files
_NODE = re.compile(r"node\.? (?:with name |name:? ?|named )?\(?'?([^'\s)]+)'?\)?", re.I)


def is_ort_error(exc: BaseException) -> bool:
    """onnxruntime's exceptions (Fail, InvalidGraph, ...) subclass nothing of Python's own."""
    return type(exc).__module__.startswith("onnxruntime")


def ort_error(exc: BaseException, source, during: str) -> ExecutionError:
    """onnxruntime's message as a deepvis error: the user's model file instead of the cache
    file deepvis handed onnxruntime, the node it names, without the C++ source location."""
    text = _STATUS.sub("", str(exc)).strip()
    text = _LOAD_FAILED.sub("", _CODE_PLACE.sub("", text))
    text = _FILE.sub("the model", text)
    node = _NODE.search(text)
    where = f" at node {node.group(1)!r}" if node else ""
    return ExecutionError(f"{source}: onnxruntime failed {during}{where}: {text}")


@contextlib.contextmanager
def ort_errors(source, during: str):
    """Translate onnxruntime exceptions raised inside the block (see `ort_error`)."""
    try:
        yield
    except Exception as exc:
        if is_ort_error(exc):
            raise ort_error(exc, source, during) from None
        raise


class OrtExecutor:
    def __init__(self, model, gpu: bool = False, threads: int | None = None, source=None):
        """`source` names the user's model in errors (default: the path given)."""
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise RuntimeError("onnxruntime is not installed; use backend='numpy' or "
                               "pip install onnxruntime") from exc
        options = session_options(threads)
        graph = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
        self.source = source or (graph if isinstance(graph, str) else "the ONNX graph")
        with ort_errors(self.source, "to load the model"):
            self.session = ort.InferenceSession(graph, options,
                                                providers=available_providers(gpu))
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def run(self, feeds: dict[str, np.ndarray], outputs=None) -> dict[str, np.ndarray]:
        names = list(outputs) if outputs is not None else self.output_names
        with ort_errors(self.source, "running the model"):
            values = self.session.run(names, feeds)
        return dict(zip(names, values))
