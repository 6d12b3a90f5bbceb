"""Graded checks of Lab 03, patch-based inference: the cases each exercise is scored on, made in the grader's
process from the run's seed, and the library's answers they are compared with."""
from __future__ import annotations

import random
from typing import Any, Iterable


from .. import patch, zoo
from .. import profile as prof
from ..ir import Graph, Op
from .exercise import LIB, Case, Exercise
from .compare import as_pair

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


Layer = tuple[int, int, int]  # (kernel, stride, pad) of a conv padded by `pad` on every side

GRIDS = range(1, 9)


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



def _chain_graph(layers: list[tuple], in_size: int = 64):
    """A conv chain from (kernel, stride, pad[, ...]) tuples, and the 1x1 conv after it."""
    g = Graph("chain")
    x = g.add_input("input", (1, in_size, in_size, 1))
    for i, (k, s, p, *_) in enumerate(layers):
        x = g.conv2d(x, 1, k, s, pads=(p,) * 4, name=f"conv{i}")
    return g


def _trace_receptive_field(layers: list[tuple], out_rows: tuple[int, int]) -> list[tuple[int, int]]:
    g = _chain_graph(layers, in_size=4096)
    regions = patch.trace(g, g.ops, g.ops[-1].output, (*out_rows, 0, 1), clip=False)
    return [regions[t][:2] for t in [g.inputs[0]] + [op.output for op in g.ops]]


def _patch_stage_macs(layers: list[tuple], in_size: int, n: int) -> tuple[int, int]:
    """Every n x n tile's traced region of every layer times its MACs per pixel; and the chain once."""
    sizes = [in_size]
    for kernel, stride, pad, _ in layers:
        sizes.append((sizes[-1] + 2 * pad - kernel) // stride + 1)
    total = 0
    for r0, r1, c0, c1 in patch.tiles(sizes[-1], sizes[-1], n):
        rows, cols = _trace_receptive_field(layers, (r0, r1)), _trace_receptive_field(layers, (c0, c1))
        total += sum(layer[3] * (b - a) * (d - c) for layer, (a, b), (c, d) in zip(layers, rows[1:], cols[1:]))
    return total, sum(layer[3] * s * s for layer, s in zip(layers, sizes[1:]))


def _cheapest_grid(graph, split_op: int, budget: int) -> int | None:
    side = min(graph.shape(graph.ops[split_op].output)[1:3])
    plans = [patch.plan(graph, split_op, n) for n in range(1, 9) if n <= side]
    fits = [p for p in plans if p.peak_sram_bytes <= budget]
    return min(fits, key=lambda p: (p.total_macs, p.grid)).grid if fits else None


LAB = "03_patch_inference"
EXERCISES: list[Exercise] = [
    Exercise("input_region", "input_region", 2, _input_region_cases, as_pair, (LIB + "patch.input_region",)),
    Exercise("trace_receptive_field", "trace_receptive_field", 3, _trace_cases, _as_regions,
             (LIB + "patch.trace", LIB + "patch.receptive_field", LIB + "patch.input_region"), reference=_trace_receptive_field),
    Exercise("patch_stage_macs", "patch_stage_macs", 3, _stage_macs_cases, as_pair,
             (LIB + "patch.plan", LIB + "patch.trace", LIB + "patch.input_region", LIB + "patch._macs"), reference=_patch_stage_macs),
    Exercise("cheapest_grid", "cheapest_grid", 2, _grid_cases, twins=(LIB + "patch.auto_plan",), reference=_cheapest_grid),
]
