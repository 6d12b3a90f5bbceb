"""TinyEngine-style memory scheduling: execution order, arena planning, overlap checking.

On a microcontroller every activation lives in one static arena; the scheduler picks an execution
order, decides which ops may write over their input (MCUNet section 3.2: in-place depthwise
convolution; also an ADD into a dying operand and a RESHAPE that only renames bytes), merges each
such pair into one buffer, and gives every buffer a byte offset. The arena can never be smaller
than the largest total of buffers live at one op (`lower_bound_bytes`); `check` verifies a plan
independently of the allocator that made it.
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

from .errors import UserError
from .ir import Graph, Op
from .liveness import Buffer, activation_bytes, buffers, layout, live_sums
from .profile import op_weights

ALLOCATORS = ("naive", "greedy", "best")


class OverlapError(AssertionError):
    """Two tensors live at the same time share bytes without a declared in-place pair."""


@dataclass
class Placement:
    """Where one activation tensor lives: bytes [offset, offset + size) during ops [first_op, last_op]."""

    name: str
    offset: int
    size: int
    first_op: int
    last_op: int


@dataclass
class Plan:
    """A memory plan for `graph` (in its chosen execution order)."""

    graph: Graph
    allocator: str
    inplace: bool
    tensors: dict[str, Placement]
    pairs: list[tuple[str, str]]
    arena_bytes: int
    lower_bound_bytes: int
    extra_buffers_bytes: int
    flash_bytes: int
    order_changed: bool = False
    scratch: list[int] = field(default_factory=list)
    nbytes: dict[str, int] = field(default_factory=dict)
    fused: list[tuple[str, str, str]] = field(default_factory=list)

    def live_bytes(self) -> list[int]:
        """Bytes of arena in use during each op (in-place pairs counted once)."""
        return live_sums(buffers(self.graph, self.pairs, self.nbytes), len(self.graph.ops))

    def to_dict(self) -> dict:
        """JSON-ready summary (the `schedule --json` shape)."""
        return {"model": self.graph.meta.get("model", self.graph.name), "allocator": self.allocator,
                "inplace": self.inplace, "arena_bytes": self.arena_bytes,
                "lower_bound_bytes": self.lower_bound_bytes, "extra_buffers_bytes": self.extra_buffers_bytes,
                "flash_bytes": self.flash_bytes, "order_changed": self.order_changed,
                "inplace_pairs": [list(p) for p in self.pairs], "fused_residuals": [list(f) for f in self.fused],
                "tensors": [asdict(t) for t in self.tensors.values()]}


# ------------------------------------------------------------------------------ kernel scratch
def conv_scratch_bytes(g: Graph, op: Op, inplace: bool, h: int, w: int, pads: tuple[int, int, int, int]) -> int:
    """Scratch an emitted conv kernel needs beside the arena for an `h` x `w` input (a whole tensor
    or one patch's window) with `pads` (TinyEngine / CMSIS-NN conventions): an in-place depthwise
    conv keeps one padded input channel; a conv with k > 1 and a pointwise conv use a two-column
    int16 im2col buffer; a depthwise conv not in place and FULLY_CONNECTED need none."""
    if op.kind != "conv2d":
        return 0
    if g.is_depthwise(op):
        pt, pb, pl, pr = pads
        return (h + pt + pb) * (w + pl + pr) if inplace else 0
    _, kh, kw, cin_g = g.shape(op.inputs[1])
    return 2 * kh * kw * cin_g * 2


def kernel_scratch_bytes(g: Graph, op_index: int, pairs: list[tuple[str, str]]) -> int:
    """Scratch of op `op_index` run layer by layer (`conv_scratch_bytes` of its whole input). The
    code generator allocates exactly the largest of these (of the patches' windows, patch-based)."""
    op = g.ops[op_index]
    if op.kind != "conv2d":
        return 0
    _, h, w, _ = g.shape(op.inputs[0])
    return conv_scratch_bytes(g, op, (op.inputs[0], op.output) in pairs, h, w, op.attrs["pads"])


# ------------------------------------------------------------------------------------ allocation
def first_fit(bufs: list[Buffer]) -> int:
    """Place buffers in the given order at the lowest offset where none of their tensors meets
    a live tensor of an already placed buffer; returns the arena size."""
    placed: list[Buffer] = []
    for b in bufs:
        forbidden = []  # offsets [lo, hi) at which b would collide
        for p in placed:
            for _, f1, l1, s1 in b.segments:
                for _, f2, l2, s2 in p.segments:
                    if f1 <= l2 and f2 <= l1:
                        forbidden.append((p.offset - s1 + 1, p.offset + s2))
        offset = 0
        for lo, hi in sorted(forbidden):
            if lo > offset:
                break
            offset = max(offset, hi)
        b.offset = offset
        placed.append(b)
    return max((b.offset + b.size for b in bufs), default=0)


def allocate(bufs: list[Buffer], allocator: str, lower_bound: int, seed: int = 0) -> int:
    """Give every buffer an offset: naive (each its own bytes), greedy (TFLite Micro: largest
    first, first fit) or best (several orders and seeded perturbations; stops at the bound)."""
    if allocator == "naive":
        offset = 0
        for b in sorted(bufs, key=lambda b: b.first):
            b.offset, offset = offset, offset + b.size
        return offset
    greedy = sorted(bufs, key=lambda b: (-b.size, b.first))
    if allocator == "greedy":
        return first_fit(greedy)
    span = {id(b): max(s[2] for s in b.segments) - b.first + 1 for b in bufs}
    orders = [greedy, sorted(bufs, key=lambda b: (b.first, -b.size)),
              sorted(bufs, key=lambda b: (-span[id(b)], -b.size)),
              sorted(bufs, key=lambda b: -b.size * span[id(b)])]
    rng = random.Random(seed)
    for _ in range(200):
        orders.append(sorted(bufs, key=lambda b: -b.size * rng.uniform(0.7, 1.3)))
    best, best_offsets = None, None
    for order in orders:
        arena = first_fit(order)
        if best is None or arena < best:
            best, best_offsets = arena, [b.offset for b in bufs]
        if best <= lower_bound:
            break
    for b, off in zip(bufs, best_offsets):
        b.offset = off
    return best


# ------------------------------------------------------------------------------ execution order
def _reordered(g: Graph, order: list[int]) -> Graph:
    return Graph(g.name, g.tensors, [g.ops[i] for i in order], g.inputs, g.outputs, g.meta)


def memory_aware_order(g: Graph, beam: int = 16, nbytes: dict[str, int] | None = None) -> list[int]:
    """A topological order with a low peak of live bytes (beam search over the ready ops): where
    branches can run in either order, run first the one that frees memory soonest."""
    nbytes = {**activation_bytes(g), **(nbytes or {})}
    producer = {op.output: i for i, op in enumerate(g.ops)}
    deps = [{producer[t] for t in g.activations(op) if t in producer} for op in g.ops]
    users: dict[str, int] = {}
    for op in g.ops:
        for t in set(g.activations(op)):
            users[t] = users.get(t, 0) + 1
    succ: list[list[int]] = [[] for _ in g.ops]
    for i, d in enumerate(deps):
        for j in d:
            succ[j].append(i)
    start = frozenset(i for i, d in enumerate(deps) if not d)
    states = [(0, sum(nbytes[t] for t in g.inputs), (), frozenset(), start, {})]
    for _ in g.ops:
        nxt = {}
        for peak, live, order, done, ready, used in states:
            for i in ready:
                op = g.ops[i]
                now = live + nbytes[op.output]
                used2 = dict(used)
                freed = 0
                for t in set(g.activations(op)):
                    used2[t] = used2.get(t, 0) + 1
                    if used2[t] == users[t] and t not in g.outputs:
                        freed += nbytes[t]
                done2 = done | {i}
                ready2 = (ready - {i}) | {j for j in succ[i] if deps[j] <= done2}
                state = (max(peak, now), now - freed, order + (i,), done2, ready2, used2)
                if done2 not in nxt or state[:2] < nxt[done2][:2]:
                    nxt[done2] = state
        states = sorted(nxt.values(), key=lambda s: s[:2])[:beam]
    return list(states[0][2])


# ------------------------------------------------------------------------------------ planning
def plan(g: Graph, allocator: str = "best", inplace: bool = True, reorder: bool = True,
         sizes: dict[str, int] | None = None) -> Plan:
    """Plan the arena of `g`: choose the order, declare in-place pairs, allocate, and report.

    `sizes` overrides some tensors' bytes (the patch planner plans one patch's regions)."""
    if allocator not in ALLOCATORS:
        raise UserError(f"unknown allocator '{allocator}'; valid allocators: {', '.join(ALLOCATORS)}")
    if not g.ops:
        raise UserError(f"graph '{g.name}' has no ops to schedule")
    candidates = [g]
    nbytes = {**activation_bytes(g), **(sizes or {})}
    if reorder:
        order = memory_aware_order(g, nbytes=sizes)
        if order != list(range(len(g.ops))):
            candidates.append(_reordered(g, order))
    layouts = [(h, *layout(h, nbytes, inplace)) for h in candidates]
    h, pairs, fused, bufs, live = min(layouts, key=lambda lay: max(lay[4]))
    lb = max(live)
    arena = allocate(bufs, allocator, lb)
    tensors = {t: Placement(t, b.offset, size, first, last) for b in bufs for t, first, last, size in b.segments}
    scratch = [kernel_scratch_bytes(h, i, pairs) for i in range(len(h.ops))]
    flash = sum(op_weights(h, op)[1] for op in h.ops)
    return Plan(h, allocator, inplace, tensors, pairs, arena, lb, max(scratch), flash, h is not g, scratch, nbytes,
                fused)


def check(p: Plan) -> None:
    """Verify `p` without trusting the allocator: recompute every tensor's lifetime from the
    graph, and fail if two tensors live at the same time share a byte, unless they are a declared
    in-place pair whose input dies exactly where the output is made."""
    g = p.graph
    first = {t: -1 for t in g.inputs}
    last: dict[str, int] = {}
    for i, op in enumerate(g.ops):
        first[op.output] = i
        last.setdefault(op.output, i)
        for t in op.inputs:
            if t in first:
                last[t] = i
    for t in g.outputs:
        last[t] = len(g.ops)
    missing = set(first) - set(p.tensors)
    if missing:
        raise OverlapError(f"tensors without a place in the arena: {sorted(missing)[:5]}")
    declared = {(x, y) for x, y in p.pairs if last[x] == first[y] and x in g.ops[first[y]].inputs}
    for r, y, z in p.fused:  # the conv making y writes r + y into r, right before the ADD(r, y) -> z
        add = first[z]
        if first[y] == add - 1 and last[r] == add == last[y] and {r, y} <= set(g.ops[add].inputs) \
                and r not in g.ops[add - 1].inputs:
            declared |= {(r, y), (r, z), (y, z)}
    names = sorted(first, key=lambda t: p.tensors[t].offset)
    for i, a in enumerate(names):
        pa = p.tensors[a]
        if pa.offset < 0 or pa.offset + pa.size > p.arena_bytes:
            raise OverlapError(f"'{a}' at [{pa.offset}, {pa.offset + pa.size}) lies outside the {p.arena_bytes}-byte arena")
        for b in names[i + 1:]:
            pb = p.tensors[b]
            if pb.offset >= pa.offset + pa.size:
                break
            if first[a] <= last[b] and first[b] <= last[a] and (a, b) not in declared and (b, a) not in declared:
                raise OverlapError(f"'{a}' (ops {first[a]}..{last[a]}, bytes [{pa.offset}, {pa.offset + pa.size})) and "
                                   f"'{b}' (ops {first[b]}..{last[b]}, bytes [{pb.offset}, {pb.offset + pb.size})) "
                                   "are live together and share bytes")
