"""Graph rewrites that keep tensors an engine never needs out of the graph, exactly.

- PAD folded into the convolution it feeds. TFLite converters (and PyTorch exporters: ai-edge-torch,
  onnx2tf) write an explicit PAD before a stride-2 conv whose padding is neither SAME nor VALID;
  run as an op it materialises a padded copy of the feature map, which on MCUNet's own models is
  the peak of memory (TFLM pays it, TinyEngine's kernels pad on the fly). An int8 PAD fills with
  its output zero point, and a conv's padded positions hold the input zero point (DESIGN.md
  section 4: they contribute nothing after the offset), so a constant PAD of H and W whose output
  has the input's scale and zero point is the same as adding its amounts to the conv's own
  (top, bottom, left, right) pads: every stage then sees one op, and a depthwise stays in place.
- An input layout TRANSPOSE (NCHW -> NHWC, what PyTorch exporters put first) folded into the
  graph input: the model then takes NHWC as TFLM users feed the converted layout, and profiles,
  schedules, runs patch by patch and deploys like a native NHWC model. `meta["input_perm"]`
  records the permutation, so `x.transpose(meta["input_perm"])` is the folded model's input for
  an input `x` of the original file. Other transposes stay ops.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .ir import Graph, Op, Quant


def _consumers(g: Graph, name: str) -> list[Op]:
    return [op for op in g.ops if name in op.inputs]


def _same_quant(a: Quant | None, b: Quant | None) -> bool:
    """Identical affine parameters (both absent counts: a float graph pads with 0.0 too)."""
    if a is None or b is None:
        return a is b
    return a.axis == b.axis and np.array_equal(a.scale, b.scale) and np.array_equal(a.zero_point, b.zero_point)


def _foldable_pad(g: Graph, op: Op) -> Op | None:
    """The conv2d that `op` (a PAD) can be folded into, or None: a rank-4 PAD of H and W only,
    output quantized like its input, read by exactly one conv2d and not a graph output."""
    if op.kind != "pad" or len(op.attrs["paddings"]) != 4 or op.output in g.outputs:
        return None
    p = op.attrs["paddings"]
    if tuple(p[0]) != (0, 0) or tuple(p[3]) != (0, 0):
        return None
    if not _same_quant(g.tensors[op.inputs[0]].quant, g.tensors[op.output].quant):
        return None
    users = _consumers(g, op.output)
    if len(users) != 1 or users[0].kind != "conv2d" or users[0].inputs[0] != op.output:
        return None
    return users[0]


def fold_pads(g: Graph) -> Graph:
    """A copy of `g` with every foldable PAD (see the module doc) merged into its conv's pads;
    the result computes the same integers with one tensor fewer per PAD."""
    ops, dropped = [], set()
    folded: dict[str, tuple[str, tuple[int, int, int, int]]] = {}  # conv name -> (new input, added pads)
    for op in g.ops:
        conv = _foldable_pad(g, op)
        if conv is not None:
            (pt, pb), (pl, pr) = op.attrs["paddings"][1:3]
            folded[conv.name] = (op.inputs[0], (pt, pb, pl, pr))
            dropped.add(op.output)
    if not folded:
        return g
    for op in g.ops:
        if op.output in dropped:
            continue
        if op.name in folded:
            x, extra = folded[op.name]
            pads = tuple(a + b for a, b in zip(op.attrs["pads"], extra))
            op = dataclasses.replace(op, inputs=[x, *op.inputs[1:]], attrs={**op.attrs, "pads": pads})
        ops.append(op)
    return _rebuilt(g, ops, dropped)


def fold_input_transpose(g: Graph) -> Graph:
    """A copy of `g` whose graph input takes the layout a leading TRANSPOSE produces (NCHW -> NHWC
    exported from PyTorch), that TRANSPOSE removed; `meta["input_perm"]` records its permutation.
    The input may pass through QUANTIZE first (elementwise, so it commutes with the transpose)."""
    if len(g.inputs) != 1:
        return g
    chain, name = [], g.inputs[0]
    while True:
        users = _consumers(g, name)
        if len(users) != 1 or name in g.outputs:
            return g
        if users[0].kind == "transpose":
            break
        if users[0].kind != "quantize":
            return g
        chain.append(users[0])
        name = users[0].output
    tr = users[0]
    if tr.output in g.outputs:
        return g
    perm = tuple(tr.attrs["perm"])
    out = dataclasses.replace(g, tensors=dict(g.tensors), ops=[], inputs=list(g.inputs), outputs=list(g.outputs),
                              meta={**g.meta, "input_perm": perm})
    for t in [g.inputs[0], *(op.output for op in chain)]:
        old = g.tensors[t]
        out.tensors[t] = dataclasses.replace(old, shape=tuple(old.shape[p] for p in perm))
    out.ops = [_renamed(op, tr.output, name) for op in g.ops if op is not tr]
    del out.tensors[tr.output]
    if len(g.tensors[out.inputs[0]].shape) == 4:
        out.meta["resolution"] = out.tensors[out.inputs[0]].shape[1]
    _drop_tflite_names(out, {tr.output})
    return out


def fold(g: Graph) -> Graph:
    """Every rewrite above: the input transpose, then the PADs."""
    return fold_pads(fold_input_transpose(g))


def _renamed(op: Op, old: str, new: str) -> Op:
    """`op` reading tensor `new` where it read `old`."""
    if old not in op.inputs:
        return op
    return dataclasses.replace(op, inputs=[new if n == old else n for n in op.inputs])


def _rebuilt(g: Graph, ops: list[Op], dropped: set[str]) -> Graph:
    """`g` with `ops` and without the tensors in `dropped`."""
    out = dataclasses.replace(g, tensors={k: t for k, t in g.tensors.items() if k not in dropped}, ops=ops,
                              inputs=list(g.inputs), outputs=list(g.outputs), meta=dict(g.meta))
    _drop_tflite_names(out, dropped)
    return out


def _drop_tflite_names(g: Graph, dropped: set[str]) -> None:
    """Forget the file's tensor indices of tensors that no longer exist (tests compare the rest)."""
    if "tflite_tensors" in g.meta:
        g.meta["tflite_tensors"] = {k: i for k, i in g.meta["tflite_tensors"].items() if k not in dropped}
