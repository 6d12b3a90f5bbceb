# %% [markdown]
# # Lab 03: Patch-based inference
#
# Lab 00 found the memory wall in MobileNetV2's first blocks; Lab 02 showed that no placement can
# beat it: at (1.0, 224) the arena *is* the 1372 kB per-op peak. MCUNetV2 (arXiv 2110.15352)
# changes how those blocks run instead. The first stage of the network computes its output one
# spatial **patch** at a time, so only one patch's tensors are in SRAM at once; the rest of the
# network, whose maps are small, runs layer by layer as before. The price: neighbouring patches
# need overlapping input regions (the **halo**), which are computed more than once.
#
# **Learning goals**
# 1. Trace which input rows an output region needs, through one layer, then through a chain
#    (receptive-field tracing, MCUNetV2 section 3.1).
# 2. Compute the MACs that halos add, and how they grow with the number of patches.
# 3. Plan MobileNetV2 patch by patch: 75x75 input patches, 1372 kB -> 172 kB, +42% MACs in the
#    patch stage; choose the grid that fits a microcontroller.
# 4. Check that patch-based execution computes exactly what layer-by-layer execution does.
# 5. Shrink the halo with receptive-field redistribution (MCUNetV2 section 3.2).
#
# **Expected runtime**: under a minute on a 2-core laptop CPU. **Points**: 10 (four exercises).
#
# **Expected figures** (a correct run; the book shows them): a 4x4 grid of patches drawn on a
# photo, with their overlapping input regions; patch-based vs layer-by-layer peak SRAM and MACs of
# MobileNetV2; printed tables of halo overhead per grid and the grid each MCU needs.
#
# Write your code between the lines marked `# YOUR CODE HERE`; keep the function names. Each
# exercise says what to do (TODO), how (APPROACH), a HINT and the result of its visible example.
# **Run All works before you write anything**: an unfinished exercise's test cell says "not
# implemented yet", and the cells after it use the library's reference (with a NOTE) until your
# function works. Grade yourself any time with `mcunet-lite grade my-labs/03_patch_inference.ipynb`
# (your copy from `mcunet-lite lab`).

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from skimage import data

from mcunet_lite import floatref, int8ref, patch, quant, redistribute, viz, zoo
from mcunet_lite.kit.scaffold import or_reference, visible_tests
from mcunet_lite import profile as prof

KB = 1024

# %% [markdown]
# ## 1. One layer (2 points)
#
# Take a convolution with a `kernel` x `kernel` window, a `stride` and `pad` rows of padding
# before the first input row. Output row `r` reads the `kernel` input rows starting at
# `r * stride - pad`. Rows below 0 or past the end of the input are padding: they exist only in
# the padded input.
#
# Write `input_region(kernel, stride, pad, out_rows)`: given output rows `out_rows = (r0, r1)`
# (from `r0` up to, not including, `r1`), return the input rows `(start, stop)` they read, in the
# same half-open form, **without clipping** to the input (so `start` may be negative).
# Columns work the same way.

# %% solution=true grade_id="input_region"
def input_region(kernel, stride, pad, out_rows):
    """Input rows [start, stop) that output rows [r0, r1) of one conv read (outside = padding)."""
    # TODO: (start, stop) of the input rows that output rows r0 .. r1 - 1 read, unclipped.
    # APPROACH: the first output row r0 starts reading at r0 * stride - pad; the last one,
    #   r1 - 1, reads up to (r1 - 1) * stride - pad + kernel (exclusive).
    # HINT: no max(0, ...) or min(size, ...): padding rows are part of the answer.
    # EXAMPLE: input_region(3, 1, 1, (0, 4)) -> (-1, 5)
    ### BEGIN SOLUTION
    r0, r1 = out_rows
    return r0 * stride - pad, (r1 - 1) * stride - pad + kernel
    ### END SOLUTION


# %% points=2 grade_id="input_region_tests"
with visible_tests("input_region"):
    assert input_region(3, 1, 1, (0, 4)) == (-1, 5)     # one padding row above, one halo row below
    assert input_region(3, 2, 1, (7, 14)) == (13, 28)
    assert input_region(1, 1, 0, (5, 9)) == (5, 9)      # a 1x1 conv needs no halo
### BEGIN HIDDEN TESTS
from mcunet_lite.kit import checks
_r = checks.run("03_patch_inference", "input_region", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Through a chain (3 points)
#
# A patch stage is a chain of layers. To compute output rows `out_rows` of the last layer, the
# layer before it must provide the rows that `input_region` asks for; that layer in turn needs
# more rows of its own input, and so on back to the image. This is **receptive-field tracing**,
# done backwards from the output.
#
# Write `trace_receptive_field(layers, out_rows)`: `layers` is a list of `(kernel, stride, pad)`
# in execution order; return the list of row regions of every tensor of the chain, **input
# first**, ending with `out_rows` itself (so `len(layers) + 1` regions), unclipped.

# %% solution=true grade_id="trace_receptive_field"
def trace_receptive_field(layers, out_rows):
    """Rows of every tensor of a conv chain that `out_rows` of its output need, input first."""
    # TODO: [rows of the chain's input, ..., rows of the last layer's output == out_rows].
    # APPROACH: start from [out_rows]; walk the layers backwards, each time putting
    #   input_region(kernel, stride, pad, <the first region so far>) in front.
    # HINT: reversed(layers) walks them from the output back to the input.
    # EXAMPLE: trace_receptive_field([(3, 2, 1), (3, 1, 1)], (0, 1)) -> [(-3, 4), (-1, 2), (0, 1)]
    ### BEGIN SOLUTION
    regions = [tuple(out_rows)]
    for kernel, stride, pad in reversed(layers):
        regions.insert(0, input_region(kernel, stride, pad, regions[0]))
    return regions
    ### END SOLUTION


# %% points=3 grade_id="trace_receptive_field_tests"
with visible_tests("trace_receptive_field"):
    assert trace_receptive_field([(3, 2, 1), (3, 1, 1)], (0, 1)) == [(-3, 4), (-1, 2), (0, 1)]
### BEGIN HIDDEN TESTS
_r = checks.run("03_patch_inference", "trace_receptive_field", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# MCUNetV2's running example: MobileNetV2 (1.0, 224) with the stem and the first 4
# inverted-residual blocks as the patch stage; its output is 28x28x32. Every conv of that stage
# pads by `kernel // 2` on every side, so each one is a `(kernel, stride, pad)` layer. The stage
# also has one residual ADD: it reads the same region it writes, and its residual input needs a
# region that the block's 1x1 expansion conv needs anyway, so the chain of convs alone gives the
# regions. Below, the receptive field of one output pixel, and the input rows of two of the 16
# tiles of a 4x4 grid (a tile has 7 of the 28 output rows).

# %%
# NBVAL_CHECK_OUTPUT
mbv2 = zoo.mobilenet_v2(1.0, 224).graph()
split = patch.split_after_block(mbv2, 4)
convs = [op for op in mbv2.ops[:split + 1] if op.kind == "conv2d"]
chain = [(mbv2.shape(op.inputs[1])[1], op.attrs["stride"][0], op.attrs["pads"][0]) for op in convs]
print(f"patch stage: ops 0..{split} ({mbv2.ops[split].name}), {len(convs)} convs, "
      f"output {mbv2.shape(convs[-1].output)}")
start, stop = or_reference(trace_receptive_field)(chain, (14, 15))[0]
print(f"receptive field of one output pixel: {stop - start} input rows")
for rows in ((0, 7), (7, 14)):
    start, stop = or_reference(trace_receptive_field)(chain, rows)[0]
    print(f"output rows {rows} need input rows ({start}, {stop}): {stop - start} rows")

# %% [markdown]
# One output pixel sees 27 input rows (and columns); a tile of 7 output rows needs 75 input rows:
# the stage's stride is 8, so 7 output rows span 6 x 8 = 48 rows, plus one 27-row receptive
# field. The top tile's region starts 13 rows above the image: padding, not data. So each patch
# reads a 75x75 input window instead of its 56x56 share of the image.
#
# ## 3. The cost of halos (3 points)
#
# Every patch computes the whole region that its tile needs in every layer, and neighbouring
# regions overlap: the overlap is computed once per patch that needs it. A microcontroller runs
# one fixed-size loop for every patch, so border patches compute their padding rows too (and
# throw them away): use the **unclipped** regions.
#
# Write `patch_stage_macs(layers, in_size, n)`: the chain takes a square `in_size` x `in_size`
# input; `layers` holds `(kernel, stride, pad, macs_per_pixel)`, where `macs_per_pixel` is what
# one output position of that layer costs (all its channels). Each layer's output side is
# `(size + 2 * pad - kernel) // stride + 1`. Cut the last layer's output into `n` x `n` tiles
# with `patch.tiles(side, side, n)` (a list of `(r0, r1, c0, c1)`), trace rows and columns of
# every tile, and return `(patch_macs, layerwise_macs)`: the MACs of all patches (each layer's
# region area times its `macs_per_pixel`, summed over layers and tiles), and those of running the
# chain once, layer by layer.

# %% solution=true grade_id="patch_stage_macs"
def patch_stage_macs(layers, in_size, n):
    """(patch-based MACs, layer-by-layer MACs) of a conv chain run on n x n output tiles."""
    # TODO: (MACs of all n x n patches, MACs of the chain run once layer by layer).
    # APPROACH: 1. the output side of every layer from in_size; 2. for each tile of
    #   patch.tiles(side, side, n): trace its rows and its columns with trace_receptive_field and
    #   add, per layer, rows x cols of its output region times macs_per_pixel; 3. layer by layer:
    #   sum of macs_per_pixel x side^2.
    # HINT: trace with the (kernel, stride, pad) part of each layer: layer[:3].
    # EXAMPLE: patch_stage_macs([(3, 1, 1, 1), (3, 1, 1, 1)], 4, 2) -> (80, 32)
    ### BEGIN SOLUTION
    sizes = [in_size]
    for kernel, stride, pad, _ in layers:
        sizes.append((sizes[-1] + 2 * pad - kernel) // stride + 1)
    shape = [layer[:3] for layer in layers]
    total = 0
    for r0, r1, c0, c1 in patch.tiles(sizes[-1], sizes[-1], n):
        rows, cols = trace_receptive_field(shape, (r0, r1)), trace_receptive_field(shape, (c0, c1))
        for (_, _, _, cost), (a, b), (c, d) in zip(layers, rows[1:], cols[1:]):
            total += cost * (b - a) * (d - c)
    return total, sum(cost * s * s for (_, _, _, cost), s in zip(layers, sizes[1:]))
    ### END SOLUTION


# %% points=3 grade_id="patch_stage_macs_tests"
with visible_tests("patch_stage_macs"):
    assert patch_stage_macs([(3, 1, 1, 1)], 4, 2) == (16, 16)                  # one layer: no halo
    assert patch_stage_macs([(3, 1, 1, 1), (3, 1, 1, 1)], 4, 2) == (80, 32)    # 4 tiles x 4x4 first-layer regions
### BEGIN HIDDEN TESTS
_r = checks.run("03_patch_inference", "patch_stage_macs", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# The same on MobileNetV2's patch stage, for grids from 1x1 to 7x7, next to the peak SRAM of the
# library's full plan (`patch.plan`, below) with that grid:

# %%
# NBVAL_CHECK_OUTPUT
costs = [(*layer, prof.op_macs(mbv2, op) // (mbv2.shape(op.output)[1] * mbv2.shape(op.output)[2]))
         for layer, op in zip(chain, convs)]
print("grid   patch-stage MACs   overhead   peak SRAM")
for n in range(1, 8):
    macs, layerwise = or_reference(patch_stage_macs)(costs, 224, n)
    p = patch.plan(mbv2, split, n)
    print(f"{n}x{n}   {macs / 1e6:7.1f}M vs {layerwise / 1e6:.1f}M   {100 * (macs / layerwise - 1):+5.0f}%"
          f"   {p.peak_sram_bytes / KB:7.1f} kB")

# %% [markdown]
# More patches, smaller patches, less memory, but each step of the grid adds 10 to 13 points of
# overhead to the stage's 91.3M MACs: 4x4 costs +42%. Even 1x1 costs +10% here, because the single
# fixed-size patch also computes the padding rows of every intermediate map, and it needs more
# memory than layer by layer (1573.4 kB against 1372.0 kB) because it keeps the stage's output
# buffer besides its own tensors. From 4x4 on the peak stays at 171.5 kB: it is no longer in the
# patch stage but in the layers after it, which run layer by layer.
#
# ## 4. The planner
#
# `patch.plan(graph, split_op, grid)` does all of this on any graph (residual blocks, pooling,
# padding): it traces every tensor of the stage for every tile, plans one patch's arena with Lab
# 02's scheduler (every tensor at its largest region), adds the stage output buffer the tiles
# are written into, and plans the rest of the network layer by layer.

# %%
# NBVAL_CHECK_OUTPUT
plan = patch.plan(mbv2, split, 4)
kb = lambda b: f"{b / KB:.1f} kB"  # noqa: E731
print(f"{plan.grid}x{plan.grid} patches of the {plan.graph.shape(plan.stage_output)[1:]} stage output")
print(f"input patch {plan.input_patch[0]}x{plan.input_patch[1]}, receptive field {plan.receptive_field} px")
print(f"peak SRAM {kb(plan.peak_sram_bytes)} (one patch {kb(plan.per_patch_arena_bytes)} + stage output "
      f"{kb(plan.stage_output_bytes)}; the rest {kb(plan.rest_peak_bytes)}) "
      f"vs layer by layer {kb(plan.layerwise_peak_sram_bytes)}: "
      f"{plan.layerwise_peak_sram_bytes / plan.peak_sram_bytes:.1f}x less")
print(f"patch-stage MACs {plan.patch_stage_macs / 1e6:.1f}M vs {plan.layerwise_patch_stage_macs / 1e6:.1f}M "
      f"({100 * (plan.patch_stage_macs / plan.layerwise_patch_stage_macs - 1):+.0f}%); whole network "
      f"{plan.total_macs / 1e6:.1f}M vs {plan.layerwise_total_macs / 1e6:.1f}M "
      f"({100 * (plan.total_macs / plan.layerwise_total_macs - 1):+.1f}%)")

# %% [markdown]
# The figures of MCUNetV2 for this setting: 75x75 input patches, peak SRAM from 1372 kB down to
# 171.5 kB (8x less), +42% MACs in the patch stage. Over the whole network the overhead is +12.7%
# (339.0M vs 300.8M); the paper reports +10% for its version.
#
# Where the patches fall on an image: three of the 16 patches, each its own tile (shaded) and the
# input window it reads (dashed). The top-left window hangs over the border into padding.

# %%
def astronaut(size):
    """scikit-image's astronaut photo (shipped with the package), resized to size x size RGB uint8."""
    return np.asarray(Image.fromarray(data.astronaut()).resize((size, size), Image.BILINEAR))


viz.patches_on_image(plan, astronaut(224))
plt.show()
viz.patch_vs_layerwise(plan)
plt.show()

# %% [markdown]
# ## 5. Choosing the grid (2 points)
#
# A `PatchPlan` reports `peak_sram_bytes`: the larger of the patch stage's peak (one patch's
# arena **plus** the full stage-output buffer the patches are written into) and the peak of the
# layer-by-layer rest. It also reports `total_macs` (the whole network) and `grid`.
#
# Write `cheapest_grid(graph, split_op, budget)`: among the grids `n = 1, ..., 8` (and at most the
# stage output's height and width), the one whose plan `patch.plan(graph, split_op, n)` has the
# **fewest total MACs** among those whose peak SRAM fits `budget` bytes (ties: the smaller `n`);
# `None` when none fits.

# %% solution=true grade_id="cheapest_grid"
def cheapest_grid(graph, split_op, budget):
    """The n x n grid (n = 1..8) with the fewest total MACs whose peak SRAM fits `budget` bytes."""
    # TODO: the grid n (1..8, at most the stage output's side) with the fewest total MACs among
    #   the plans whose peak_sram_bytes <= budget; None when none fits.
    # APPROACH: build patch.plan(graph, split_op, n) for every allowed n, keep those that fit,
    #   take the min by (total_macs, grid).
    # HINT: graph.shape(graph.ops[split_op].output)[1:3] is the stage output's (height, width).
    # EXAMPLE: cheapest_grid(mbv2, split, 320 * 1024) -> 3
    ### BEGIN SOLUTION
    side = min(graph.shape(graph.ops[split_op].output)[1:3])
    plans = [patch.plan(graph, split_op, n) for n in range(1, min(8, side) + 1)]
    fits = [p for p in plans if p.peak_sram_bytes <= budget]
    return min(fits, key=lambda p: (p.total_macs, p.grid)).grid if fits else None
    ### END SOLUTION


# %% points=2 grade_id="cheapest_grid_tests"
with visible_tests("cheapest_grid"):
    assert cheapest_grid(mbv2, split, 320 * KB) == 3
    assert cheapest_grid(mbv2, split, 100 * KB) is None   # the layers after the split alone need 171.5 kB
### BEGIN HIDDEN TESTS
_r = checks.run("03_patch_inference", "cheapest_grid", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %%
# NBVAL_CHECK_OUTPUT
for mcu, (sram, _) in prof.MCU_BUDGETS.items():
    n = or_reference(cheapest_grid)(mbv2, split, sram)
    p = patch.plan(mbv2, split, n)
    print(f"{mcu} ({sram // KB} kB): {n}x{n} patches, peak {p.peak_sram_bytes / KB:.1f} kB, "
          f"MACs {p.total_macs / 1e6:.1f}M ({100 * (p.total_macs / p.layerwise_total_macs - 1):+.1f}%)")

# %% [markdown]
# Full-width MobileNetV2 at 224x224 now fits all three microcontrollers, the STM32F746 with 3x3
# patches for 9.3% more MACs. Layer by layer it fit none of them (Lab 00).
#
# ## 6. Exact, not approximate
#
# Patch-based inference must compute the same numbers as layer-by-layer inference: every op of a
# patch gets exactly the padding the whole-image run would apply where its region leaves the
# tensor, and none elsewhere. `patch.run_float` and `patch.run_int8` execute a plan patch by
# patch. Below: a small MobileNetV2 (0.35, 96) with random weights and BatchNorm statistics of the
# kit's synthetic images, on the astronaut, in float and in int8 (the int8 version of Lab 01).
# An untrained classifier answers nearly the same for every image, so the comparison is made on
# the first feature map after the patch stage: the network cut one op after the split.

# %%
import torch  # noqa: E402  (imported here: only this section needs it)

from mcunet_lite.from_torch import from_torch  # noqa: E402
from mcunet_lite.ir import Graph  # noqa: E402


def features(graph, split_op):
    """`graph` cut one op after a patch stage that ends at `split_op`: that op's output is the output."""
    ops = graph.ops[:split_op + 2]
    return Graph(graph.name, graph.tensors, ops, graph.inputs, [ops[-1].output])


torch.manual_seed(0)
images = quant.calibration_images("synthetic", 16, 96)
model = zoo.mobilenet_v2(0.35, 96, num_classes=2).module()
with torch.no_grad():
    model.train()(torch.from_numpy(images).permute(0, 3, 1, 2))  # BatchNorm statistics of these images
small = from_torch(model.eval(), 96)
small_split = patch.split_after_block(small, 4)
x = (astronaut(96)[None].astype(np.float32) - 128) / 128  # normalised as the kit trains
g = features(small, small_split)
float_patch, float_ref = patch.run_float(patch.plan(g, small_split, 3), x)[0], floatref.run(g, x)
g = features(quant.quantize(small, images), small_split)
xq = quant.quantize_input(g, x)
int8_patch, int8_ref = patch.run_int8(patch.plan(g, small_split, 3), xq)[0], int8ref.run_all(g, xq)[0]
print(f"the int8 map holds {np.unique(int8_ref).size} distinct values")

# %%
# NBVAL_CHECK_OUTPUT
print(f"float, 3x3 patches, {float_ref.shape} map: equal to layer by layer within 1e-5: "
      f"{np.allclose(float_patch, float_ref, rtol=1e-5, atol=1e-5)}")
print(f"int8, 3x3 patches, {int8_ref.shape} map: identical to layer by layer: "
      f"{np.array_equal(int8_patch, int8_ref)}")

# %% [markdown]
# ## 7. Receptive-field redistribution
#
# The halo grows with the receptive field of the patch stage: 27 pixels here. MCUNetV2 (section
# 3.2) shrinks it: the patch stage gets small kernels and fewer blocks (a smaller receptive field,
# so smaller halos), and the blocks taken out of it are appended to the stage after it, where the
# maps are small and run layer by layer. `redistribute.compare(config, split_block, grid)` plans
# MobileNetV2 before and after, with the same grid.

# %%
# NBVAL_CHECK_OUTPUT
cmp = redistribute.compare(zoo.mobilenet_v2(1.0, 224), 4, 4)
print(f"{'':28s} {'before':>10s} {'after':>10s}")
for label, before, after in cmp.rows():
    print(f"{label:28s} {before:>10s} {after:>10s}")
print("blocks per stage before:", [s.depth for s in zoo.mobilenet_v2(1.0, 224).stages])
print("blocks per stage after: ", [s.depth for s in cmp.config.stages])

# %% [markdown]
# Redistribution moves one block of the 24-channel stage out of the patch stage (to the 64-channel
# stage): the receptive field drops from 27 to 19 pixels, the input patch from 75x75 to 67x67, the
# patch stage's overhead from +42% to +21% and the whole network's from +13% to +5%, at the same
# 171.5 kB peak. The paper's hand-designed MbV2-RD goes a little further (63x63 patches, +18% in
# the patch stage, +3% overall) and reports the same ImageNet accuracy as MobileNetV2; this lab
# trains nothing, so it measures only the cost side.
#
# ## What MCUNet does next
#
# Memory now depends on choices: width, resolution, kernel sizes, expansion ratios, where to split
# and how many patches. Lab 04 builds the **search space** TinyNAS optimises so that the networks
# it holds fit a microcontroller's SRAM and Flash, and Lab 05 searches networks and patch
# schedules together, the way MCUNetV2 does.
