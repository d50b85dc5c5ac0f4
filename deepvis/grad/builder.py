"""Backward passes as ONNX graphs built from the forward graph.

`build_grad_graph` keeps the forward nodes a target needs, then walks the nodes between the
network input and the seed tensor in reverse order, asking the rule for each op type (see
`rules/`) for the gradient of its inputs. Branch gradients of a tensor used several times are
summed. The result runs on onnxruntime or the NumPy executor like any other graph, for any batch
size, and refers to the forward weights by their original names so that graphs can share them.
"""
from __future__ import annotations

import json
from collections import defaultdict
from typing import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..errors import DeepvisError, UnsupportedError
from ..graph import meta
from ..graph.builder import OPSET, GraphBuilder
from ..graph.info import GraphInfo, with_input_shape
from .context import GradContext
from .fused import fuse
from .rules import rule_for

MODES = ("grad", "deconv", "guided")
SEED, GRAD = "seed", "grad"
GRAD_META = "deepvis.grad"  # JSON: target, mode, seed tensor and input of a gradient graph
_DTYPES = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64}


def seed_tensor_for(forward: onnx.ModelProto, target: str) -> str:
    """Where a seed for blob `target` enters: below an in-place ReLU when the metadata says so."""
    return meta.read(forward)["seeds"].get(target, target)


def build_grad_graph(forward: onnx.ModelProto, target: str, mode: str = "grad",
                     extra_outputs: Sequence[str] = (),
                     seed_times_target: bool = False, input_shape=None) -> onnx.ModelProto:
    """Graph with inputs (data, seed) and outputs (grad, *extra_outputs).

    `grad` is the derivative at `data` of sum(seed * T) in `mode`, T being the tensor where a
    seed for `target` enters (see `seed_tensor_for`). With `seed_times_target`, the seed that
    enters is `seed * target` (the toolbox seeds a channel with its own activations), computed
    inside the graph so that forward and backward take one pass.

    `input_shape`, the shape of an actual input, fixes the input's dims past the batch for
    shape inference (a graph exported with a dynamic height and width); the result then takes
    inputs of that size only, at any batch. Tensors whose shape no inference finds still work
    where a rule needs only runtime shapes (the seed, reshapes, broadcasting).
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    extra_outputs = list(extra_outputs)
    if {SEED, GRAD} & set(extra_outputs):
        raise ValueError(f"{SEED!r} and {GRAD!r} are the gradient graph's own tensor names")
    opsets = _opsets(forward)
    info = GraphInfo(forward, input_shape)
    if not info.input_names:
        raise DeepvisError("the forward graph has no input")
    data = info.input_names[0]
    seed_at = seed_tensor_for(forward, target)
    for name in (target, seed_at, *extra_outputs):
        if not info.has(name):
            raise DeepvisError(f"no tensor named {name!r} in graph {forward.graph.name!r}")
    elem = info.elem_type(data)
    if elem not in _DTYPES:
        raise UnsupportedError(f"gradient graphs need a float32 or float64 input, "
                               f"{data!r} is {TensorProto.DataType.Name(elem)}")

    needed = [seed_at, target] if seed_times_target else [seed_at]
    nodes = _ancestor_nodes(info, [*needed, *extra_outputs])
    differentiable = _data_dependent(info, nodes, data)
    path, reaching = _backward_path(nodes, differentiable, seed_at)
    path = fuse(info, path, {seed_at})  # chains with a cheaper backward as one node
    for node in path:
        rule_for(node)  # fail before emitting anything

    builder = GraphBuilder(f"{forward.graph.name}/{mode}/{target}")
    _reserve_forward_names(builder, forward.graph)
    declared = next(i for i in forward.graph.input if i.name == data)
    builder.inputs.append(declared if input_shape is None
                          else with_input_shape(declared, input_shape))
    builder.inputs.append(_seed_input(info, seed_at, target, elem))
    builder.nodes.extend(nodes)

    ctx = GradContext(builder, info, mode, _DTYPES[elem], reaching)
    seed = (builder.node("Mul", [SEED, target], name="grad/seed_times_target")
            if seed_times_target else SEED)
    grad = _backward(ctx, path, seed_at, data, seed)
    builder.node("Identity", [grad], [GRAD], name="grad/output")
    builder.outputs.append(_renamed(builder.inputs[0], GRAD))
    for name in extra_outputs:
        builder.outputs.append(info.value_infos.get(name) or helper.make_tensor_value_info(
            name, info.elem_type(name) or elem, None))
    grad_meta = {"target": target, "mode": mode, "seed_tensor": seed_at, "input": data,
                 "seed_times_target": seed_times_target}
    return _finish(builder, forward, opsets, grad_meta)


def _ancestor_nodes(info: GraphInfo, names) -> list[onnx.NodeProto]:
    """Forward nodes needed to compute `names`, in graph order."""
    wanted, stack = set(), list(names)
    while stack:
        index = info.producer.get(stack.pop())
        if index is not None and index not in wanted:
            wanted.add(index)
            stack.extend(i for i in info.nodes[index].input if i)
    return [info.nodes[i] for i in sorted(wanted)]


def _data_dependent(info: GraphInfo, nodes, data: str) -> set[str]:
    """Float tensors computed from the input: the only ones that carry gradients."""
    reached = {data}
    for node in nodes:
        if any(i in reached for i in node.input):
            reached.update(o for o in node.output if o and info.is_float(o))
    return reached


def _backward_path(nodes, differentiable: set[str], seed_at: str):
    """Nodes on a differentiable path from the input to the seed tensor (graph order), and the
    tensors whose gradient those nodes need."""
    reaching = {seed_at} & differentiable
    path = []
    for node in reversed(nodes):
        if any(o in reaching for o in node.output):
            inputs = [i for i in node.input if i in differentiable]
            if inputs:
                path.append(node)
                reaching.update(inputs)
    return path[::-1], reaching


def _backward(ctx: GradContext, path, seed_at: str, data: str, seed: str = SEED) -> str:
    """Emit the backward nodes; return the name of the input gradient."""
    contributions: dict[str, list[str]] = defaultdict(list)
    if ctx.needs_grad(seed_at):
        contributions[seed_at].append(seed)

    def total(name: str) -> str | None:
        parts = contributions.get(name)
        if not parts:
            return None
        if len(parts) > 1:  # Sum broadcasts the parts that rules left to spread (ctx.spread)
            whole = ctx.builder.node("Sum", parts, name=f"grad/sum/{name}")
            if set(parts) <= ctx.spread_parts:
                ctx.spread_parts.add(whole)
            contributions[name] = parts = [whole]
        if parts[0] in ctx.spread_parts:
            contributions[name] = parts = [ctx.builder.node(
                "Expand", [parts[0], ctx.shape_of(name)], name=f"grad/spread/{name}")]
        return parts[0]

    for node in reversed(path):
        dys = [total(o) for o in node.output]
        if all(d is None for d in dys):
            continue
        ctx.node = node
        grads = rule_for(node)(ctx, node, dys)
        for name, g in zip(node.input, grads):
            if ctx.needs_grad(name):
                if g is None:
                    raise ctx.unsupported(f"no gradient rule with respect to input {name!r}")
                contributions[name].append(g)
    grad = total(data)
    if grad is None:  # the seed tensor does not depend on the input
        zero = onnx.numpy_helper.from_array(np.zeros(1, ctx.dtype))
        grad = ctx.builder.node("ConstantOfShape", [ctx.shape_of(data)], name="grad/zeros",
                                value=zero)
    return grad


def _reserve_forward_names(builder: GraphBuilder, graph: onnx.GraphProto) -> None:
    names = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
    if names & {SEED, GRAD}:
        raise UnsupportedError(f"the forward graph uses a tensor named {SEED!r} or {GRAD!r}, "
                               "the names a gradient graph reserves for its seed and result")
    names.update(node.name for node in graph.node)
    for name in names - {""}:
        builder.reserve(name)


def _seed_input(info: GraphInfo, seed_at: str, target: str, elem: int) -> onnx.ValueInfoProto:
    """The seed's declaration: a batch dim and the static dims inference found, or no shape at
    all where it found not even the rank (the executors take any seed then)."""
    shape = info.shape(seed_at) or info.shape(target)
    dims = None if shape is None else ["N"] + [d if d is not None else f"seed_d{i}"
                                               for i, d in enumerate(shape[1:], 1)]
    return helper.make_tensor_value_info(SEED, elem, dims)


def _check(model: onnx.ModelProto) -> None:
    """onnx's checker, which wants a shape on every graph input and output: one of unknown
    rank (a seed or extra output no inference could shape) is declared as a scalar for the
    check only; onnxruntime and the NumPy executor take declarations without a shape."""
    shapeless = [v for v in (*model.graph.input, *model.graph.output)
                 if not v.type.tensor_type.HasField("shape")]
    for value in shapeless:
        value.type.tensor_type.shape.SetInParent()
    try:
        onnx.checker.check_model(model)
    finally:
        for value in shapeless:
            value.type.tensor_type.ClearField("shape")


def _renamed(value_info: onnx.ValueInfoProto, name: str) -> onnx.ValueInfoProto:
    out = onnx.ValueInfoProto()
    out.CopyFrom(value_info)
    out.name = name
    return out


def _opsets(forward: onnx.ModelProto) -> dict[str, int]:
    """The forward's opset imports, the default domain raised to at least OPSET.

    Backward nodes need opset 16 (ScatterElements with reduction); forward ops did not change
    meaning between 13 and 17, but did before 13 (Softmax, ReduceSum), so older graphs are refused.
    """
    versions = {("" if o.domain == "ai.onnx" else o.domain): o.version
                for o in forward.opset_import}
    version = versions.get("", OPSET)
    if version < 13:
        raise UnsupportedError(f"gradient graphs need a forward graph of opset 13 or later "
                               f"(this one is opset {version})")
    versions[""] = max(OPSET, version)
    return versions


def _finish(builder: GraphBuilder, forward: onnx.ModelProto, opsets: dict[str, int],
            grad_meta: dict) -> onnx.ModelProto:
    """Build and check the graph, then attach the forward weights it uses.

    The checker sees the weights as typed inputs: it then validates the structure without
    serialising hundreds of megabytes, and the weights are copied into the result only once.
    """
    used = {i for node in builder.nodes for i in node.input}
    weights = [t for t in forward.graph.initializer if t.name in used]
    known = {i.name for i in builder.inputs} | {t.name for t in weights}
    builder.inputs.extend(i for i in forward.graph.input if i.name in used and i.name not in known)
    stubs = [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in weights]
    builder.inputs.extend(stubs)
    props = {p.key: p.value for p in forward.metadata_props}
    metadata = {key: props[key] for key in (meta.PREPROCESS, meta.SOURCE) if key in props}
    metadata[GRAD_META] = json.dumps(grad_meta)
    model = builder.build(metadata, check=False)
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in opsets.items())
    model.ir_version = max(model.ir_version, forward.ir_version)
    _check(model)
    if stubs:
        del model.graph.input[-len(stubs):]
    model.graph.initializer.extend(weights)
    return model
