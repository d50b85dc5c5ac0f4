"""Resize: nearest by indexing (exact copies), linear and cubic as one matrix product per
resized axis (see deepvis.graph.resize for the coordinate maths)."""
from __future__ import annotations

import numpy as np

from deepvis.graph.resize import axis_matrix, check_attributes, output_geometry

from .node import NodeSpec


def resize(spec: NodeSpec):
    check_attributes(spec.attrs, f"ONNX node {spec.name!r}")
    if spec.attr("coordinate_transformation_mode") == "tf_crop_and_resize":
        raise spec.unsupported("tf_crop_and_resize")
    nearest = spec.attr("mode", "nearest") == "nearest"

    def run(x, roi=None, scales=None, sizes=None):
        out_shape, factors = output_geometry(x.shape, scales, sizes, spec.attr("axes"))
        y = x
        for axis, (n_in, n_out) in enumerate(zip(x.shape, out_shape)):
            if n_in == n_out and factors[axis] == 1.0:
                continue
            matrix = axis_matrix(n_in, n_out, factors[axis], spec.attrs)
            if nearest:
                y = np.take(y, matrix.argmax(axis=1), axis=axis)
            else:
                moved = np.moveaxis(y, axis, -1)
                y = np.moveaxis(moved @ matrix.T.astype(x.dtype), -1, axis)
        return (np.ascontiguousarray(y),)

    return run


KERNELS = {"Resize": resize}
