"""Non-rectifying activations and gates: the true derivative in every mode.

deconv and guided backprop are defined for rectifiers only (Zeiler & Fergus 2014; Springenberg
et al. 2015); here, as in Captum, every other activation keeps its true derivative in all
three modes (see activations.py for the rectifiers and the README's "Backward modes"). So a
SiLU (x * Sigmoid(x)), a GELU (an Erf) or a squeeze-excitation gate (a Sigmoid or
HardSigmoid times a tensor) has one backward, however the exporter spelled it.

Sigmoid      dy * y (1 - y)
Tanh         dy * (1 - y^2)
Erf          dy * 2/sqrt(pi) * exp(-x^2)
Softplus     dy * Sigmoid(x)
Softsign     dy / (1 + |x|)^2
Elu          dy where x > 0, dy * (y + alpha) elsewhere
Selu         dy * gamma where x > 0, dy * (y + gamma alpha) elsewhere
HardSigmoid  dy * alpha where 0 < alpha x + beta < 1, else 0
HardSwish    0 where x < -3, dy * (x/3 + 1/2) where -3 <= x <= 3, dy where x > 3
             (the kinks as torch's hardswish_backward puts them)
"""
from __future__ import annotations

import math


def sigmoid(ctx, node, dys):
    y = node.output[0]
    return [ctx.emit("Mul", [dys[0], ctx.emit("Mul", [y, ctx.emit("Sub", [ctx.fconst(1.0), y])])])]


def tanh(ctx, node, dys):
    y = node.output[0]
    slope = ctx.emit("Sub", [ctx.fconst(1.0), ctx.emit("Mul", [y, y])])
    return [ctx.emit("Mul", [dys[0], slope])]


def erf(ctx, node, dys):
    x = node.input[0]
    bell = ctx.emit("Exp", [ctx.emit("Neg", [ctx.emit("Mul", [x, x])])])
    slope = ctx.emit("Mul", [bell, ctx.fconst(2.0 / math.sqrt(math.pi))])
    return [ctx.emit("Mul", [dys[0], slope])]


def softplus(ctx, node, dys):
    return [ctx.emit("Mul", [dys[0], ctx.emit("Sigmoid", [node.input[0]])])]


def softsign(ctx, node, dys):
    root = ctx.emit("Add", [ctx.fconst(1.0), ctx.emit("Abs", [node.input[0]])])
    return [ctx.emit("Div", [dys[0], ctx.emit("Mul", [root, root])])]


def elu(ctx, node, dys):
    return [_exponential_unit(ctx, node, dys[0], 1.0, ctx.attr("alpha", 1.0))]


def selu(ctx, node, dys):
    gamma = ctx.attr("gamma", 1.05070102214813232421875)
    alpha = ctx.attr("alpha", 1.67326319217681884765625)
    return [_exponential_unit(ctx, node, dys[0], gamma, gamma * alpha)]


def _exponential_unit(ctx, node, dy, positive: float, offset: float) -> str:
    """Slope `positive` for x > 0, y + offset (= the derivative of the exponential side)
    elsewhere."""
    x, y = node.input[0], node.output[0]
    slope = ctx.emit("Where", [ctx.emit("Greater", [x, ctx.fconst(0.0)]), ctx.fconst(positive),
                               ctx.emit("Add", [y, ctx.fconst(offset)])])
    return ctx.emit("Mul", [dy, slope])


def hard_sigmoid(ctx, node, dys):
    alpha, beta = ctx.attr("alpha", 0.2), ctx.attr("beta", 0.5)
    z = ctx.emit("Add", [ctx.emit("Mul", [node.input[0], ctx.fconst(alpha)]), ctx.fconst(beta)])
    inside = ctx.emit("And", [ctx.emit("Greater", [z, ctx.fconst(0.0)]),
                              ctx.emit("Less", [z, ctx.fconst(1.0)])])
    return [ctx.masked(ctx.emit("Mul", [dys[0], ctx.fconst(alpha)]), inside)]


def hard_swish(ctx, node, dys):
    x = node.input[0]
    ramp = ctx.emit("Add", [ctx.emit("Mul", [x, ctx.fconst(1.0 / 3.0)]), ctx.fconst(0.5)])
    upper = ctx.emit("Where", [ctx.emit("Greater", [x, ctx.fconst(3.0)]), ctx.fconst(1.0), ramp])
    slope = ctx.emit("Where", [ctx.emit("Less", [x, ctx.fconst(-3.0)]), ctx.fconst(0.0), upper])
    return [ctx.emit("Mul", [dys[0], slope])]


RULES = {"Sigmoid": sigmoid, "Tanh": tanh, "Erf": erf, "Softplus": softplus,
         "Softsign": softsign, "Elu": elu, "Selu": selu, "HardSigmoid": hard_sigmoid,
         "HardSwish": hard_swish}
