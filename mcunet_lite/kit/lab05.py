"""Graded checks of Lab 05, one-shot NAS: the cases each exercise is scored on, made in the grader's
process from the run's seed, and the library's answers they are compared with."""
from __future__ import annotations

import copy
import random
from typing import Any, Iterable

import numpy as np

from .. import search_space
from .exercise import LIB, Case, Exercise
from .compare import Close, Floats, Property

def elastic_kernel_reference(weight, transforms: dict, kernel: int) -> np.ndarray:
    """The supernet's own kernel for `kernel`: an ElasticDepthwise holding these weights and transforms."""
    import torch
    from .. import supernet
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
               Close(elastic_kernel_reference(weight, transforms, kernel)))


def _random_subnet(rng: random.Random):
    """A random subnet of a small random space (keeps each cost evaluation fast)."""
    return search_space.sample(rng, rng.choice((0.2, 0.3, 0.4, 0.5)), rng.choice((48, 64, 80, 96)))


def _fits_cases(rng: random.Random) -> Iterable[Case]:
    from .. import evolution as evo
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


class _Offspring(Property):
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
    from .. import evolution as evo
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


def pareto_front_reference(points: list[tuple]) -> list[tuple]:
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
        yield f"{points}", (list(points),), _as_points(pareto_front_reference(points))
    rising = [(k * 1000, k / 10) for k in range(1, 8)]
    yield f"{rising}", (list(rising),), rising


def _as_bool(v: Any) -> Any:
    return bool(v) if isinstance(v, (bool, np.bool_)) else v


def _as_points(v: Any) -> Any:
    return [(int(c), round(float(a), 12)) for c, a in v]



def _elastic_kernel(weight, transforms: dict, kernel: int):
    import torch
    return torch.as_tensor(elastic_kernel_reference(weight, transforms, kernel))


def _fits(cfg, limits) -> bool:
    from .. import evolution as evo
    return evo.fits(evo.Candidate(cfg), limits)


LAB = "05_one_shot_nas"
EXERCISES: list[Exercise] = [
    Exercise("elastic_kernel", "elastic_kernel", 3, _elastic_kernel_cases, Floats,
             (LIB + "supernet.ElasticDepthwise.kernel_weight",), reference=_elastic_kernel),
    Exercise("fits", "fits", 2, _fits_cases, _as_bool, (LIB + "evolution.fits", LIB + "evolution.evaluate_cost"), reference=_fits),
    Exercise("crossover", "crossover", 2, _crossover_cases, twins=(LIB + "evolution.crossover",),
             view=_crossover_view),
    Exercise("pareto_front", "pareto_front", 3, _pareto_cases, _as_points, reference=pareto_front_reference),
]
