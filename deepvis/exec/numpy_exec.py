"""Pure-NumPy ONNX executor: the same graphs as onnxruntime, with no onnxruntime installed.

All the per-node work that does not depend on the feeds happens once, at construction:
nodes are sorted topologically, attributes decoded into kernels (an unsupported op fails
here, naming the node), initializers become read-only arrays and nodes whose inputs are all
constant are evaluated. Each distinct output request gets a cached plan that runs only the
nodes those outputs need and drops every intermediate right after its last consumer, which
keeps peak memory near that of the widest layer (gradient graphs at batch 16).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from deepvis.errors import DeepvisError, ExecutionError, FormatError, UnsupportedError
from deepvis.graph.check import structural_problems

from .numpy_ops import OPS, NodeSpec, decode_attributes, numpy_dtype

# Folding may grow constants by at most this much beyond the inputs they replace.
_FOLD_SLACK_BYTES = 1 << 20


@dataclass(frozen=True)
class _Step:
    name: str
    op_type: str
    inputs: tuple
    outputs: tuple
    kernel: object


@dataclass(frozen=True)
class _Plan:
    feeds: tuple
    steps: tuple  # (step, names to drop after it)


class NumpyExecutor:
    """Runs an ONNX model (ModelProto or .onnx path, external data allowed) with NumPy."""

    def __init__(self, model, initializers=None):
        """`initializers` maps names to arrays used instead of the model's own tensors (with
        a path, external data is then not read): many graphs can share one copy of weights."""
        shared = dict(initializers or {})
        model = _load(model, external_data=not shared)
        problems = structural_problems(model)  # what onnxruntime refuses is refused here too
        if problems:
            raise FormatError(f"the NumPy executor cannot run this graph: {problems[0]}")
        graph = model.graph
        opset = _default_opset(model)
        self._constants = {t.name: (_frozen(shared[t.name].view()) if t.name in shared else
                                    _frozen(np.ascontiguousarray(numpy_helper.to_array(t))))
                           for t in graph.initializer}
        inputs = [i for i in graph.input if i.name not in self._constants]
        self.input_names = [i.name for i in inputs]
        self.output_names = [o.name for o in graph.output]
        self._input_dtypes = {i.name: _declared_dtype(i) for i in inputs}
        steps = _topological([_compile(node, opset) for node in graph.node],
                             set(self._constants) | set(self.input_names))
        self._steps = self._fold_constants(steps)
        self._plans: dict[tuple, _Plan] = {}

    def run(self, feeds: dict[str, np.ndarray], outputs=None) -> dict[str, np.ndarray]:
        """Values of `outputs` (default: all graph outputs; any tensor name is accepted).

        Feeds are converted to the declared input types; only the inputs the requested
        outputs depend on are needed. The results are the caller's to modify."""
        names = tuple(outputs) if outputs is not None else tuple(self.output_names)
        plan = self._plans.get(names)
        if plan is None:
            plan = self._plans[names] = self._plan(names)
        values = dict(self._constants)
        for name in plan.feeds:
            if name not in feeds:
                raise ValueError(f"missing feed for graph input {name!r}")
            values[name] = _frozen(np.asarray(feeds[name], dtype=self._input_dtypes[name]).view())
        for step, drop in plan.steps:
            results = _execute(step, [values[i] if i else None for i in step.inputs])
            for name, value in zip(step.outputs, results):
                if name:
                    values[name] = value if type(value) is np.ndarray else np.asarray(value)
            for name in drop:
                del values[name]
        return _detached({name: values[name] for name in names})

    def _fold_constants(self, steps: list[_Step]) -> list[_Step]:
        """Evaluate nodes whose inputs are all constant, unless that would grow memory much."""
        kept = []
        for step in steps:
            constant = all(not i or i in self._constants for i in step.inputs)
            args = [self._constants[i] if i else None for i in step.inputs] if constant else None
            if not constant or not _fold(step, args, self._constants):
                kept.append(step)
        used = {i for step in kept for i in step.inputs} | set(self.output_names)
        self._constants = {k: v for k, v in self._constants.items() if k in used}
        return kept

    def _plan(self, names: tuple) -> _Plan:
        needed = set(names)
        chosen = []
        for step in reversed(self._steps):
            if needed.intersection(step.outputs):
                chosen.append(step)
                needed.update(i for i in step.inputs if i)
        chosen.reverse()
        produced = {o for step in chosen for o in step.outputs if o}
        known = produced | set(self._constants) | set(self.input_names)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown output name(s) {unknown}; the graph outputs are "
                             f"{self.output_names}")
        keep = set(names) | set(self._constants)
        last_use = {}
        for index, step in enumerate(chosen):
            for name in step.inputs:
                last_use[name] = index
        steps = []
        for index, step in enumerate(chosen):
            drop = {i for i in step.inputs if i and last_use[i] == index}
            drop.update(o for o in step.outputs if o and o not in last_use)
            steps.append((step, tuple(sorted(drop - keep))))
        feeds = tuple(n for n in self.input_names if n in needed)
        return _Plan(feeds, tuple(steps))


def _load(model, external_data: bool = True) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (str, os.PathLike)):
        try:
            return onnx.load(os.fspath(model), load_external_data=external_data)
        except (OSError, ValueError) as exc:
            raise FormatError(f"cannot read ONNX model {os.fspath(model)!r}: {exc}") from exc
    raise TypeError(f"expected an onnx.ModelProto or a path, got {type(model).__name__}")


def _default_opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return entry.version
    return 1


def _declared_dtype(value_info: onnx.ValueInfoProto) -> np.dtype:
    if not value_info.type.HasField("tensor_type"):
        raise UnsupportedError(f"graph input {value_info.name!r} is not a tensor")
    return numpy_dtype(value_info.type.tensor_type.elem_type)


def _compile(node: onnx.NodeProto, opset: int) -> _Step:
    if node.domain not in ("", "ai.onnx") or node.op_type not in OPS:
        domain = f" (domain {node.domain!r})" if node.domain not in ("", "ai.onnx") else ""
        raise UnsupportedError(f"ONNX op {node.op_type!r}{domain} of node {node.name!r} is not "
                               "supported by the NumPy executor")
    spec = NodeSpec(node.name, node.op_type, decode_attributes(node), tuple(node.output), opset)
    return _Step(node.name, node.op_type, tuple(node.input), tuple(node.output),
                 OPS[node.op_type](spec))


def _topological(steps: list[_Step], available: set) -> list[_Step]:
    """Producers before consumers, keeping the file's order where it already is valid."""
    producer = {o: k for k, step in enumerate(steps) for o in step.outputs if o}
    state = [0] * len(steps)  # 0 new, 1 visiting, 2 placed
    ordered = []
    for root in range(len(steps)):
        stack = [(root, False)]
        while stack:
            k, expanded = stack.pop()
            if expanded:
                state[k] = 2
                ordered.append(steps[k])
                continue
            if state[k] == 2:
                continue
            if state[k] == 1:
                raise FormatError(f"the graph has a cycle through node {steps[k].name!r}")
            state[k] = 1
            stack.append((k, True))
            for name in reversed(steps[k].inputs):
                if not name or name in available:
                    continue
                if name not in producer:
                    raise FormatError(f"node {steps[k].name!r} reads tensor {name!r}, which no "
                                      "node, input or initializer provides")
                if state[producer[name]] == 1:
                    raise FormatError(f"the graph has a cycle through node {steps[k].name!r}")
                if state[producer[name]] == 0:
                    stack.append((producer[name], False))
    return ordered


def _fold(step: _Step, args: list, constants: dict) -> bool:
    """Evaluate a constant node into `constants`; False if it fails or grows memory much."""
    try:
        results = step.kernel(*args)
    except Exception:  # noqa: BLE001 - left in the graph; it raises there if ever needed
        return False
    budget = sum(a.nbytes for a in args if a is not None) + _FOLD_SLACK_BYTES
    values = [np.asarray(r) for r in results]
    if sum(v.nbytes for v in values) > budget:
        return False
    for name, value in zip(step.outputs, values):
        if name:
            constants[name] = _frozen(value)
    return True


def _execute(step: _Step, args: list):
    try:
        return step.kernel(*args)
    except DeepvisError:
        raise
    except (ValueError, IndexError, TypeError, ArithmeticError) as exc:
        raise ExecutionError(f"ONNX node {step.name!r} ({step.op_type}) failed: {exc}") from exc


def _frozen(array: np.ndarray) -> np.ndarray:
    """Constants and feeds are shared between runs and with callers: make them read-only."""
    array.flags.writeable = False
    return array


def _detached(results: dict) -> dict:
    """Outputs the caller may modify freely: read-only ones (constants, feeds, broadcasts)
    are copied, and so is any output sharing its buffer with an earlier one."""
    owners = set()
    for name, value in results.items():
        owner = _owner(value)
        if not value.flags.writeable or id(owner) in owners:
            value = results[name] = value.copy()
            owner = value
        owners.add(id(owner))
    return results


def _owner(array: np.ndarray) -> np.ndarray:
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array
