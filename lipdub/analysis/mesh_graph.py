"""A TFLite model with MediaPipe's custom operations, run as LiteRT segments and numpy steps.

LiteRT refuses a model holding operations it does not know. This module cuts the model's graph at
them, once per process: each run of standard operations between custom ones becomes a small model
of its own (the same tensors and weights, a subset of the operators) that LiteRT runs, and the
custom operations run in numpy between them (:mod:`lipdub.analysis.mesh_ops`). The model file
itself is used as shipped; nothing is converted or re-trained.

Cutting: a tensor's *level* is the number of custom operations on its longest path from the
input; a standard operation joins the segment of its inputs' level (weight-only operations, the
fp16 → fp32 dequantizations, join the segment that uses them), a custom one runs after the
segment of its inputs. The face mesh with attention gives four segments: the backbone and coarse
mesh, the crop matrices' scaling, the lip / eye / iris heads, the outputs' reshapes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter
from flatbuffers import flexbuffers

from lipdub.analysis.mesh_ops import CUSTOM_OPS


@dataclass(frozen=True)
class _Segment:
    """Standard operations LiteRT runs as one small model."""

    model: bytes  # The small model (.tflite bytes); its tensors are named "t<graph index>".
    inputs: tuple[int, ...]  # Graph tensors it reads.
    outputs: tuple[int, ...]  # Graph tensors it makes that later steps (or the caller) read.


@dataclass(frozen=True)
class _Custom:
    """One custom operation, run in numpy."""

    kind: str  # Its name in the model, a key of CUSTOM_OPS.
    inputs: tuple[int, ...]  # Graph tensors.
    output: int
    options: dict[str, Any]  # Its custom options (a flexbuffer map in the model).


@dataclass(frozen=True)
class _Plan:
    """A model cut into steps."""

    steps: tuple[_Segment | _Custom, ...]
    input: int  # The model's input tensor.
    outputs: dict[str, int]  # The model's outputs by name.


class SplitGraph:
    """The model in ``data`` (a .tflite with one subgraph), runnable despite custom operations.

    Arguments:
        data: the model file's bytes.
        threads: LiteRT threads per segment.

    Raises:
        ValueError: the model has a custom operation lipdub does not implement.
    """

    def __init__(self, data: bytes, threads: int = 1) -> None:
        self.plan = _cut(data)
        self._runners: list[tuple[Interpreter, list[tuple[int, int]], list[tuple[int, int]]]] = []
        for step in self.plan.steps:
            if isinstance(step, _Segment):
                it = Interpreter(model_content=step.model, num_threads=threads)
                it.allocate_tensors()
                by_in = {d["name"]: d["index"] for d in it.get_input_details()}
                by_out = {d["name"]: d["index"] for d in it.get_output_details()}
                ins = [(t, by_in[f"t{t}"]) for t in step.inputs]
                self._runners.append((it, ins, [(t, by_out[f"t{t}"]) for t in step.outputs]))

    def run(self, x: np.ndarray, first_segment_only: bool = False) -> dict[str, np.ndarray]:
        """The model's outputs by name for input ``x``; with ``first_segment_only`` only those
        the first segment makes (the coarse mesh and the face flag: no custom operation)."""
        values: dict[int, np.ndarray] = {self.plan.input: x}
        runners = iter(self._runners)
        for step in self.plan.steps:
            if isinstance(step, _Segment):
                it, ins, outs = next(runners)
                for t, i in ins:
                    it.set_tensor(i, values[t])
                it.invoke()
                for t, i in outs:
                    values[t] = it.get_tensor(i).copy()
                if first_segment_only:
                    break
            else:
                args = [values[t] for t in step.inputs]
                values[step.output] = CUSTOM_OPS[step.kind](*args, **step.options)
        return {n: values[t] for n, t in self.plan.outputs.items() if t in values}


@cache
def _cut(data: bytes) -> _Plan:
    """Cut the model in ``data`` into steps, once per process and model (see the docstring)."""
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    graph = model.subgraphs[0]
    customs = {i: c.customCode.decode() for i, c in enumerate(model.operatorCodes) if c.customCode}
    unknown = set(customs.values()) - set(CUSTOM_OPS)
    if unknown:
        raise ValueError(f"the model has custom operations lipdub lacks: {sorted(unknown)}")
    names = [t.name.decode() for t in graph.tensors]
    for i, tensor in enumerate(graph.tensors):  # Unique names: segments find tensors by them.
        tensor.name = f"t{i}".encode()
    ops = graph.operators

    def constant(t: int) -> bool:
        data = model.buffers[graph.tensors[t].buffer].data
        return data is not None and len(data) > 0

    consumers: dict[int, list[int]] = {}
    for k, op in enumerate(ops):
        for t in op.inputs:
            consumers.setdefault(int(t), []).append(k)
    weights_only = {
        k
        for k, op in enumerate(ops)
        if op.opcodeIndex not in customs and all(t < 0 or constant(int(t)) for t in op.inputs)
    }
    level: dict[int, int] = {}
    op_level: dict[int, int] = {}
    for k, op in enumerate(ops):  # Operators are stored in execution order.
        if k in weights_only:
            continue
        lv = max([level.get(int(t), 0) for t in op.inputs if t >= 0] or [0])
        op_level[k] = lv
        for t in op.outputs:
            level[int(t)] = lv + 1 if op.opcodeIndex in customs else lv
    for k in weights_only:
        op_level[k] = min(op_level[c] for t in ops[k].outputs for c in consumers[int(t)])
    wanted = {int(t) for t in graph.outputs}
    steps: list[_Segment | _Custom] = []
    for lv in range(max(op_level.values()) + 1):
        here = [k for k in sorted(op_level) if op_level[k] == lv]
        standard = [k for k in here if ops[k].opcodeIndex not in customs]
        if standard:
            steps.append(_segment(model, standard, consumers, wanted, constant))
        for k in here:
            if ops[k].opcodeIndex in customs:
                raw = ops[k].customOptions
                options = dict(flexbuffers.Loads(bytes(raw))) if raw is not None else {}
                inputs = tuple(int(t) for t in ops[k].inputs)
                kind = customs[ops[k].opcodeIndex]
                steps.append(_Custom(kind, inputs, int(ops[k].outputs[0]), options))
    outputs = {names[int(t)]: int(t) for t in graph.outputs}
    return _Plan(tuple(steps), int(graph.inputs[0]), outputs)


def _segment(
    model: Any,
    ops: list[int],
    consumers: dict[int, list[int]],
    wanted: set[int],
    constant: Callable[[int], bool],
) -> _Segment:
    """A model of operators ``ops`` of ``model``: its inputs are the tensors they read that none
    of them makes (weights aside), its outputs those they make that others read (or the model's)."""
    graph = model.subgraphs[0]
    inside = set(ops)
    made = {int(t) for k in ops for t in graph.operators[k].outputs}
    read = {int(t) for k in ops for t in graph.operators[k].inputs if t >= 0}
    ins = sorted(t for t in read if t not in made and not constant(t))
    read_outside = {t for t in made if any(c not in inside for c in consumers.get(t, []))}
    outs = sorted(t for t in made if t in wanted or t in read_outside)
    part = copy.deepcopy(model)
    sub = part.subgraphs[0]
    sub.operators = [sub.operators[k] for k in ops]
    sub.inputs, sub.outputs = np.array(ins, np.int32), np.array(outs, np.int32)
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(part.Pack(builder), file_identifier=b"TFL3")
    return _Segment(bytes(builder.Output()), tuple(ins), tuple(outs))
