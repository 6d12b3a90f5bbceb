"""Run an int8 graph inside one byte arena at a memory plan's offsets: the proof that a plan works.

Every activation is a view of the same `bytearray` at its planned offset, as in the C code that
TinyEngine generates; in-place ops run the way their kernels do, so a plan that lets one tensor
overwrite another too early corrupts the result:
- depthwise conv in place: channel by channel, each input channel copied to a one-channel scratch
  before its output channel is written (MCUNet section 3.2);
- ADD in place, and a conv whose ADD is fused into it: row by row, each row read before it is
  overwritten;
- RESHAPE: the same bytes, nothing moves;
- QUANTIZE over its float input: element by element forward, each float read before its int8
  byte (at a lower or equal address) is written, so writing the whole result at once is the same.
`run` compares every tensor, when it is made and whenever it is read, with the layer-by-layer
reference and says which tensor was corrupted by which op.
"""
from __future__ import annotations

import numpy as np

from . import int8ref
from .schedule import Plan


class CorruptionError(AssertionError):
    """A tensor in the arena no longer holds its value when an op reads it."""


def _views(plan: Plan, arena: np.ndarray) -> dict[str, np.ndarray]:
    g = plan.graph
    return {name: arena[p.offset:p.offset + p.size].view(g.tensors[name].dtype).reshape(g.shape(name))
            for name, p in plan.tensors.items()}


def _depthwise_in_place(g, op, x: np.ndarray, y: np.ndarray) -> None:
    """Output channel c from a scratch copy of input channel c, then written over it."""
    for c in range(x.shape[-1]):
        scratch = np.zeros_like(x)
        scratch[..., c] = x[..., c]
        y[..., c] = int8ref.run_op(g, op, [scratch])[..., c]


def _rows(g, add_op, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """ADD row by row: each row of both operands read before the row of `out` is written."""
    for r in range(out.shape[1]):
        out[:, r] = int8ref.run_op(g, add_op, [a[:, r:r + 1].copy(), b[:, r:r + 1].copy()])[:, 0]


def run(plan: Plan, x: np.ndarray) -> list[np.ndarray]:
    """Execute `plan.graph` in an arena laid out by `plan`; returns the outputs (copies)."""
    g = plan.graph
    ref = int8ref.tensors(g, x)
    arena = np.zeros(plan.arena_bytes, np.uint8)
    v = _views(plan, arena)
    v[g.inputs[0]][...] = x
    inplace = {y: x_ for x_, y in plan.pairs}
    fused_conv = {y: (r, z) for r, y, z in plan.fused}
    fused_add = {z for _, _, z in plan.fused}

    def read(t: str, i: int) -> np.ndarray:
        if not np.array_equal(v[t], ref[t]):
            raise CorruptionError(f"'{t}' was overwritten before op {i} ('{g.ops[i].name}') read it")
        return v[t].copy()

    for i, op in enumerate(g.ops):
        made = op.output
        if made in fused_add:
            continue  # the conv before it wrote the sum
        ins = [read(t, i) for t in g.activations(op)]
        if made in fused_conv:
            r, made = fused_conv[made]
            read(r, i)
            conv_out, add = int8ref.run_op(g, op, ins), g.ops[i + 1]
            a, b = (v[r], conv_out) if add.inputs[0] == r else (conv_out, v[r])
            _rows(g, add, a, b, v[made])
        elif made in inplace and g.is_depthwise(op):
            _depthwise_in_place(g, op, v[op.inputs[0]], v[made])
        elif made in inplace and op.kind == "add":
            _rows(g, op, v[op.inputs[0]], v[op.inputs[1]], v[made])
        elif not (made in inplace and op.kind == "reshape"):  # a reshape in place moves nothing
            v[made][...] = int8ref.run_op(g, op, ins)
        if not np.array_equal(v[made], ref[made]):
            raise CorruptionError(f"op {i} ('{op.name}') left a wrong '{made}' in the arena")
    return [v[o].copy() for o in g.outputs]
