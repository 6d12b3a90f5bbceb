"""Graded checks of Lab 07, detection: the cases each exercise is scored on, made in the grader's
process from the run's seed, and the library's answers they are compared with."""
from __future__ import annotations

import random
from dataclasses import replace
from typing import Any, Iterable

import numpy as np

from .. import patch, schedule, zoo
from ..errors import UserError
from ..ir import Graph
from .compare import Close, Floats
from .exercise import LIB, Case, Exercise
from .inputs import np_rng, random_mbconv

def _random_boxes(nrng: np.random.Generator, n: int, grid: bool = False, empty: float = 0.0) -> np.ndarray:
    """`n` xyxy boxes: float corners in [0, 100] and sides up to 40, or (`grid`) small integer
    boxes that often touch, contain or equal one another; a fraction `empty` get zero width or height."""
    if grid:
        xy, wh = nrng.integers(0, 6, (n, 2)), nrng.integers(1, 5, (n, 2))
    else:
        xy, wh = nrng.uniform(0, 100, (n, 2)), nrng.uniform(0.5, 40, (n, 2))
    wh = np.where(nrng.random((n, 1)) < empty, wh * (nrng.random((n, 2)) < 0.5), wh)
    return np.concatenate([xy, xy + wh], 1).astype(np.float64)


def ap50_reference(dets: list, truths: list) -> float:
    """The library's VOC AP at IoU 0.5 of one class: every box class 0, nothing ignored."""
    from ..boxes import Detections, Truth, class_ap
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
    nrng = np_rng(rng)
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
            Close(ap50_reference(dets, truths))
    half = [(np.array([[0.0, 0, 10, 20], [0, 0, 20, 10], [30, 30, 40, 40]]), np.array([0.9, 0.8, 0.7]))]
    truth = [np.array([[0.0, 0, 10, 10], [30, 30, 40, 40]])]
    yield f"[({half[0][0].tolist()}, {half[0][1].tolist()})], {[truth[0].tolist()]}", (half, truth), \
        Close(ap50_reference(half, truth))
    crowd = [(np.array([[0.0, 0, 10, 10], [0.2, 0, 10.2, 10]]), np.array([0.9, 0.8]))]
    truth = [np.array([[0.0, 0, 10, 10], [1, 0, 11, 10]])]
    yield f"[({crowd[0][0].tolist()}, {crowd[0][1].tolist()})], {[truth[0].tolist()]}", (crowd, truth), \
        Close(ap50_reference(crowd, truth))
    none = [(np.zeros((0, 4)), np.zeros(0)), (np.zeros((0, 4)), np.zeros(0))]
    truth = [np.array([[0.0, 0, 10, 10]]), np.zeros((0, 4))]
    yield "<2 images, no detections>, <1 truth box>", (none, truth), Close(0.0)



# ------------------------------------------------------------------ the detector's deployment plan
def patch_cost_reference(g: Graph, split_op: int, grid: int) -> tuple[int, int]:
    """`patch.plan`'s (peak SRAM bytes, total MACs) of uniform patches up to `split_op` on a grid."""
    p = patch.plan(g, split_op, grid)
    return p.peak_sram_bytes, p.total_macs


def plan_deployment_reference(g: Graph, budget: int, grids: tuple[int, ...]) -> tuple[int, int] | None:
    """`patch.auto_plan`'s (split op, grid): the fewest MACs among the plans within `budget`; None if none fits."""
    try:
        p = patch.auto_plan(g, budget, grids)
    except UserError:
        return None
    return p.split_op, p.grid


def largest_resolutions_reference(graphs: dict[int, Graph], budget: int,
                                  grids: tuple[int, ...]) -> tuple[int | None, int | None]:
    """The largest resolution whose graph fits `budget` layer by layer (the allocator's arena), and
    patch by patch (some split and grid fits); None where none does."""
    layer = [r for r, g in graphs.items() if schedule.plan(g).arena_bytes <= budget]
    patched = [r for r, g in graphs.items() if plan_deployment_reference(g, budget, grids) is not None]
    return max(layer, default=None), max(patched, default=None)


def _detector_graph(resolution: int, width: float = 0.35) -> Graph:
    """The detector's graph at `resolution`, its weights drawn from a fixed seed (the planning
    exercises read only shapes, and a grading seed must repeat its cases byte for byte)."""
    import torch

    from .. import detect
    cfg = detect.config("mbv2", width, resolution)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return detect.graph(detect.module(cfg), cfg)


def _planning_graph(rng: random.Random) -> tuple[str, Graph]:
    """A detector at a small input, a MobileNetV2 or a random MBConv net: graphs with a patch stage."""
    kind = rng.choice(["detector", "mobilenet_v2", "mbconv"])
    if kind == "detector":
        r = rng.choice([64, 96])
        return f"<detector graph at {r} px>", _detector_graph(r)
    if kind == "mobilenet_v2":
        w, r = rng.choice([0.35, 0.5]), rng.choice([64, 96])
        return f"<mobilenet_v2 w{w} graph at {r} px>", zoo.mobilenet_v2(w, r, 2).graph()
    cfg = random_mbconv(rng)
    return f"<random MBConv graph at {cfg.resolution} px>", cfg.graph()


def _patch_cost_cases(rng: random.Random) -> Iterable[Case]:
    for _ in range(10):
        name, g = _planning_graph(rng)
        split = rng.choice(patch.candidate_splits(g))
        grid = rng.randint(1, min(6, *g.shape(g.ops[split].output)[1:3]))
        yield f"{name}, split_op={split}, grid={grid}", (g, split, grid), patch_cost_reference(g, split, grid)


def _plan_deployment_cases(rng: random.Random) -> Iterable[Case]:
    """Budgets at a plan's exact peak (inclusive), between peaks, and below every plan."""
    for i in range(3):
        name, g = _planning_graph(rng)
        grids = tuple(sorted(rng.sample(range(2, 6), 2)))
        peaks = sorted({patch.plan(g, s, n).peak_sram_bytes for s in patch.candidate_splits(g) for n in grids
                        if n <= min(g.shape(g.ops[s].output)[1:3])})
        budgets = (rng.choice(peaks), rng.choice(peaks) + rng.randrange(1, 4096)) if i < 2 else (peaks[0] - 1,)
        for budget in budgets:
            yield f"{name}, budget={budget}, grids={grids}", (g, budget, grids), \
                plan_deployment_reference(g, budget, grids)


def _largest_resolutions_cases(rng: random.Random) -> Iterable[Case]:
    """A random MBConv net at three resolutions; budgets at a layer-by-layer arena or a patch-based
    peak of one of them (inclusive), so the answers fall inside the list."""
    for i in range(3):
        cfg = random_mbconv(rng)
        start = rng.choice([32, 40, 48])
        graphs = {r: replace(cfg, resolution=r).graph() for r in range(start, start + 3 * 16, 16)}
        grids = (2, 3)
        g = graphs[rng.choice(list(graphs)[1:])]
        budget = schedule.plan(g).arena_bytes if i % 2 else min(
            patch.plan(g, s, n).peak_sram_bytes for s in patch.candidate_splits(g) for n in grids
            if n <= min(g.shape(g.ops[s].output)[1:3]))
        yield f"<random MBConv graphs at {list(graphs)} px>, budget={budget}, grids={grids}", (graphs, budget, grids), \
            largest_resolutions_reference(graphs, budget, grids)


def _as_ints(v: Any) -> Any:
    return None if v is None else tuple(None if x is None else int(x) for x in v)


LAB = "07_detection"
PLAN_TWINS = (LIB + "patch.plan", LIB + "patch.auto_plan", LIB + "patch.peak_bytes", LIB + "patch.stage_peaks",
              LIB + "search_space.cost")
EXERCISES: list[Exercise] = [
    Exercise("ap50", "ap50", 2, _ap50_cases, Floats, (LIB + "boxes.class_ap", LIB + "boxes.evaluate",
                                                      LIB + "boxes.average_precision"), reference=ap50_reference),
    Exercise("patch_cost", "patch_cost", 4, _patch_cost_cases, _as_ints, PLAN_TWINS, reference=patch_cost_reference),
    Exercise("plan_deployment", "plan_deployment", 2, _plan_deployment_cases, _as_ints, PLAN_TWINS,
             reference=plan_deployment_reference),
    Exercise("largest_resolutions", "largest_resolutions", 2, _largest_resolutions_cases, _as_ints, PLAN_TWINS,
             reference=largest_resolutions_reference),
]
