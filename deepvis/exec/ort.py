"""onnxruntime executor (CPU, or CUDA when onnxruntime-gpu is installed and asked for)."""
from __future__ import annotations

import sys

import numpy as np
import onnx

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
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    return options


class OrtExecutor:
    def __init__(self, model, gpu: bool = False, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise RuntimeError("onnxruntime is not installed; use backend='numpy' or "
                               "pip install onnxruntime") from exc
        options = session_options(threads)
        source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
        self.session = ort.InferenceSession(source, options, providers=available_providers(gpu))
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def run(self, feeds: dict[str, np.ndarray], outputs=None) -> dict[str, np.ndarray]:
        names = list(outputs) if outputs is not None else self.output_names
        values = self.session.run(names, feeds)
        return dict(zip(names, values))
