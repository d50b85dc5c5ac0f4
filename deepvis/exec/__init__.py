"""Executors: run an ONNX graph on onnxruntime or on deepvis's own NumPy ops.

Both take the same ModelProto and the same feeds and return the same named
outputs, so every graph deepvis builds (forward or gradient) runs on either.
"""
from __future__ import annotations

BACKENDS = ("ort", "numpy")


def resolve_backend(backend: str = "auto") -> str:
    """`auto` is onnxruntime when it is installed, else the NumPy executor."""
    if backend == "auto":
        return "ort" if ort_available() else "numpy"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of auto, {', '.join(BACKENDS)}")
    return backend


def make_executor(model, backend: str = "auto", **options):
    """Build an executor for `model` (ModelProto or .onnx path) on `backend`."""
    backend = resolve_backend(backend)
    if backend == "ort":
        from .ort import OrtExecutor
        return OrtExecutor(model, **options)
    if backend == "numpy":
        from .numpy_exec import NumpyExecutor
        return NumpyExecutor(model, **options)


def ort_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True
