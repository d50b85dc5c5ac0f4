"""ONNX graph building, metadata and loading."""
from .builder import OPSET, GraphBuilder

__all__ = ["GraphBuilder", "OPSET"]
