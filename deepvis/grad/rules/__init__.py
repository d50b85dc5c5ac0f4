"""Per-op backward rules, looked up by ONNX op type.

A rule is `rule(ctx, node, dys) -> grads`: `dys` holds the gradient name of each node output (None
where nothing flows back), `grads` one entry per node input (None for inputs that carry no
gradient). Each module's docstring says what its ops do in every mode; modes only differ in
the rectifying activations.
"""
from __future__ import annotations

from ...errors import UnsupportedError
from ..fused import FUSED
from . import (activations, arithmetic, avgpool, batchnorm, conv, dense, eltwise_max, fused,
               layout, lrn, maxpool, normalization, reduce, resize, smooth, softmax, where)

RULES = {}
for _module in (activations, arithmetic, avgpool, batchnorm, conv, dense, eltwise_max, layout,
                lrn, maxpool, normalization, reduce, resize, smooth, softmax, where):
    RULES.update(_module.RULES)


def rule_for(node):
    """The backward rule of `node`'s op type; raises UnsupportedError naming the node."""
    if node.domain == FUSED:  # a chain of forward nodes merged by grad.fused
        return fused.RULES[node.op_type]
    if node.domain not in ("", "ai.onnx") or node.op_type not in RULES:
        domain = f"{node.domain}." if node.domain else ""
        raise UnsupportedError(f"no backward rule for op {domain}{node.op_type} "
                               f"(node {node.name or node.output[0]!r})")
    return RULES[node.op_type]
