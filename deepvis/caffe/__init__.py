"""Caffe networks without Caffe: parse .prototxt/.caffemodel files, convert them to ONNX.

    from deepvis.caffe import import_caffe
    model = import_caffe("deploy.prototxt", "weights.caffemodel", out_path="net.onnx")
"""
from .convert import import_caffe, net_to_onnx
from .mean import load_mean

__all__ = ["import_caffe", "net_to_onnx", "load_mean"]
