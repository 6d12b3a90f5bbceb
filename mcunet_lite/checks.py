"""Graded checks of every lab, run by the grader on the student's functions (looked up by name).

Each check calls the student's function on seeded variants of its inputs (so a hard-coded answer to
the notebook's visible example fails) and compares with the library's own result; the first
mismatch becomes the feedback: which input, what was expected, what came back.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from . import profile as prof
from . import zoo
from .ir import Graph

Case = tuple[str, tuple, Any]  # (description of the input, arguments, expected result)


@dataclass
class Exercise:
    """One graded exercise: the function the student writes and the cases that score it."""

    id: str
    function: str
    points: float
    cases: Callable[[random.Random], Iterable[Case]]
    normalise: Callable[[Any], Any] = lambda v: v


def _verdict(ex: Exercise, ns: dict) -> str | None:
    """None when every case passes, else the feedback for the first failure."""
    fn = ns.get(ex.function)
    if not callable(fn):
        return f"`{ex.function}` is not defined: run its cell, and keep its name as given"
    if (getattr(fn, "__module__", None) or "").startswith("mcunet_lite"):
        return f"`{ex.function}` is the library's own {fn.__module__}.{fn.__name__}: write your own"
    for label, args, expected in ex.cases(random.Random(ex.id)):
        try:
            raw = fn(*args)
        except NotImplementedError:
            return "not implemented yet (it raises NotImplementedError)"
        except Exception as e:  # the student's code may raise anything; report it
            return f"{ex.function}({label}) raised {type(e).__name__}: {e}"
        try:
            got = ex.normalise(raw)
        except Exception:  # a result of the wrong form (not a tuple, not numbers...)
            got = raw
        if got != expected:
            return f"{ex.function}({label}): expected {expected!r}, got {got!r}"
    return None


def run(lab: str, exercise: str, ns: dict) -> dict:
    """Score one exercise of `lab` against the namespace `ns`: {id, points, max_points, feedback}."""
    ex = next(e for e in EXERCISES[lab] if e.id == exercise)
    failure = _verdict(ex, ns)
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


EXERCISES: dict[str, list[Exercise]] = {
    "00_memory_wall": [
        Exercise("conv_layer_cost", "conv_layer_cost", 2, _conv_cases, _as_cost),
        Exercise("live_bytes", "live_bytes", 4, _live_cases, _as_ints),
        Exercise("block_peaks", "block_peaks", 2, _block_cases, _as_dict),
        Exercise("largest_fitting_resolution", "largest_fitting_resolution", 2, _fit_cases),
    ],
}
