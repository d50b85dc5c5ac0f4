"""Chains of forward nodes whose backward one formula computes in fewer passes.

Differentiated node by node, an exported erf GELU, x * (1 + erf(x / sqrt 2)), takes about ten
elementwise passes over a block's widest tensor, and SiLU, x * sigmoid(x), six: on ConvNeXt
and EfficientNet those passes, not the matrix products, dominate a gradient step.
`fuse` replaces each such chain on the backward path by one node of the FUSED domain whose
rule (rules/fused.py) computes the same derivative from the forward's own values:

    erf GELU  y = [c *] x * (b + erf(d)), d = x / k or x * k:  the forward's d, a = b + erf(d)
    SiLU      y = x * s, s = Sigmoid(x):                      the forward's s

(b, c and k constant scalars). The fused node's `inner` attribute names those tensors.

A chain is fused only where its inner tensors feed nothing but the next node of the chain and
no seed enters at one of them, so no other gradient would have flowed through them.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import onnx

FUSED = "deepvis.fused"


def fuse(info, path: list, pinned: set[str]) -> list:
    """`path` (forward nodes in graph order) with each fusable chain replaced by one node,
    placed where the chain's last node was. `pinned` tensors (the seed's) are never inner."""
    uses = Counter(i for node in info.nodes for i in node.input if i)
    on_path = {id(node) for node in path}

    def single(name: str):
        """The one consumer of an inner tensor, or None."""
        if name in pinned or uses[name] != 1:
            return None
        return next((n for n in info.nodes if name in n.input and id(n) in on_path), None)

    replaced, fused_at = set(), {}
    for node in path:
        for match in (_erf_gelu, _silu):
            found = match(info, node, single)
            if found and not replaced.intersection(map(id, found[0])):
                chain, fused = found
                replaced.update(id(n) for n in chain)
                fused_at[id(chain[-1])] = fused
                break
    return [fused_at.get(id(n), n) for n in path if id(n) not in replaced or id(n) in fused_at]


def _erf_gelu(info, erf, single):
    """Div|Mul(x, k) -> Erf -> Add(b) -> Mul(x or Mul(x, c), a), from the Erf node."""
    if erf.op_type != "Erf":
        return None
    d, e = erf.input[0], erf.output[0]
    scaling = _producer(info, d)
    x = _scaled_operand(info, scaling, ("Div", "Mul"))
    if x is None or single(d) is not erf:
        return None
    shift = single(e)
    if shift is None or shift.op_type != "Add" or _scalar(info, _other(shift, e)) is None:
        return None
    a = shift.output[0]
    product = single(a)
    if product is None or product.op_type != "Mul":
        return None
    factor, scale = _other(product, a), []
    if factor != x:
        halving = _producer(info, factor)
        if _scaled_operand(info, halving, ("Mul",)) != x or single(factor) is not product:
            return None
        scale = [_other(halving, x)]
    chain = [scaling, erf, shift] + ([halving] if scale else []) + [product]
    return chain, _node("ErfGelu", x, product, inner=[d, a, *scale])


def _silu(info, sigmoid, single):
    """Sigmoid(x) -> Mul(x, s), from the Sigmoid node."""
    if sigmoid.op_type != "Sigmoid":
        return None
    x, s = sigmoid.input[0], sigmoid.output[0]
    product = single(s)
    if product is None or product.op_type != "Mul" or _other(product, s) != x:
        return None
    return [sigmoid, product], _node("Silu", x, product, inner=[s])


def _node(op_type: str, x: str, last, **attrs) -> onnx.NodeProto:
    return onnx.helper.make_node(op_type, [x], [last.output[0]], name=last.name or None,
                                 domain=FUSED, **attrs)


def _producer(info, name: str):
    index = info.producer.get(name)
    return info.nodes[index] if index is not None else None


def _scaled_operand(info, node, ops) -> str | None:
    """x of `x op k` (or `k * x`) with k a constant scalar, else None."""
    if node is None or node.op_type not in ops or len(node.input) != 2:
        return None
    first, second = node.input
    if _scalar(info, second) is not None and _scalar(info, first) is None:
        return first
    if node.op_type == "Mul" and _scalar(info, first) is not None and \
            _scalar(info, second) is None:
        return second
    return None


def _scalar(info, name: str) -> float | None:
    value = info.value(name)
    if value is None or np.size(value) != 1:
        return None
    return float(np.asarray(value).reshape(()))


def _other(node, name: str) -> str:
    """The operand of a binary node that is not `name` (`name` itself when both are)."""
    first, second = node.input
    return second if first == name else first
