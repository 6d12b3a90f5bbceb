"""Graded checks of Lab 00, the memory wall: the cases each exercise is scored on, made in the grader's
process from the run's seed, and the library's answers they are compared with."""
from __future__ import annotations

import random
from typing import Any, Iterable


from .. import zoo
from .. import profile as prof
from ..ir import Graph
from .exercise import LIB, Case, Exercise
from .inputs import random_mbconv

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


RESOLUTIONS = range(48, 225, 16)
PROFILE_TWINS = (LIB + "profile.profile", LIB + "profile.op_sram", LIB + "profile.op_macs")


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
        cfg = random_mbconv(rng)
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


def largest_fitting_resolution_reference(width: float, budget: int, rule: str) -> int | None:
    """Reference for the lab-00 exercise: largest MobileNetV2 resolution whose peak fits `budget`."""
    fits = [r for r in RESOLUTIONS if prof.profile(zoo.mobilenet_v2(width, r).graph(), rule).peak_sram_bytes <= budget]
    return max(fits) if fits else None


def _fit_cases(rng: random.Random) -> Iterable[Case]:
    for i in range(6):
        width = rng.choice([0.35, 0.5, 0.75, 1.0])
        budget = rng.choice([64, 128, 256, 320, 512]) * 1024
        rule = prof.RULES[i % 2]  # both rules: at these budgets they often give different answers
        yield (f"width={width}, budget={budget}, rule={rule!r}", (width, budget, rule),
               largest_fitting_resolution_reference(width, budget, rule))
    yield "width=1.0, budget=10000, rule='tinyengine'", (1.0, 10_000, "tinyengine"), None


def _as_ints(v: Any) -> Any:
    return [int(x) for x in v] if isinstance(v, (list, tuple)) else v


def _as_cost(v: Any) -> Any:
    shape, macs, sram = v
    return tuple(int(d) for d in shape), int(macs), int(sram)


def _as_dict(v: Any) -> Any:
    return {str(k): int(x) for k, x in v.items()} if isinstance(v, dict) else v



def _live_bytes(graph, rule: str) -> list[int]:
    return prof.op_sram(graph, rule)


def _block_peaks(names: list[str], sram: list[int]) -> dict[str, int]:
    peaks: dict[str, int] = {}
    for name, s in zip(names, sram):
        peaks[prof.block_of(name)] = max(peaks.get(prof.block_of(name), 0), s)
    return peaks


LAB = "00_memory_wall"
EXERCISES: list[Exercise] = [
    Exercise("conv_layer_cost", "conv_layer_cost", 2, _conv_cases, _as_cost, PROFILE_TWINS),
    Exercise("live_bytes", "live_bytes", 5, _live_cases, _as_ints,
             PROFILE_TWINS + (LIB + "liveness.lifetimes", LIB + "liveness.fused_residuals", LIB + "liveness.live_bytes",
                              LIB + "liveness.inplace_pairs"), reference=_live_bytes),
    Exercise("block_peaks", "block_peaks", 1, _block_cases, _as_dict, (LIB + "profile.block_of",), reference=_block_peaks),
    Exercise("largest_fitting_resolution", "largest_fitting_resolution", 2, _fit_cases,
             twins=PROFILE_TWINS + (LIB + "liveness.live_bytes", LIB + "liveness.lower_bound"), reference=largest_fitting_resolution_reference),
]
