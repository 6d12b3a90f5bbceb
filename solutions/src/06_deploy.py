# %% [markdown]
# # Lab 06: Deploy to a microcontroller
#
# Labs 00 to 03 counted bytes in Python. This lab runs a Visual Wake Words network on a
# microcontroller, an emulated STM32F746 (Cortex-M7, 320 KB SRAM, 1 MB Flash: MCUNet's board),
# and checks every output byte against the Python int8 reference.
#
# MCUNet's inference engine, TinyEngine (MCUNet, NeurIPS 2020, section 3.2), does not ship an
# interpreter that reads a model file at run time, as TFLite Micro does. It **generates code**:
# every op becomes one call of a kernel with its constants baked in, the weights become `const`
# arrays that stay in Flash, and all activations live in one static arena at the offsets the
# memory scheduler chose (Lab 02), with depthwise convolutions running in place. Nothing is
# allocated at run time, and only the kernels the model uses are linked. The kit's `codegen` does
# the same, and `deploy` builds the C with `arm-none-eabi-gcc`, runs it on QEMU and compares it
# with `int8ref` (which is bit-exact with TFLite Micro's reference kernels).
#
# **Learning goals**
# 1. Read generated code: weights in Flash, one arena at the planned offsets, one call per op.
# 2. Build and run a model on the emulated STM32F746 and on the PC, bit-exact; count the
#    instructions per multiply-accumulate (MAC), and see what the Cortex-M DSP instructions buy.
# 3. Read the firmware's memory map: which sections take Flash and which take SRAM; compare the
#    arena and the kernel scratch with the scheduler's prediction.
# 4. Write TinyEngine's in-place depthwise convolution in C (MCUNet section 3.2), bit-exact with
#    `int8ref` on the emulated board, within an instruction budget, and compare it with the kit's
#    portable and DSP kernels.
# 5. Run the model patch by patch (MCUNetV2): a smaller arena for more MACs, and an input
#    resolution that does not fit layer by layer runs.
#
# **Needs** `arm-none-eabi-gcc`, `qemu-system-arm` and `gcc` (`make setup` installs them).
# **Expected runtime**: about a minute on a 2-core laptop CPU. **Points**: 10 (three exercises).
#
# **Expected figures** (a correct run; the book shows them): instructions per MAC of each conv
# kind, portable C against the DSP kernels; the firmware's Flash and SRAM as shares of the
# STM32F746's budget; your in-place depthwise kernel against the kit's portable and DSP kernels
# (instructions per MAC, about 11 against 21 and 7); arena and scratch of four builds, layer by
# layer and patch-based (the 176 px layer-by-layer build refused); printed `outputs identical to
# int8ref: True` lines.
#
# Write your code between the lines marked `# YOUR CODE HERE`; keep the function names. Each
# exercise says what to do (TODO), how (APPROACH), a HINT and the result of its visible example.
# **Run All works before you write anything**: an unfinished exercise's test cell says "not
# implemented yet", and the cells after it use the library's reference (with a NOTE) until your
# function works. Grade yourself any time with `mcunet-lite grade my-labs/06_deploy.ipynb`
# (your copy from `mcunet-lite lab`).

# %%
# %matplotlib inline
import random
import subprocess
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from mcunet_lite import boards, codegen, deploy, patch, quant, schedule, zoo
from mcunet_lite.kit import checks, lab06, mcu_harness
from mcunet_lite import profile as prof
from mcunet_lite.errors import UserError
from mcunet_lite.ir import Graph
from mcunet_lite.kit.scaffold import or_reference, visible_tests

KB = 1024
BOARD = boards.get("stm32f746")
print(deploy.toolchain_missing() or "arm-none-eabi-gcc, qemu-system-arm and gcc found")

# %% [markdown]
# ## 1. A Visual Wake Words model in int8
#
# The network: MobileNetV2 at width 0.35 and 96x96 pixels with two classes (person, no person),
# the size class of MCUNet's and MLPerf Tiny's VWW models. Its weights are **untrained**
# (PyTorch's random initialisation, with BatchNorm statistics of 16 synthetic VWW scenes):
# deployment does not care what the weights are, because the C program must compute exactly
# what `int8ref` computes for *any* weights. The same 16 scenes calibrate the post-training
# int8 quantization (per-channel weight scales, as in Lab 01).

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(0)
images = quant.calibration_images("synthetic", 16, 96)  # normalised NHWC float images
net = zoo.mobilenet_v2(0.35, 96, num_classes=2).module()
with torch.no_grad():
    net.train()(torch.from_numpy(images).permute(0, 3, 1, 2))  # BatchNorm statistics of these scenes
net.eval()
_, q = quant.from_module(net, 96, images, "vww-mbv2", input_quant=None, meta={"model": "mbv2-w0.35-r96"})
x = quant.quantize_input(q, images[:2])  # two int8 camera frames for the board
macs = sum(prof.op_macs(q, op) for op in q.ops)
params = sum(t.size for t in q.tensors.values() if t.const and t.dtype == "int8")
print(f"{len(q.ops)} ops, {params / 1e3:.0f}k int8 weights, {macs / 1e6:.2f}M MACs, input {x.shape[1:]} {x.dtype}")

# %% [markdown]
# ## 2. The generated C project
#
# `codegen.emit` turns the int8 graph into a C project: `model.c` and `model.h` for this model,
# plus the kit's kernels (`kernels.c` written for reading, `kernels_dsp.c` for Cortex-M DSP
# instructions). The kernels are the same for every model; everything model-specific is in
# `model.c`.

# %%
builds = tempfile.TemporaryDirectory(prefix="lab06-")  # removed when the kernel stops
WORK = Path(builds.name)
CACHE = WORK / "objs"  # compiled objects, reused by every build with the same flags
project = codegen.emit(q, schedule.plan(q))
for name, text in project.files.items():
    print(f"{name:14s} {len(text.splitlines()):7d} lines {len(text) / KB:9.1f} kB")

# %% [markdown]
# `model.c` is large because it holds every weight as a C initializer. Its first lines declare
# the arena `A`, the kernel scratch buffer `S` and the weights of the first conv. `static const`
# arrays go into the `.rodata` section, which the linker script places in Flash; the arena is a
# static array without initial values, so it goes into `.bss`, in SRAM. The `#if MCU_DSP` branch
# holds the same weights in the order the DSP kernels read them.

# %%
lines = project.files["model.c"].splitlines()
print("\n".join(ln for ln in lines if ln.startswith(("static int8_t A[", "static int8_t S["))))
print(next(ln for ln in lines if ln.startswith("static const int8_t W0[")))
print(f"arena {project.arena_bytes} B, kernel scratch {project.scratch_bytes} B, "
      f"weights and constants {project.const_bytes / KB:.0f} kB")

# %% [markdown]
# The body of `model_invoke` is one kernel call per op. Every activation is a pointer into the
# arena at the offset the memory scheduler (Lab 02) planned: the calls below use exactly the
# offsets of `schedule.plan`, printed next to them. The depthwise conv of the first block writes
# its output at its input's offset: it runs in place, channel by channel, through the one-channel
# scratch plane `S` (MCUNet section 3.2, "in-place depth-wise convolution").

# %%
# NBVAL_CHECK_OUTPUT
plan = schedule.plan(q)
body = lines[lines.index(next(ln for ln in lines if ln.startswith("void model_invoke"))) + 2:]
print("\n".join(ln for ln in body[:12] if "MARK" not in ln))
print()
for op in plan.graph.ops[:4]:
    t = plan.tensors[op.output]
    print(f"{op.output:26s} {str(plan.graph.shape(op.output)):18s} {t.size:6d} B at A + {t.offset:<6d} "
          f"live during ops {t.first_op}..{t.last_op}")
assert project.arena_bytes == plan.arena_bytes

# %% [markdown]
# ## 3. On the emulated board, and on the PC
#
# `deploy.deploy` writes the project with a test harness and the input frames, compiles it for
# the board (`-mcpu=cortex-m7 -mthumb -mfloat-abi=hard -O2`, a startup file and a linker script
# whose memory regions are exactly the STM32F746's 1 MB of Flash and 320 KB of SRAM), runs it on
# QEMU and compares every output with `int8ref`. The STM32F746 runs on QEMU's `mps2-an500`
# machine (a Cortex-M7). QEMU has no timing model, so the harness reports **instructions
# executed**, counted by a QEMU plugin between marks the harness sets around each op: repeatable
# to the instruction, but not cycles (a real M7 issues up to two instructions per cycle and waits
# on Flash).
#
# The same project also builds with the PC's `gcc`, here with AddressSanitizer and UBSan, which
# stop the program at the first out-of-bounds access or undefined operation: a fast check that
# the kernels stay inside the arena.

# %%
# NBVAL_CHECK_OUTPUT
dsp = deploy.deploy(q, "stm32f746", "qemu", inputs=x, out=WORK / "f746", cache=CACHE)
host = deploy.deploy(q, "stm32f746", "host", inputs=x, out=WORK / "host", cache=CACHE, sanitize=True)
for r in (dsp, host):
    print(f"{r.emulator:4s}: outputs identical to int8ref on {r.n_inputs} frames: {r.outputs_match}, "
          f"arena {r.arena_bytes} B")

# %%
print(dsp.text())

# %% [markdown]
# A MAC is one int8 multiply and one add into an int32 accumulator. Written plainly in C, each MAC
# takes two loads, a multiply-accumulate and loop overhead. The Cortex-M4 and M7 have DSP
# instructions that do better: `SXTB16` sign-extends two int8 values into two 16-bit halves, and
# `SMLAD` multiplies two pairs of halves and adds both products to an accumulator, two MACs in one
# instruction. So 0.5 instructions per MAC is the floor. `kernels_dsp.c` uses them (through gcc's
# `<arm_acle.h>` intrinsics) and requantizes in 32 bits where that is provably exact. The same
# model with the portable kernels (`dsp=False`):

# %%
portable = deploy.deploy(q, "stm32f746", "qemu", inputs=x, out=WORK / "f746-portable", cache=CACHE, dsp=False)
print(portable.text())


def per_kind(report):
    """{layer kind: (MACs, instructions)} summed over the report's layers."""
    kinds = {}
    for layer in report.layers:
        macs, instr = kinds.get(layer["kind"], (0, 0))
        kinds[layer["kind"]] = (macs + layer["macs"], instr + layer["instructions"])
    return kinds


kinds_dsp, kinds_portable = per_kind(dsp), per_kind(portable)
print(f"\n{'layer kind':18s} {'MACs':>10s} {'portable':>9s} {'DSP':>6s}  (instructions per MAC)")
for kind, (m, instr) in kinds_dsp.items():
    if m:
        print(f"{kind:18s} {m:10,d} {kinds_portable[kind][1] / m:9.2f} {instr / m:6.2f}")
other = sum(instr for m, instr in kinds_dsp.values() if not m)
print(f"{'no MACs (add, ...)':18s} {'':10s} {'':9s} {other:,d} instructions in the DSP build")

# %%
conv_kinds = [k for k, (m, _) in kinds_dsp.items() if m]
pos = np.arange(len(conv_kinds))
fig, ax = plt.subplots(figsize=(8, 3.2))
ax.bar(pos - 0.2, [kinds_portable[k][1] / kinds_portable[k][0] for k in conv_kinds], 0.4, label="portable C")
ax.bar(pos + 0.2, [kinds_dsp[k][1] / kinds_dsp[k][0] for k in conv_kinds], 0.4, label="DSP (SMLAD)")
ax.axhline(0.5, color="k", ls=":", lw=1, label="floor: 2 MACs per SMLAD")
ax.set_xticks(pos, conv_kinds)
ax.set_ylabel("instructions per MAC")
ax.set_title(f"{dsp.model} on the emulated {BOARD.name}")
ax.legend()
plt.show()

# %% [markdown]
# The DSP kernels need about 6x fewer instructions than the plain C ones (here about 2.3 against
# 14 per MAC, with gcc 12 and QEMU 7.2), and both builds compute identical outputs. Wide
# pointwise convolutions (at least 32 input channels) come closest to the floor, at about 1.5:
# each output sums a long row of weights, so the fixed cost of an output (its requantization,
# the loop set-up) is shared by many MACs. A depthwise 3x3 output has only 9 MACs to share that
# cost, and stays near 4; narrow pointwise convs and the first conv (27 MACs per output) sit
# between.
#
# ## 4. The memory map
#
# Where did the bytes go? The linker places every *section* of the program into a memory region;
# `arm-none-eabi-size -A` lists them:

# %%
elf = WORK / "f746" / "fw.elf"
listing = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True).stdout
print(listing.replace(str(elf), "fw.elf"))
sections = {f[0]: int(f[1]) for f in (ln.split() for ln in listing.splitlines()) if len(f) == 3 and f[0][0] == "."}

# %% [markdown]
# What each one is, in the kit's linker script:
#
# | section | holds | Flash | SRAM |
# |---|---|---|---|
# | `.text` | code, and the read-only data (`.rodata`: weights, layer constants) | yes | |
# | `.ARM.exidx` | stack-unwinding table (may be missing) | yes | |
# | `.inputs` | the test frames; a device gets them from its camera, so they do not count | (yes) | |
# | `.data` | variables with initial values: the values are stored in Flash and copied to SRAM at start-up | yes | yes |
# | `.bss` | variables without initial values, zeroed at start-up: the arena, the scratch | | yes |
# | `.stack` | the least stack the linker reserves; the stack actually used is measured at run time | | |
# | `.comment`, `.ARM.attributes`, `.debug_*` | notes for tools, never loaded on the board | | |
#
# ### Exercise: Flash and SRAM from the sections (2 points)
#
# Write `memory_map(sections, stack_bytes)`: given the section sizes (a dict as above; a section
# may be missing) and the stack bytes the program was measured to use, return
# `(flash_bytes, sram_bytes)` as the table says: Flash is what must be programmed into the chip
# for the model (without the test frames), SRAM is what the program occupies while it runs.

# %% solution=true grade_id="memory_map"
def memory_map(sections, stack_bytes):
    """(Flash bytes, SRAM bytes) of a firmware from its section sizes and its measured stack."""
    # TODO: (flash_bytes, sram_bytes) from the table above.
    # APPROACH: Flash = the loaded sections that must be programmed (.text, .ARM.exidx, .data's
    #   initial values); SRAM = .data + .bss + the measured stack.
    # HINT: sections.get(name, 0) handles a missing section; .inputs and .stack count for neither.
    # EXAMPLE: memory_map({".text": 1000, ".bss": 500}, 100) -> (1000, 600)
    ### BEGIN SOLUTION
    data = sections.get(".data", 0)
    flash = sections.get(".text", 0) + sections.get(".ARM.exidx", 0) + data
    return flash, data + sections.get(".bss", 0) + stack_bytes
    ### END SOLUTION


# %% points=2 grade_id="memory_map_tests"
example = {".text": 517968, ".inputs": 55296, ".data": 8, ".bss": 131952, ".stack": 2048, ".comment": 38}
with visible_tests("memory_map"):
    assert memory_map(example, 652) == (517976, 132612)
    assert memory_map({".text": 1000, ".bss": 500}, 100) == (1000, 600)
### BEGIN HIDDEN TESTS
_r = checks.run("06_deploy", "memory_map", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# Your figures for this firmware, next to the ones `deploy` reported (they must agree):

# %%
flash, sram = or_reference(memory_map)(sections, dsp.stack_bytes)
print(f"Flash {flash} B ({flash / KB:.1f} kB of {BOARD.flash_bytes // KB} kB); deploy says {dsp.flash_bytes} B")
print(f"SRAM  {sram} B ({sram / KB:.1f} kB of {BOARD.sram_bytes // KB} kB), with {dsp.stack_bytes} B of stack; "
      f"deploy says {dsp.sram_bytes} B")

# %% [markdown]
# Inside the sections are *symbols*. `arm-none-eabi-nm -S --size-sort` lists them with their
# sizes; the largest ones of this firmware:

# %%
symbols = subprocess.run(["arm-none-eabi-nm", "-S", "--size-sort", str(elf)], capture_output=True, text=True,
                         check=True).stdout.split("\n")
size_of = {f[3]: int(f[1], 16) for f in (ln.split() for ln in symbols) if len(f) == 4}
for name, size in sorted(size_of.items(), key=lambda kv: -kv[1])[:6]:
    what = {"A": "the activation arena"}.get(name)
    if what is None and name[0] in "WQ" and name[1:].isdigit():
        op = plan.graph.ops[int(name[1:])]
        what = (f"{'weights' if name[0] == 'W' else 'DSP requantization records'} of op {name[1:]} '{op.name}' "
                f"{plan.graph.shape(op.inputs[1])}")
    print(f"{name:5s} {size:7d} B  {what}")

# %% [markdown]
# The biggest constant is the 112 -> 1280 pointwise conv of the head, 143 kB of int8 weights; the
# arena is the biggest variable. The arena symbol `A` has exactly the size the scheduler
# predicted, and it sits in `.bss`:

# %%
# NBVAL_CHECK_OUTPUT
print(f"A: {size_of['A']} B in the ELF, schedule.plan predicted {plan.arena_bytes} B")

# %% [markdown]
# ### Exercise: the kernel scratch buffer (2 points)
#
# Besides the arena, `.bss` holds `S`, the kernels' scratch buffer. One buffer serves every op, so
# it must be as large as the largest need of any op (in the kit, as in TinyEngine and CMSIS-NN):
#
# - an **in-place depthwise conv** (its `(input, output)` pair is in `pairs`) copies one input
#   channel at a time into a padded plane: `(h + pt + pb) * (w + pl + pr)` bytes, where `h, w` are
#   its input's height and width and `(pt, pb, pl, pr) = op.attrs["pads"]`. This is the price of
#   running in place: one channel of scratch instead of a whole second tensor.
# - a depthwise conv that does **not** run in place reads its input directly: no scratch;
# - any other conv (`op.kind == "conv2d"`, including pointwise) builds an im2col buffer of two
#   output positions' input windows in int16: `2 * kh * kw * cin_per_group * 2` bytes, with
#   `(oc, kh, kw, cin_per_group) = graph.shape(op.inputs[1])` (OHWI weights);
# - every other op (fully connected, ADD, pooling, ...) needs none.
#
# Write `scratch_bytes(graph, pairs)` returning the scratch buffer's size in bytes (0 when no op
# needs any). `graph.is_depthwise(op)` tells a depthwise conv.

# %% solution=true grade_id="scratch_bytes"
def scratch_bytes(graph, pairs):
    """Bytes of the kernels' shared scratch buffer: the largest need of any op."""
    # TODO: the largest scratch need of any op, by the three rules above (0 when none needs any).
    # APPROACH: for every conv2d: read (h, w) of its input, (kh, kw, cin) of its weight and its
    #   pads; a non-depthwise conv needs 2 * kh * kw * cin * 2 bytes, an in-place depthwise conv
    #   its padded plane; keep the maximum.
    # HINT: a depthwise conv is in place when (op.inputs[0], op.output) is in `pairs`.
    # EXAMPLE: the visible test: 144 with the depthwise in place, 32 without
    ### BEGIN SOLUTION
    need = 0
    for op in graph.ops:
        if op.kind != "conv2d":
            continue
        _, h, w, _ = graph.shape(op.inputs[0])
        _, kh, kw, cin = graph.shape(op.inputs[1])
        pt, pb, pl, pr = op.attrs["pads"]
        if not graph.is_depthwise(op):
            need = max(need, 2 * kh * kw * cin * 2)
        elif (op.inputs[0], op.output) in pairs:
            need = max(need, (h + pt + pb) * (w + pl + pr))
    return need
    ### END SOLUTION


# %% points=2 grade_id="scratch_bytes_tests"
tiny = Graph("tiny")
dw = tiny.conv2d(tiny.add_input("input", (1, 10, 10, 8)), 8, 3, groups=8, name="dw")  # depthwise 3x3, pad 1
tiny.outputs.append(tiny.conv2d(dw, 16, 1, name="pw"))  # pointwise 8 -> 16
with visible_tests("scratch_bytes"):
    assert scratch_bytes(tiny, [("input", "dw")]) == 144  # the padded 12 x 12 plane of the in-place depthwise
    assert scratch_bytes(tiny, []) == 32                  # not in place: the pointwise conv's 2 x 8 int16 values
### BEGIN HIDDEN TESTS
_r = checks.run("06_deploy", "scratch_bytes", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %%
# NBVAL_CHECK_OUTPUT
print(f"S: {size_of['S']} B in the ELF, scratch_bytes predicts {or_reference(scratch_bytes)(plan.graph, plan.pairs)} B")

# %%
other_bss = sections[".bss"] - size_of["A"] - size_of["S"]
print(f".bss = arena + scratch + {other_bss} B of other variables (harness, C library)")

# %% [markdown]
# So the scheduler predicts the firmware's SRAM to within a few hundred bytes: arena plus scratch
# plus stack, and a little for the harness and the C library. The picture against the board's
# budget (weights and constants measured as the read-only symbols of `model.o`):

# %%
model_o = subprocess.run(["arm-none-eabi-nm", "-S", str(WORK / "f746" / "obj" / "model.o")], capture_output=True,
                         text=True, check=True).stdout.split("\n")
constants = sum(int(f[1], 16) for f in (ln.split() for ln in model_o) if len(f) == 4 and f[2] in "rR")
flash_parts = {"weights and layer constants": constants, "code and the rest": flash - constants}
sram_parts = {"arena": size_of["A"], "kernel scratch": size_of["S"], "stack (measured)": dsp.stack_bytes,
              "other .data / .bss": sram - size_of["A"] - size_of["S"] - dsp.stack_bytes}
print(f"weights and layer constants: {constants} B in model.o; codegen counted {project.const_bytes} B of "
      "weight and requantization arrays (the rest: each layer's parameter structs)")
fig, ax = plt.subplots(figsize=(9, 2.6))
for row, (parts, budget) in enumerate([(flash_parts, BOARD.flash_bytes), (sram_parts, BOARD.sram_bytes)]):
    left = 0
    for label, size in parts.items():
        ax.barh(row, size / budget * 100, left=left, label=f"{label}: {size / KB:.1f} kB")
        left += size / budget * 100
    ax.text(left + 1, row, f"{left:.0f}% of {budget // KB} kB", va="center")
ax.set_yticks([0, 1], ["Flash", "SRAM"])
ax.set_xlim(0, 100)
ax.set_xlabel(f"% of the {BOARD.name}'s budget")
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=3, fontsize=8)
ax.invert_yaxis()
plt.show()

# %% [markdown]
# About half the Flash and 40% of the SRAM. MCUNet's point (section 3.1) is that neither is a
# reason to stop here: TinyNAS would grow the network (width, resolution, kernel sizes) until
# both budgets are used (Lab 04).
#
# ## 5. Your kernel on the board: in-place depthwise convolution (6 points)
#
# TinyEngine (MCUNet, NeurIPS 2020, section 3.2) owes its speed and its small SRAM to a handful of
# kernel techniques: **in-place depthwise convolution** (the output overwrites the input, so a
# depthwise layer needs one tensor of activation memory instead of two), **specialisation** (a
# kernel per kernel size and stride, with the sizes known to the compiler), **loop unrolling**
# and **SIMD** (`SMLAD`), and **im2col** for pointwise convs (section 3 above). Here you write the
# first of them in C, run it on the emulated STM32F746 inside real int8 layers, and compare it
# with the kit's kernels.
#
# **Why in place works.** A depthwise conv computes output channel `c` from input channel `c`
# only. The kernel copies input channel `c` into a *plane* of scratch, one channel of
# `(h + pt + pb) x (w + pl + pr)` bytes whose border holds the input zero point `Z_in` (the value a
# padded position reads, as in Lab 01), then computes every output of channel `c` from the plane
# and writes it over channel `c` of the tensor. In NHWC every output byte of channel `c` lands on
# a byte of channel `c`, whose values are already safe in the plane; no other channel is touched.
# Writing an output straight over the input while computing from it would destroy inputs that
# later outputs of the same channel still need.
#
# **Your function** replaces the kit's `mcu_depthwise_inplace` (it is linked in its place,
# `codegen.override_kernels`):
#
# ```c
# void mcu_depthwise_inplace(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y,
#                            int8_t *scratch);
# ```
#
# - `p` (`kernels.h`): `c` channels, kernel `kh x kw`, strides `sh, sw`; `weight[(c * kh + ky) * kw + kx]`
#   (OHWI with one input channel per group); `bias[c]` with the input zero point already folded in
#   (`b - Z_in * sum(w)`: sum `w * x` over the raw int8 inputs, padded taps reading `Z_in`);
#   `m0[c]`, `shift[c]` (per-channel requantization); `zp_in`, `zp_out`, `act_min`, `act_max`.
# - `g`: the input region is `h x w` pixels whose rows are `x_pitch` pixels apart, padded by `pt, pb,
#   pl, pr`; the output is `oh x ow` pixels with rows `y_pitch` pixels apart (a patch writes into a
#   wider tensor: `y_pitch > ow`). Pixel `(iy, ix)`, channel `c` is `x[(iy * x_pitch + ix) * p->c + c]`.
# - `y` equals `x` (in place), or starts before it (a patch's region), or lies elsewhere (a patch
#   writing into the stage output); `scratch` has room for exactly one padded plane.
# - Each output: `acc = bias[c] + sum of w * plane` over the window at `(oy * sh, ox * sw)`, then
#   `clamp(zp_out + MultiplyByQuantizedMultiplier(acc, m0[c], shift[c]), act_min, act_max)`, the two
#   roundings of Lab 01 (`mcu_mbqm` of `kernels.h` computes it; your own inline version is faster).
#
# **Grading.** `depthwise_c()` returns your C source. The check links it into the firmware of four
# fresh random layers (new ones every grading run): MobileNetV2 blocks with a 3x3 depthwise conv at
# stride 1, one at stride 2 (symmetric or TensorFlow's SAME padding), a 5x5 or 7x7 one, and a
# first stage run patch by patch (Lab 03: regions with a halo, padding only at the image border,
# outputs into a wider tensor). It runs each on the emulated STM32F746 and compares every output
# byte with `int8ref`, then counts the instructions your kernel's calls executed per MAC of each
# layer: their mean over the four layers must stay within **`lab06.BUDGET` = 14 instructions per
# MAC**. The kit's portable kernel (`kernels.c`, written for reading) is exact but needs about 21;
# its DSP kernel about 6 to 8.
# A hanging kernel is stopped after 10 s. Your kernel may include `<stdint.h>`, `<string.h>`,
# `<arm_acle.h>` (for `__smlad`, `__sxtb16`) and `"kernels.h"`, and call `mcu_mbqm`, `memset`,
# `memcpy` and `memmove`; a source that calls the kit's kernels or holds their bodies scores 0.
# `mcu_harness.run_kernel(source, graph)` runs the same check on one graph of your choice.
#
# ```python
# def depthwise_c():
#     return r"""
# void mcu_depthwise_inplace(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y,
#                            int8_t *scratch)
# {
#     ...
# }
# """
# ```

# %% solution=true grade_id="depthwise_c"
def depthwise_c():
    """C source defining the in-place depthwise kernel `mcu_depthwise_inplace` (see above)."""
    # TODO: return C source defining mcu_depthwise_inplace, bit-exact with int8ref and within the budget.
    # APPROACH: memset the plane to zp_in once; then per channel c: copy channel c of the h x w region
    #   into the plane's interior (at row pt, column pl), and compute every output of channel c from
    #   the plane (window at oy * sh, ox * sw), requantize and write it at y[(oy * y_pitch + ox) * c_total + c].
    # HINT: calling mcu_mbqm costs about 30 instructions per output more than the same arithmetic
    #   inline (3 to 4 per MAC of a 3x3): write the requantization as a static inline function, read a
    #   channel's constants once, and give 3x3 a loop of its own with its nine weights in local variables.
    # EXAMPLE: the visible test: exact on a 3x3 stride-1 block, about 10 instructions per MAC
    ### BEGIN SOLUTION
    return r"""
#include <string.h>

/* clamp(Z_out + MultiplyByQuantizedMultiplier(acc, M0, shift)) inline (Lab 01's two roundings):
 * SRDHM of acc * 2^left and M0 in 64 bits, then RoundingDivideByPOT by `right`. */
static inline int8_t requant(int32_t acc, int32_t m0, int32_t left, int32_t right, int32_t zp, int32_t lo,
                             int32_t hi) {
    int64_t ab = (int64_t)acc * left * m0;
    int32_t v = (int32_t)((ab + (ab >= 0 ? (1LL << 30) : 1 - (1LL << 30))) / (1LL << 31));
    int32_t mask = (int32_t)((1u << right) - 1), threshold = (mask >> 1) + (v < 0);
    v = (v >> right) + ((v & mask) > threshold) + zp;
    return (int8_t)(v < lo ? lo : v > hi ? hi : v);
}

/* The requantization constants of channel c, read once per channel (left = 2^max(shift, 0)). */
typedef struct {
    int32_t bias, m0, left, right, zp, lo, hi;
} rq_t;

static rq_t constants(const mcu_conv_t *p, int c) {
    int32_t shift = p->shift[c];
    rq_t q = {p->bias[c], p->m0[c], 1 << (shift > 0 ? shift : 0), shift > 0 ? 0 : -shift, p->zp_out, p->act_min,
              p->act_max};
    return q;
}

/* Channel c of the input region into the interior of the padded plane (the border keeps Z_in). */
static void fill(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int c, int8_t *plane, int pw) {
    const int C = p->c;
    for (int iy = 0; iy < g->h; iy++) {
        const int8_t *src = x + (int32_t)iy * g->x_pitch * C + c;
        int8_t *dst = plane + (int32_t)(iy + g->pt) * pw + g->pl;
        for (int ix = 0; ix < g->w; ix++, src += C) dst[ix] = *src;
    }
}

/* 3x3, MCUNet's most common kernel: nine weights in registers, three row pointers, no tap loop.
 * Every output of channel c goes over channel c of the input (rows y_pitch pixels apart). */
static void channel3x3(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *plane, int pw, int c, int8_t *y) {
    const int8_t *w = p->weight + 9 * c;
    const int32_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6], w7 = w[7], w8 = w[8];
    const int32_t sw = p->sw, C = p->c;
    const rq_t q = constants(p, c);
    for (int oy = 0; oy < g->oh; oy++) {
        const int8_t *r0 = plane + (int32_t)oy * p->sh * pw, *r1 = r0 + pw, *r2 = r1 + pw;
        int8_t *out = y + (int32_t)oy * g->y_pitch * C + c;
        for (int ox = 0; ox < g->ow; ox++, r0 += sw, r1 += sw, r2 += sw, out += C) {
            int32_t acc = q.bias + w0 * r0[0] + w1 * r0[1] + w2 * r0[2] + w3 * r1[0] + w4 * r1[1] + w5 * r1[2]
                          + w6 * r2[0] + w7 * r2[1] + w8 * r2[2];
            *out = requant(acc, q.m0, q.left, q.right, q.zp, q.lo, q.hi);
        }
    }
}

/* Any other kernel size: the window's rows one after another. */
static void channel_any(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *plane, int pw, int c, int8_t *y) {
    const int kh = p->kh, kw = p->kw, C = p->c;
    const int8_t *w = p->weight + (int32_t)kh * kw * c;
    const rq_t q = constants(p, c);
    for (int oy = 0; oy < g->oh; oy++) {
        int8_t *out = y + (int32_t)oy * g->y_pitch * C + c;
        for (int ox = 0; ox < g->ow; ox++, out += C) {
            const int8_t *row = plane + (int32_t)oy * p->sh * pw + ox * p->sw, *wk = w;
            int32_t acc = q.bias;
            for (int ky = 0; ky < kh; ky++, row += pw, wk += kw)
                for (int kx = 0; kx < kw; kx++) acc += wk[kx] * row[kx];
            *out = requant(acc, q.m0, q.left, q.right, q.zp, q.lo, q.hi);
        }
    }
}

/* In-place DEPTHWISE_CONV_2D (MCUNet section 3.2): one padded one-channel plane of scratch; channel c
 * is copied into it before output channel c overwrites it, and no other channel is touched. */
void mcu_depthwise_inplace(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y, int8_t *scratch) {
    const int pw = g->w + g->pl + g->pr, ph = g->h + g->pt + g->pb;
    memset(scratch, p->zp_in, (size_t)pw * ph);  /* the border: padded positions read Z_in */
    for (int c = 0; c < p->c; c++) {
        fill(p, g, x, c, scratch, pw);
        if (p->kh == 3 && p->kw == 3) channel3x3(p, g, scratch, pw, c, y);
        else channel_any(p, g, scratch, pw, c, y);
    }
}
"""
    ### END SOLUTION


# %% points=6 grade_id="depthwise_c_tests"
block = lab06.mbconv_graph(random.Random(0), 3, 1)  # expand, depthwise 3x3 stride 1 (in place), project
with visible_tests("depthwise_c"):
    mine = mcu_harness.run_kernel(depthwise_c(), block)
    print(f"{block.shape('dw')[1:]} depthwise output: identical to int8ref: {mine.outputs_match} "
          f"{mine.first_difference}({mine.per_mac:.2f} instructions per MAC, budget {lab06.BUDGET})")
    assert mine.outputs_match and mine.per_mac <= lab06.BUDGET
### BEGIN HIDDEN TESTS
_r = checks.run("06_deploy", "depthwise_c", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# Your kernel against the kit's two on the graded kind of layers (the layers of grading seed 0),
# each on the emulated STM32F746: the portable kernel of `kernels.c` and the DSP kernel of
# `kernels_dsp.c` (`SMLAD` on pairs of taps, a 32-bit requantization the emitter proves exact).

# %%
my_c = or_reference(depthwise_c)()
kernels = {"yours": (my_c, False), "kit, portable C": (None, False), "kit, DSP": (None, True)}
figures = {name: [] for name in kernels}
print(f"{'layer':32s} {'MACs':>7s}" + "".join(f" {name:>16s}" for name in kernels) + "   (instructions per MAC)")
for label, g, pp, xs in lab06.depthwise_layers(random.Random("0:depthwise_c")):
    runs = {name: mcu_harness.run_kernel(src, g, pp, xs, dsp=d, work=WORK / "dw") for name, (src, d) in kernels.items()}
    for name, r in runs.items():
        figures[name].append(r)
    print(f"{label:32s} {runs['yours'].macs:7d}" + "".join(
        f" {r.per_mac:13.2f} {'ok' if r.outputs_match else 'NO'}" for r in runs.values()))
total = {name: sum(r.per_mac for r in rs) / len(rs) for name, rs in figures.items()}  # what the grader scores
print(f"{'mean of the four':32s} {'':7s}" + "".join(f" {v:16.2f}" for v in total.values()) + f"   budget {lab06.BUDGET}")

# %%
fig, ax = plt.subplots(figsize=(8, 3))
ax.bar(list(total), list(total.values()), color=["C2", "C0", "C1"])
ax.axhline(lab06.BUDGET, color="r", ls="--", label=f"budget ({lab06.BUDGET})")
ax.axhline(0.5, color="k", ls=":", lw=1, label="floor: 2 MACs per SMLAD")
ax.set_ylabel("instructions per MAC (mean of four layers)")
ax.set_title("in-place depthwise kernels on the emulated STM32F746")
ax.legend()
plt.show()

# %% [markdown]
# Now the whole VWW model with your kernel: the portable build (`dsp=False`, the constants your
# kernel reads) runs every in-place depthwise conv through it.

# %%
# NBVAL_CHECK_OUTPUT
mine_model = deploy.deploy(q, "stm32f746", "qemu", inputs=x, out=WORK / "mine-f746", cache=CACHE, dsp=False,
                           overrides={"mcu_depthwise_inplace": my_c})
print(mine_model.notes[0])
print(f"your mcu_depthwise_inplace, emulated {mine_model.board}: outputs identical to int8ref: "
      f"{mine_model.outputs_match}")

# %%
kinds_mine = per_kind(mine_model)
for label, kinds in (("yours", kinds_mine), ("kit, portable C", kinds_portable), ("kit, DSP", kinds_dsp)):
    m, instr = kinds["depthwise"]
    print(f"depthwise layers of {dsp.model}, {label:15s}: {instr / m:5.2f} instructions per MAC")

# %% [markdown]
# Where do the instructions go? Per output of a 3x3 channel, nine loads of the plane and nine
# multiply-adds are the arithmetic; the requantization (a 64-bit multiply, two roundings, the
# clamp) and the loop bookkeeping come on top, and copying the channel into the plane costs a
# load and a store per input byte. Calling the kit's 64-bit `mcu_mbqm` for each output instead of
# inlining the same arithmetic costs about 30 more instructions per output. The DSP kernel goes further on each front: `SMLAD`
# does two MACs at once on sign-extended pairs, neighbouring outputs share the words they load,
# and its requantization is one `SMMLAR` and two shifts on constants the emitter precomputed per
# channel. Exactness is not negotiable in any of them: each variant above is compared byte for
# byte with `int8ref`.
#
# ## 6. Patch by patch (MCUNetV2)
#
# Lab 03 planned MCUNetV2's patch-based inference (MCUNetV2, NeurIPS 2021, section 3.1): the
# first stage of the network runs on one spatial patch at a time, so only one patch's tensors
# (plus the stage's output) are in SRAM. The emitter turns a patch plan into a loop over patches,
# each op running on its patch's region with its own padding. The same model with the stage
# ending after block 4, in 3x3 patches, on the emulated board:

# %%
# NBVAL_CHECK_OUTPUT
split = patch.split_after_block(q, 4)
pp = patch.plan(q, split, 3)
by_patch = deploy.deploy(q, "stm32f746", "qemu", inputs=x, patch_plan=pp, out=WORK / "patch", cache=CACHE)
print(f"patch stage: ops 0..{split} ('{q.ops[split].name}'), 3x3 patches of input {pp.input_patch}")
print(f"{'':14s} {'arena':>9s} {'MACs':>12s}  identical to int8ref")
for label, r in (("layer by layer", dsp), ("patch based", by_patch)):
    print(f"{label:14s} {r.arena_bytes:9d} {r.macs:12,d}  {r.outputs_match}")
assert by_patch.arena_bytes == pp.peak_sram_bytes

# %%
for label, r in (("layer by layer", dsp), ("patch based", by_patch)):
    print(f"{label:14s}: SRAM {r.sram_bytes / KB:6.1f} kB, {r.instructions:12,d} instructions, "
          f"{r.instructions_per_mac:.2f} per MAC")

# %% [markdown]
# The arena shrinks about 4x, for 36% more MACs: neighbouring patches recompute their overlapping
# halos (Lab 03), and small patches make the kernels' fixed costs per call count more, so the
# instructions per MAC rise too. At 96x96 the model fitted anyway. At a higher resolution it does
# not: the same weights at 176x176 (a fully convolutional network takes any input size; the
# calibration is redone at the new size). Layer by layer, `deploy` refuses it before linking;
# patch by patch, it runs.

# %%
# NBVAL_CHECK_OUTPUT
images176 = quant.calibration_images("synthetic", 16, 176)
_, q176 = quant.from_module(net, 176, images176, "vww-mbv2-176", input_quant=None,
                           meta={"model": "mbv2-w0.35-r176"})
x176 = quant.quantize_input(q176, images176[:1])
try:
    deploy.deploy(q176, "stm32f746", "qemu", inputs=x176, out=WORK / "176", cache=CACHE)
except UserError as e:
    print("layer by layer:", e)
layer176 = codegen.emit(q176, schedule.plan(q176))
pp176 = patch.plan(q176, patch.split_after_block(q176, 4), 3)
by_patch176 = deploy.deploy(q176, "stm32f746", "qemu", inputs=x176, patch_plan=pp176, out=WORK / "patch176",
                            cache=CACHE)
print(f"patch based: arena {by_patch176.arena_bytes} B, outputs identical to int8ref: {by_patch176.outputs_match}")

# %%
rows = [("96 px, layer", dsp.arena_bytes, dsp.scratch_bytes), ("96 px, patch", by_patch.arena_bytes,
                                                                by_patch.scratch_bytes),
        ("176 px, layer", layer176.arena_bytes, layer176.scratch_bytes),
        ("176 px, patch", by_patch176.arena_bytes, by_patch176.scratch_bytes)]
fig, ax = plt.subplots(figsize=(8, 3))
pos = np.arange(len(rows))
ax.bar(pos, [a / KB for _, a, _ in rows], label="arena")
ax.bar(pos, [s / KB for _, _, s in rows], bottom=[a / KB for _, a, _ in rows], label="kernel scratch")
ax.axhline(BOARD.sram_bytes / KB, color="r", ls="--", label=f"{BOARD.name} SRAM ({BOARD.sram_bytes // KB} kB)")
ax.set_xticks(pos, [label for label, _, _ in rows])
ax.set_ylabel("kB")
ax.legend()
ax.set_title("refused: 176 px layer by layer; the other three ran on the emulated board")
plt.show()
print(f"176 px patch based: {by_patch176.instructions:,d} instructions for {by_patch176.macs:,d} MACs "
      f"({100 * (by_patch176.macs / by_patch176.model_macs - 1):+.0f}% MACs for the halos)")

# %% [markdown]
# ## What you have seen
#
# The network left Python: its weights are `const` arrays in Flash, its activations live in one
# static arena exactly where the scheduler put them, the kernels' scratch is the size a few lines
# of arithmetic predict, and every output on the emulated STM32F746 equals the int8 reference bit
# for bit, also with your in-place depthwise kernel. The instruction counts showed why TinyEngine
# specialises kernels: unrolling and inline requantization make your C cheaper than the kit's
# plain loops, and the DSP instructions make the same arithmetic several times cheaper again. And
# patch-based inference traded MACs for SRAM on the board itself, turning a model that does not
# fit into one that runs.
#
# `mcunet-lite deploy MODEL --board stm32f746 --emulator qemu --json` does all of this from the
# command line, for the zoo models and for `.tflite` files.

# %%
builds.cleanup()  # this lab's builds (about 50 MB); a cell above run again rebuilds what it needs
