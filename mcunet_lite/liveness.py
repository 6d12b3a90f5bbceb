"""Tensor lifetimes and which tensors may share bytes: the facts every memory figure rests on.

An activation lives from the op that makes it to the last op that reads it (MCUNet section 3.2:
peak SRAM is the largest total of tensors alive at one op, not the model size). TinyEngine lets an
op write its output over an input that dies there (`inplace_input`, the one definition of the
in-place rule); a residual's projection conv writes the sum into the residual (`fused_residuals`).
`profile` counts SRAM with these rules, `schedule` plans the arena with them, and the patch planner
(`patch`) sizes one patch's regions with the same `live_bytes`.
"""
from __future__ import annotations

from dataclasses import dataclass

from .ir import Graph, Op

ITEMSIZE = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "float32": 4, "bool": 1, "int64": 8}
Lifetimes = dict[str, tuple[int, int]]


def lifetimes(g: Graph) -> Lifetimes:
    """(first, last) op index of every activation: from its producer (-1 for graph inputs) to its
    last consumer (len(ops) for graph outputs, which the caller reads after the last op)."""
    life = {t: (-1, -1) for t in g.inputs}
    for i, op in enumerate(g.ops):
        life[op.output] = (i, i)
        for t in op.inputs:
            if t in life:
                life[t] = (life[t][0], i)
    for t in g.outputs:
        life[t] = (life[t][0], len(g.ops))
    return life


def activation_bytes(g: Graph) -> dict[str, int]:
    """Bytes of every activation tensor. A graph with int8 activations (quantized or imported
    .tflite) is counted by dtype (a float input really is 4 bytes per element); a float graph is
    counted as its int8 deployment: one byte per element."""
    acts = {n: t for n, t in g.tensors.items() if not t.const}
    int8 = any(t.dtype in ("int8", "uint8") for t in acts.values())
    return {n: t.size * (ITEMSIZE.get(t.dtype, 4) if int8 else 1) for n, t in acts.items()}


# ------------------------------------------------------------------------------ the in-place rule
def inplace_kind(g: Graph, op: Op) -> str | None:
    """Why `op` may write over an input, or None. "depthwise": a depthwise conv with channel
    multiplier 1 works channel by channel, so output channel c overwrites input channel c once it
    is read (MCUNet section 3.2, in-place depthwise convolution; one padded channel of scratch);
    "quantize": a forward loop writes int8 byte i after reading float i (bytes 4i..4i+3); "add":
    element by element; "reshape": the same bytes under a new shape."""
    if op.kind in ("add", "reshape", "quantize"):
        return op.kind
    if g.is_depthwise(op) and g.shape(op.inputs[1])[0] == g.shape(op.inputs[0])[-1]:
        return "depthwise"
    return None


def inplace_input(g: Graph, i: int, life: Lifetimes, nbytes: dict[str, int]) -> str | None:
    """The input op `i` writes its output over, or None: an input that dies at op `i` and holds at
    least the output's bytes, of an op `inplace_kind` allows (an ADD: the first such operand)."""
    op = g.ops[i]
    kind = inplace_kind(g, op)
    if kind is None:
        return None
    candidates = g.activations(op) if kind in ("add", "reshape") else [op.inputs[0]]
    return next((x for x in candidates if life[x][1] == i and nbytes[op.output] <= nbytes[x]), None)


def inplace_pairs(g: Graph, nbytes: dict[str, int] | None = None, life: Lifetimes | None = None,
                  kinds: tuple[str, ...] = ("depthwise", "add", "reshape")) -> list[tuple[str, str]]:
    """(input, output) pairs that share bytes, in op order, for ops of the given `inplace_kind`s.
    `nbytes` overrides tensor sizes (a patch's regions)."""
    life, nbytes = life or lifetimes(g), nbytes or activation_bytes(g)
    pairs = []
    for i, op in enumerate(g.ops):
        x = inplace_input(g, i, life, nbytes) if inplace_kind(g, op) in kinds else None
        if x is not None:
            pairs.append((x, op.output))
    return pairs


def fused_residuals(g: Graph, nbytes: dict[str, int] | None = None,
                    life: Lifetimes | None = None) -> list[tuple[int, str, str]]:
    """(ADD index, residual r, conv output y) where ADD(r, y) directly follows the (not depthwise)
    conv making y, nothing else reads y, the conv does not read r, and r dies at the ADD with y's
    size. TinyEngine's rule: the residual is held until its ADD but not added again at the
    projection, because the conv writes r + conv into r's bytes pixel by pixel (each output reads r
    only at its own position)."""
    life, nbytes = life or lifetimes(g), nbytes or activation_bytes(g)
    readers: dict[str, int] = {}
    for op in g.ops:
        for t in g.activations(op):
            readers[t] = readers.get(t, 0) + 1
    found = []
    for i, op in enumerate(g.ops[1:], 1):
        y = g.ops[i - 1].output
        conv = g.ops[i - 1]
        if op.kind != "add" or conv.kind != "conv2d" or g.is_depthwise(conv) or y not in op.inputs \
                or len(set(op.inputs)) != 2:
            continue
        r = next(t for t in op.inputs if t != y)
        if readers[y] == 1 and life[r][1] == i and nbytes[r] == nbytes[y] and r not in conv.inputs:
            found.append((i, r, y))
    return found


# ------------------------------------------------------------------------------ buffers and live bytes
@dataclass
class Buffer:
    """Tensors sharing one base offset (an in-place chain); each keeps its own size and lifetime,
    so a stride-2 depthwise output holds only its own bytes once its input is gone."""

    segments: list[tuple[str, int, int, int]]  # (tensor, first op, last op, bytes)
    offset: int = -1

    @property
    def first(self) -> int:
        return min(s[1] for s in self.segments)

    @property
    def size(self) -> int:
        return max(s[3] for s in self.segments)


def buffers(g: Graph, pairs: list[tuple[str, str]], nbytes: dict[str, int],
            life: Lifetimes | None = None) -> list[Buffer]:
    """Merge in-place pairs (union-find) into buffers."""
    life = life or lifetimes(g)
    root = {t: t for t in life}

    def find(t: str) -> str:
        while root[t] != t:
            root[t] = root[root[t]]
            t = root[t]
        return t

    for x, y in pairs:
        root[find(y)] = find(x)
    groups: dict[str, list[str]] = {}
    for t in life:
        groups.setdefault(find(t), []).append(t)
    return [Buffer([(t, *life[t], nbytes[t]) for t in ts]) for ts in groups.values()]


def live_sums(bufs: list[Buffer], n_ops: int) -> list[int]:
    """Bytes in use at each op: per buffer, its largest member live there."""
    sums = [0] * n_ops
    for b in bufs:
        peak: dict[int, int] = {}
        for _, first, last, size in b.segments:
            for i in range(max(first, 0), min(last, n_ops - 1) + 1):
                if size > peak.get(i, 0):
                    peak[i] = size
        for i, size in peak.items():
            sums[i] += size
    return sums


def layout(g: Graph, nbytes: dict[str, int], inplace: bool):
    """In-place pairs (quantize pairs last), fused residuals, buffers and the bytes live at each op
    of `g` in its own order."""
    life = lifetimes(g)
    fused = [(r, y, g.ops[i].output) for i, r, y in fused_residuals(g, nbytes, life)] if inplace else []
    pairs = (inplace_pairs(g, nbytes, life) + inplace_pairs(g, nbytes, life, ("quantize",)) if inplace else []) + \
        [(r, y) for r, y, _ in fused]
    bufs = buffers(g, pairs, nbytes, life)
    return pairs, fused, bufs, live_sums(bufs, len(g.ops))


def live_bytes(g: Graph, inplace: bool = True, nbytes: dict[str, int] | None = None) -> list[int]:
    """Bytes of buffers live at each op of `g` in its own order (in-place pairs counted once);
    `nbytes` gives every activation's bytes (default: whole tensors; the patch planner gives one
    patch's regions). Its maximum is the lower bound; after a cut where one tensor crosses, the
    tail's bound is the maximum over the tail's ops (nothing else lives there)."""
    return layout(g, nbytes or activation_bytes(g), inplace)[3]


def lower_bound(g: Graph, inplace: bool = True) -> int:
    """The arena no allocator can beat for `g` in its own order: the largest total of buffers live
    at one op. Fast: what the NAS checks for thousands of subnets."""
    return max(live_bytes(g, inplace))
