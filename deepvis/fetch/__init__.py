"""`deepvis fetch`: download published Caffe weights into the cache and convert them once.

The catalog (catalog.py) is data; download.py makes one verified file appear
atomically; install.py runs a whole model and converts it to ONNX.
"""
from . import catalog
from .catalog import MODELS, ModelEntry, RemoteFile
from .install import convert_model, fetch_model, fetched_onnx_path, model_dir

__all__ = ["MODELS", "ModelEntry", "RemoteFile", "catalog", "convert_model", "fetch_model",
           "fetched_onnx_path", "model_dir"]
