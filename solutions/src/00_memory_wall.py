# %% [markdown]
# # Lab 00: The memory wall
#
# A microcontroller such as the STM32F746 (the board of the MCUNet papers) has **320 kB of SRAM**
# and **1 MB of Flash**. Int8 weights live in Flash; activations live in SRAM while the network
# runs. This lab measures where that SRAM goes, and finds the *memory wall* that MCUNet
# (TinyNAS + TinyEngine) and MCUNetV2 (patch-based inference) are built to break.
#
# **Learning goals**
# 1. Compute a convolution's output shape, MACs and activation memory by hand.
# 2. Compute the SRAM live during every op of a network from tensor lifetimes, under the
#    `naive` rule and TinyEngine's in-place depthwise rule.
# 3. See that MobileNetV2's memory is concentrated in its first blocks, and that smaller weights
#    do not mean smaller activations.
# 4. Find the largest input resolution that fits a budget: the trade-off TinyNAS optimises.
#
# **Expected runtime**: under a minute on a 2-core laptop CPU. **Points**: 10 (four exercises).
#
# **Expected figures** (a correct run; the book shows all but the widget): MobileNetV2's peak SRAM per block
# against the three MCUs' budgets (only the first five blocks over 320 kB); weights vs activations
# of ResNet-18 and MobileNetV2; an explorer widget (width and resolution sliders); VWW stand-in
# images at 32, 64 and 128 px.
#
# Write your code between the lines marked `# YOUR CODE HERE`; keep the function names. Each
# exercise says what to do (TODO), how (APPROACH), a HINT and the result of its visible example.
# **Run All works before you write anything**: an unfinished exercise's test cell says "not
# implemented yet", and the cells after it use the library's reference (with a NOTE) until your
# function works. Grade yourself any time with `mcunet-lite grade my-labs/00_memory_wall.ipynb`
# (your copy from `mcunet-lite lab`).

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import numpy as np

from mcunet_lite import profile as prof
from mcunet_lite import viz, zoo
from mcunet_lite.ir import Graph
from mcunet_lite.kit.scaffold import or_reference, visible_tests

KB = 1024

# %% [markdown]
# ## 1. The budgets
#
# Three microcontrollers the MCUNet papers use. Keep these numbers in mind: every figure below is
# compared against them.

# %%
# NBVAL_CHECK_OUTPUT
for mcu, (sram, flash) in prof.MCU_BUDGETS.items():
    print(f"{mcu}: SRAM {sram // KB} kB, Flash {flash // KB} kB")

# %% [markdown]
# ## 2. One convolution (2 points)
#
# Activations are NHWC and int8: one byte per element. A convolution with `kernel` k, `stride` s
# and `groups` g pads k//2 on every side, so its output is `ceil(H / s)` by `ceil(W / s)`. Each
# output element costs `k * k * (C_in / g)` multiply-accumulates (MACs): a *depthwise* conv has
# `g = C_in`, so each output reads a single input channel. While it runs, the layer needs its
# input and its output in SRAM at the same time.
#
# Write `conv_layer_cost(in_shape, out_channels, kernel, stride, groups)` returning
# `(out_shape, macs, sram_bytes)` with `out_shape = (N, H_out, W_out, out_channels)` and
# `sram_bytes` = input elements + output elements.

# %% solution=true grade_id="conv_layer_cost"
def conv_layer_cost(in_shape, out_channels, kernel, stride, groups):
    """Output shape, MACs and int8 activation bytes (input + output) of one conv layer."""
    # TODO: return (out_shape, macs, sram_bytes) of one convolution.
    # APPROACH: 1. unpack (N, H, W, C); 2. H_out = ceil(H / stride), W_out likewise;
    #   3. MACs = N * H_out * W_out * out_channels * kernel * kernel * (C / groups);
    #   4. bytes = input elements + output elements (int8: one byte each).
    # HINT: -(-h // s) is ceil(h / s) in integers; a depthwise conv has groups == C.
    # EXAMPLE: conv_layer_cost((1, 112, 112, 16), 96, 1, 1, 1) -> ((1, 112, 112, 96), 19267584, 1404928)
    ### BEGIN SOLUTION
    n, h, w, c = in_shape
    ho, wo = -(-h // stride), -(-w // stride)
    out_shape = (n, ho, wo, out_channels)
    macs = n * ho * wo * out_channels * kernel * kernel * (c // groups)
    return out_shape, macs, n * h * w * c + n * ho * wo * out_channels
    ### END SOLUTION


# %% points=2 grade_id="conv_layer_cost_tests"
with visible_tests("conv_layer_cost"):
    # MobileNetV2's second block expands 112x112x16 to 96 channels with a 1x1 conv:
    assert conv_layer_cost((1, 112, 112, 16), 96, 1, 1, 1) == ((1, 112, 112, 96), 19_267_584, 1_404_928)
    # ...then its stride-2 depthwise 3x3 conv:
    assert conv_layer_cost((1, 112, 112, 96), 96, 3, 2, 96)[1] == 2_709_504
### BEGIN HIDDEN TESTS
from mcunet_lite.kit import checks
_r = checks.run("00_memory_wall", "conv_layer_cost", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# That 1x1 conv alone needs **1372 kB** of SRAM: more than four STM32F746s. Remember it.
#
# ## 3. A whole network, op by op
#
# The kit represents a network as a `Graph`: `graph.ops` in execution order, each op with
# `op.inputs` (tensor names: activations first, then weights) and `op.output`;
# `graph.tensors[name].size` is a tensor's element count; `graph.activations(op)` lists the
# non-weight inputs; `graph.is_depthwise(op)` tells a depthwise conv; `graph.inputs` and
# `graph.outputs` name the network's input and output tensors. Here is a small MobileNetV2:

# %%
g = zoo.mobilenet_v2(width=0.35, resolution=96).graph()
print("\n".join(g.summary().splitlines()[:8]))

# %% [markdown]
# A tensor is **live** from the op that produces it to the last op that reads it (the network
# input from the start, the output to the end). The SRAM an op needs is every tensor live while it
# runs: its inputs, its output, and tensors *held* for later ops, such as a residual input waiting
# for its ADD (MCUNetV2, section 4). That is the `naive` rule.
#
# TinyEngine (MCUNet, section 3.2) saves memory in two places; together they are the
# `tinyengine` rule:
# - a depthwise conv runs **in place**: each output channel overwrites its input channel, so when
#   the input is not needed afterwards the op costs `max(in, out)` instead of `in + out`. Careful:
#   when the depthwise input is still needed later (a residual block with expansion 1), it cannot
#   be overwritten.
# - a residual is held until its ADD but **not added again at the projection**: when an ADD
#   `(r, y)` directly follows the (not depthwise) conv that makes `y`, nothing else reads `y`,
#   that conv does not read `r`, and `r` dies at the ADD with the same size as `y`, the conv
#   writes `r + y` straight into `r`'s bytes. So the conv costs `y` less, and the ADD costs `y`
#   and its own output less.
#
# Write `live_bytes(graph, rule)` returning a list with one entry per op: the bytes live while
# that op runs, under `rule` (`"naive"` or `"tinyengine"`).

# %% solution=true grade_id="live_bytes"
def live_bytes(graph, rule):
    """Bytes live during each op of `graph` (inputs, output, held tensors), under `rule`."""
    # TODO: one number per op of graph.ops: the bytes of every tensor live while it runs, under rule.
    # APPROACH: 1. last[t] = index of the last op reading t (graph inputs live from the start,
    #   graph.outputs to the end); 2. walk the ops keeping a dict of live tensors: an op costs
    #   everything live + its output; drop tensors whose last reader ran; 3. "tinyengine": subtract
    #   min(in, out) for a depthwise conv whose input dies there, and apply the fused-residual
    #   saving described above (conv: y less; ADD: y and its output less).
    # HINT: graph.activations(op) skips the weights; graph.tensors[t].size is the element count.
    # EXAMPLE: the visible test's 3-op graph gives [768, 1024, 1536] under both rules.
    ### BEGIN SOLUTION
    last = {t: -1 for t in graph.inputs}
    for i, op in enumerate(graph.ops):
        last[op.output] = i
        for t in graph.activations(op):
            last[t] = i
    for t in graph.outputs:
        last[t] = len(graph.ops)
    readers = {}
    for op in graph.ops:
        for t in graph.activations(op):
            readers[t] = readers.get(t, 0) + 1
    saved = [0] * len(graph.ops)
    for i in range(1, len(graph.ops)):
        op, conv = graph.ops[i], graph.ops[i - 1]
        y = conv.output
        if rule == "tinyengine" and op.kind == "add" and conv.kind == "conv2d" and not graph.is_depthwise(conv) \
                and y in op.inputs:
            r = [t for t in op.inputs if t != y]
            if r and readers[y] == 1 and last[r[0]] == i and r[0] not in conv.inputs \
                    and graph.tensors[r[0]].size == graph.tensors[y].size:
                saved[i - 1] += graph.tensors[y].size
                saved[i] += graph.tensors[y].size + graph.tensors[op.output].size
    live = {t: graph.tensors[t].size for t in graph.inputs}
    result = []
    for i, op in enumerate(graph.ops):
        out = graph.tensors[op.output].size
        cost = sum(live.values()) + out - saved[i]
        x = op.inputs[0]
        if rule == "tinyengine" and graph.is_depthwise(op) and last[x] == i:
            cost -= min(live[x], out)
        result.append(cost)
        live[op.output] = out
        for t in [t for t in live if last[t] == i]:
            del live[t]
    return result
    ### END SOLUTION


# %% points=5 grade_id="live_bytes_tests"
tiny = Graph("tiny")
a = tiny.conv2d(tiny.add_input("input", (1, 8, 8, 4)), 8, 1, name="a")      # 8x8x4 -> 8x8x8
b = tiny.conv2d(a, 8, 3, groups=8, name="b")                                  # depthwise
tiny.outputs.append(tiny.add_op("add", "c", [a, b], {"act": None}))           # residual: a is held
with visible_tests("live_bytes"):
    assert live_bytes(tiny, "naive") == [12 * 64, 16 * 64, 24 * 64]
    assert live_bytes(tiny, "tinyengine") == [12 * 64, 16 * 64, 24 * 64]   # a is still needed: no in place
proj = tiny.conv2d(tiny.conv2d(tiny.outputs.pop(), 16, 1, name="e"), 8, 1, name="p")  # expand, project...
tiny.outputs.append(tiny.add_op("add", "s", ["c", proj], {"act": None}))   # ...and add to the residual c
with visible_tests("live_bytes"):
    assert live_bytes(tiny, "tinyengine")[3:] == [24 * 64, 24 * 64, 8 * 64]  # p writes c + p into c
### BEGIN HIDDEN TESTS
_r = checks.run("00_memory_wall", "live_bytes", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# Now the real thing: MobileNetV2 at width 1.0 and 224x224, under both rules.

# %%
# NBVAL_CHECK_OUTPUT
mbv2 = zoo.mobilenet_v2(1.0, 224).graph()
for rule in ("naive", "tinyengine"):
    per_op = or_reference(live_bytes)(mbv2, rule)
    worst = int(np.argmax(per_op))
    print(f"{rule:10s}: peak {max(per_op) // KB} kB at {mbv2.ops[worst].name}")
p = prof.profile(mbv2, "tinyengine")
print(f"MACs {p.macs / 1e6:.1f}M, params {p.params / 1e6:.2f}M, Flash {p.flash_bytes / KB:.0f} kB")

# %% [markdown]
# Expected: 1470 kB (naive) and 1372 kB (tinyengine), the figures of the MCUNetV2 paper, and
# 300.8M MACs.
#
# ## 4. Where the memory goes (1 point)
#
# Op names are hierarchical: `blocks.3.expand.conv` is in block `blocks.3`; `stem.conv` in
# `stem`; ResNet's `layer1.0.conv1` in `layer1.0`. A block's name is the op name up to and
# including its first all-digit part, or the first part when there is none.
#
# Write `block_peaks(names, sram)` that takes the op names and their live bytes and returns a
# dict from block name to that block's **peak** (largest value), in order of first appearance.

# %% solution=true grade_id="block_peaks"
def block_peaks(names, sram):
    """Peak live bytes per block, blocks named by the prefix up to the first numeric part."""
    # TODO: {block name: largest sram value among its ops}, blocks in order of first appearance.
    # APPROACH: for each (name, s): split the name on "."; cut after the first all-digit part (or
    #   after the first part when none); keep the max per block in a dict (dicts keep insertion order).
    # HINT: "3".isdigit() is True; next((i for ... if ...), default) finds the first match.
    # EXAMPLE: the visible test gives {"stem": 5, "blocks.0": 7, "head": 2}.
    ### BEGIN SOLUTION
    peaks = {}
    for name, s in zip(names, sram):
        parts = name.split(".")
        cut = next((i + 1 for i, p in enumerate(parts) if p.isdigit()), 1)
        block = ".".join(parts[:cut])
        peaks[block] = max(peaks.get(block, 0), s)
    return peaks
    ### END SOLUTION


# %% points=1 grade_id="block_peaks_tests"
with visible_tests("block_peaks"):
    assert block_peaks(["stem.conv", "blocks.0.depthwise.conv", "blocks.0.project.conv", "head.conv"],
                       [5, 7, 3, 2]) == {"stem": 5, "blocks.0": 7, "head": 2}
### BEGIN HIDDEN TESTS
_r = checks.run("00_memory_wall", "block_peaks", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %%
# NBVAL_CHECK_OUTPUT
peaks = or_reference(block_peaks)([op.name for op in mbv2.ops], or_reference(live_bytes)(mbv2, "tinyengine"))
values = np.array(list(peaks.values()))
print(f"{len(peaks)} blocks; largest block peak {values.max() // KB} kB, median {int(np.median(values)) // KB} kB "
      f"({values.max() / np.median(values):.1f}x)")
over = [b for b, v in peaks.items() if v > 320 * KB]
print(f"blocks over the STM32F746's 320 kB: {over}")
viz.block_memory(prof.profile(mbv2, "tinyengine"))
plt.show()

# %% [markdown]
# Only the first five blocks (the stem and the first four inverted-residual blocks, all at
# 112x112 or 56x56) break the budget; everything after fits with room to spare. This imbalance is
# what MCUNetV2 exploits: run just those first blocks **patch by patch** (Lab 03).
#
# ## 5. Smaller weights, bigger activations
#
# ResNet-18 has 3.4x more parameters than MobileNetV2, yet MobileNetV2 needs *more* SRAM.
# Reducing model size (Flash) does not reduce peak activation memory (SRAM).

# %%
# NBVAL_CHECK_OUTPUT
pair = [prof.profile(zoo.get("resnet18").graph()), prof.profile(mbv2)]
for q in pair:
    print(f"{q.model:9s} params {q.params / 1e6:5.2f}M  Flash {q.flash_bytes / KB / KB:5.2f} MB  "
          f"peak SRAM {q.peak_sram_bytes / KB:6.0f} kB")
viz.size_vs_activation(pair)
plt.show()

# %% [markdown]
# ## 6. What fits? (2 points)
#
# TinyNAS (Lab 04) chooses the input resolution and width so that the network fits. Write
# `largest_fitting_resolution(width, budget, rule)`: among the resolutions 48, 64, ..., 224
# (step 16), the **largest** at which MobileNetV2 with that `width` has a peak SRAM (under
# `rule`) of at most `budget` bytes; `None` when none fits. Use `zoo.mobilenet_v2(width, r).graph()`
# and your `live_bytes`.

# %% solution=true grade_id="largest_fitting_resolution"
def largest_fitting_resolution(width, budget, rule):
    """Largest resolution in 48..224 (step 16) whose MobileNetV2 peak SRAM fits `budget` bytes."""
    # TODO: the largest r in 48, 64, ..., 224 with max(live_bytes(MobileNetV2(width, r), rule)) <= budget.
    # APPROACH: loop over range(48, 225, 16), build zoo.mobilenet_v2(width, r).graph(), keep the
    #   last r that fits; None when none does.
    # HINT: the peak grows with r, but do not rely on it: test every resolution.
    # EXAMPLE: largest_fitting_resolution(0.35, 320 * 1024, "tinyengine") -> 144
    ### BEGIN SOLUTION
    best = None
    for r in range(48, 225, 16):
        if max(live_bytes(zoo.mobilenet_v2(width, r).graph(), rule)) <= budget:
            best = r
    return best
    ### END SOLUTION


# %% points=2 grade_id="largest_fitting_resolution_tests"
with visible_tests("largest_fitting_resolution"):
    assert largest_fitting_resolution(0.35, 320 * KB, "tinyengine") == 144
### BEGIN HIDDEN TESTS
_r = checks.run("00_memory_wall", "largest_fitting_resolution", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %%
# NBVAL_CHECK_OUTPUT
print("width  " + "  ".join(f"{m:>10s}" for m in prof.MCU_BUDGETS))
for width in (0.35, 0.5, 0.75, 1.0):
    row = [or_reference(largest_fitting_resolution)(width, sram, "tinyengine") for sram, _ in prof.MCU_BUDGETS.values()]
    print(f"{width:5.2f}  " + "  ".join(f"{str(r):>10s}" for r in row))
for classes in (1000, 2):
    flash = prof.profile(zoo.mobilenet_v2(0.35, 144, num_classes=classes).graph()).flash_bytes
    print(f"width 0.35, {classes:4d} classes: int8 weights {flash / KB:.0f} kB of Flash")

# %% [markdown]
# Layer by layer, even the STM32H743 (512 kB) cannot run a full-width MobileNetV2 above 128x128,
# and the STM32F746 stops at 144x144 even for width 0.35. Flash binds too: at width 0.35 the
# int8 weights with ImageNet's 1000-class head need 1654 kB, over the F746's 1 MB (the widget
# below shows that figure); most of it is the head, and with VWW's 2 classes (what MCUNet
# deploys) they need 403 kB. Then SRAM is the wall, not Flash.
#
# ## 7. Explore
#
# Move the sliders: width and resolution against the three microcontrollers' SRAM and Flash.
# (The widget needs a live kernel in JupyterLab; in a static page you see nothing here.)

# %%
from mcunet_lite.widgets import memory_explorer

memory_explorer("mbv2")

# %% [markdown]
# ## 8. Meet the data
#
# Every lab trains and tests on **Visual Wake Words** (VWW, Chowdhery et al. 2019): is there a
# person in the picture? It is the benchmark of the MCUNet papers' microcontroller results. The
# real set is built from COCO 2014 (`datasets/README.md` says how); offline, the kit draws a
# procedural stand-in from the same recipe: one scene description renders at any resolution,
# and the label comes from the person's *visible* area, exactly as VWW labels COCO images.
#
# Two label rules exist, and loaders tell you which one their data follows:

# %%
from mcunet_lite import data, scenes

for name, rule in data.RULES.items():
    print(f"{name:7s} {rule}")

# %% [markdown]
# Some scenes' annotations: the visible pixels of each person (occluders and image borders cut
# them), measured on a 96x96 id buffer, against the 0.5% threshold. Scenes 50 and 302 hold a
# person too small to count: VWW calls them "no person", and so does the stand-in.

# %%
# NBVAL_CHECK_OUTPUT
for index in (0, 1, 4, 45, 50, 302):
    scene = scenes.make_scene(seed=0, index=index, split="val")
    areas = [a["area"] / scenes.LABEL_RES ** 2 for a in scenes.scene_annotations(scene)]
    label = data.pyvww_label(scenes.scene_annotations(scene), scenes.LABEL_RES, scenes.LABEL_RES)
    shown = ", ".join(f"{100 * a:.2f}%" for a in areas) or "none"
    print(f"scene {index}: visible person area {shown:18s} -> {'person' if label else 'no person'}")

# %% [markdown]
# The same images at three input resolutions. Look at the small people: at 32x32 a person far
# away is a few pixels, and no network can find what the input does not contain. Resolution
# costs activation memory (sections 3 and 6), so MCUNet chooses width and resolution together.

# %%
viz.contact_sheet("synthetic", resolutions=(32, 64, 128), n=5);

# %% [markdown]
# ## What MCUNet does next
#
# You found the memory wall: peak activation memory, concentrated in the first blocks, not model
# size. Lab 01 makes the bytes real with **int8 arithmetic** exactly as TFLite Micro computes it;
# Lab 02 schedules where every tensor lives in a static arena, as TinyEngine does; Lab 03 runs
# the first blocks patch by patch (MCUNetV2) and cuts this lab's 1372 kB by about 8x.
