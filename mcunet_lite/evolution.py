"""TinyNAS stage 2, evolutionary search over the trained supernet (MCUNet section 3.1).

A population of subnets that satisfy the SRAM, Flash and MAC limits evolves for a number of
generations: the best `parents` survive, and mutations (each block's kernel and expansion, each
stage's depth, re-drawn with some probability) and crossovers (each choice taken from one of two
parents) refill it. Fitness is the supernet's accuracy for the subnet after BatchNorm
recalibration, so no candidate is trained. With MCUNetV2's joint search the genome also holds
the patch-based inference choice (split block, grid), and SRAM is counted for that plan.
"""
from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, field
from typing import Callable

from . import search_space as ss
from .errors import UserError
from .zoo import Block, MBConvConfig


@dataclass(frozen=True)
class Limits:
    """What a subnet must fit: bytes of SRAM and Flash, and at most `macs` MACs (0: no limit)."""

    sram: int
    flash: int
    macs: int = 0


@dataclass
class Candidate:
    """A genome: the subnet config and, for joint search, its patch plan (split block, grid)."""

    cfg: MBConvConfig
    patch: tuple[int, int] | None = None
    cost: ss.Cost | None = None
    accuracy: float | None = None

    def key(self) -> str:
        """Identity of the genome (for the fitness cache)."""
        return json.dumps([[[(b.kernel, b.expand) for b in s.blocks] for s in self.cfg.stages], self.patch])


def evaluate_cost(c: Candidate) -> ss.Cost:
    """SRAM (layer by layer, or with the genome's patch plan), Flash and MACs of a candidate."""
    return ss.cost(c.cfg, patch_plan=c.patch)


def fits(c: Candidate, limits: Limits) -> bool:
    """Whether the candidate is within the limits (computes and keeps its cost)."""
    c.cost = c.cost or evaluate_cost(c)
    return c.cost.sram <= limits.sram and c.cost.flash <= limits.flash and (not limits.macs or
                                                                        c.cost.macs <= limits.macs)


def _random_patch(rng: random.Random) -> tuple[int, int]:
    return rng.choice(ss.PATCH_SPLIT_BLOCKS), rng.choice(ss.PATCH_GRIDS)


def mutate(c: Candidate, rng: random.Random, prob: float = 0.1) -> Candidate:
    """Re-draw each kernel, expansion, stage depth (and the patch choice) with probability `prob`."""
    cfg = copy.deepcopy(c.cfg)
    fresh = ss.sample(rng, cfg.width, cfg.resolution, cfg.num_classes)
    for stage, new in zip(cfg.stages[1:], fresh.stages[1:]):
        if len(new.blocks) > 1 and rng.random() < prob:
            stage.depth = new.depth
            stage.blocks = (stage.blocks + new.blocks)[:new.depth]
        for b in stage.blocks:
            if rng.random() < prob:
                b.kernel = rng.choice(ss.KERNELS)
            if rng.random() < prob:
                b.expand = rng.choice(ss.EXPANDS)
    p = c.patch
    if p is not None and rng.random() < prob:
        p = _random_patch(rng)
    return Candidate(cfg, p)


def crossover(a: Candidate, b: Candidate, rng: random.Random) -> Candidate:
    """Each stage's depth and each block's kernel and expansion from one parent or the other."""
    cfg = copy.deepcopy(a.cfg)
    for stage, sa, sb in zip(cfg.stages[1:], a.cfg.stages[1:], b.cfg.stages[1:]):
        stage.depth = rng.choice((sa.depth, sb.depth))
        picks = [rng.choice([s.blocks[j] for s in (sa, sb) if j < s.depth]) for j in range(stage.depth)]
        stage.blocks = [Block(b.kernel, b.expand) for b in picks]
    return Candidate(cfg, rng.choice((a.patch, b.patch)))


def first_fitting(make: Callable[[], Candidate], limits: Limits, width: float, resolution: int,
                  tries: int = 1000) -> Candidate:
    """The first of up to `tries` candidates `make()` draws that fits `limits`: the search only ever
    scores subnets within the SRAM and Flash budgets (MCUNet 3.1); a clear error when none fits."""
    for _ in range(tries):
        c = make()
        if fits(c, limits):
            return c
    raise UserError(f"no subnet within {limits.sram // 1024} kB SRAM, {limits.flash // 1024} kB Flash found in "
                    f"{tries} tries at width {width}, resolution {resolution}: choose the space with "
                    "`mcunet-lite nas space` for these budgets, or use patch-based inference")


@dataclass
class SearchResult:
    """The best candidate and every generation's best accuracy."""

    best: Candidate
    history: list[float] = field(default_factory=list)
    evaluated: int = 0
    population: list[Candidate] = field(default_factory=list)


def search(space_width: float, resolution: int, limits: Limits, fitness: Callable[[Candidate], float],
           population: int = 100, parents: int = 20, mutations: int = 50, crossovers: int = 50,
           generations: int = 30, mutate_prob: float = 0.1, joint_patch: bool = False, num_classes: int = 2,
           seed: int = 0, max_tries: int = 1000, progress: Callable[[int, Candidate], None] | None = None,
           rng: random.Random | None = None) -> SearchResult:
    """Evolutionary search (defaults: MCUNet's 100 / 20 / 50 + 50 / 30) under `limits`, drawing
    from `rng` when given, else from `random.Random(seed)`. Every draw, in order: the first
    population, each subnet sampled until one fits; then per generation, after a stable sort by
    decreasing fitness, `mutations` children (a parent by `rng.choice`, then `mutate`, again until
    the child fits) and `crossovers` children (two parents by `rng.sample`, then `crossover`,
    again until it fits). The parents survive; `history` holds the best fitness before each
    generation and after the last."""
    rng, cache = rng or random.Random(seed), {}

    def score(c: Candidate) -> Candidate:
        k = c.key()
        if k not in cache:
            cache[k] = fitness(c)
        c.accuracy = cache[k]
        return c

    def feasible(make: Callable[[], Candidate]) -> Candidate:
        return first_fitting(make, limits, space_width, resolution, max_tries)

    pop = [score(feasible(lambda: Candidate(ss.sample(rng, space_width, resolution, num_classes),
                                            _random_patch(rng) if joint_patch else None)))
           for _ in range(population)]
    history = []
    for gen in range(generations):
        pop.sort(key=lambda c: -c.accuracy)
        history.append(pop[0].accuracy)
        if progress:
            progress(gen, pop[0])
        top = pop[:parents]
        children = [feasible(lambda: mutate(rng.choice(top), rng, mutate_prob)) for _ in range(mutations)]
        children += [feasible(lambda: crossover(*rng.sample(top, 2), rng)) for _ in range(crossovers)]
        pop = top + [score(c) for c in children]
    pop.sort(key=lambda c: -c.accuracy)
    history.append(pop[0].accuracy)
    return SearchResult(pop[0], history, len(cache), pop)
