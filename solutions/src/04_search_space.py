# %% [markdown]
# # Lab 04: Search-space optimisation
#
# Labs 00-03 took a network as given and made it fit. TinyNAS (MCUNet, section 3.1) turns the
# question around: **which networks should we search among, for this memory budget?** Its first
# stage chooses the search space itself: a width multiplier and an input resolution. A space that
# is too big has few subnets that fit; a space that is too small wastes the budget. TinyNAS
# samples subnets of every (width, resolution) space, keeps those that fit the SRAM and Flash
# budgets, and picks the space whose fitting subnets have the **most MACs on average**: more
# computation in the same memory is more likely to give a more accurate model (MCUNet figure 3).
#
# **Learning goals**
# 1. Measure what fraction of a space's subnets fits a budget, and how much they compute.
# 2. Optimise the space the way TinyNAS does: sample every (width, resolution) space, measure it,
#    and choose by the mean MACs of the fitting subnets, with minimums that keep the statistics
#    honest; see why "the most subnets fit" is the wrong rule, and what too few samples do.
# 3. Bound the resolutions worth trying from the smallest subnet of each width.
# 4. Draw MCUNet's FLOPs-CDF figure for two budgets, and see patch-based inference (MCUNetV2)
#    open larger spaces.
#
# **Expected runtime**: about four minutes on a 2-core laptop CPU (200 subnets of each of 108
# spaces, by your `optimise_space` and by the library, layer by layer and patch-based).
# **Points**: 10 (three exercises).
#
# **Expected figures** (a correct run; the book shows all but the widget): three FLOPs-CDF plots (MCUNet figure
# 3) of the best spaces, at 320 kB and 256 kB layer by layer and at 256 kB patch-based, the chosen
# space drawn thick; a budget explorer widget (SRAM and Flash sliders, a patch-based checkbox).
#
# Write your code between the lines marked `# YOUR CODE HERE`; keep the function names. Each
# exercise says what to do (TODO), how (APPROACH), a HINT and the result of its visible example.
# **Run All works before you write anything**: an unfinished exercise's test cell says "not
# implemented yet", and the cells after it use the library's reference (with a NOTE) until your
# function works. Grade yourself any time with `mcunet-lite grade my-labs/04_search_space.ipynb`
# (your copy from `mcunet-lite lab`).

# %%
# %matplotlib inline
import math
import random

import matplotlib.pyplot as plt

from mcunet_lite import search_space as ss
from mcunet_lite import viz
from mcunet_lite.kit.scaffold import or_reference, visible_tests
from mcunet_lite.supernet import largest, smallest

KB = 1024

# %% [markdown]
# ## 1. The space
#
# MCUNet's space is MBConv blocks on the ProxylessNAS layout: a stem, a fixed first block, then
# six stages of 24, 40, 80, 96, 192 and 320 base channels. In the first five stages the depth is
# 2, 3 or 4 blocks; every block picks a depthwise kernel (3, 5, 7) and an expansion ratio
# (3, 4, 6). All channel counts are scaled by the width multiplier, and the network runs at one
# input resolution. `ss.sample(rng, width, resolution)` draws one subnet; `ss.cost(cfg)` gives
# what it costs on the microcontroller: peak SRAM (the scheduler's lower bound from Lab 02),
# Flash (int8 weights, int32 biases) and MACs.

# %%
# NBVAL_CHECK_OUTPUT
per_block = len(ss.KERNELS) * len(ss.EXPANDS)
per_stage = sum(per_block ** d for d in ss.DEPTHS)
n_subnets = per_stage ** sum(searchable for _, _, searchable in ss.LAYOUT) * per_block
print(f"{n_subnets:.2e} subnets per (width, resolution); {len(ss.WIDTHS)} widths x "
      f"{len(ss.RESOLUTIONS)} resolutions = {len(ss.WIDTHS) * len(ss.RESOLUTIONS)} spaces")
cfg = ss.sample(random.Random(0), 0.5, 128)
for i, stage in enumerate(cfg.stages):
    print(f"  stage {i}: {stage.width:3d} base channels x{stage.depth} "
          + " ".join(f"k{b.kernel}e{b.expand}" for b in stage.blocks))
c = ss.cost(cfg)
print(f"width 0.5 at 128 px: {c.sram / KB:.1f} kB SRAM, {c.flash / KB:.1f} kB Flash, {c.macs / 1e6:.1f}M MACs")

# %% [markdown]
# About $2 \times 10^{20}$ subnets in each of the 108 spaces: TinyNAS cannot look at them all, so it
# samples. The CLI (`mcunet-lite nas space --sram 320 --flash 1024`) samples 1000 subnets per
# space; this lab samples 200, and a space can be chosen only when at least 10 of them (5%) fit:
# a mean of one or two subnets is no statistic.
#
# ## 2. Fitting subnets (2 points)
#
# Write `fit_stats(costs, sram, flash)`. `costs` is a list of `ss.Cost` (fields `.sram`, `.flash`,
# `.macs`, bytes and MACs) of the subnets sampled from one space. A subnet **fits** when its SRAM
# is at most `sram` and its Flash at most `flash` bytes. Return `(fit fraction, mean MACs)`: the
# fraction of the sampled subnets that fit, and the mean MACs **of the fitting subnets only**
# (0.0 when none fits).

# %% solution=true grade_id="fit_stats"
def fit_stats(costs, sram, flash):
    """(fraction of subnets within both budgets, mean MACs of those subnets; 0.0 when none fit)."""
    # TODO: (fraction of costs with c.sram <= sram and c.flash <= flash, mean c.macs of those).
    # APPROACH: collect the MACs of the fitting subnets in a list; the fraction is its length over
    #   len(costs); the mean is its sum over its length, or 0.0 when it is empty.
    # HINT: "fits" includes equality: a subnet of exactly 320 kB fits 320 kB.
    # EXAMPLE: the visible test's four costs at 320 kB / 1 MB -> (0.5, 40000000.0)
    ### BEGIN SOLUTION
    fitting = [c.macs for c in costs if c.sram <= sram and c.flash <= flash]
    return len(fitting) / len(costs), (sum(fitting) / len(fitting) if fitting else 0.0)
    ### END SOLUTION


# %% points=2 grade_id="fit_stats_tests"
example = [ss.Cost(200 * KB, 800 * KB, 30_000_000), ss.Cost(320 * KB, 1024 * KB, 50_000_000),
           ss.Cost(400 * KB, 600 * KB, 90_000_000), ss.Cost(100 * KB, 1200 * KB, 10_000_000)]
with visible_tests("fit_stats"):
    assert fit_stats(example, 320 * KB, 1024 * KB) == (0.5, 40_000_000)
    assert fit_stats(example, 64 * KB, 1024 * KB) == (0.0, 0.0)
### BEGIN HIDDEN TESTS
from mcunet_lite.kit import checks
_r = checks.run("04_search_space", "fit_stats", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# The costs of 200 subnets of three spaces, against the STM32F746 (320 kB SRAM, 1 MB Flash):

# %%
# NBVAL_CHECK_OUTPUT
SAMPLES, MIN_COUNT = 200, 10
for width, resolution in ((0.3, 96), (0.5, 160), (0.8, 128)):
    costs = ss.space_costs(width, resolution, SAMPLES)
    fraction, mean = or_reference(fit_stats)(costs, 320 * KB, 1024 * KB)
    print(f"width {width} at {resolution:3d} px: {fraction:4.0%} fit, mean {mean / 1e6:5.1f}M MACs of those")

# %% [markdown]
# The small space fits completely but computes little; the wide one computes more, when a subnet
# fits at all (a fifth of them do). Somewhere in between is the space worth searching.
#
# ## 3. Optimising the space (6 points)
#
# Now the whole of TinyNAS's first stage. For every width in `widths` and every resolution in
# `resolutions` (widths outer, resolutions inner): sample `n` subnets of that space, cost each one
# (`ss.cost`), and measure the space with your `fit_stats`. Then choose the space whose fitting
# subnets have the **largest mean MACs**, among the spaces that pass two minimums: at least
# `min_fit` of the samples fit (a space where one subnet in a thousand fits is no space to search,
# however much that subnet computes) and at least `min_count` subnets fit (a mean of two subnets
# is no statistic: it says more about the two draws than about the space).
#
# Each space draws its subnets from its **own** generator, `random.Random(f"{seed}/{width}/{resolution}")`,
# passed to `ss.sample(rng, width, resolution)` `n` times. So a space's sample does not depend on
# which other spaces are in the grid or in which order they are visited: adding a width to the
# grid does not change the others' figures, and two budgets compare the same subnets.
#
# Write `optimise_space(sram, flash, widths, resolutions, n, min_fit, min_count, seed=0)`. Return
# `(best, table)`: `best` is `(width, resolution)` of the chosen space (the first in grid order on
# a tie), or `None` when no space passes both minimums; `table` lists `(width, resolution, fit
# fraction, mean MACs of the fitting subnets)` for every space, in grid order.

# %% solution=true grade_id="optimise_space"
def optimise_space(sram, flash, widths, resolutions, n, min_fit, min_count, seed=0):
    """TinyNAS stage 1 (MCUNet section 3.1): (chosen (width, resolution) or None, every space's
    (width, resolution, fit fraction, mean MACs of the fitting subnets))."""
    # TODO: sample and cost n subnets per space, measure each space, choose the usable space with
    #   the largest mean MACs of its fitting subnets.
    # APPROACH: for each width, for each resolution: rng = random.Random(f"{seed}/{width}/{resolution}");
    #   costs = [ss.cost(ss.sample(rng, width, resolution)) for each of n samples]; your fit_stats;
    #   a row of the table; the space is usable when fraction >= min_fit and the number of fitting
    #   subnets (fraction * n) >= min_count; keep the usable one with the largest mean.
    # HINT: a new generator for every space, not one for the whole grid; and only a strictly
    #   larger mean replaces the best so far (ties keep the first).
    # EXAMPLE: the visible grid at 256 kB / 1 MB, 30 samples, min_fit=0.05, min_count=3 -> best
    #   (0.5, 160); with no minimums -> (0.8, 128), where 1 of 30 subnets fits
    ### BEGIN SOLUTION
    table, best, best_mean = [], None, 0.0
    for width in widths:
        for resolution in resolutions:
            rng = random.Random(f"{seed}/{width}/{resolution}")
            costs = [ss.cost(ss.sample(rng, width, resolution)) for _ in range(n)]
            fraction, mean = fit_stats(costs, sram, flash)
            table.append((width, resolution, fraction, mean))
            usable = fraction >= min_fit and round(fraction * n) >= min_count
            if usable and (best is None or mean > best_mean):
                best, best_mean = (width, resolution), mean
    return best, table
    ### END SOLUTION


# %% points=6 grade_id="optimise_space_tests"
GRID = dict(widths=(0.3, 0.5, 0.8), resolutions=(96, 128, 160), n=30)
with visible_tests("optimise_space"):
    best, table = optimise_space(256 * KB, 1024 * KB, **GRID, min_fit=0.05, min_count=3)
    assert best == (0.5, 160)
    assert [row[:2] for row in table] == [(w, r) for w in GRID["widths"] for r in GRID["resolutions"]]
    assert table[0][2] == 1.0 and table[-1][2:] == (0.0, 0.0)     # width 0.3 at 96 px: all fit; 0.8 at 160: none
    assert table[7][2] == 1 / 30                                   # width 0.8 at 128 px: one lucky subnet...
    assert optimise_space(256 * KB, 1024 * KB, **GRID, min_fit=0.0, min_count=1)[0] == (0.8, 128)  # ...wins
    assert optimise_space(16 * KB, 1024 * KB, **GRID, min_fit=0.05, min_count=3)[0] is None
### BEGIN HIDDEN TESTS
_r = checks.run("04_search_space", "optimise_space", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# Now the whole grid, 200 samples per space, against the STM32F746 (320 kB, 1 MB), with
# TinyNAS's minimums: 5% of the samples, and at least 10 subnets (`MIN_COUNT`). Your function runs
# the 108 x 200 subnets once (under a minute); the library's `ss.optimise` must agree, and it keeps
# its costs for the figures and the second budget below.

# %%
# NBVAL_CHECK_OUTPUT
mine, table = or_reference(optimise_space)(320 * KB, 1024 * KB, ss.WIDTHS, ss.RESOLUTIONS, SAMPLES, 0.05, MIN_COUNT)
choices = {}
for sram in (320, 256):
    choice = ss.optimise(sram * KB, 1024 * KB, n=SAMPLES, min_count=MIN_COUNT)
    choices[sram] = choice
    most_fit = max(choice.spaces, key=lambda s: (s.fit_fraction, s.mean_macs))
    print(f"{sram} kB SRAM, 1 MB Flash: chosen width {choice.best.width}, resolution {choice.best.resolution} "
          f"({len(choice.best.fitting_macs)} of {SAMPLES} fit, mean {choice.best.mean_macs / 1e6:.1f}M MACs)"
          + (f"; yours: {mine}" if sram == 320 else ""))
    print(f"  the space where the most subnets fit: width {most_fit.width}, resolution {most_fit.resolution} "
          f"({most_fit.fit_fraction:.0%} fit, mean {most_fit.mean_macs / 1e6:.1f}M MACs)")
    lucky = max((s for s in choice.spaces if s.fitting_macs), key=lambda s: s.mean_macs)
    print(f"  the most mean MACs with no minimum: width {lucky.width}, resolution {lucky.resolution} "
          f"({len(lucky.fitting_macs)} of {SAMPLES} fit, mean {lucky.mean_macs / 1e6:.1f}M MACs)")

# %% [markdown]
# ### How many samples?
#
# The minimums guard the mean; the sample size decides how far the mean can be trusted at all.
# At 256 kB, with 20 samples per space and no minimum count, the same rule on three other seeds
# (each a fresh draw of every space):

# %%
# NBVAL_CHECK_OUTPUT
for seed in (1, 2, 3):
    few, rows = or_reference(optimise_space)(256 * KB, 1024 * KB, ss.WIDTHS, ss.RESOLUTIONS, 20, 0.05, 1, seed)
    row = next(row for row in rows if tuple(row[:2]) == tuple(few))
    print(f"20 samples per space, seed {seed}: chosen {few}, {round(row[2] * 20)} of 20 fit, mean {row[3] / 1e6:.1f}M MACs")
big = choices[256].best
print(f"200 samples per space, at least {MIN_COUNT} fitting, seed 0: chosen {(big.width, big.resolution)}, "
      f"{len(big.fitting_macs)} of {SAMPLES} fit, mean {big.mean_macs / 1e6:.1f}M MACs")

# %% [markdown]
# Twenty samples per space move the choice from seed to seed: one draw picks width 0.8 at 128 px
# on the strength of a single fitting subnet, the next two width 0.5 at 176 px on seven and four.
# Each is a mean of a handful of subnets, and the spaces near the top differ by a few million
# MACs: less than such a mean moves between draws. With 200 samples and at least 10 fitting, width
# 0.8 at 128 px is chosen on 18 subnets (and width 0.9 at 128 px, with a higher mean of 6, is not
# allowed to win). MCUNet's CLI samples 1000 per space.
#
# %% [markdown]
# MCUNet figure 3: the cumulative distribution of the MACs of the fitting subnets of the chosen
# space (thick) and of the five other spaces with the most mean MACs. Every dot is one subnet; the
# legend says how many of the 200 fit.

# %%
for choice in choices.values():
    viz.flops_cdf(choice)
    plt.show()

# %% [markdown]
# With 320 kB, TinyNAS picks width 0.5 at 192 px, where 62 of the 200 subnets fit and they
# average 74.8M MACs; its curve lies right of the others over most of its range. The space where
# the most subnets fit (all of them: width 0.5 at 144 px) averages only 43.7M. Taking 64 kB away
# moves the choice to width 0.8 at 128 px, where 18 of 200 fit with 66.0M MACs on average, against
# 34.4M in the space where all fit: smaller budgets push TinyNAS to the edge of what fits.
#
# The 256 kB figure is less tidy, and it shows why the rule has a minimum. Width 0.9 at 128 px
# has the higher mean (72M) and lies further right, but only 6 of its 200 subnets fit (3 at
# 112 px): below the minimum of 10, so it cannot be chosen. And width 0.5 at 176 px, with 69
# fitting subnets and almost the same mean, crosses the chosen curve several times: the rule
# compares means, and the chosen curve is not the rightmost at every quantile.
#
# ## 4. Which resolutions are worth trying? (2 points)
#
# Every subnet of a space is at least as big as its **smallest subnet** (depth 2 everywhere,
# kernel 3, expansion 3): `smallest(width, resolution)` builds it (and `largest` the biggest).
# Above the resolution where the smallest subnet stops fitting, no subnet of that width fits.
#
# Write `largest_resolution_for(width, sram, flash)`: the largest resolution in `ss.RESOLUTIONS`
# (48, 64, ..., 224) at which the smallest subnet of that width fits both budgets, layer by layer
# (`ss.cost`); `None` when it fits at none of them.

# %% solution=true grade_id="largest_resolution_for"
def largest_resolution_for(width, sram, flash):
    """Largest resolution of the grid at which the space's smallest subnet fits; None if none."""
    # TODO: the largest r in ss.RESOLUTIONS where ss.cost(smallest(width, r)) fits both budgets.
    # APPROACH: loop over ss.RESOLUTIONS, cost the smallest subnet at each, keep the last r whose
    #   .sram <= sram and .flash <= flash; None when there is none.
    # HINT: layer by layer: ss.cost(cfg) without patch_based.
    # EXAMPLE: largest_resolution_for(0.5, 320 * 1024, 1024 * 1024) -> 192
    ### BEGIN SOLUTION
    found = None
    for r in ss.RESOLUTIONS:
        c = ss.cost(smallest(width, r))
        if c.sram <= sram and c.flash <= flash:
            found = r
    return found
    ### END SOLUTION


# %% points=2 grade_id="largest_resolution_for_tests"
with visible_tests("largest_resolution_for"):
    assert largest_resolution_for(0.5, 320 * KB, 1024 * KB) == 192
    assert largest_resolution_for(1.0, 16 * KB, 1024 * KB) is None
### BEGIN HIDDEN TESTS
_r = checks.run("04_search_space", "largest_resolution_for", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# The bound for every width, next to the largest subnet's, under three SRAM budgets (1 MB Flash):

# %%
# NBVAL_CHECK_OUTPUT
BUDGETS = (320, 256, 128)
print("width  " + "  ".join(f"{b:>4d} kB" for b in BUDGETS) + "   largest subnet at 320 kB")
for width in ss.WIDTHS:
    row = [or_reference(largest_resolution_for)(width, b * KB, 1024 * KB) for b in BUDGETS]
    big = [r for r in ss.RESOLUTIONS if (lambda c: c.sram <= 320 * KB and c.flash <= 1024 * KB)(
        ss.cost(largest(width, r)))]
    print(f"{width:5.1f}  " + "  ".join(f"{str(r):>7s}" for r in row) + f"   {str(max(big) if big else None):>7s}")
print(f"the largest subnet's int8 weights at width 0.6: {ss.cost(largest(0.6, 48)).flash / KB:.0f} kB of Flash")

# %% [markdown]
# Above the first three columns no subnet of the width fits; at or below the last one every
# subnet fits 320 kB and 1 MB. In between lie the spaces where some subnets fit and some do not:
# that is where the chosen spaces above sit (width 0.5 at 192 px under 320 kB: the bound itself;
# width 0.8 at 128 px under 256 kB: the bound again). The smallest subnet's
# peak is set by its first layers and grows with the width in steps: widths 0.2 to 0.5 share one
# bound (192 px at 320 kB), 0.6 to 1.0 another (128 px). From width 0.6 on the largest subnet fits
# at no resolution: its int8 weights alone exceed 1 MB of Flash (1316 kB at width 0.6), whatever
# the resolution.
#
# ## 5. Patch-based inference opens bigger spaces
#
# SRAM was counted layer by layer. MCUNetV2 runs the first blocks patch by patch (Lab 03), so a
# subnet whose first blocks are too big may still fit. `ss.cost(cfg, patch_based=True)` tries a
# few (split block, grid) plans and keeps the smallest peak. Under the same 256 kB / 1 MB budget,
# with the same 200 samples per space and the same minimum of 10 fitting subnets:

# %%
# NBVAL_CHECK_OUTPUT
patch_choice = ss.optimise(256 * KB, 1024 * KB, n=SAMPLES, patch_based=True, min_count=MIN_COUNT)
layer = choices[256].best
best = patch_choice.best
print(f"layer by layer: width {layer.width}, resolution {layer.resolution}, mean {layer.mean_macs / 1e6:.1f}M MACs "
      f"({len(layer.fitting_macs)} of {SAMPLES} fit)")
print(f"patch-based:    width {best.width}, resolution {best.resolution}, mean {best.mean_macs / 1e6:.1f}M MACs "
      f"({len(best.fitting_macs)} of {SAMPLES} fit)")
viz.flops_cdf(patch_choice)
plt.show()

# %% [markdown]
# With patch-based inference the same 256 kB chooses width 0.8 at 224 px, where 33 of 200
# subnets fit, with 2.9 times the MACs (191.2M against 66.0M): SRAM no longer binds the first
# blocks, so the choice moves to where Flash and the later blocks bind (width 0.9 at 224 px
# computes more, but only 3 of its subnets fit). This is the MCUNetV2 result: the memory saved by patches is
# spent on a larger input and a wider network, which is what raises accuracy.
#
# ## 6. Explore
#
# Move the budgets and watch the chosen space and its CDF move: the same 200 samples per space
# and minimum of 10 fitting subnets as above (their costs are kept, so a change takes about a
# second; the first patch-based view reuses section 5's). The widget needs a live kernel in
# JupyterLab; the book does not show it.

# %%
from mcunet_lite.widgets import space_explorer

space_explorer(samples=SAMPLES, min_count=MIN_COUNT)

# %% [markdown]
# ## What MCUNet does next
#
# The space is chosen; the search has not started. TinyNAS's second stage trains **one
# supernet** holding every subnet of the chosen space (weight sharing, Once-for-All), then runs an
# **evolutionary search** over its subnets under the exact SRAM and Flash limits, scoring each by
# the supernet's accuracy without training it. Lab 05 builds both on the CPU: elastic kernels,
# mutation and crossover, and the accuracy-vs-MACs Pareto front of the final population.
