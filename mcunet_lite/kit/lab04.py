"""Graded checks of Lab 04, search-space optimisation: the cases each exercise is scored on, made in the grader's
process from the run's seed, and the library's answers they are compared with."""
from __future__ import annotations

import random
from typing import Any, Iterable


from .. import search_space
from .exercise import LIB, Case, Exercise

def _random_costs(rng: random.Random, n: int) -> list[search_space.Cost]:
    return [search_space.Cost(rng.randrange(16, 400) * 1024, rng.randrange(64, 1600) * 1024,
                              rng.randrange(1, 300) * 100_000) for _ in range(n)]


def fit_stats_reference(costs: list, sram: int, flash: int) -> tuple[float, float]:
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
            fit_stats_reference(costs, sram, flash)
    costs = _random_costs(rng, 5)
    yield "<5 costs, none within budget>, sram=1024, flash=1024", (costs, 1024, 1024), (0.0, 0.0)
    w, r = rng.choice(search_space.WIDTHS[:5]), rng.choice(search_space.RESOLUTIONS[:8])
    costs = [search_space.cost(search_space.sample(rng, w, r)) for _ in range(10)]
    yield f"<costs of 10 subnets at width {w}, resolution {r}>, sram=262144, flash=1048576", \
        (costs, 256 * 1024, 1024 * 1024), fit_stats_reference(costs, 256 * 1024, 1024 * 1024)


def _random_spaces(rng: random.Random, n: int) -> list[search_space.SpaceStats]:
    """A grid of spaces, each `n` samples with a random number of fitting subnets of random MACs."""
    spaces = []
    for w in rng.sample(search_space.WIDTHS, 4):
        for r in rng.sample(search_space.RESOLUTIONS, 4):
            fit = rng.choice([0, 0, rng.randint(1, n), rng.randint(1, n // 4), n])
            spaces.append(search_space.SpaceStats(w, r, n, [rng.randrange(1, 10 ** 8) for _ in range(fit)]))
    return spaces


def choose_space_reference(spaces: list[search_space.SpaceStats], min_fit: float):
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
               choose_space_reference(spaces, min_fit))
    spaces = [search_space.SpaceStats(0.5, 96, 20, [1000]), search_space.SpaceStats(0.3, 64, 20, [])]
    yield "<2 spaces, 1 of 20 subnets fits in one, none in the other>, min_fit=0.1", (spaces, 0.1), None


def largest_resolution_for_reference(width: float, sram: int, flash: int) -> int | None:
    """Largest resolution of the grid at which the smallest subnet of the space fits, layer by layer."""
    from ..supernet import smallest
    fit = [r for r in search_space.RESOLUTIONS
           if (lambda c: c.sram <= sram and c.flash <= flash)(search_space.cost(smallest(width, r)))]
    return max(fit) if fit else None


def _largest_resolution_cases(rng: random.Random) -> Iterable[Case]:
    for _ in range(8):
        width = rng.choice(search_space.WIDTHS)
        sram, flash = rng.choice([32, 48, 64, 96, 128, 192, 256, 320]) * 1024, rng.choice([256, 512, 1024, 2048]) * 1024
        yield f"width={width}, sram={sram}, flash={flash}", (width, sram, flash), \
            largest_resolution_for_reference(width, sram, flash)
    yield "width=1.0, sram=8192, flash=1048576", (1.0, 8192, 1024 * 1024), None
    yield "width=0.3, sram=327680, flash=65536", (0.3, 320 * 1024, 64 * 1024), \
        largest_resolution_for_reference(0.3, 320 * 1024, 64 * 1024)


def _as_stats(v: Any) -> Any:
    return round(float(v[0]), 9), round(float(v[1]), 3)


def _as_space(v: Any) -> Any:
    return None if v is None else (round(float(v[0]), 6), int(v[1]))


def _as_resolution(v: Any) -> Any:
    return None if v is None else int(v)


LAB = "04_search_space"
EXERCISES: list[Exercise] = [
    Exercise("fit_stats", "fit_stats", 3, _fit_stats_cases, _as_stats,
             (LIB + "search_space.SpaceStats.fit_fraction", LIB + "search_space.SpaceStats.mean_macs",
              LIB + "search_space.evaluate_space"), reference=fit_stats_reference),
    Exercise("choose_space", "choose_space", 3, _choose_space_cases, _as_space, (LIB + "search_space.optimise",), reference=choose_space_reference),
    Exercise("largest_resolution_for", "largest_resolution_for", 4, _largest_resolution_cases, _as_resolution,
             (LIB + "search_space.optimise", LIB + "search_space.evaluate_space"), reference=largest_resolution_for_reference),
]
