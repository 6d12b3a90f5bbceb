"""Graded checks of Lab 04, search-space optimisation: the cases each exercise is scored on, made in the grader's
process from the run's seed, and the library's answers they are compared with."""
from __future__ import annotations

import random
from typing import Any, Iterable


from .. import search_space
from ..errors import UserError
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


def optimise_space_reference(sram: int, flash: int, widths: tuple, resolutions: tuple, n: int, min_fit: float,
                             min_count: int, seed: int = 0) -> tuple:
    """`search_space.optimise`'s choice, (width, resolution) or None when no space is usable, and
    every space's (width, resolution, fit fraction, mean MACs of the fitting subnets), grid order."""
    try:
        choice = search_space.optimise(sram, flash, widths, resolutions, n, min_fit=min_fit, seed=seed,
                                       min_count=min_count)
        spaces, best = choice.spaces, (choice.best.width, choice.best.resolution)
    except UserError:  # no usable space: the statistics are still every space's
        spaces = [search_space.evaluate_space(w, r, sram, flash, n, seed=seed) for w in widths for r in resolutions]
        best = None
    return _as_optimised((best, [(s.width, s.resolution, s.fit_fraction, s.mean_macs) for s in spaces]))


def _optimise_cases(rng: random.Random) -> Iterable[Case]:
    """Small grids with fresh seeds; budgets equal to a sampled subnet's cost (the inclusive rule
    matters), and minima set just above the fit count of the space with the most mean MACs (the
    minimum rule matters), or loose."""
    for i in range(8):
        widths = tuple(sorted(rng.sample(search_space.WIDTHS, rng.choice([2, 3]))))
        resolutions = tuple(sorted(rng.sample(search_space.RESOLUTIONS[1:8], 2)))
        n, seed = rng.randint(8, 24), rng.randrange(1 << 16)
        costs = [c for w in widths for r in resolutions for c in search_space.space_costs(w, r, n, False, seed)]
        flash = rng.choice([1 << 30, sorted(c.flash for c in costs)[len(costs) // 2]])
        sram = rng.choice([c.sram for c in costs if c.flash <= flash])
        stats = [search_space.evaluate_space(w, r, sram, flash, n, seed=seed) for w in widths for r in resolutions]
        top = len(max(stats, key=lambda s: s.mean_macs).fitting_macs)
        min_fit, min_count = (0.05, 1) if i % 4 == 3 else (0.0, top + 1) if i % 2 else ((top + 1) / n, 1)
        args = (sram, flash, widths, resolutions, n, min_fit, min_count, seed)
        yield (f"sram={sram}, flash={flash}, widths={widths}, resolutions={resolutions}, n={n}, min_fit={min_fit}, "
               f"min_count={min_count}, seed={seed}", args, optimise_space_reference(*args))
    args = (8 * 1024, 1 << 30, (0.5,), (96, 128), 10, 0.05, 1, rng.randrange(1 << 16))
    yield f"sram=8192 (nothing fits), flash={1 << 30}, widths=(0.5,), resolutions=(96, 128), n=10, min_fit=0.05, " \
        f"min_count=1, seed={args[-1]}", args, optimise_space_reference(*args)


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


def _as_optimised(v: Any) -> Any:
    """(chosen space or None, [(width, resolution, fit fraction, mean MACs), ...]) in plain numbers."""
    best, table = v
    return _as_space(best), [(*_as_space(row[:2]), *_as_stats(row[2:])) for row in table]


def _as_resolution(v: Any) -> Any:
    return None if v is None else int(v)


LAB = "04_search_space"
EXERCISES: list[Exercise] = [
    Exercise("fit_stats", "fit_stats", 2, _fit_stats_cases, _as_stats,
             (LIB + "search_space.SpaceStats.fit_fraction", LIB + "search_space.SpaceStats.mean_macs",
              LIB + "search_space.evaluate_space"), reference=fit_stats_reference),
    Exercise("optimise_space", "optimise_space", 6, _optimise_cases, _as_optimised,
             (LIB + "search_space.optimise", LIB + "search_space.evaluate_space", LIB + "search_space.space_costs.__wrapped__",
              LIB + "search_space.SpaceStats.fit_fraction", LIB + "search_space.SpaceStats.mean_macs"),
             reference=optimise_space_reference),
    Exercise("largest_resolution_for", "largest_resolution_for", 2, _largest_resolution_cases, _as_resolution,
             (LIB + "search_space.optimise", LIB + "search_space.evaluate_space"), reference=largest_resolution_for_reference),
]
