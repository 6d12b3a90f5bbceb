"""Graded checks of every lab, run by the grader on the student's functions (looked up by name).

Each check calls the student's function on seeded variants of its inputs (so a hard-coded answer to
the notebook's visible example fails) and compares with the library's own result; the first
mismatch becomes the feedback: which input, what was expected, what came back.
"""
from __future__ import annotations

import copy
import os
import random
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterable

import numpy as np

from . import deploy, int8ref, patch, plain, quant, sandbox, schedule, search_space, zoo
from . import fixedpoint as fp
from . import profile as prof
from .ir import Graph, Op

Case = tuple[str, tuple, Any]  # (description of the input, arguments, expected result)


@dataclass
class Exercise:
    """One graded exercise: the function the student writes, the cases that score it, and its
    twins: the library functions that compute its answer, which the student's function may not call.
    `view(args, result)` runs beside the student's code and turns a result that is an object (or
    what the call did to its arguments) into plain data; `normalise` shapes that data for comparison."""

    id: str
    function: str
    points: float
    cases: Callable[[random.Random], Iterable[Case]]
    normalise: Callable[[Any], Any] = lambda v: v
    twins: tuple[str, ...] = ()
    view: Callable[[tuple, Any], Any] | None = None


def cases(ex: Exercise, seed: int) -> Iterable[Case]:
    """The exercise's cases for one grading run: fresh for every seed, the same for the same seed."""
    return ex.cases(random.Random(f"{seed}:{ex.id}"))


def _same(expected: Any, got: Any) -> bool:
    """`expected == got`, asked of the expected side (the grader's own value or property); a result
    that cannot be compared (an array against a number) is not equal."""
    try:
        same = expected == got
        return bool(same) if isinstance(same, (bool, np.bool_)) else False
    except Exception:  # e.g. comparing arrays of different shapes
        return False


def judge(ex: Exercise, label: str, reply: dict, expected: Any) -> str | None:
    """None when the student's reply to one case is right, else the feedback: which input, what was
    expected, what came back. `reply` is plain data (see `sandbox.call`)."""
    if reply.get("missing"):
        return f"`{ex.function}` is not defined: run its cell, and keep its name as given"
    if reply.get("not_implemented"):
        return "not implemented yet (it raises NotImplementedError)"
    if "twin" in reply:
        return f"{ex.function}({label}) calls {reply['twin']}: write your own"
    if "raised" in reply:
        return f"{ex.function}({label}) raised {reply['raised']}"
    try:
        raw = plain.untree(reply.get("value"))
    except ValueError as e:
        return f"{ex.function}({label}) returned something the grader cannot read ({e})"
    if isinstance(raw, plain.Unsupported):
        return f"{ex.function}({label}) returned {raw!r}; expected {expected!r}"
    try:
        got = ex.normalise(raw)
    except Exception:  # a result of the wrong form (not a tuple, not numbers...)
        got = raw
    if not _same(expected, got):
        return f"{ex.function}({label}): expected {expected!r}, got {got!r}"
    return None


def run(lab: str, exercise: str, ns: dict, seed: int | None = None) -> dict:
    """Score one exercise of `lab` on the functions in `ns`, in this process: what nbgrader's hidden
    tests call (nbgrader's trust model: they run in the student's kernel). The built-in grader
    (`mcunet_lite.grader`) scores the same cases out of the student's reach."""
    ex = next(e for e in EXERCISES[lab] if e.id == exercise)
    seed = random.randrange(1 << 32) if seed is None else seed
    failure = None
    for label, args, expected in cases(ex, seed):
        failure = judge(ex, label, sandbox.call(ns.get(ex.function), args, ex.twins, ex.view), expected)
        if failure:
            break
    return {"id": ex.id, "points": 0 if failure else ex.points, "max_points": ex.points,
            "feedback": failure or "all checks passed"}


# ----------------------------------------------------------------------- lab 00: memory wall
def _conv_cases(rng: random.Random) -> Iterable[Case]:
    for _ in range(12):
        h, w, c = rng.randint(5, 40), rng.randint(5, 40), rng.choice([3, 8, 16, 24])
        k, s = rng.choice([1, 3, 5, 7]), rng.choice([1, 2])
        depthwise = rng.random() < 0.4
        out_c, groups = (c, c) if depthwise else (rng.choice([8, 16, 32]), 1)
        g = Graph()
        g.conv2d(g.add_input("input", (1, h, w, c)), out_c, k, s, groups=groups, name="conv")
        p = prof.profile(g, "naive")
        args = ((1, h, w, c), out_c, k, s, groups)
        yield (f"in_shape={args[0]}, out_channels={out_c}, kernel={k}, stride={s}, groups={groups}", args,
               (p.layers[0].out_shape, p.macs, p.peak_sram_bytes))


def _random_mbconv(rng: random.Random) -> zoo.MBConvConfig:
    """A small random MBConv net; stage 0 keeps the stem width with expansion 1, so its second
    block is a residual whose depthwise input is still needed by the ADD (no in-place there)."""
    stages = [zoo.Stage(16, 2, 1, [zoo.Block(3, 1), zoo.Block(3, 1)])]
    for width in sorted(rng.sample([24, 32, 40, 48, 64], 3)):
        depth = rng.randint(1, 3)
        stages.append(zoo.Stage(width, depth, rng.choice([1, 2]),
                                [zoo.Block(rng.choice([3, 5, 7]), rng.choice([3, 4, 6])) for _ in range(depth)]))
    return zoo.MBConvConfig(stages, stem=16, head=None, num_classes=2, width=1.0,
                            resolution=rng.choice([32, 40, 48, 64]))


def _skip_graph(rng: random.Random) -> Graph:
    """conv a -> conv b(a) -> add(a, b): the conv before the ADD reads the residual, so it cannot
    write the sum into it."""
    g = Graph("skip")
    hw, c = rng.choice([6, 8, 10]), rng.choice([4, 8])
    a = g.conv2d(g.add_input("input", (1, hw, hw, 3)), c, 1, name="a")
    b = g.conv2d(a, c, rng.choice([1, 3]), name="b")
    g.outputs.append(g.add_op("add", "s", [a, b], {"act": None}))
    return g


def _dw_add_graph(rng: random.Random) -> Graph:
    """a = conv(x), b = conv(x), c = depthwise(b), add(a, c): the conv before the ADD is a
    depthwise conv (running in place over b), so it does not write the sum into a."""
    g = Graph("dw-add")
    hw, c = rng.choice([6, 8, 10]), rng.choice([4, 8])
    x = g.add_input("input", (1, hw, hw, 3))
    a, b = g.conv2d(x, c, 1, name="a"), g.conv2d(x, c, 1, name="b")
    d = g.conv2d(b, c, 3, groups=c, name="c")
    g.outputs.append(g.add_op("add", "s", [a, d], {"act": None}))
    return g


def _live_cases(rng: random.Random) -> Iterable[Case]:
    for make, label in ((_skip_graph, "conv a -> conv b(a) -> add(a, b)"),
                        (_dw_add_graph, "a, b = conv(x); c = depthwise(b); add(a, c)")):
        for rule in prof.RULES:
            g = make(rng)
            yield f"<{label} at {g.shape('a')}>, rule={rule!r}", (g, rule), prof.op_sram(g, rule)
    for i in range(6):
        cfg = _random_mbconv(rng)
        for rule in prof.RULES:
            yield (f"<random MBConv graph #{i} at {cfg.resolution}px>, rule={rule!r}", (cfg.graph(), rule),
                   prof.op_sram(cfg.graph(), rule))


def _block_cases(rng: random.Random) -> Iterable[Case]:
    for name in ("mbv2", "resnet18", "mcunet"):
        names = [op.name for op in zoo.get(name, resolution=64).graph().ops]
        sram = [rng.randint(1, 10_000) for _ in names]
        expected: dict[str, int] = {}
        for n, s in zip(names, sram):
            expected[prof.block_of(n)] = max(expected.get(prof.block_of(n), 0), s)
        yield f"<the {len(names)} op names of {name}>, <random sram list>", (names, sram), expected


RESOLUTIONS = range(48, 225, 16)


def _largest_fitting_resolution(width: float, budget: int, rule: str) -> int | None:
    """Reference for the lab-00 exercise: largest MobileNetV2 resolution whose peak fits `budget`."""
    fits = [r for r in RESOLUTIONS if prof.profile(zoo.mobilenet_v2(width, r).graph(), rule).peak_sram_bytes <= budget]
    return max(fits) if fits else None


def _fit_cases(rng: random.Random) -> Iterable[Case]:
    for i in range(6):
        width = rng.choice([0.35, 0.5, 0.75, 1.0])
        budget = rng.choice([64, 128, 256, 320, 512]) * 1024
        rule = prof.RULES[i % 2]  # both rules: at these budgets they often give different answers
        yield (f"width={width}, budget={budget}, rule={rule!r}", (width, budget, rule),
               _largest_fitting_resolution(width, budget, rule))
    yield "width=1.0, budget=10000, rule='tinyengine'", (1.0, 10_000, "tinyengine"), None


def _as_ints(v: Any) -> Any:
    return [int(x) for x in v] if isinstance(v, (list, tuple)) else v


def _as_cost(v: Any) -> Any:
    shape, macs, sram = v
    return tuple(int(d) for d in shape), int(macs), int(sram)


def _as_dict(v: Any) -> Any:
    return {str(k): int(x) for k, x in v.items()} if isinstance(v, dict) else v


# ------------------------------------------------------------------ lab 02: memory scheduling
Buffers = list[tuple[int, int, int]]  # (bytes, first op, last op) of every tensor


def _random_dag(rng: random.Random) -> Graph:
    """Random DAG of pointwise / depthwise convs (some with channel multiplier 2) and ADDs, ending
    in a RESHAPE, with two outputs: tensors read by several ops, long after they are made, never."""
    g = Graph("random-dag")
    hw = rng.choice([4, 6, 8])
    made = [g.add_input("input", (1, hw, hw, rng.randint(2, 6)))]
    for i in range(rng.randint(5, 14)):
        x, kind = rng.choice(made), rng.choice(["pw", "dw", "dw2", "mult2", "add", "add"])
        c = g.shape(x)[-1]
        if kind == "pw":
            y = g.conv2d(x, rng.randint(2, 8), 1, name=f"op{i}")
        elif kind in ("dw", "dw2", "mult2"):
            y = g.conv2d(x, 2 * c if kind == "mult2" else c, 3, 1 if kind == "dw" else 2, groups=c, name=f"op{i}")
        else:
            y = g.add_op("add", f"op{i}", [x, rng.choice([t for t in made if g.shape(t) == g.shape(x)])],
                         {"act": None})
        made.append(y)
    g.outputs += [g.add_op("reshape", "flat", [made[-1]], {"shape": (1, -1)}), rng.choice(made[1:-1])]
    return g


def _add_keeps_operand(rng: random.Random) -> Graph:
    """a, b = conv(x); s = add(a, b); t = conv(a); add(s, t): `a` outlives the first ADD, so
    that ADD may only write over `b`."""
    g = Graph("add-keeps-a")
    hw, c = rng.choice([4, 6, 8]), rng.choice([4, 8])
    x = g.add_input("input", (1, hw, hw, 3))
    a, b = g.conv2d(x, c, 1, name="a"), g.conv2d(x, c, 1, name="b")
    s = g.add_op("add", "s", [a, b], {"act": None})
    g.outputs.append(g.add_op("add", "out", [s, g.conv2d(a, c, 1, name="t")], {"act": None}))
    return g


def _schedule_graphs(rng: random.Random) -> Iterable[tuple[str, Graph]]:
    """Graphs the scheduling checks run on: random DAGs and MBConv nets, zoo models, special cases."""
    for i in range(4):
        g = _random_dag(rng)
        yield f"<random graph #{i}: {len(g.ops)} ops>", g
    for i in range(2):
        cfg = _random_mbconv(rng)
        yield f"<random MBConv graph #{i} at {cfg.resolution}px>", cfg.graph()
    for name in ("resnet18", "mbv1"):
        yield f"<{name} at 64px>", zoo.get(name, resolution=64).graph()
    yield "<a, b = conv(x); s = add(a, b); t = conv(a); add(s, t)>", _add_keeps_operand(rng)


def _buffers(g: Graph) -> Buffers:
    nbytes = prof.activation_bytes(g)
    return [(nbytes[t], first, last) for t, (first, last) in prof.lifetimes(g).items()]


def _random_buffers(rng: random.Random, n: int) -> Buffers:
    """`n` random lifetimes, many of them touching (one ends at the op where another starts)."""
    found: Buffers = []
    for _ in range(n):
        first = rng.choice([rng.randint(0, 12)] + [b[2] for b in found[-2:]])
        found.append((rng.randrange(8, 100, 4), first, first + rng.randint(0, 4)))
    return found


def _lib_buffers(buffers: Buffers) -> list[schedule._Buffer]:
    return [schedule._Buffer([(str(i), first, last, size)]) for i, (size, first, last) in enumerate(buffers)]


def _first_fit_arena(buffers: Buffers) -> int:
    """Largest-first first fit (TFLite Micro's greedy planner): the arena a student's must match."""
    return schedule._first_fit(sorted(_lib_buffers(buffers), key=lambda b: (-b.size, b.first)))


def _bound(buffers: Buffers) -> int:
    return max(schedule._live_sums(_lib_buffers(buffers), max(b[2] for b in buffers) + 1))


def _lifetime_cases(rng: random.Random) -> Iterable[Case]:
    for label, g in _schedule_graphs(rng):
        yield label, (g,), prof.lifetimes(g)


def _lower_bound_cases(rng: random.Random) -> Iterable[Case]:
    for i in range(6):
        b = _random_buffers(rng, rng.randint(3, 14))
        yield f"{b}", (b,), _bound(b)
    for label, g in _schedule_graphs(rng):
        yield f"<the buffers of {label[1:]}", (_buffers(g),), _bound(_buffers(g))


class _Placed:
    """A student's `first_fit` result, shown briefly in feedback."""

    def __init__(self, offsets: list[int], arena: int) -> None:
        self.offsets, self.arena = offsets, arena

    def __repr__(self) -> str:
        return f"{len(self.offsets)} offsets in an arena of {self.arena} bytes"


class _Property:
    """An expected result stated as a property, not a value: `==` runs `problem(got)` (the reason
    a result fails, or "") and keeps the reason so the feedback can show it."""

    why = ""

    def problem(self, got: Any) -> str:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def __eq__(self, got: Any) -> bool:
        self.why = self.problem(got)
        return not self.why

    def __ne__(self, got: Any) -> bool:
        return not self == got

    def __repr__(self) -> str:
        return self.describe() + (f" (yours: {self.why})" if self.why else "")


class _ValidPlacement(_Property):
    """What `first_fit` must return: offsets at which no two buffers live at the same op share a
    byte, and an arena (the end of the highest buffer) no larger than largest-first first fit's.
    Any valid placement that good passes; the reason for a failure shows in the feedback."""

    def __init__(self, buffers: Buffers, arena: int) -> None:
        self.buffers, self.arena, self.why = buffers, arena, ""

    def problem(self, got: Any) -> str:
        if not isinstance(got, _Placed):
            return "the result is not (offsets, arena_bytes)"
        if len(got.offsets) != len(self.buffers):
            return f"{len(got.offsets)} offsets for {len(self.buffers)} buffers"
        ends = [o + b[0] for o, b in zip(got.offsets, self.buffers)]
        if min(got.offsets) < 0 or got.arena != max(ends):
            return f"arena_bytes {got.arena} is not the end of the highest buffer ({max(ends)}), or an offset is < 0"
        for i, (oi, (_, fi, li)) in enumerate(zip(got.offsets, self.buffers)):
            for j, (oj, (_, fj, lj)) in enumerate(zip(got.offsets, self.buffers)):
                if i < j and fi <= lj and fj <= li and oi < ends[j] and oj < ends[i]:
                    return (f"buffers #{i} {self.buffers[i]} and #{j} {self.buffers[j]} are live at the same op"
                            f" and share bytes [{max(oi, oj)}, {min(ends[i], ends[j])})")
        return "" if got.arena <= self.arena else f"{got.arena} bytes wastes memory"

    def describe(self) -> str:
        return f"no overlap in at most {self.arena} bytes"


def _first_fit_cases(rng: random.Random) -> Iterable[Case]:
    for i in range(8):
        b = _random_buffers(rng, rng.randint(4, 20))
        yield f"{b}", (b,), _ValidPlacement(b, _first_fit_arena(b))
    for label, g in _schedule_graphs(rng):
        b = _buffers(g)
        yield f"<the buffers of {label[1:]}", (b,), _ValidPlacement(b, _first_fit_arena(b))


def _inplace_cases(rng: random.Random) -> Iterable[Case]:
    for label, g in _schedule_graphs(rng):
        yield label, (g,), schedule.inplace_pairs(g)


def _as_lifetimes(v: Any) -> Any:
    return {str(k): (int(a), int(b)) for k, (a, b) in v.items()}


def _as_placement(v: Any) -> Any:
    offsets, arena = v
    return _Placed([int(o) for o in offsets], int(arena))


def _as_pairs(v: Any) -> Any:
    return [(str(x), str(y)) for x, y in v]


# ------------------------------------------------------------------ lab 03: patch-based inference
Layer = tuple[int, int, int]  # (kernel, stride, pad) of a conv padded by `pad` on every side


def _chain(rng: random.Random, extra: bool = False) -> tuple[Graph, list[Layer]]:
    """A random chain of convs (some depthwise, some stride 2), each padded by `pad` on every side;
    `extra` appends a 1x1 conv so that the chain can be a patch stage."""
    size = rng.randint(24, 64)
    g = Graph("chain")
    x, layers = g.add_input("input", (1, size, size, rng.choice([3, 4, 8]))), []
    for i in range(rng.randint(2, 6)):
        k = rng.choice([1, 3, 3, 5, 7])
        s = rng.choice([1, 1, 2]) if g.shape(x)[1] >= 2 * k else 1
        p = rng.randint(0, k // 2)
        if g.shape(x)[1] + 2 * p - k < 3 * s:
            break
        c = g.shape(x)[-1]
        depthwise = rng.random() < 0.3
        x = g.conv2d(x, c if depthwise else rng.choice([4, 8, 16]), k, s, groups=c if depthwise else 1,
                     pads=(p,) * 4, name=f"conv{i}")
        layers.append((k, s, p))
    if extra:
        g.outputs.append(g.conv2d(x, 4, 1, name="after"))
    return g, layers


def _input_region_cases(rng: random.Random) -> Iterable[Case]:
    for _ in range(14):
        k, s = rng.choice([1, 3, 5, 7]), rng.choice([1, 2, 3])
        p, r0 = rng.randint(0, k // 2), rng.randint(0, 10)
        rows = (r0, r0 + rng.randint(1, 6))
        g = Graph()
        g.conv2d(g.add_input("input", (1, 64, 64, 1)), 1, k, s, pads=(p,) * 4)
        yield f"kernel={k}, stride={s}, pad={p}, out_rows={rows}", (k, s, p, rows), \
            patch.input_region(g, g.ops[0], (*rows, 0, 1))[:2]


def _trace_cases(rng: random.Random) -> Iterable[Case]:
    for i in range(10):
        g, layers = _chain(rng)
        out = g.ops[-1].output
        r0 = 0 if i < 3 else rng.randint(0, g.shape(out)[1] - 1)  # top rows: padded chains reach above row 0
        rows = (r0, rng.randint(r0 + 1, g.shape(out)[1]))
        regions = patch.trace(g, g.ops, out, (*rows, 0, 1), clip=False)
        yield f"layers={layers}, out_rows={rows}", (layers, rows), [regions[t][:2] for t in [g.inputs[0]] + [
            op.output for op in g.ops]]


def _per_pixel(g: Graph, op: Op) -> int:
    return prof.op_macs(g, op) // (g.shape(op.output)[1] * g.shape(op.output)[2])


def _stage_macs_cases(rng: random.Random) -> Iterable[Case]:
    for _ in range(10):
        g, layers = _chain(rng, extra=True)
        stage = g.ops[:-1]
        layers = [(*kind, _per_pixel(g, op)) for kind, op in zip(layers, stage)]
        side = g.shape(stage[-1].output)[1]
        n = rng.randint(1, min(5, side))
        p = patch.plan(g, len(stage) - 1, n)
        yield f"layers={layers}, in_size={g.shape('input')[1]}, n={n}", (layers, g.shape("input")[1], n), \
            (p.patch_stage_macs, p.layerwise_patch_stage_macs)


GRIDS = range(1, 9)


def _grid_plans(g: Graph, split: int) -> list[patch.PatchPlan]:
    side = min(g.shape(g.ops[split].output)[1:3])
    return [patch.plan(g, split, n) for n in GRIDS if n <= side]


def _grid_cases(rng: random.Random) -> Iterable[Case]:
    for i in range(4):
        cfg = zoo.mobilenet_v2(rng.choice([0.35, 0.5, 0.75]), rng.choice([96, 112, 128])) if i % 2 == 0 \
            else zoo.mcunet_example(rng.choice([0.5, 0.75]), rng.choice([96, 128]))
        g = cfg.graph()
        split = patch.split_after_block(g, rng.randint(1, 4))
        plans = _grid_plans(g, split)
        n0 = rng.choice(plans)
        budgets = [n0.peak_sram_bytes, n0.rest_peak_bytes - 1, n0.per_patch_arena_bytes,
                   min(p.peak_sram_bytes for p in plans) - 1]
        for budget in budgets:
            fits = [p for p in plans if p.peak_sram_bytes <= budget]
            yield (f"<{cfg.model} w{cfg.width} r{cfg.resolution} graph>, split_op={split}, budget={budget}",
                   (g, split, budget), min(fits, key=lambda p: (p.total_macs, p.grid)).grid if fits else None)


def _as_regions(v: Any) -> Any:
    return [(int(a), int(b)) for a, b in v]


def _as_pair(v: Any) -> Any:
    return int(v[0]), int(v[1])


# ---------------------------------------------------------------- lab 04: search-space optimisation
def _random_costs(rng: random.Random, n: int) -> list[search_space.Cost]:
    return [search_space.Cost(rng.randrange(16, 400) * 1024, rng.randrange(64, 1600) * 1024,
                              rng.randrange(1, 300) * 100_000) for _ in range(n)]


def _fit_stats_reference(costs: list, sram: int, flash: int) -> tuple[float, float]:
    """The library's statistics of one space: fraction of subnets within both budgets, and the mean
    MACs of those (0 when none fit)."""
    s = search_space.SpaceStats(0.0, 0, len(costs), [c.macs for c in costs if c.sram <= sram and c.flash <= flash])
    return _as_stats((s.fit_fraction, s.mean_macs))


def _fit_stats_cases(rng: random.Random) -> Iterable[Case]:
    for i in range(8):
        costs = _random_costs(rng, rng.randint(1, 30))
        edge = rng.choice(costs)  # budgets equal to a subnet's cost: that subnet fits
        sram = edge.sram if i % 2 else rng.randrange(16, 400) * 1024
        flash = edge.flash if i % 3 else rng.randrange(64, 1600) * 1024
        if i == 5:
            sram = 10 ** 9  # only Flash decides
        yield f"<{len(costs)} costs>, sram={sram}, flash={flash}", (costs, sram, flash), \
            _fit_stats_reference(costs, sram, flash)
    costs = _random_costs(rng, 5)
    yield "<5 costs, none within budget>, sram=1024, flash=1024", (costs, 1024, 1024), (0.0, 0.0)
    w, r = rng.choice(search_space.WIDTHS[:5]), rng.choice(search_space.RESOLUTIONS[:8])
    costs = [search_space.cost(search_space.sample(rng, w, r)) for _ in range(10)]
    yield f"<costs of 10 subnets at width {w}, resolution {r}>, sram=262144, flash=1048576", \
        (costs, 256 * 1024, 1024 * 1024), _fit_stats_reference(costs, 256 * 1024, 1024 * 1024)


def _random_spaces(rng: random.Random, n: int) -> list[search_space.SpaceStats]:
    """A grid of spaces, each `n` samples with a random number of fitting subnets of random MACs."""
    spaces = []
    for w in rng.sample(search_space.WIDTHS, 4):
        for r in rng.sample(search_space.RESOLUTIONS, 4):
            fit = rng.choice([0, 0, rng.randint(1, n), rng.randint(1, n // 4), n])
            spaces.append(search_space.SpaceStats(w, r, n, [rng.randrange(1, 10 ** 8) for _ in range(fit)]))
    return spaces


def _choose_space_reference(spaces: list[search_space.SpaceStats], min_fit: float):
    """`search_space.optimise`'s rule: the largest mean MACs of fitting subnets among the spaces
    where at least `min_fit` of the samples fit; None when there is none."""
    usable = [s for s in spaces if s.fit_fraction >= min_fit]
    return None if not usable else (lambda b: (b.width, b.resolution))(max(usable, key=lambda s: s.mean_macs))


def _choose_space_cases(rng: random.Random) -> Iterable[Case]:
    for i in range(10):
        spaces = _random_spaces(rng, 20)
        min_fit = rng.choice([0.05, 0.1, 0.25]) if i % 3 else rng.choice([s.fit_fraction for s in spaces
                                                                           if 0 < s.fit_fraction < 1] or [0.5])
        yield (f"<{len(spaces)} spaces of 20 samples>, min_fit={min_fit}", (spaces, min_fit),
               _choose_space_reference(spaces, min_fit))
    spaces = [search_space.SpaceStats(0.5, 96, 20, [1000]), search_space.SpaceStats(0.3, 64, 20, [])]
    yield "<2 spaces, 1 of 20 subnets fits in one, none in the other>, min_fit=0.1", (spaces, 0.1), None


def _largest_resolution_reference(width: float, sram: int, flash: int) -> int | None:
    """Largest resolution of the grid at which the smallest subnet of the space fits, layer by layer."""
    from .supernet import smallest
    fit = [r for r in search_space.RESOLUTIONS
           if (lambda c: c.sram <= sram and c.flash <= flash)(search_space.cost(smallest(width, r)))]
    return max(fit) if fit else None


def _largest_resolution_cases(rng: random.Random) -> Iterable[Case]:
    for _ in range(8):
        width = rng.choice(search_space.WIDTHS)
        sram, flash = rng.choice([32, 48, 64, 96, 128, 192, 256, 320]) * 1024, rng.choice([256, 512, 1024, 2048]) * 1024
        yield f"width={width}, sram={sram}, flash={flash}", (width, sram, flash), \
            _largest_resolution_reference(width, sram, flash)
    yield "width=1.0, sram=8192, flash=1048576", (1.0, 8192, 1024 * 1024), None
    yield "width=0.3, sram=327680, flash=65536", (0.3, 320 * 1024, 64 * 1024), \
        _largest_resolution_reference(0.3, 320 * 1024, 64 * 1024)


def _as_stats(v: Any) -> Any:
    return round(float(v[0]), 9), round(float(v[1]), 3)


def _as_space(v: Any) -> Any:
    return None if v is None else (round(float(v[0]), 6), int(v[1]))


def _as_resolution(v: Any) -> Any:
    return None if v is None else int(v)


# -------------------------------------------------------------------- lab 01: int8 arithmetic
class _Ints:
    """A student's integer array, shown in feedback by the element that differs."""

    def __init__(self, raw: Any) -> None:
        try:
            self.values = np.asarray(raw)
        except Exception:  # ragged or odd results: shown as what they are
            self.values = np.asarray(repr(raw)[:80])
        self.shown = "" if self.values.dtype.kind in "iufb" else f"{type(raw).__name__} {str(raw)[:80]}"

    def __ne__(self, other: Any) -> bool:
        return not other == self

    def __repr__(self) -> str:
        return self.shown or f"<{self.values.dtype} array of shape {self.values.shape}>"


class _Exactly:
    """What an integer-array exercise must return: these values, element for element (and this
    dtype, when given). After a comparison both sides' reprs name the first element that differs
    and the inputs that made it, so the feedback stays one line."""

    def __init__(self, values: np.ndarray, where: Callable[[int], str], dtype: str | None = None) -> None:
        self.values, self.where, self.dtype, self.shown = np.asarray(values), where, dtype, ""

    def __eq__(self, got: Any) -> bool:
        if not isinstance(got, _Ints) or got.values.dtype.kind not in "iu":
            self.shown = f"an integer array of shape {self.values.shape}"
            return False
        v = got.values
        if v.shape != self.values.shape:
            self.shown, got.shown = f"shape {self.values.shape}", f"shape {v.shape}"
            return False
        if self.dtype and v.dtype != np.dtype(self.dtype):
            self.shown, got.shown = f"dtype {self.dtype}", f"dtype {v.dtype}"
            return False
        bad = np.flatnonzero(v.ravel() != self.values.ravel())
        if len(bad):
            i = int(bad[0])
            self.shown = f"{self.values.ravel()[i]} for {self.where(i)}"
            got.shown = f"{v.ravel()[i]} ({len(bad)} of {v.size} elements differ)"
        return not len(bad)

    def __ne__(self, got: Any) -> bool:
        return not self == got

    def __repr__(self) -> str:
        return self.shown or f"<{self.values.dtype} array of shape {self.values.shape}>"


def _np_rng(rng: random.Random) -> np.random.Generator:
    """A numpy generator seeded from the exercise's own random stream (same cases every run)."""
    return np.random.default_rng(rng.randrange(1 << 32))


def _qparams_cases(rng: random.Random) -> Iterable[Case]:
    ranges = [(-rng.uniform(0, 8), rng.uniform(0, 8)) for _ in range(10)]
    ranges += [(0.0, rng.uniform(0.1, 6)) for _ in range(2)] + [(rng.uniform(0.1, 1), rng.uniform(2, 6))]
    ranges += [(-rng.uniform(2, 6), -rng.uniform(0.1, 1)), (-1e-6, 1e-6), (0.0, 0.0), (0.0, 6.0)]
    for _ in range(8):  # -lo / scale is exactly k + 1/2: the zero point is a rounding tie
        s, k = float(np.float32(2 ** rng.uniform(-10, 2))), rng.randint(0, 254)
        ranges.append((-(k + 0.5) * s, (254.5 - k) * s))
    for lo, hi in ranges:
        yield f"lo={lo!r}, hi={hi!r}", (lo, hi), _as_qparams(quant.choose_qparams(lo, hi))


def _multiplier_cases(rng: random.Random) -> Iterable[Case]:
    nrng = _np_rng(rng)
    k, e = nrng.integers(1 << 30, (1 << 31) - 1, 60), nrng.integers(-25, 4, 60)
    edges = [0.0, 1.0, 0.5, 0.25, 2.0, 1 - 2 ** -33, 1 - 2 ** -32, 2 ** -31, 2 ** -32, 2 ** -33, 1.5 * 2 ** -32,
             (1 - 2 ** -40) * 2 ** -32, (1 - 2 ** -40) * 2 ** -31, 3 * 2 ** -35, 1e-12]
    sets = [("random multipliers in [2^-20, 2^6)", nrng.permutation(np.concatenate(
                [2.0 ** nrng.uniform(-20, 0, 200), 2.0 ** nrng.uniform(0, 6, 40)]))),
            ("multipliers whose mantissa * 2^31 ends in exactly .5", (k + 0.5) * 2.0 ** (e - 31)),
            ("edge multipliers (0, powers of two, just below 1, below 2^-31)", np.array(edges))]
    for label, m in sets:
        m0, shift = fp.quantize_multiplier(m)
        n = len(m)
        where = (lambda i, m=m, n=n: f"{('M0', 'shift')[i // n]} of M={float(m[i % n])!r}")
        yield f"<{n} {label}>", (m.copy(),), _Exactly(np.stack([m0, shift]), where)


def _int32s(nrng: np.random.Generator, n: int) -> np.ndarray:
    """`n` int32 values of every magnitude (2^0 .. 2^31), either sign."""
    bits = nrng.integers(0, 32, n)
    return np.clip(nrng.integers(-(1 << 31), 1 << 31, n) >> (31 - bits), fp.INT32_MIN, fp.INT32_MAX)


def _srdhm_cases(rng: random.Random) -> Iterable[Case]:
    nrng = _np_rng(rng)
    edges = np.array([fp.INT32_MIN, fp.INT32_MIN + 1, -(1 << 30), -3, -1, 0, 1, 3, 1 << 30, fp.INT32_MAX])
    odd = nrng.integers(-(1 << 20), 1 << 20, 100) * 2 + 1
    sets = [("random int32 pairs", _int32s(nrng, 1000), _int32s(nrng, 1000)),
            ("accumulators times multipliers", nrng.integers(-(1 << 24), 1 << 24, 500),
             nrng.integers(1 << 30, 1 << 31, 500)),
            ("pairs whose result is exactly x.5", odd, np.full(100, 1 << 30)),
            ("pairs of edge values (INT32_MIN, INT32_MAX, -1, 0, 1, ...)", np.repeat(edges, 10), np.tile(edges, 10))]
    for label, a, b in sets:
        yield (f"<{len(a)} {label}>", (a.copy(), b.copy()),
               _Exactly(fp.saturating_rounding_doubling_high_mul(a, b), lambda i, a=a, b=b: f"a={a[i]}, b={b[i]}"))


def _divide_cases(rng: random.Random) -> Iterable[Case]:
    nrng = _np_rng(rng)
    e_tie = nrng.integers(1, 31, 300)
    k = nrng.integers(0, 1 << 30, 300) >> e_tie
    edges = np.array([fp.INT32_MIN, fp.INT32_MIN + 1, -3, -1, 0, 1, 3, fp.INT32_MAX])
    sets = [("random int32 values and exponents 0..31", _int32s(nrng, 1000), nrng.integers(0, 32, 1000)),
            ("values exactly halfway between two results", (2 * k + 1) * (1 << (e_tie - 1)) * nrng.choice([-1, 1], 300),
             e_tie),
            ("edge values with exponents 0, 1, 2, 30, 31", np.repeat(edges, 5), np.tile([0, 1, 2, 30, 31], 8))]
    for label, x, e in sets:
        yield (f"<{len(x)} {label}>", (x.copy(), e.copy()),
               _Exactly(fp.rounding_divide_by_pot(x, e), lambda i, x=x, e=e: f"x={x[i]}, exponent={e[i]}"))


def _requantize_cases(rng: random.Random) -> Iterable[Case]:
    nrng = _np_rng(rng)
    for i in range(8):
        c = rng.randint(1, 12)
        shape = (rng.randint(1, 2), rng.randint(1, 5), rng.randint(1, 5), c) if i % 2 else (rng.randint(1, 40), c)
        m = 2.0 ** nrng.uniform(-14, 0, c)
        if i >= 5:  # some multipliers above 1: a positive shift, applied before the high multiply
            m[nrng.random(c) < 0.5] = 2.0 ** nrng.uniform(0, 3)
        m0, shift = fp.quantize_multiplier(m)
        if i == 7:  # M0 = 2^30: both roundings meet exact halves
            m0, shift = np.full(c, 1 << 30), nrng.integers(-8, 1, c)
        bias = nrng.integers(-(1 << 14), 1 << 14, c)
        target = nrng.uniform(-300, 300, shape)  # outputs around the int8 range, some clamped
        acc = np.clip(np.round(target / (m0 * 2.0 ** (shift - 31))), -(1 << 26), 1 << 26).astype(np.int64) - bias
        zp = rng.randint(-128, 127)
        lo, hi = rng.choice([(-128, 127), (zp, 127), (zp, min(127, zp + rng.randint(20, 200))),
                             tuple(sorted(rng.sample(range(-128, 128), 2)))])
        where = (lambda j, acc=acc, bias=bias, m0=m0, shift=shift, c=c:
                 f"acc={acc.ravel()[j]}, bias={bias[j % c]}, multiplier={m0[j % c]}, shift={shift[j % c]}")
        yield (f"<{shape} accumulators>, <{c} biases>, <{c} multipliers>, <{c} shifts>, out_zero_point={zp}, "
               f"act_min={lo}, act_max={hi}", (acc.copy(), bias.copy(), m0.copy(), shift.copy(), zp, lo, hi),
               _Exactly(int8ref.requantize(acc + bias, m0, shift, zp, lo, hi), where, "int8"))


def _as_qparams(v: Any) -> Any:
    scale, zp = v
    return float(np.float32(scale)), int(zp) if float(zp).is_integer() else float(zp)


def _as_int_array(v: Any) -> Any:
    return _Ints(v)


def _as_multiplier(v: Any) -> Any:
    try:
        m0, shift = v
        return _Ints(np.stack([np.asarray(m0), np.asarray(shift)]))
    except Exception:  # not a pair of equal-length arrays
        return _Ints(v)


# ------------------------------------------------------------- lab 06: deploy to a microcontroller
def _random_sections(rng: random.Random) -> dict[str, int]:
    """Section sizes as `arm-none-eabi-size -A` lists them for a firmware: loaded ones (some may be
    missing), the test inputs, the reserved stack, and sections that never reach the board."""
    sizes = {".text": rng.randrange(8, 900_000, 4), ".ARM.exidx": rng.choice([0, 8, 16]),
             ".inputs": rng.randrange(0, 200_000, 8), ".data": rng.choice([0, 0, rng.randrange(4, 3000, 4)]),
             ".bss": rng.randrange(1000, 300_000, 8), ".stack": 2048, ".comment": 38, ".ARM.attributes": 50,
             ".debug_info": rng.randrange(100, 5000), ".debug_line": rng.randrange(100, 5000)}
    return {k: v for k, v in sizes.items() if v or rng.random() < 0.5}


def _memory_map_reference(sections: dict[str, int], stack_bytes: int) -> tuple[int, int]:
    """(Flash, SRAM) as `deploy` reports them: its Build's figures of these sections, plus the stack."""
    b = SimpleNamespace(sections=sections)
    return deploy.Build.flash_bytes.fget(b), deploy.Build.static_sram_bytes.fget(b) + stack_bytes


def _memory_map_cases(rng: random.Random) -> Iterable[Case]:
    for _ in range(12):
        sections, stack = _random_sections(rng), rng.randrange(100, 3000, 4)
        yield f"{sections}, stack_bytes={stack}", (sections, stack), _memory_map_reference(sections, stack)


def _scratch_cases(rng: random.Random) -> Iterable[Case]:
    graphs = list(_schedule_graphs(rng))
    graphs += [(f"<{m} at {r}px>", zoo.get(m, resolution=r).graph()) for m, r in (("mbv2", 96), ("mcunet", 64))]
    for label, g in graphs:
        plan = schedule.plan(g)
        expected = max((schedule.kernel_scratch_bytes(plan.graph, i, plan.pairs) for i in range(len(plan.graph.ops))),
                       default=0)
        yield f"{label}, <its {len(plan.pairs)} in-place pairs>", (plan.graph, plan.pairs), expected


MBQM_PROTOTYPE = "int64_t mcu_mbqm(int64_t x, int32_t m0, int32_t shift)"
_MBQM_HARNESS = r"""#include <stdint.h>
#include <stdio.h>
int64_t mcu_mbqm(int64_t x, int32_t m0, int32_t shift);
int main(void) {
    long long x, m0, shift;
    while (scanf("%lld %lld %lld", &x, &m0, &shift) == 3) {
        printf("%lld\n", (long long)mcu_mbqm(x, (int32_t)m0, (int32_t)shift));
        fflush(stdout); /* a crash or a sanitizer report then names its case */
    }
    return 0;
}
"""


class CError(Exception):
    """A student's C that does not compile, crashes, hangs or has undefined behaviour."""


def mbqm_in_c(source: str, cases: list[tuple[int, int, int]], timeout: float = 10) -> list[int]:
    """Compile `source` (a self-contained definition of `mcu_mbqm`, only <stdint.h> included) into a
    small test harness with gcc, AddressSanitizer and UBSan, and return mcu_mbqm(x, m0, shift) for
    every case; CError says in a few lines why that was not possible."""
    if shutil.which("gcc") is None:
        raise CError("no C compiler: install gcc (`apt-get install gcc`)")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "mine.c").write_text(f'#include <stdint.h>\n{MBQM_PROTOTYPE};\n#line 1 "your C"\n{source}\n')
        (d / "harness.c").write_text(_MBQM_HARNESS)
        r = subprocess.run(["gcc", "-std=c99", "-O1", "-g", *deploy.SANITIZE, "mine.c", "harness.c", "-lm", "-o", "t"],
                           cwd=d, capture_output=True, text=True)
        if r.returncode:
            missing = sorted(set(re.findall(r"undefined reference to `(\w+)'", r.stderr)))
            if missing:
                raise CError(f"it does not link: {', '.join(missing)} is not defined (the harness compiles your "
                             "source alone, with only <stdint.h>: define every helper you call)")
            errors = [ln for ln in r.stderr.splitlines() if "error" in ln] or r.stderr.splitlines()
            raise CError("it does not compile: " + " | ".join(errors[:4]).replace(str(d) + "/", ""))
        try:
            r = subprocess.run([str(d / "t")], input="".join(f"{x} {m} {s}\n" for x, m, s in cases), cwd=d,
                               capture_output=True, text=True, timeout=timeout,
                               env={**os.environ, "ASAN_OPTIONS": "detect_leaks=0"})
        except subprocess.TimeoutExpired as e:
            done = len((e.stdout or b"").splitlines())
            raise CError(f"mcu_mbqm{cases[min(done, len(cases) - 1)]} did not return within {timeout} s "
                         "(an infinite loop?)") from None
    out = r.stdout.splitlines()
    if r.returncode or len(out) != len(cases):
        why = next((ln.split("runtime error: ", 1)[1] for ln in r.stderr.splitlines() if "runtime error: " in ln),
                   None) or next((ln for ln in r.stderr.splitlines() if "ERROR:" in ln), f"exit code {r.returncode}")
        raise CError(f"mcu_mbqm{cases[min(len(out), len(cases) - 1)]} stopped the program: {why}"
                     + (" (undefined behaviour in C)" if "runtime error" in r.stderr else ""))
    return [int(v) for v in out]


def _mbqm_vectors(rng: random.Random) -> list[tuple[int, int, int]]:
    """Inputs of MultiplyByQuantizedMultiplier as kernels meet them: multipliers from
    QuantizeMultiplier of real scales 2^-24 .. 2^6, x in int32 so that x * 2^shift stays in int32;
    results exactly on both roundings' halves (M0 = 2^30); the int32 extremes; M0 = 0."""
    cases = []
    for _ in range(3000):
        m0, shift = (int(v) for v in fp.quantize_multiplier(2 ** rng.uniform(-24, 6)))
        bits = rng.randint(0, 31 - max(shift, 0))
        cases.append((rng.randint(-(1 << bits), (1 << bits) - 1), m0, shift))
    for shift in range(-14, 3):
        for x in [*range(-9, 10), *(rng.randrange(-(1 << 28), 1 << 28) | 1 for _ in range(6))]:
            cases.append((x, 1 << 30, shift))
    for m0 in (fp.INT32_MAX, 1 << 30, rng.randrange(1 << 30, 1 << 31), 0):
        cases += [(x, m0, s) for x in (fp.INT32_MIN, fp.INT32_MAX, -1, 0, 1) for s in (0, -1, -31)]
    rng.shuffle(cases)
    return cases


class _CSource:
    """A student's C source, shown briefly in feedback."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __repr__(self) -> str:
        n = len(str(self.source).strip().splitlines())
        return f"<your C source, {n} line{'s' if n != 1 else ''}>"


C_TWINS = ("mcu_srdhm", "mcu_rdbpot", "mcu_mbqm")  # the library's C that mbqm_c asks for


def _c_tokens(source: str) -> str:
    """C source without comments and whitespace: what a copy keeps however it is reformatted."""
    source = re.sub(r"/\*.*?\*/|//[^\n]*", "", source, flags=re.S)
    return re.sub(r"\s+", "", source)


def _copied_c(source: str) -> str | None:
    """The name of a library C function (C_TWINS) whose body `source` holds, if any: the twin rule
    for an exercise whose answer is C text rather than a call."""
    library = (Path(__file__).with_name("csrc") / "kernels.c").read_text()
    mine = _c_tokens(source)
    for name in C_TWINS:
        body = re.search(r"\b" + name + r"\([^)]*\)\s*(\{.*?\n\})", library, flags=re.S)
        if body and _c_tokens(body.group(1)) in mine:
            return name
    return None


class _BitExactInC(_Property):
    """What `mbqm_c` must return: C whose mcu_mbqm gives TFLite's MultiplyByQuantizedMultiplier on
    every case, compiled with sanitizers; the first reason it does not shows in the feedback."""

    def __init__(self, cases: list[tuple[int, int, int]]) -> None:
        self.cases, self.why = cases, ""
        x, m0, shift = zip(*cases)
        self.expected = [int(v) for v in fp.multiply_by_quantized_multiplier(x, m0, shift)]

    def problem(self, got: Any) -> str:
        if not isinstance(got, _CSource) or not isinstance(got.source, str):
            return "mbqm_c() must return the C source as a string"
        copied = _copied_c(got.source)
        if copied:
            return f"it holds the library's {copied} (mcunet_lite/csrc/kernels.c): write your own"
        try:
            results = mbqm_in_c(got.source, self.cases)
        except CError as e:
            return str(e)
        for case, mine, ref in zip(self.cases, results, self.expected):
            if mine != ref:
                return f"mcu_mbqm{case} returned {mine}, TFLite's MultiplyByQuantizedMultiplier gives {ref}"
        return ""

    def describe(self) -> str:
        return f"bit-exact results on {len(self.cases)} cases"


def _mbqm_c_cases(rng: random.Random) -> Iterable[Case]:
    yield "", (), _BitExactInC(_mbqm_vectors(rng))


def _as_c_source(v: Any) -> Any:
    return _CSource(v)


# ------------------------------------------------------------------------ lab 05: one-shot NAS
class _Floats:
    """A student's float tensor or array, shown in feedback by its shape (or by what it is)."""

    def __init__(self, raw: Any) -> None:
        raw = raw.detach() if hasattr(raw, "detach") else raw
        try:
            self.values = np.asarray(raw, np.float64)
            self.shown = ""
        except Exception:  # not numbers: shown as what it is
            self.values, self.shown = None, f"{type(raw).__name__} {str(raw)[:80]}"

    def __repr__(self) -> str:
        return self.shown or f"<array of shape {self.values.shape}>"


class _Close:
    """What a float exercise must return: these values (to float32 rounding), element for element.
    After a comparison both reprs name the first element that differs."""

    def __init__(self, values: np.ndarray) -> None:
        self.values, self.shown = np.asarray(values, np.float64), ""

    def __eq__(self, got: Any) -> bool:
        if not isinstance(got, _Floats) or got.values is None:
            self.shown = f"a float tensor of shape {self.values.shape}"
            return False
        if got.values.shape != self.values.shape:
            self.shown, got.shown = f"shape {self.values.shape}", f"shape {got.values.shape}"
            return False
        bad = np.flatnonzero(~np.isclose(got.values, self.values, rtol=1e-4, atol=1e-5))
        if len(bad):
            i = np.unravel_index(int(bad[0]), self.values.shape)
            self.shown = f"{self.values[i]:.6g} at index {tuple(int(j) for j in i)}"
            got.shown = f"{got.values[i]:.6g} ({len(bad)} of {self.values.size} elements differ)"
        return not len(bad)

    def __ne__(self, got: Any) -> bool:
        return not self == got

    def __repr__(self) -> str:
        return self.shown or f"<float array of shape {self.values.shape}>"


def _elastic_kernel_reference(weight, transforms: dict, kernel: int) -> np.ndarray:
    """The supernet's own kernel for `kernel`: an ElasticDepthwise holding these weights and transforms."""
    import torch
    from . import supernet
    dw = supernet.ElasticDepthwise(weight.shape[0], 1)
    with torch.no_grad():
        dw.weight.copy_(weight)
        for s, t in transforms.items():
            dw.transforms[str(s)].copy_(t)
        return dw.kernel_weight(kernel, weight.shape[0]).numpy()


def _elastic_kernel_cases(rng: random.Random) -> Iterable[Case]:
    import torch
    gen = torch.Generator().manual_seed(rng.randrange(1 << 31))
    for i in range(12):
        c, kernel = rng.randint(1, 12), (3, 5, 7)[i % 3]
        weight = torch.randn(c, 1, 7, 7, generator=gen)
        if i < 3:
            transforms, kind = {5: torch.eye(25), 3: torch.eye(9)}, "identity"
        elif i < 6:  # near identity, as after some training
            transforms, kind = {s: torch.eye(s * s) + 0.2 * torch.randn(s * s, s * s, generator=gen)
                                for s in (5, 3)}, "identity + noise"
        else:
            transforms, kind = {s: torch.randn(s * s, s * s, generator=gen) for s in (5, 3)}, "random"
        yield (f"<({c}, 1, 7, 7) random weight>, <{kind} transforms>, kernel={kernel}",
               (weight.clone(), {s: t.clone() for s, t in transforms.items()}, kernel),
               _Close(_elastic_kernel_reference(weight, transforms, kernel)))


def _random_subnet(rng: random.Random):
    """A random subnet of a small random space (keeps each cost evaluation fast)."""
    return search_space.sample(rng, rng.choice((0.2, 0.3, 0.4, 0.5)), rng.choice((48, 64, 80, 96)))


def _fits_cases(rng: random.Random) -> Iterable[Case]:
    from . import evolution as evo
    # (SRAM, Flash, MAC limit) from the subnet's own cost: random, exactly at one limit, one over
    edges = [lambda c: (c.sram, c.flash + 1000, c.macs + 1000), lambda c: (c.sram + 1000, c.flash, 0),
             lambda c: (c.sram + 1000, c.flash + 1000, c.macs), lambda c: (c.sram - 1, c.flash + 1000, 0),
             lambda c: (c.sram + 1000, c.flash - 1, 0), lambda c: (c.sram + 1000, c.flash + 1000, c.macs - 1),
             lambda c: (c.sram, c.flash, 0), lambda c: (c.sram + 1000, c.flash - 1, c.macs + 1000)]
    noisy = lambda c: tuple(round(v * rng.uniform(0.8, 1.6)) for v in (c.sram, c.flash, c.macs if rng.random() < 0.7
                                                                        else 0))
    for make in edges + [noisy] * 8:
        cfg = _random_subnet(rng)
        c = search_space.cost(cfg)
        limits = evo.Limits(*make(c))
        yield (f"<subnet at width {cfg.width}, {cfg.resolution}px: {c.sram} B SRAM, {c.flash} B Flash, {c.macs} MACs>"
               f", {limits}", (cfg, limits), evo.fits(evo.Candidate(cfg), limits))


def _genome(cfg) -> tuple:
    """A config as comparable values: width, resolution and every stage's (kernel, expand) list."""
    return cfg.width, cfg.resolution, tuple((s.depth, tuple((b.kernel, b.expand) for b in s.blocks))
                                            for s in cfg.stages)


class _Offspring(_Property):
    """What `crossover` must return: this child genome, with both parents left as they were. The
    student's side reports (child, parent a, parent b) genomes after the call (`_crossover_view`)."""

    def __init__(self, child, a, b) -> None:
        self.child, self.before, self.why = _genome(child), (_genome(a), _genome(b)), ""

    def problem(self, got: Any) -> str:
        if not isinstance(got, tuple) or len(got) != 3:
            return "the result is not a network configuration"
        if got[1:] != self.before:
            return "a parent was changed (copy before you edit)"
        return "" if got[0] == self.child else f"the child {got[0]}"

    def describe(self) -> str:
        return f"{self.child} and parents left as they were"


def _crossover_view(args: tuple, child: Any) -> tuple:
    """Beside the student's code: the child's genome and both parents' genomes after the call."""
    return _genome(child) if hasattr(child, "stages") else child, _genome(args[0]), _genome(args[1])


def _crossover_cases(rng: random.Random) -> Iterable[Case]:
    from . import evolution as evo
    for i in range(10):
        w, r = rng.choice(search_space.WIDTHS), rng.choice(search_space.RESOLUTIONS)
        a, b = search_space.sample(rng, w, r), search_space.sample(rng, w, r)
        if i == 9:
            b = copy.deepcopy(a)  # identical parents: the child is the same network
        seed = rng.randrange(1 << 30)
        child = evo.crossover(evo.Candidate(copy.deepcopy(a)), evo.Candidate(copy.deepcopy(b)),
                              random.Random(seed)).cfg
        depths = lambda cfg: [s.depth for s in cfg.stages[1:]]
        yield (f"<a: depths {depths(a)}>, <b: depths {depths(b)}>, random.Random({seed})", (a, b, random.Random(seed)),
               _Offspring(child, a, b))


def _pareto_reference(points: list[tuple]) -> list[tuple]:
    """Points no other point beats on both axes (no more cost and no less accuracy), by cost, once each."""
    unique = sorted(set(points))
    return [p for p in unique if not any(q != p and q[0] <= p[0] and q[1] >= p[1] for q in unique)]


def _pareto_cases(rng: random.Random) -> Iterable[Case]:
    for i in range(12):
        n = rng.randint(1, 20)
        costs = [rng.randrange(1, 10) * 1_000_000 if i % 2 else rng.randrange(1, 10 ** 8) for _ in range(n)]
        accs = [rng.randrange(0, 20) / 20 if i % 3 else rng.random() for _ in range(n)]
        points = list(zip(costs, accs))
        if i % 4 == 3:
            points += rng.sample(points, min(3, n))  # the same subnet scored twice
        rng.shuffle(points)
        yield f"{points}", (list(points),), _as_points(_pareto_reference(points))
    rising = [(k * 1000, k / 10) for k in range(1, 8)]
    yield f"{rising}", (list(rising),), rising


def _as_bool(v: Any) -> Any:
    return bool(v) if isinstance(v, (bool, np.bool_)) else v


def _as_points(v: Any) -> Any:
    return [(int(c), round(float(a), 12)) for c, a in v]


# ------------------------------------------------------------------------ lab 07: detection
def _shown(b: np.ndarray) -> str:
    """Boxes in feedback: the numbers when there are few, else how many."""
    return str(np.round(b, 3).tolist()) if len(b) <= 3 else f"<{len(b)} random boxes>"


def _random_boxes(nrng: np.random.Generator, n: int, grid: bool = False, empty: float = 0.0) -> np.ndarray:
    """`n` xyxy boxes: float corners in [0, 100] and sides up to 40, or (`grid`) small integer
    boxes that often touch, contain or equal one another; a fraction `empty` get zero width or height."""
    if grid:
        xy, wh = nrng.integers(0, 6, (n, 2)), nrng.integers(1, 5, (n, 2))
    else:
        xy, wh = nrng.uniform(0, 100, (n, 2)), nrng.uniform(0.5, 40, (n, 2))
    wh = np.where(nrng.random((n, 1)) < empty, wh * (nrng.random((n, 2)) < 0.5), wh)
    return np.concatenate([xy, xy + wh], 1).astype(np.float64)


def _clustered_boxes(nrng: np.random.Generator, n: int) -> np.ndarray:
    """`n` boxes jittered around a few objects, as a detector's raw output overlaps (what NMS is for)."""
    objects = _random_boxes(nrng, int(nrng.integers(1, 5)))
    b = objects[nrng.integers(0, len(objects), n)]
    return b + nrng.normal(0, 1, (n, 4)) * np.c_[b[:, 2:] - b[:, :2], b[:, 2:] - b[:, :2]] * 0.12


def _iou_cases(rng: random.Random) -> Iterable[Case]:
    from . import boxes
    nrng = _np_rng(rng)
    sets = [(_random_boxes(nrng, rng.randint(1, 12)), _random_boxes(nrng, rng.randint(1, 12))) for _ in range(5)]
    sets += [(_random_boxes(nrng, rng.randint(2, 12), grid=True), _random_boxes(nrng, rng.randint(2, 12), grid=True))
             for _ in range(4)]
    sets += [(_random_boxes(nrng, 8, grid=True, empty=0.5), _random_boxes(nrng, 6, grid=True, empty=0.5)),
             (np.array([[2.0, 2, 2, 5], [1, 1, 1, 1]]), np.array([[2.0, 2, 2, 5], [1, 1, 1, 1], [0, 0, 4, 4]])),
             (np.zeros((0, 4)), _random_boxes(nrng, 3)), (_random_boxes(nrng, 2), np.zeros((0, 4)))]
    for a, b in sets:
        yield f"{_shown(a)}, {_shown(b)}", (a.copy(), b.copy()), _Close(boxes.iou(a, b))


def _nms_cases(rng: random.Random) -> Iterable[Case]:
    from . import boxes
    nrng = _np_rng(rng)
    for i in range(12):
        n = rng.randint(1, 25)
        b = _random_boxes(nrng, n, grid=True) if i % 4 == 3 else _clustered_boxes(nrng, n)
        s = nrng.integers(1, 6, n) / 5 if i % 3 == 0 else nrng.random(n)    # some with ties in score
        thr = 0.5 if i % 4 == 3 else rng.choice([0.3, 0.45, 0.5, 0.7])     # grid boxes: IoU exactly 0.5 occurs
        yield f"{_shown(b)}, <{n} scores>, iou_threshold={thr}", (b.copy(), s.copy(), thr), \
            [int(k) for k in boxes.nms(b, s, None, thr)]
    same = np.tile([[0.0, 0, 10, 10]], (3, 1))
    yield f"{same.tolist()}, [0.5, 0.5, 0.5], iou_threshold=0.5", (same, np.full(3, 0.5), 0.5), [0]
    yield "<0 boxes>, <0 scores>, iou_threshold=0.5", (np.zeros((0, 4)), np.zeros(0), 0.5), []


def _as_indices(v: Any) -> Any:
    return [int(i) for i in np.asarray(v).reshape(-1)]


def _pr_curve(hits: np.ndarray, npos: int) -> tuple[np.ndarray, np.ndarray]:
    """Running recall and precision of detections in score order (`hits`: true positive or not)."""
    tp = np.cumsum(hits, dtype=np.float64)
    return tp / npos, tp / np.arange(1, len(hits) + 1)


def _average_precision_cases(rng: random.Random) -> Iterable[Case]:
    from . import boxes
    nrng = _np_rng(rng)
    for i in range(12):
        npos, n = rng.randint(1, 10), rng.randint(1, 16)
        hits = nrng.random(n) < rng.uniform(0.2, 0.9)
        hits[np.cumsum(hits) > npos] = False                 # at most npos true positives
        r, p = _pr_curve(hits, npos)
        yield f"recall={np.round(r, 4).tolist()}, precision={np.round(p, 4).tolist()}", (r.copy(), p.copy()), \
            _Close(boxes.average_precision(r, p))
    yield "recall=[], precision=[]", (np.zeros(0), np.zeros(0)), _Close(0.0)


def _ap50_reference(dets: list, truths: list) -> float:
    """The library's VOC AP at IoU 0.5 of one class: every box class 0, nothing ignored."""
    from .boxes import Detections, Truth, class_ap
    zeros = lambda k: np.zeros(k, np.int64)  # noqa: E731
    return class_ap([Detections(b, s, zeros(len(b))) for b, s in dets],
                    [Truth(t, zeros(len(t)), np.zeros(len(t), bool), (100, 100)) for t in truths], 0, 0.5)[0]


def _detections_of(nrng: np.random.Generator, truth: np.ndarray, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    """A detector's output on one image: jittered hits (some twice, some near IoU 0.5) and misses."""
    found = [t for t in truth for _ in range(int(nrng.choice([0, 1, 1, 2])))]
    side = lambda b: np.r_[b[2:] - b[:2], b[2:] - b[:2]]  # noqa: E731
    found = [t + nrng.normal(0, nrng.choice([0.05, 0.2]), 4) * side(t) for t in found]
    b = np.concatenate([np.reshape(found, (-1, 4)), _random_boxes(nrng, int(nrng.integers(0, 3)))])
    s = nrng.integers(1, 5, len(b)) / 4 if ties else nrng.random(len(b))
    order = nrng.permutation(len(b))
    return b[order], s[order]


def _ap50_cases(rng: random.Random) -> Iterable[Case]:
    nrng = _np_rng(rng)
    for i in range(12):
        truths = []
        for _ in range(rng.randint(1, 6)):
            t = _random_boxes(nrng, int(nrng.integers(0, 5)))
            if len(t) and i % 3 == 0:                        # people in a crowd: truths overlapping closely
                t = np.concatenate([t, t + nrng.normal(0, 1.5, t.shape)])
            truths.append(t)
        if not sum(len(t) for t in truths):
            truths[0] = _random_boxes(nrng, 1)
        dets = [_detections_of(nrng, t, ties=i % 4 == 1) for t in truths]
        if i % 3 == 2:                                       # an image the detector finds nothing in
            dets[int(np.argmax([len(t) for t in truths]))] = (np.zeros((0, 4)), np.zeros(0))
        label = f"<{len(truths)} images: {sum(len(t) for t in truths)} truth boxes, {sum(len(b) for b, _ in dets)} " \
                f"detections{', tied scores' if i % 4 == 1 else ''}>"
        yield label, ([(b.copy(), s.copy()) for b, s in dets], [t.copy() for t in truths]), \
            _Close(_ap50_reference(dets, truths))
    half = [(np.array([[0.0, 0, 10, 20], [0, 0, 20, 10], [30, 30, 40, 40]]), np.array([0.9, 0.8, 0.7]))]
    truth = [np.array([[0.0, 0, 10, 10], [30, 30, 40, 40]])]
    yield f"[({half[0][0].tolist()}, {half[0][1].tolist()})], {[truth[0].tolist()]}", (half, truth), \
        _Close(_ap50_reference(half, truth))
    crowd = [(np.array([[0.0, 0, 10, 10], [0.2, 0, 10.2, 10]]), np.array([0.9, 0.8]))]
    truth = [np.array([[0.0, 0, 10, 10], [1, 0, 11, 10]])]
    yield f"[({crowd[0][0].tolist()}, {crowd[0][1].tolist()})], {[truth[0].tolist()]}", (crowd, truth), \
        _Close(_ap50_reference(crowd, truth))
    none = [(np.zeros((0, 4)), np.zeros(0)), (np.zeros((0, 4)), np.zeros(0))]
    truth = [np.array([[0.0, 0, 10, 10]]), np.zeros((0, 4))]
    yield "<2 images, no detections>, <1 truth box>", (none, truth), _Close(0.0)


L = "mcunet_lite."
PROFILE_TWINS = (L + "profile.profile", L + "profile.op_sram", L + "profile.op_macs")
EXERCISES: dict[str, list[Exercise]] = {
    "00_memory_wall": [
        Exercise("conv_layer_cost", "conv_layer_cost", 2, _conv_cases, _as_cost, PROFILE_TWINS),
        Exercise("live_bytes", "live_bytes", 4, _live_cases, _as_ints,
                 PROFILE_TWINS + (L + "profile.lifetimes", L + "profile.fused_residuals", L + "schedule.live_bytes",
                                  L + "schedule.inplace_pairs")),
        Exercise("block_peaks", "block_peaks", 2, _block_cases, _as_dict, (L + "profile.block_of",)),
        Exercise("largest_fitting_resolution", "largest_fitting_resolution", 2, _fit_cases,
                 twins=PROFILE_TWINS + (L + "schedule.live_bytes", L + "schedule.lower_bound")),
    ],
    "01_int8": [
        Exercise("choose_qparams", "choose_qparams", 2, _qparams_cases, _as_qparams, (L + "quant.choose_qparams",)),
        Exercise("quantize_multiplier", "quantize_multiplier", 2, _multiplier_cases, _as_multiplier,
                 (L + "fixedpoint.quantize_multiplier",)),
        Exercise("rounding_divide_by_pot", "rounding_divide_by_pot", 2, _divide_cases, _as_int_array,
                 (L + "fixedpoint.rounding_divide_by_pot",)),
        Exercise("saturating_rounding_doubling_high_mul", "saturating_rounding_doubling_high_mul", 2, _srdhm_cases,
                 _as_int_array, (L + "fixedpoint.saturating_rounding_doubling_high_mul",)),
        Exercise("requantize", "requantize", 2, _requantize_cases, _as_int_array,
                 (L + "int8ref.requantize", L + "fixedpoint.multiply_by_quantized_multiplier",
                  L + "fixedpoint.rounding_divide_by_pot", L + "fixedpoint.saturating_rounding_doubling_high_mul")),
    ],
    "02_memory_scheduling": [
        Exercise("tensor_lifetimes", "tensor_lifetimes", 2, _lifetime_cases, _as_lifetimes,
                 (L + "profile.lifetimes",)),
        Exercise("lower_bound", "lower_bound", 2, _lower_bound_cases, int,
                 (L + "schedule.lower_bound", L + "schedule.live_bytes", L + "schedule._live_sums")),
        Exercise("first_fit", "first_fit", 3, _first_fit_cases, _as_placement,
                 (L + "schedule.plan", L + "schedule._first_fit", L + "schedule._allocate")),
        Exercise("in_place_pairs", "in_place_pairs", 3, _inplace_cases, _as_pairs, (L + "schedule.inplace_pairs",)),
    ],
    "03_patch_inference": [
        Exercise("input_region", "input_region", 2, _input_region_cases, _as_pair, (L + "patch.input_region",)),
        Exercise("trace_receptive_field", "trace_receptive_field", 3, _trace_cases, _as_regions,
                 (L + "patch.trace", L + "patch.receptive_field", L + "patch.input_region")),
        Exercise("patch_stage_macs", "patch_stage_macs", 3, _stage_macs_cases, _as_pair,
                 (L + "patch.plan", L + "patch.trace", L + "patch.input_region", L + "patch._macs")),
        Exercise("cheapest_grid", "cheapest_grid", 2, _grid_cases, twins=(L + "patch.auto_plan",)),
    ],
    "04_search_space": [
        Exercise("fit_stats", "fit_stats", 3, _fit_stats_cases, _as_stats,
                 (L + "search_space.SpaceStats.fit_fraction", L + "search_space.SpaceStats.mean_macs",
                  L + "search_space.evaluate_space")),
        Exercise("choose_space", "choose_space", 3, _choose_space_cases, _as_space, (L + "search_space.optimise",)),
        Exercise("largest_resolution_for", "largest_resolution_for", 4, _largest_resolution_cases, _as_resolution,
                 (L + "search_space.optimise", L + "search_space.evaluate_space")),
    ],
    "05_one_shot_nas": [
        Exercise("elastic_kernel", "elastic_kernel", 3, _elastic_kernel_cases, _Floats,
                 (L + "supernet.ElasticDepthwise.kernel_weight",)),
        Exercise("fits", "fits", 2, _fits_cases, _as_bool, (L + "evolution.fits", L + "evolution.evaluate_cost")),
        Exercise("crossover", "crossover", 2, _crossover_cases, twins=(L + "evolution.crossover",),
                 view=_crossover_view),
        Exercise("pareto_front", "pareto_front", 3, _pareto_cases, _as_points),
    ],
    "06_deploy": [
        Exercise("memory_map", "memory_map", 2, _memory_map_cases, _as_pair,
                 (L + "deploy.Build.flash_bytes", L + "deploy.Build.static_sram_bytes")),
        Exercise("scratch_bytes", "scratch_bytes", 3, _scratch_cases, int, (L + "schedule.kernel_scratch_bytes",)),
        Exercise("mbqm_c", "mbqm_c", 5, _mbqm_c_cases, _as_c_source),
    ],
    "07_detection": [
        Exercise("iou", "iou", 2, _iou_cases, _Floats, (L + "boxes.iou",)),
        Exercise("nms", "nms", 3, _nms_cases, _as_indices, (L + "boxes.nms",)),
        Exercise("average_precision", "average_precision", 2, _average_precision_cases, _Floats,
                 (L + "boxes.average_precision",)),
        Exercise("ap50", "ap50", 3, _ap50_cases, _Floats, (L + "boxes.class_ap", L + "boxes.evaluate")),
    ],
}
