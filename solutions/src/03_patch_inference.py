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
# 4. Write the int8 patch executor: run a model's first stage one patch at a time (halo windows,
#    border padding with the zero point) and show it equals layer-by-layer execution bit for bit.
# 5. Shrink the halo with receptive-field redistribution (MCUNetV2 section 3.2), by hand.
#
# **Expected runtime**: under a minute on a 2-core laptop CPU. **Points**: 10 (six exercises; the patch executor is worth most).
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
import copy
import dataclasses
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from skimage import data

import mcunet_lite
from mcunet_lite import assets, floatref, int8ref, patch, quant, redistribute, tflite_io, viz, zoo
from mcunet_lite.kit.scaffold import or_reference, visible_tests
from mcunet_lite import profile as prof

KB = 1024

# %% [markdown]
# ## 1. One layer (1 point)
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


# %% points=1 grade_id="input_region_tests"
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
# ## 2. Through a chain (1 point)
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


# %% points=1 grade_id="trace_receptive_field_tests"
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
# ## 3. The cost of halos (1 point)
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


# %% points=1 grade_id="patch_stage_macs_tests"
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
# ## 5. Choosing the grid (1 point)
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


# %% points=1 grade_id="cheapest_grid_tests"
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
# ## 6. The patch executor (4 points)
#
# Patch-based inference must compute the same numbers as layer-by-layer inference, bit for bit.
# Here you write it for one patch of an int8 network's first stage. The network: a small
# MobileNetV2 (0.35, 96) with random weights and BatchNorm statistics of the kit's synthetic
# images, quantized as in Lab 01, its patch stage the stem and the first 4 blocks, on the
# astronaut.

# %%
import torch  # noqa: E402  (imported here: only this section needs these)

from mcunet_lite.ir import Graph  # noqa: E402
from mcunet_lite.kit.camera import Camera  # noqa: E402

torch.manual_seed(0)
images = quant.calibration_images("synthetic", 16, 96)
model = zoo.mobilenet_v2(0.35, 96, num_classes=2).module()
with torch.no_grad():
    model.train()(torch.from_numpy(images).permute(0, 3, 1, 2))  # BatchNorm statistics of these images
small, q = quant.from_module(model, 96, images, input_quant=None)
small_split = patch.split_after_block(small, 4)
x = (astronaut(96)[None].astype(np.float32) - 128) / 128  # normalised as the kit trains
xq = quant.quantize_input(q, x)
stage_out = q.ops[small_split].output
layer_by_layer = int8ref.tensors(q, xq)[stage_out]
tiles = patch.tiles(*layer_by_layer.shape[1:3], 3)
print(f"patch stage: ops 0..{small_split}, {sorted({op.kind for op in q.ops[:small_split + 1]})}, "
      f"output {layer_by_layer.shape}; 3x3 tiles {tiles[:2]} ...")

# %% [markdown]
# One patch computes one **tile** `(r0, r1, c0, c1)` of the stage output (rows `r0:r1`, columns
# `c0:c1`) and nothing else:
# 1. **Backwards**, as in section 2: the region of every tensor of the stage that the tile needs.
#    A conv's output region needs the input rows `input_region` gives (and columns alike, with the
#    conv's own kernel, stride and padding); an ADD needs the same region of both operands. Clip
#    each region to its tensor: what lies outside is padding, not data. A tensor read by two ops
#    (a residual) needs the union of their regions.
# 2. **Read** the input's region, and only that, from the camera: `camera.read(r0, r1, c0, c1)`
#    returns those rows and columns of the image (NHWC, int8). It has no pixels outside the image.
# 3. **Forwards**, op by op, on windows. A conv's window is its *unclipped* input region: the
#    part inside the input tensor comes from what you computed (or read); the part outside is the
#    padding the whole-image run would apply there, which holds the **input's zero point** (Lab 01:
#    real 0 is `q = Z`, so a padded position adds nothing after the offset). Run the conv on the
#    window with no padding of its own: `valid = dataclasses.replace(op, attrs={**op.attrs,
#    "pads": (0, 0, 0, 0)})`, then `int8ref.run_op(graph, valid, [window])`. An ADD runs with
#    `int8ref.run_op(graph, op, [a, b])` on both operands cut to its region.
#
# The padding is TFLite's: `op.attrs["pads"]` is `(top, bottom, left, right)` and need not be
# symmetric (a stride-2 conv on an even input pads 0 rows on top and 1 below); the kernel is
# `graph.shape(op.inputs[1])[1:3]` (weights are OHWI), the stride `op.attrs["stride"]`, the zero
# point `int8ref.scale_zp(graph.tensors[name].quant)[1]`, the non-weight inputs
# `graph.activations(op)`. The stage holds only `conv2d` (plain and depthwise) and `add` ops.
#
# Write `run_patch(graph, split_op, tile, camera)`. The grader runs it on random int8 networks
# (MobileNetV2, the MCUNet example and random MBConv nets with 3x3 to 7x7 depthwise convs and
# stride 2), on corner, border and inner tiles, and compares every value with layer-by-layer
# execution; it also checks that every window you read lies inside the tile's input window, so
# reading the whole image, running it layer by layer and cutting the tile scores 0. Per-op
# kernels (`int8ref.run_op`, `int8ref.conv2d`, ...) are yours to call; `patch.run_int8`,
# `patch.trace`, `int8ref.run` and the like are not.

# %% solution=true grade_id="run_patch"
def run_patch(graph, split_op, tile, camera):
    """The patch stage's output on one tile (rows r0:r1, columns c0:c1), from its input window alone."""
    # TODO: the stage output (ops 0..split_op) on rows r0:r1, columns c0:c1: an int8 array of shape
    #   (1, r1 - r0, c1 - c0, channels), from camera.read(...) of the tile's input window only.
    # APPROACH: 1. backwards over the stage ops: the region of every tensor the tile needs (a conv:
    #   the rows and columns its output region reads, as in input_region; an ADD: its own region),
    #   clipped to the tensor, the union where several ops read a tensor; 2. read the input's
    #   region from the camera; 3. forwards: for a conv, its unclipped window; the part inside its
    #   input comes from that tensor's computed region, the rest is padding holding the input's
    #   zero point (np.pad(..., constant_values=zero_point)); run the conv with pads (0, 0, 0, 0)
    #   on it; for an ADD, both operands cut to its region; keep each result with its region.
    # HINT: keep every computed tensor as (values, region) so that cutting a part of it is
    #   values[:, a0 - r0:a1 - r0, b0 - c0:b1 - c0].
    # EXAMPLE: run_patch(q, small_split, tiles[0], Camera(xq)) equals layer_by_layer[:, 0:4, 0:4]
    ### BEGIN SOLUTION
    stage = graph.ops[:split_op + 1]

    def clip(region, name):
        _, h, w, _ = graph.shape(name)
        return max(region[0], 0), min(region[1], h), max(region[2], 0), min(region[3], w)

    def window(op, region):  # the input region a conv needs for `region` of its output, unclipped
        r0, r1, c0, c1 = region
        kh, kw = graph.shape(op.inputs[1])[1:3]
        (sh, sw), (pt, _, pl, _) = op.attrs["stride"], op.attrs["pads"]
        return r0 * sh - pt, (r1 - 1) * sh - pt + kh, c0 * sw - pl, (c1 - 1) * sw - pl + kw

    def cut(name, region):  # `region` (inside the tensor) of a tensor computed on `have[name][1]`
        values, (a, _, b, _) = have[name]
        return values[:, region[0] - a:region[1] - a, region[2] - b:region[3] - b]

    # 1. backwards: the region of every tensor the tile needs, clipped to the tensor
    need = {stage[-1].output: tuple(tile)}
    for op in reversed(stage):
        if op.output not in need:
            continue
        for t in graph.activations(op):
            r = clip(window(op, need[op.output]) if op.kind == "conv2d" else need[op.output], t)
            old = need.get(t, r)
            need[t] = min(old[0], r[0]), max(old[1], r[1]), min(old[2], r[2]), max(old[3], r[3])
    # 2. forwards: read the input window, run every op on its own window
    x = graph.inputs[0]
    have = {x: (camera.read(*need[x]), need[x])}
    for op in stage:
        if op.output not in need:
            continue
        out = need[op.output]
        if op.kind == "conv2d":
            full = window(op, out)
            inside = clip(full, op.inputs[0])
            pads = ((0, 0), (inside[0] - full[0], full[1] - inside[1]), (inside[2] - full[2], full[3] - inside[3]), (0, 0))
            zero_point = int8ref.scale_zp(graph.tensors[op.inputs[0]].quant)[1]
            padded = np.pad(cut(op.inputs[0], inside), pads, constant_values=zero_point)
            valid = dataclasses.replace(op, attrs={**op.attrs, "pads": (0, 0, 0, 0)})
            y = int8ref.run_op(graph, valid, [padded])
        elif op.kind == "add":
            y = int8ref.run_op(graph, op, [cut(t, out) for t in graph.activations(op)])
        else:
            raise ValueError(f"run_patch runs conv2d and add ops, not {op.kind}")
        have[op.output] = (y, out)
    return have[stage[-1].output][0]
    ### END SOLUTION


# %% points=4 grade_id="run_patch_tests"
with visible_tests("run_patch"):
    for tile in (tiles[0], tiles[4], tiles[8]):
        camera = Camera(xq)
        r0, r1, c0, c1 = tile
        assert np.array_equal(run_patch(q, small_split, tile, camera), layer_by_layer[:, r0:r1, c0:c1]), tile
        w0, w1, v0, v1 = patch.trace(q, q.ops[:small_split + 1], stage_out, tile)[q.inputs[0]]
        assert all(w0 <= a and b <= w1 and v0 <= c and d <= v1 for a, b, c, d in camera.windows()), tile
### BEGIN HIDDEN TESTS
_r = checks.run("03_patch_inference", "run_patch", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# Now the whole stage, patch after patch, written into one stage-output buffer, against
# layer-by-layer execution; and what each patch read.

# %%
# NBVAL_CHECK_OUTPUT
assembled = np.zeros_like(layer_by_layer)
windows = []
for r0, r1, c0, c1 in tiles:
    camera = Camera(xq)
    assembled[:, r0:r1, c0:c1] = or_reference(run_patch)(q, small_split, (r0, r1, c0, c1), camera)
    windows.append(camera.windows())
print(f"int8, 3x3 patches, {layer_by_layer.shape} map ({np.unique(layer_by_layer).size} distinct values): "
      f"identical to layer by layer: {np.array_equal(assembled, layer_by_layer)}")
for tile, read in list(zip(tiles, windows))[:3]:
    print(f"tile {tile}: read {[(b - a, d - c) for a, b, c, d in read]} of the 96x96 image")

# %% [markdown]
# Each patch reads one window of the 96x96 image: 51x51 pixels for an inner tile (its 4 output
# rows span 3 x 8 = 24 input rows, plus one 27-pixel receptive field), fewer where the window
# leaves the image (38 rows and columns at the top-left corner). The float version, with the library's
# executor, agrees too (float sums in another order, so to 1e-5, not bit for bit); an untrained
# classifier answers nearly the same for every image, so the float comparison is made on the
# first feature map after the patch stage: the network cut one op after the split.

# %%
# NBVAL_CHECK_OUTPUT
def features(graph, split_op):
    """`graph` cut one op after a patch stage that ends at `split_op`: that op's output is the output."""
    ops = graph.ops[:split_op + 2]
    return Graph(graph.name, graph.tensors, ops, graph.inputs, [ops[-1].output])


g = features(small, small_split)
float_patch, float_ref = patch.run_float(patch.plan(g, small_split, 3), x)[0], floatref.run(g, x)
print(f"float, 3x3 patches, {float_ref.shape} map: equal to layer by layer within 1e-5: "
      f"{np.allclose(float_patch, float_ref, rtol=1e-5, atol=1e-5)}")

# %% [markdown]
# The course machines also keep two int8 models made by TensorFlow for MLPerf Tiny
# (`../shared/models`, as in Lab 02), padded TFLite's way (`(0, 1, 0, 1)` on their stride-2
# convs). Your executor runs the start of each (up to the fourth op after which the graph can be
# split: three residual blocks of ResNet-8, four convs of the VWW model) patch by patch, on a
# random int8 image; your clone has no `../shared`, and the cell says so.

# %%
MODELS = Path(mcunet_lite.__file__).resolve().parents[2] / "shared" / "models"
mlperf = sorted(MODELS.glob("mlperf-*.tflite")) if MODELS.is_dir() else []
if not mlperf:
    print(f"no real models at {MODELS} (only the course machines have ../shared/models)")
for path in mlperf:
    g = tflite_io.read(path)
    split = patch.candidate_splits(g)[3]
    image = np.random.default_rng(0).integers(-128, 128, g.shape(g.inputs[0])).astype(np.int8)
    whole = int8ref.tensors(g, image)[g.ops[split].output]
    pieces = np.zeros_like(whole)
    for r0, r1, c0, c1 in patch.tiles(*whole.shape[1:3], 3):
        pieces[:, r0:r1, c0:c1] = or_reference(run_patch)(g, split, (r0, r1, c0, c1), Camera(image))
    print(f"{path.name:40s} ops 0..{split} {sorted({op.kind for op in g.ops[:split + 1]})}, "
          f"3x3 patches of {whole.shape}: identical {np.array_equal(pieces, whole)}")

# %% [markdown]
# ## 7. Receptive-field redistribution (2 points)
#
# The halo grows with the receptive field of the patch stage: 27 pixels in MobileNetV2's. MCUNetV2
# (section 3.2) shrinks it: the patch stage gets small kernels and fewer blocks (a smaller
# receptive field, so smaller halos), and the blocks taken out of it are appended to a stage after
# it, where the maps are small and run layer by layer. The kit's rule, on an MBConv config
# (`zoo.MBConvConfig`: `stages`, each a `zoo.Stage` with `width`, `depth`, `stride` and `blocks`,
# each a `zoo.Block(kernel, expand)`) split after its first `split_block` blocks:
# 1. every block inside the patch stage gets kernel 3;
# 2. in each stage, only the **first** of its blocks inside the patch stage stays there (it carries
#    the stage's stride and width change, so the patch stage still ends at the same resolution);
#    the stage's other blocks inside the patch stage are removed;
# 3. the new split is `split_block` minus the number of removed blocks;
# 4. the removed blocks, in order, with their expansion and the largest kernel of the stage that
#    receives them, are appended to the first stage that starts at or after the new split.
#
# Write `redistribute_config(cfg, split_block)` returning `(new_config, new_split_block)`. The
# grader compares, with the library's `redistribute.redistribute`, the receptive field and MACs of
# the new patch stage, its output shape, the network's MACs and its number of blocks, on
# MobileNetV2, the MCUNet example and random MBConv nets with kernels 3 to 7.

# %% solution=true grade_id="redistribute_config"
def redistribute_config(cfg, split_block):
    """MCUNetV2's receptive-field redistribution of an MBConv config split after `split_block` blocks."""
    # TODO: (new config, new split_block) by the four rules above; leave `cfg` unchanged.
    # APPROACH: work on copy.deepcopy(cfg); walk the stages counting blocks: a stage's blocks
    #   inside the patch stage are its first min(split_block - blocks before it, depth) blocks;
    #   set their kernel to 3 and remove all but the first of them (collect the removed ones);
    #   new split = split_block - removed; append zoo.Block(k, removed.expand) to the first stage
    #   whose first block index is >= the new split, k that stage's largest kernel.
    # HINT: keep stage.depth == len(stage.blocks) after every change.
    # EXAMPLE: redistribute_config(zoo.mobilenet_v2(1.0, 224), 4) -> a config with blocks per stage
    #   [1, 1, 3, 5, 3, 3, 1], and 3
    ### BEGIN SOLUTION
    new = copy.deepcopy(cfg)
    moved, seen = [], 0
    for stage in new.stages:
        inside = stage.blocks[:max(0, min(split_block - seen, stage.depth))]
        seen += stage.depth
        for block in inside:
            block.kernel = 3
        moved += inside[1:]
        stage.blocks = [b for b in stage.blocks if all(b is not m for m in inside[1:])]
        stage.depth = len(stage.blocks)
    new_split = split_block - len(moved)
    first = 0
    for stage in new.stages:
        if first >= new_split:
            kernel = max(b.kernel for b in stage.blocks)
            stage.blocks += [zoo.Block(kernel, b.expand) for b in moved]
            stage.depth = len(stage.blocks)
            return new, new_split
        first += stage.depth
    raise ValueError("no stage starts after the patch stage: split earlier")
    ### END SOLUTION


# %% points=2 grade_id="redistribute_config_tests"
mbv2_cfg = zoo.mobilenet_v2(1.0, 224)
with visible_tests("redistribute_config"):
    rd, rd_split = redistribute_config(mbv2_cfg, 4)
    assert ([s.depth for s in rd.stages], rd_split) == ([1, 1, 3, 5, 3, 3, 1], 3)
    assert [s.depth for s in mbv2_cfg.stages] == [1, 2, 3, 4, 3, 3, 1]     # the original is unchanged
    rd_graph = rd.graph()
    rd_op = patch.split_after_block(rd_graph, rd_split)
    assert patch.receptive_field(rd_graph, rd_graph.ops[:rd_op + 1], rd_graph.ops[rd_op].output) == 19
### BEGIN HIDDEN TESTS
_r = checks.run("03_patch_inference", "redistribute_config", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# Your config, planned patch by patch with the same 4x4 grid as MobileNetV2 in section 4, next to
# the original (`redistribute.compare` is the library's version of this table):

# %%
# NBVAL_CHECK_OUTPUT
def patch_figures(cfg, split_block, grid):
    """Figures of `cfg` run patch by patch over its first `split_block` blocks with a grid x grid tiling."""
    g = cfg.graph()
    p = patch.plan(g, patch.split_after_block(g, split_block), grid)
    return [("receptive field (px)", str(p.receptive_field)), ("input patch", "x".join(map(str, p.input_patch))),
            ("patch-stage MAC overhead", f"+{100 * (p.patch_stage_macs / p.layerwise_patch_stage_macs - 1):.0f}%"),
            ("layer-by-layer MACs", f"{p.layerwise_total_macs / 1e6:.1f}M"),
            ("patch-based MACs", f"{p.total_macs / 1e6:.1f}M"),
            ("total MAC overhead", f"+{100 * (p.total_macs / p.layerwise_total_macs - 1):.0f}%"),
            ("peak SRAM (kB)", f"{p.peak_sram_bytes / KB:.1f}")]


rd, rd_split = or_reference(redistribute_config)(mbv2_cfg, 4)
print(f"{'':28s} {'before':>10s} {'after':>10s}")
for (label, before), (_, after) in zip(patch_figures(mbv2_cfg, 4, 4), patch_figures(rd, rd_split, 4)):
    print(f"{label:28s} {before:>10s} {after:>10s}")
print("blocks per stage before:", [s.depth for s in mbv2_cfg.stages])
print("blocks per stage after: ", [s.depth for s in rd.stages])
print("same table as redistribute.compare:",
      [r[2] for r in redistribute.compare(mbv2_cfg, 4, 4).rows()] == [a for _, a in patch_figures(rd, rd_split, 4)])

# %% [markdown]
# Redistribution moves one block of the 24-channel stage out of the patch stage (to the 64-channel
# stage): the receptive field drops from 27 to 19 pixels, the input patch from 75x75 to 67x67, the
# patch stage's overhead from +42% to +21% and the whole network's from +13% to +5%, at the same
# 171.5 kB peak. The paper's hand-designed MbV2-RD goes a little further (63x63 patches, +18% in
# the patch stage, +3% overall) and reports the same ImageNet accuracy as MobileNetV2.
#
# Does accuracy survive? The course assets hold two VWW classifiers trained the same way
# (MobileNetV2 0.35, 128x128, same data, epochs and seed; `mcunet-lite assets list`): the original
# and its redistribution at block 4. Their accuracy on the same held-out validation images comes
# from the assets' manifest (measured when each was published), beside the patch-based MACs of
# both at 128x128 with 2x2 patches:

# %%
vww_cfg = zoo.mobilenet_v2(0.35, 128)
vww_rd, vww_rd_split = or_reference(redistribute_config)(vww_cfg, 4)
published = assets.manifest()
for name, cfg, split_block in (("vww-classifier", vww_cfg, 4), ("vww-classifier-rd", vww_rd, vww_rd_split)):
    figures = dict(patch_figures(cfg, split_block, 2))
    metrics = published.get(name, {}).get("metrics")
    accuracy = (f"int8 top-1 {metrics['int8_top1']:.1%} (float {metrics['float_top1']:.1%}, n={metrics['n']})"
                if metrics else "not trained yet")
    print(f"{name:18s} patch-based MACs {figures['patch-based MACs']:>7s} ({figures['total MAC overhead']} over "
          f"layer by layer), receptive field {figures['receptive field (px)']} px: {accuracy}")

# %% [markdown]
# On the same 2000 validation images the redistributed classifier is as accurate as the original,
# within the noise of that many images (one standard error is about 0.6 points): 91.6% against
# 91.7% in float, 92.0% against 91.6% in int8, one training seed each. It needs 11% fewer MACs
# patch by patch (20.8M against 23.3M with 2x2 patches) and sees 19 instead of 27 pixels per
# patch-stage output: MCUNetV2's claim, at the small scale of this course.
#
# ## What MCUNet does next
#
# Memory now depends on choices: width, resolution, kernel sizes, expansion ratios, where to split
# and how many patches. Lab 04 builds the **search space** TinyNAS optimises so that the networks
# it holds fit a microcontroller's SRAM and Flash, and Lab 05 searches networks and patch
# schedules together, the way MCUNetV2 does.
