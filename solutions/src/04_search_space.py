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
# 2. Choose the space the way TinyNAS does, and see why "the most subnets fit" is the wrong rule.
# 3. Bound the resolutions worth trying from the smallest subnet of each width.
# 4. Draw MCUNet's FLOPs-CDF figure for two budgets, and see patch-based inference (MCUNetV2)
#    open larger spaces.
#
# **Expected runtime**: about a minute on a 2-core laptop CPU. **Points**: 10 (three exercises).
#
# Write your code between the lines marked `# YOUR CODE HERE`; keep the function names. Grade
# yourself any time with `mcunet-lite grade labs/04_search_space.ipynb`.

# %%
# %matplotlib inline
import math
import random

import matplotlib.pyplot as plt

from mcunet_lite import search_space as ss
from mcunet_lite import viz
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
# space; this lab samples a few dozen so that it runs in a minute. Fewer samples make each
# statistic noisier, not different in kind.
#
# ## 2. Fitting subnets (3 points)
#
# Write `fit_stats(costs, sram, flash)`. `costs` is a list of `ss.Cost` (fields `.sram`, `.flash`,
# `.macs`, bytes and MACs) of the subnets sampled from one space. A subnet **fits** when its SRAM
# is at most `sram` and its Flash at most `flash` bytes. Return `(fit fraction, mean MACs)`: the
# fraction of the sampled subnets that fit, and the mean MACs **of the fitting subnets only**
# (0.0 when none fits).

# %% solution=true grade_id="fit_stats"
def fit_stats(costs, sram, flash):
    """(fraction of subnets within both budgets, mean MACs of those subnets; 0.0 when none fit)."""
    ### BEGIN SOLUTION
    fitting = [c.macs for c in costs if c.sram <= sram and c.flash <= flash]
    return len(fitting) / len(costs), (sum(fitting) / len(fitting) if fitting else 0.0)
    ### END SOLUTION


# %% points=3 grade_id="fit_stats_tests"
example = [ss.Cost(200 * KB, 800 * KB, 30_000_000), ss.Cost(320 * KB, 1024 * KB, 50_000_000),
           ss.Cost(400 * KB, 600 * KB, 90_000_000), ss.Cost(100 * KB, 1200 * KB, 10_000_000)]
assert fit_stats(example, 320 * KB, 1024 * KB) == (0.5, 40_000_000)
assert fit_stats(example, 64 * KB, 1024 * KB) == (0.0, 0.0)
### BEGIN HIDDEN TESTS
from mcunet_lite import checks
_r = checks.run("04_search_space", "fit_stats", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# The costs of 40 subnets of three spaces, against the STM32F746 (320 kB SRAM, 1 MB Flash):

# %%
# NBVAL_CHECK_OUTPUT
SAMPLES = 40
for width, resolution in ((0.3, 96), (0.5, 160), (0.8, 128)):
    rng = random.Random(f"lab04/{width}/{resolution}")
    costs = [ss.cost(ss.sample(rng, width, resolution)) for _ in range(SAMPLES)]
    fraction, mean = fit_stats(costs, 320 * KB, 1024 * KB)
    print(f"width {width} at {resolution:3d} px: {fraction:4.0%} fit, mean {mean / 1e6:5.1f}M MACs of those")

# %% [markdown]
# The small space fits completely but computes little; the wide one computes more, when a subnet
# fits at all (a quarter of them do). Somewhere in between is the space worth searching.
#
# ## 3. Choosing the space (3 points)
#
# `ss.evaluate_space(width, resolution, sram, flash, n)` samples `n` subnets of a space and
# returns an `ss.SpaceStats` with `.width`, `.resolution`, `.fit_fraction` and `.mean_macs`
# (exactly your two figures). Write `choose_space(spaces, min_fit)`: among the spaces where at
# least `min_fit` of the samples fit, return `(width, resolution)` of the one with the **largest
# mean MACs** of fitting subnets; `None` when no space has enough fitting subnets. The minimum
# matters: a space where one lucky subnet in a thousand fits is no space to search, however much
# that subnet computes.

# %% solution=true grade_id="choose_space"
def choose_space(spaces, min_fit):
    """(width, resolution) of the space with the most mean MACs among those where >= min_fit fit."""
    ### BEGIN SOLUTION
    usable = [s for s in spaces if s.fit_fraction >= min_fit]
    if not usable:
        return None
    best = max(usable, key=lambda s: s.mean_macs)
    return best.width, best.resolution
    ### END SOLUTION


# %% points=3 grade_id="choose_space_tests"
toy = [ss.SpaceStats(0.3, 96, 10, [5, 6, 7, 8]), ss.SpaceStats(0.5, 128, 10, [20, 30]),
       ss.SpaceStats(0.9, 224, 10, [99])]
assert choose_space(toy, 0.1) == (0.9, 224)
assert choose_space(toy, 0.2) == (0.5, 128)     # 1 in 10 is not enough
assert choose_space(toy, 0.5) is None
### BEGIN HIDDEN TESTS
_r = checks.run("04_search_space", "choose_space", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# Now every width and resolution of the grid, 40 samples each, under two budgets:
# `ss.optimise(sram, flash, n=...)` evaluates every space and applies TinyNAS's rule with
# `min_fit=0.05`; your `choose_space` on its statistics must agree.

# %%
# NBVAL_CHECK_OUTPUT
choices = {}
for sram in (320, 256):
    choice = ss.optimise(sram * KB, 1024 * KB, n=SAMPLES)
    choices[sram] = choice
    mine = choose_space(choice.spaces, 0.05)
    most_fit = max(choice.spaces, key=lambda s: (s.fit_fraction, s.mean_macs))
    print(f"{sram} kB SRAM, 1 MB Flash: chosen width {choice.best.width}, resolution {choice.best.resolution} "
          f"({choice.best.fit_fraction:.0%} fit, mean {choice.best.mean_macs / 1e6:.1f}M MACs); yours: {mine}")
    print(f"  the space where the most subnets fit: width {most_fit.width}, resolution {most_fit.resolution} "
          f"({most_fit.fit_fraction:.0%} fit, mean {most_fit.mean_macs / 1e6:.1f}M MACs)")

# %% [markdown]
# MCUNet figure 3: for the best six spaces, the cumulative distribution of the MACs of their fitting
# subnets. The chosen space's curve lies furthest right: at every quantile its subnets compute
# more.

# %%
for choice in choices.values():
    viz.flops_cdf(choice)
    plt.show()

# %% [markdown]
# With 320 kB, TinyNAS picks width 0.5 at 192 px, where 57% of the subnets fit and they average
# 75.9M MACs; the space where the most subnets fit (all of them: width 0.5 at 144 px) averages only
# 45.3M. Taking 64 kB away moves the choice to width 0.8 at 128 px, where just 5% of the subnets
# fit (the minimum) with 65.4M MACs on average, against 33.4M in the space where all fit: smaller
# budgets push TinyNAS to the edge of what fits, and the minimum fit fraction keeps it from
# falling off.
#
# ## 4. Which resolutions are worth trying? (4 points)
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
    ### BEGIN SOLUTION
    found = None
    for r in ss.RESOLUTIONS:
        c = ss.cost(smallest(width, r))
        if c.sram <= sram and c.flash <= flash:
            found = r
    return found
    ### END SOLUTION


# %% points=4 grade_id="largest_resolution_for_tests"
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
    row = [largest_resolution_for(width, b * KB, 1024 * KB) for b in BUDGETS]
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
# with 20 samples per space (patch plans cost more to evaluate):

# %%
# NBVAL_CHECK_OUTPUT
patch_choice = ss.optimise(256 * KB, 1024 * KB, n=20, patch_based=True)
layer = choices[256].best
best = patch_choice.best
print(f"layer by layer: width {layer.width}, resolution {layer.resolution}, mean {layer.mean_macs / 1e6:.1f}M MACs")
print(f"patch-based:    width {best.width}, resolution {best.resolution}, mean {best.mean_macs / 1e6:.1f}M MACs "
      f"({best.fit_fraction:.0%} fit)")
viz.flops_cdf(patch_choice)
plt.show()

# %% [markdown]
# With patch-based inference the same 256 kB chooses width 0.9 at 208 px and 3.4 times the MACs
# (225.0M against 65.4M): SRAM no longer binds the first blocks, so the choice moves to where
# Flash and the later blocks bind. This is the MCUNetV2 result: the memory saved by patches is
# spent on a larger input and a wider network, which is what raises accuracy.
#
# ## 6. Explore
#
# Move the budgets and watch the chosen space and its CDF move (12 samples per space, so each
# change takes a few seconds). The widget needs a live kernel in JupyterLab; in a static page
# you see nothing here.

# %%
from mcunet_lite.widgets import space_explorer

space_explorer()

# %% [markdown]
# ## What MCUNet does next
#
# The space is chosen; the search has not started. TinyNAS's second stage trains **one
# supernet** holding every subnet of the chosen space (weight sharing, Once-for-All), then runs an
# **evolutionary search** over its subnets under the exact SRAM and Flash limits, scoring each by
# the supernet's accuracy without training it. Lab 05 builds both on the CPU: elastic kernels,
# mutation and crossover, and the accuracy-vs-MACs Pareto front of the final population.
