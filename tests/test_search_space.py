"""TinyNAS stage 1: sampling the MBConv space, constraint evaluation, choosing the space."""
import random

import pytest

from mcunet_lite import patch
from mcunet_lite import liveness, schedule
from mcunet_lite import search_space as ss
from mcunet_lite.errors import UserError
from mcunet_lite.profile import profile


def test_samples_stay_in_the_space():
    rng = random.Random(0)
    for _ in range(50):
        cfg = ss.sample(rng, 0.5, 96)
        assert cfg.stages[0].blocks[0].expand == 1 and len(cfg.stages) == 1 + len(ss.LAYOUT)
        for (base, stride, searchable), stage in zip(ss.LAYOUT, cfg.stages[1:]):
            assert stage.width == base and stage.stride == stride
            assert stage.depth in (ss.DEPTHS if searchable else (1,))
            assert all(b.kernel in ss.KERNELS and b.expand in ss.EXPANDS for b in stage.blocks)


def test_cost_is_what_the_deployment_tools_measure():
    rng = random.Random(1)
    for _ in range(8):
        cfg = ss.sample(rng, rng.choice([0.3, 0.5, 0.8]), rng.choice([64, 96, 128]))
        g = cfg.graph()
        c, pc = ss.cost(cfg), ss.cost(cfg, patch_based=True)
        plan = schedule.plan(g)
        assert c.sram == plan.arena_bytes == plan.lower_bound_bytes      # the best allocator reaches the bound
        p = profile(g)
        assert (c.flash, c.macs) == (p.flash_bytes, p.macs)
        assert pc.sram <= c.sram
        if pc.patch:                                                     # the chosen patch plan really fits
            k, n = pc.patch
            assert patch.plan(g, patch.split_after_block(g, k), n).peak_sram_bytes == pc.sram


def test_patch_choice_is_the_best_of_every_split_and_grid():
    """`cost` skips splits whose layer-by-layer rest already needs as much, grids whose cheap floor
    already loses and grids past the one where the rest dominates; its answer must still be the
    exhaustive minimum (first on ties)."""
    rng = random.Random(2)
    for _ in range(60):
        cfg = ss.sample(rng, rng.choice([0.3, 0.5, 0.8]), rng.choice([96, 144, 192]))
        g = cfg.graph()
        best, choice = liveness.lower_bound(g), None
        for k in ss.PATCH_SPLIT_BLOCKS:
            split = patch.split_after_block(g, k)
            _, h, w, _ = g.shape(g.ops[split].output)
            for n in (n for n in ss.PATCH_GRIDS if n <= min(h, w)):
                if (peak := patch.peak_bytes(g, split, n)) < best:
                    best, choice = peak, (k, n)
        c = ss.cost(cfg, patch_based=True)
        assert (c.sram, c.patch) == (best, choice)


def test_optimise_picks_the_largest_mean_among_usable_spaces():
    choice = ss.optimise(256 * 1024, 1024 * 1024, (0.3, 0.5, 0.8), (96, 144), n=30)
    usable = [s for s in choice.spaces if s.fit_fraction >= 0.05]
    assert choice.best in usable and choice.best.mean_macs == max(s.mean_macs for s in usable)
    assert all(0 <= s.fit_fraction <= 1 for s in choice.spaces)
    assert choice.evaluations_per_second > 0


def test_patch_based_counting_lets_more_subnets_fit():
    plain = ss.evaluate_space(0.6, 160, 256 * 1024, 1024 * 1024, n=20)
    patched = ss.evaluate_space(0.6, 160, 256 * 1024, 1024 * 1024, n=20, patch_based=True)
    assert patched.fit_fraction > plain.fit_fraction


def test_impossible_budget_says_what_to_do():
    with pytest.raises(UserError, match="raise the budgets, use --patch"):
        ss.optimise(8 * 1024, 1024 * 1024, (0.5,), (96,), n=5)


def test_min_count_keeps_a_space_of_few_fitting_subnets_from_being_chosen():
    few = ss.optimise(256 * 1024, 1024 * 1024, (0.3, 0.8), (96, 176), n=30)
    counts = {(s.width, s.resolution): len(s.fitting_macs) for s in few.spaces}
    strict = ss.optimise(256 * 1024, 1024 * 1024, (0.3, 0.8), (96, 176), n=30, min_count=counts[
        (few.best.width, few.best.resolution)] + 1)
    assert (strict.best.width, strict.best.resolution) != (few.best.width, few.best.resolution)
    assert len(strict.best.fitting_macs) > counts[(few.best.width, few.best.resolution)]


def test_flops_cdf_draws_the_chosen_space_and_single_subnets_as_markers():
    import matplotlib
    matplotlib.use("Agg")
    from mcunet_lite import viz
    lone = ss.SpaceStats(0.9, 224, 20, [9 * 10 ** 8])           # one subnet fits: a point, not a line
    spaces = [ss.SpaceStats(0.3, 96, 20, list(range(10 ** 6, 21 * 10 ** 6, 10 ** 6)))] + [
        ss.SpaceStats(0.5, r, 20, [r * 10 ** 6] * 12) for r in (128, 144, 160, 176, 192, 208)] + [lone]
    choice = ss.SpaceChoice(spaces, spaces[0], 256 * 1024, 1024 * 1024, False, 1.0)
    lines = viz.flops_cdf(choice).axes[0].lines
    labels = [ln.get_label() for ln in lines]
    assert any("(chosen)" in lb for lb in labels) and len(lines) == 6    # chosen, though its mean is the smallest
    assert all(ln.get_marker() == "o" for ln in lines)
    assert any("1/20 fit" in lb for lb in labels)
