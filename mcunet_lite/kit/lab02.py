"""Graded checks of Lab 02, memory scheduling: the cases each exercise is scored on, made in the grader's
process from the run's seed, and the library's answers they are compared with."""
from __future__ import annotations

import random
from typing import Any, Iterable


from .. import liveness, schedule
from ..ir import Graph
from .exercise import LIB, Case, Exercise
from .compare import Property
from .inputs import schedule_graphs
from .. import zoo

def _buffers(g: Graph) -> Buffers:
    nbytes = liveness.activation_bytes(g)
    return [(nbytes[t], first, last) for t, (first, last) in liveness.lifetimes(g).items()]


Buffers = list[tuple[int, int, int]]  # (bytes, first op, last op) of every tensor


def _random_buffers(rng: random.Random, n: int) -> Buffers:
    """`n` random lifetimes, many of them touching (one ends at the op where another starts)."""
    found: Buffers = []
    for _ in range(n):
        first = rng.choice([rng.randint(0, 12)] + [b[2] for b in found[-2:]])
        found.append((rng.randrange(8, 100, 4), first, first + rng.randint(0, 4)))
    return found


def _lib_buffers(buffers: Buffers) -> list[liveness.Buffer]:
    return [liveness.Buffer([(str(i), first, last, size)]) for i, (size, first, last) in enumerate(buffers)]


def _first_fit_arena(buffers: Buffers) -> int:
    """Largest-first first fit (TFLite Micro's greedy planner): the arena a student's must match."""
    return schedule.first_fit(sorted(_lib_buffers(buffers), key=lambda b: (-b.size, b.first)))


def lower_bound_reference(buffers: Buffers) -> int:
    return max(liveness.live_sums(_lib_buffers(buffers), max(b[2] for b in buffers) + 1))


def _lifetime_cases(rng: random.Random) -> Iterable[Case]:
    for label, g in schedule_graphs(rng):
        yield label, (g,), liveness.lifetimes(g)


def _lower_bound_cases(rng: random.Random) -> Iterable[Case]:
    for i in range(6):
        b = _random_buffers(rng, rng.randint(3, 14))
        yield f"{b}", (b,), lower_bound_reference(b)
    for label, g in schedule_graphs(rng):
        yield f"<the buffers of {label[1:]}", (_buffers(g),), lower_bound_reference(_buffers(g))


class _Placed:
    """A student's `first_fit` result, shown briefly in feedback."""

    def __init__(self, offsets: list[int], arena: int) -> None:
        self.offsets, self.arena = offsets, arena

    def __repr__(self) -> str:
        return f"{len(self.offsets)} offsets in an arena of {self.arena} bytes"


class _ValidPlacement(Property):
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
    for label, g in schedule_graphs(rng):
        b = _buffers(g)
        yield f"<the buffers of {label[1:]}", (b,), _ValidPlacement(b, _first_fit_arena(b))


def _inplace_cases(rng: random.Random) -> Iterable[Case]:
    for label, g in schedule_graphs(rng):
        yield label, (g,), liveness.inplace_pairs(g)


class _StudentPlan:
    """A student's `plan_arena` result, shown briefly in feedback."""

    def __init__(self, offsets: dict[str, int], pairs: list[tuple[str, str]], arena: int) -> None:
        self.offsets, self.pairs, self.arena = offsets, pairs, arena

    def __repr__(self) -> str:
        return f"{len(self.offsets)} offsets, {len(self.pairs)} in-place pairs, an arena of {self.arena} bytes"


class _ValidPlan(Property):
    """What `plan_arena` must return: an offset for every activation, in-place pairs the TinyEngine
    rule allows (`liveness.inplace_pairs`: MCUNet section 3.2) with the output at its input's
    offset, a plan `schedule.check` accepts (no two tensors live at one op share a byte unless they
    are a declared pair), an arena that is the end of the highest tensor, and no larger than
    largest-first first fit over the in-place buffers: the lower bound on every network here."""

    def __init__(self, g: Graph) -> None:
        nbytes = liveness.activation_bytes(g)
        self.g, self.nbytes, self.life, self.allowed = g, nbytes, liveness.lifetimes(g), liveness.inplace_pairs(g)
        bufs = liveness.buffers(g, self.allowed, nbytes)
        self.bound = max(liveness.live_sums(bufs, len(g.ops)))
        self.arena = schedule.allocate(bufs, "greedy", self.bound)

    def _placements(self, got: _StudentPlan) -> str | dict[str, schedule.Placement]:
        """The student's offsets as the checker's placements, or why they cannot be."""
        if set(got.offsets) != set(self.life):
            wrong = sorted(set(got.offsets) ^ set(self.life))[:3]
            return f"offsets must name every activation tensor, and nothing else (see {wrong})"
        for x, y in got.pairs:
            if (x, y) not in self.allowed:
                return f"({x!r}, {y!r}) is not an in-place pair the rule allows"
            if got.offsets[x] != got.offsets[y]:
                return f"in-place output {y!r} must start at its input {x!r}'s offset"
        return {t: schedule.Placement(t, got.offsets[t], self.nbytes[t], *self.life[t]) for t in self.life}

    def problem(self, got: Any) -> str:
        if not isinstance(got, _StudentPlan):
            return "the result is not (offsets, pairs, arena_bytes)"
        placed = self._placements(got)
        if isinstance(placed, str):
            return placed
        top = max(o + self.nbytes[t] for t, o in got.offsets.items())
        if got.arena != top:
            return f"arena_bytes {got.arena} is not the end of the highest tensor ({top})"
        try:
            schedule.check(schedule.Plan(self.g, "yours", True, placed, list(got.pairs), got.arena, self.bound, 0, 0))
        except schedule.OverlapError as e:
            return str(e)
        return "" if got.arena <= self.arena else f"{got.arena} bytes wastes memory"

    def describe(self) -> str:
        return f"a plan the checker accepts in at most {self.arena} bytes (lower bound {self.bound})"


def _plan_cases(rng: random.Random) -> Iterable[Case]:
    for label, g in schedule_graphs(rng):
        yield label, (g,), _ValidPlan(g)
    width, resolution = rng.choice([0.35, 0.5]), rng.choice([48, 64, 96])
    g = zoo.mobilenet_v2(width, resolution).graph()
    yield f"<MobileNetV2 ({width}, {resolution})>", (g,), _ValidPlan(g)


def _as_lifetimes(v: Any) -> Any:
    return {str(k): (int(a), int(b)) for k, (a, b) in v.items()}


def _as_placement(v: Any) -> Any:
    offsets, arena = v
    return _Placed([int(o) for o in offsets], int(arena))


def _as_pairs(v: Any) -> Any:
    return [(str(x), str(y)) for x, y in v]



def _as_plan(v: Any) -> Any:
    offsets, pairs, arena = v
    return _StudentPlan({str(t): int(o) for t, o in offsets.items()}, [(str(x), str(y)) for x, y in pairs], int(arena))


def _plan_arena(graph) -> tuple[dict[str, int], list[tuple[str, str]], int]:
    nbytes = liveness.activation_bytes(graph)
    pairs = liveness.inplace_pairs(graph)
    bufs = liveness.buffers(graph, pairs, nbytes)
    arena = schedule.allocate(bufs, "greedy", max(liveness.live_sums(bufs, len(graph.ops))))
    return {t: b.offset for b in bufs for t, *_ in b.segments}, pairs, arena


def _tensor_lifetimes(graph) -> dict[str, tuple[int, int]]:
    return liveness.lifetimes(graph)


def _first_fit(buffers: list[tuple[int, int, int]]) -> tuple[list[int], int]:
    """Largest first (ties: earliest first), each buffer (size, first, last) at the lowest free offset."""
    lib = [liveness.Buffer([(str(i), first, last, size)]) for i, (size, first, last) in enumerate(buffers)]
    arena = schedule.first_fit(sorted(lib, key=lambda b: (-b.size, b.first)))
    return [b.offset for b in lib], arena


def _in_place_pairs(graph) -> list[tuple[str, str]]:
    return liveness.inplace_pairs(graph)


LAB = "02_memory_scheduling"
EXERCISES: list[Exercise] = [
    Exercise("tensor_lifetimes", "tensor_lifetimes", 1, _lifetime_cases, _as_lifetimes,
             (LIB + "liveness.lifetimes",), reference=_tensor_lifetimes),
    Exercise("lower_bound", "lower_bound", 1, _lower_bound_cases, int,
             (LIB + "liveness.lower_bound", LIB + "liveness.live_bytes", LIB + "liveness.live_sums"), reference=lower_bound_reference),
    Exercise("first_fit", "first_fit", 2, _first_fit_cases, _as_placement,
             (LIB + "schedule.plan", LIB + "schedule.first_fit", LIB + "schedule.allocate"), reference=_first_fit),
    Exercise("in_place_pairs", "in_place_pairs", 2, _inplace_cases, _as_pairs,
             (LIB + "liveness.inplace_pairs", LIB + "liveness.inplace_input"), reference=_in_place_pairs),
    Exercise("plan_arena", "plan_arena", 4, _plan_cases, _as_plan,
             (LIB + "schedule.plan", LIB + "schedule.first_fit", LIB + "schedule.allocate", LIB + "liveness.lifetimes",
              LIB + "liveness.inplace_pairs", LIB + "liveness.inplace_input", LIB + "liveness.buffers",
              LIB + "liveness.live_sums", LIB + "liveness.layout"), reference=_plan_arena),
]
