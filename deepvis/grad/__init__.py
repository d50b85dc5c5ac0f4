"""Backward passes (gradient, deconvnet, guided backprop) as ONNX graphs."""
from .builder import GRAD, MODES, SEED, build_grad_graph, seed_tensor_for
from .cache import GradCache, export_grad

__all__ = ["GRAD", "MODES", "SEED", "GradCache", "build_grad_graph", "export_grad",
           "seed_tensor_for"]
