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


def _as_lifetimes(v: Any) -> Any:
    return {str(k): (int(a), int(b)) for k, (a, b) in v.items()}


def _as_placement(v: Any) -> Any:
    offsets, arena = v
    return _Placed([int(o) for o in offsets], int(arena))


def _as_pairs(v: Any) -> Any:
    return [(str(x), str(y)) for x, y in v]



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
    Exercise("tensor_lifetimes", "tensor_lifetimes", 2, _lifetime_cases, _as_lifetimes,
             (LIB + "liveness.lifetimes",), reference=_tensor_lifetimes),
    Exercise("lower_bound", "lower_bound", 2, _lower_bound_cases, int,
             (LIB + "liveness.lower_bound", LIB + "liveness.live_bytes", LIB + "liveness.live_sums"), reference=lower_bound_reference),
    Exercise("first_fit", "first_fit", 3, _first_fit_cases, _as_placement,
             (LIB + "schedule.plan", LIB + "schedule.first_fit", LIB + "schedule.allocate"), reference=_first_fit),
    Exercise("in_place_pairs", "in_place_pairs", 3, _inplace_cases, _as_pairs, (LIB + "liveness.inplace_pairs",), reference=_in_place_pairs),
]
