"""TinyNAS stage 1: the search space and its optimisation (MCUNet section 3.1).

The space is MCUNet's MBConv space: per block kernel {3, 5, 7} and expansion {3, 4, 6}, per stage
depth {2, 3, 4}, on the ProxylessNAS layout (stem 32, a first 16-channel block, then stages of 24,
40, 80, 96, 192 and 320 channels), scaled by a global width multiplier and run at one input
resolution. Before searching, TinyNAS picks the (width, resolution) pair whose subnets that fit
the memory budget have the most FLOPs on average: more computation in the same memory is more
likely to give a more accurate model. Each sampled subnet is checked with the same scheduler (or,
for MCUNetV2, the patch planner) that deploys it.
"""
from __future__ import annotations

import functools
import random
import time
from dataclasses import dataclass, field

from . import patch
from .errors import UserError
from .ir import Graph
from .liveness import activation_bytes, live_bytes
from .profile import op_macs, op_weights
from .zoo import Block, MBConvConfig, Stage

KERNELS, EXPANDS, DEPTHS = (3, 5, 7), (3, 4, 6), (2, 3, 4)
# (base width, stride, searchable depth?) after the stem and the fixed first block (16, k3, e1)
LAYOUT = [(24, 2, True), (40, 2, True), (80, 2, True), (96, 1, True), (192, 2, True), (320, 1, False)]
WIDTHS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
RESOLUTIONS = tuple(range(48, 225, 16))
PATCH_SPLIT_BLOCKS, PATCH_GRIDS = (2, 4, 6), (2, 3, 4)


def sample(rng: random.Random, width: float, resolution: int, num_classes: int = 2) -> MBConvConfig:
    """One random subnet of the space at (width, resolution)."""
    stages = [Stage(16, 1, 1, [Block(3, 1)])]
    for base, stride, searchable in LAYOUT:
        depth = rng.choice(DEPTHS) if searchable else 1
        stages.append(Stage(base, depth, stride, [Block(rng.choice(KERNELS), rng.choice(EXPANDS))
                                                  for _ in range(depth)]))
    return MBConvConfig(stages, stem=32, head=None, num_classes=num_classes, width=width, resolution=resolution)


@dataclass(frozen=True)   # shared by every caller of the remembered `cost`
class Cost:
    """What a subnet costs on the microcontroller."""

    sram: int
    flash: int
    macs: int
    patch: tuple[int, int] | None = None  # (split block, grid) when patch-based inference is cheaper


def cost(cfg: MBConvConfig, patch_based: bool = False, patch_plan: tuple[int, int] | None = None) -> Cost:
    """Peak SRAM (scheduler lower bound, which the best allocator reaches on these chains), Flash
    (int8 weights, int32 biases) and MACs; with `patch_based`, SRAM is the best of a few
    (split, grid) choices of MCUNetV2's patch-based inference; with `patch_plan` (split block,
    grid), that one's (layer by layer when the grid is finer than the stage output). A pure
    function of the subnet, so it is remembered: a lab or a search that costs the same subnets
    again (another budget over the same samples, a survivor of the last generation) profiles each once."""
    key = (repr(cfg), patch_based, patch_plan)   # every field of the config: cheap next to profiling it
    if key not in _COSTS:
        if len(_COSTS) >= COSTS_KEPT:
            _COSTS.clear()
        _COSTS[key] = _profile(cfg, patch_based, patch_plan)
    return _COSTS[key]


COSTS_KEPT = 1 << 15
_COSTS: dict[tuple[str, bool, tuple[int, int] | None], Cost] = {}


def _profile(cfg: MBConvConfig, patch_based: bool, patch_plan: tuple[int, int] | None) -> Cost:
    """What `cost` computes when it has not seen the subnet: build its graph and measure it."""
    g = cfg.graph()
    nbytes = activation_bytes(g)
    flash = sum(op_weights(g, op)[1] for op in g.ops)
    macs = sum(op_macs(g, op) for op in g.ops)
    live = live_bytes(g, nbytes=nbytes)
    if patch_plan is not None:
        sram, choice = _patch_peak(g, live, nbytes, *patch_plan)
    else:
        sram, choice = _best_patch(g, live, nbytes) if patch_based else (max(live), None)
    return Cost(sram, flash, macs, choice)


def _patch_peak(g: Graph, live: list[int], nbytes: dict[str, int], block: int, grid: int):
    """(peak SRAM, (block, grid)) of one patch plan, or the layer-by-layer peak and None when the
    grid is finer than the stage output."""
    split = patch.split_after_block(g, block)
    _, h, w, _ = g.shape(g.ops[split].output)
    if grid > min(h, w):
        return max(live), None
    return patch.peak_bytes(g, split, grid, nbytes, live), (block, grid)


def _best_patch(g: Graph, live: list[int], nbytes: dict[str, int]) -> tuple[int, tuple[int, int] | None]:
    """The smallest peak over (split block, grid) in PATCH_SPLIT_BLOCKS x PATCH_GRIDS, first on ties,
    or the layer-by-layer peak with None when no patch plan is smaller. Work that cannot change
    the answer is skipped, which makes patch-based evaluation several times faster."""
    sram, choice, ends = max(live), None, patch.block_ends(g)
    for k in PATCH_SPLIT_BLOCKS:
        split = ends[k - 1]
        rest = patch.rest_bound(live, split)
        if rest >= sram:
            continue  # the layer-by-layer rest alone needs as much: no grid helps
        _, h, w, _ = g.shape(g.ops[split].output)
        grids = [n for n in PATCH_GRIDS if n <= min(h, w)]
        for n, (floor, stage_peak) in zip(grids, patch.stage_peaks(g, split, grids, nbytes)):
            if floor >= sram:
                continue  # this patch stage cannot beat the best so far
            peak = stage_peak()
            if max(peak, rest) < sram:
                sram, choice = max(peak, rest), (k, n)
            if peak <= rest:
                break  # the rest is the peak now: finer grids only recompute more
    return sram, choice


@dataclass
class SpaceStats:
    """One (width, resolution) space: MACs of its sampled subnets that fit the budget."""

    width: float
    resolution: int
    n: int
    fitting_macs: list[int] = field(default_factory=list)

    @property
    def fit_fraction(self) -> float:
        return len(self.fitting_macs) / self.n

    @property
    def mean_macs(self) -> float:
        return sum(self.fitting_macs) / len(self.fitting_macs) if self.fitting_macs else 0.0

    def to_dict(self) -> dict:
        return {"width": self.width, "resolution": self.resolution, "samples": self.n,
                "fit_fraction": round(self.fit_fraction, 4), "mean_macs": round(self.mean_macs)}


def evaluate_space(width: float, resolution: int, sram: int, flash: int, n: int = 1000,
                   patch_based: bool = False, seed: int = 0) -> SpaceStats:
    """Sample `n` subnets at (width, resolution) and keep the MACs of those within the budgets."""
    return SpaceStats(width, resolution, n, [c.macs for c in space_costs(width, resolution, n, patch_based, seed)
                                             if c.sram <= sram and c.flash <= flash])


@functools.lru_cache(maxsize=4096)
def space_costs(width: float, resolution: int, n: int, patch_based: bool = False, seed: int = 0) -> tuple[Cost, ...]:
    """The costs of `n` subnets sampled at (width, resolution): kept, so that other budgets (a
    second budget in a lab, a widget's slider) reuse them instead of profiling again."""
    rng = random.Random(f"{seed}/{width}/{resolution}")
    return tuple(cost(sample(rng, width, resolution), patch_based) for _ in range(n))


@dataclass
class SpaceChoice:
    """Stage 1's result: every space's statistics and the chosen one."""

    spaces: list[SpaceStats]
    best: SpaceStats
    sram: int
    flash: int
    patch_based: bool
    evaluations_per_second: float

    def to_dict(self) -> dict:
        return {"sram_bytes": self.sram, "flash_bytes": self.flash, "patch_based": self.patch_based,
                "width": self.best.width, "resolution": self.best.resolution,
                "mean_macs": round(self.best.mean_macs), "fit_fraction": round(self.best.fit_fraction, 4),
                "evaluations_per_second": round(self.evaluations_per_second),
                "spaces": [s.to_dict() for s in self.spaces]}


def optimise(sram: int, flash: int, widths=WIDTHS, resolutions=RESOLUTIONS, n: int = 1000,
             patch_based: bool = False, min_fit: float = 0.05, seed: int = 0, progress=None,
             min_count: int = 1) -> SpaceChoice:
    """Evaluate every (width, resolution) space and pick the one with the largest mean MACs of its
    fitting subnets, among spaces where at least `min_fit` of the samples, and at least `min_count`
    subnets, fit (a space where a handful of lucky subnets fit is not a space to search, and a mean
    of two subnets is no statistic)."""
    t0, spaces = time.perf_counter(), []
    for w in widths:
        for r in resolutions:
            spaces.append(evaluate_space(w, r, sram, flash, n, patch_based, seed))
            if progress:
                progress(spaces[-1])
    rate = len(spaces) * n / (time.perf_counter() - t0)
    usable = [s for s in spaces if s.fit_fraction >= min_fit and len(s.fitting_macs) >= min_count]
    if not usable:
        raise UserError(f"no (width, resolution) space has {min_fit:.0%} (and {min_count}) of its subnets within {sram // 1024} kB SRAM"
                        f" and {flash // 1024} kB Flash; raise the budgets, use --patch, or add smaller widths")
    return SpaceChoice(spaces, max(usable, key=lambda s: s.mean_macs), sram, flash, patch_based, rate)
