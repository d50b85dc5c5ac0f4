"""Gemm and MatMul (every mode: the true derivative, i.e. the transposed weights).

Gemm  y = alpha * A' B' + beta * C with A' = A or A^T (transA), B' likewise:
      dA' = alpha dy B'^T and dB' = alpha A'^T dy, each written as one Gemm whose trans flags
      also undo transA/transB; dC = beta * dy summed over C's broadcast axes.
MatMul  dA = dy B^T, dB = A^T dy (transposing the last two axes), summed over broadcast batch
      axes; 1-D operands are refused.
"""
from __future__ import annotations

from .broadcast import unbroadcast


def gemm(ctx, node, dys):
    a, b = node.input[:2]
    dy = dys[0]
    alpha, beta = ctx.attr("alpha", 1.0), ctx.attr("beta", 1.0)
    trans_a, trans_b = ctx.attr("transA", 0), ctx.attr("transB", 0)
    grads = [None] * len(node.input)
    if ctx.needs_grad(a):
        grads[0] = (ctx.emit("Gemm", [dy, b], alpha=alpha, transB=1 - trans_b) if not trans_a
                    else ctx.emit("Gemm", [b, dy], alpha=alpha, transA=trans_b, transB=1))
    if ctx.needs_grad(b):
        grads[1] = (ctx.emit("Gemm", [a, dy], alpha=alpha, transA=1 - trans_a) if not trans_b
                    else ctx.emit("Gemm", [dy, a], alpha=alpha, transA=1, transB=trans_a))
    if len(node.input) > 2 and ctx.needs_grad(node.input[2]):
        scaled = ctx.emit("Mul", [dy, ctx.fconst(beta)])
        grads[2] = unbroadcast(ctx, scaled, node.input[2], node.output[0])
    return grads


def matmul(ctx, node, dys):
    a, b = node.input
    dy, out = dys[0], node.output[0]
    grads = [None, None]
    if ctx.needs_grad(a):
        grads[0] = unbroadcast(ctx, ctx.emit("MatMul", [dy, _swap_last(ctx, b)]), a, out)
    if ctx.needs_grad(b):
        grads[1] = unbroadcast(ctx, ctx.emit("MatMul", [_swap_last(ctx, a), dy]), b, out)
    return grads


def _swap_last(ctx, name: str) -> str:
    shape = ctx.shape(name)
    if shape is None or len(shape) < 2:
        raise ctx.unsupported(f"needs operands of known rank >= 2, {name!r} is not")
    perm = list(range(len(shape)))
    perm[-2:] = perm[-1], perm[-2]
    return ctx.emit("Transpose", [name], perm=perm)


RULES = {"Gemm": gemm, "MatMul": matmul}
