"""An image's results that do not depend on how many images share its batch.

onnxruntime multiplies a single row (batch 1) by a weight matrix with a matrix-vector kernel
that sums in another order than its matrix-matrix kernel, so a fully connected layer gives an
image slightly different bits alone than inside a batch. Every other op computes each image on
its own. Giving each such product one extra zero row keeps the matrix-matrix kernel at batch 1
too: a unit optimized alone then follows exactly the path it follows inside a batch of units,
for the price of one more row per product.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .info import GraphInfo


def pad_batch_rows(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with every row-batched Gemm and 2-D MatMul fed one extra zero row, sliced off
    again after the product (changed in place and returned)."""
    info = GraphInfo(model)
    graph = model.graph
    taken = {name for node in graph.node for name in (*node.input, *node.output, node.name)}
    taken |= {t.name for t in graph.initializer} | {i.name for i in graph.input}

    def fresh(base: str) -> str:
        name, i = base, 0
        while name in taken:
            i += 1
            name = f"{base}_{i}"
        taken.add(name)
        return name

    def const(base: str, values) -> str:
        name = fresh(base)
        graph.initializer.append(numpy_helper.from_array(np.asarray(values, np.int64), name))
        return name

    nodes = []
    for node in graph.node:
        width = _batched_row_width(node, info)
        if width is None:
            nodes.append(node)
            continue
        a, y, label = node.input[0], node.output[0], node.name or node.output[0]
        zero = helper.make_tensor("zero", info.elem_type(a), [1], [0])
        zeros = fresh(f"{label}/zero_row")
        padded, wide = fresh(f"{label}/padded_rows"), fresh(f"{y}/padded_rows")
        nodes.append(helper.make_node("ConstantOfShape", [const(f"{label}/row_shape", [1, width])],
                                      [zeros], name=fresh(f"{label}/ZeroRow"), value=zero))
        nodes.append(helper.make_node("Concat", [a, zeros], [padded], name=fresh(f"{label}/PadRows"),
                                      axis=0))
        node.input[0], node.output[0] = padded, wide
        nodes.append(node)
        nodes.append(helper.make_node("Slice", [wide, const(f"{label}/row_start", [0]),
                                                const(f"{label}/row_end", [-1]),
                                                const(f"{label}/row_axis", [0])],
                                      [y], name=fresh(f"{label}/DropPadRow")))
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def _batched_row_width(node: onnx.NodeProto, info: GraphInfo) -> int | None:
    """K when the node multiplies an (N, K) operand with a batch-sized N as its rows."""
    if node.domain not in ("", "ai.onnx") or node.op_type not in ("Gemm", "MatMul"):
        return None
    if node.op_type == "Gemm" and any(a.name == "transA" and a.i for a in node.attribute):
        return None
    shape = info.shape(node.input[0])
    if shape is None or len(shape) != 2 or shape[0] is not None or shape[1] is None:
        return None
    return shape[1]
