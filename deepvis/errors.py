"""Errors a user can act on: the CLI prints them as one line, without a traceback."""


class DeepvisError(Exception):
    """Base class; the message names the file, layer or flag at fault."""


class FormatError(DeepvisError, ValueError):
    """A model, weight or mean file that cannot be read (truncated, corrupt, wrong kind)."""


class UnsupportedError(DeepvisError, NotImplementedError):
    """A layer type or ONNX op deepvis does not handle; names the layer/node and its type."""


class ExecutionError(DeepvisError, RuntimeError):
    """An executor refused a graph or failed running it; names the model file and the node."""
