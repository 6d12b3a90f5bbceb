# %% [markdown]
# # Lab 01: int8 on a microcontroller
#
# Lab 00 counted one byte per activation. That byte is an **int8**: MCUNet (NeurIPS 2020) deploys
# every network with 8-bit integer weights and activations, and its inference engine TinyEngine
# (section 3.2), like TFLite Micro, computes with integers only. This lab builds that arithmetic
# from the ground up, exactly as TFLite Micro's reference kernels compute it, bit for bit, then
# quantizes a trained MobileNetV2, runs it in TFLite Micro and measures what int8 costs in
# accuracy.
#
# **Learning goals**
# 1. Why int8: 4x less Flash and SRAM than float32, and integer multiply-accumulates.
# 2. The affine scheme `real = scale * (q - zero_point)`: choose a tensor's scale and zero point;
#    see why weights get one scale per output channel.
# 3. Rescale without floats: a real multiplier as a 31-bit integer and a shift (TFLite's
#    `QuantizeMultiplier`), and TFLite's two rounding steps, bit for bit.
# 4. Turn a convolution's int32 accumulators into its int8 output (requantization), identical to
#    the kit's int8 executor and to TFLite Micro.
# 5. Quantize a trained network after training, export a `.tflite` file, run it in TFLite Micro,
#    and compare float and int8 accuracy.
#
# **Expected runtime**: about three minutes on a 2-core laptop CPU the first time (most of it section
# 5, which runs the int8 network on 2000 images, then caches the result), under a minute after that;
# the network is the course's trained one, shipped with the kit.
# **Points**: 10 (five exercises).
#
# **Expected figures** (a correct run; the book shows them): one conv layer's weights against
# the per-tensor int8 grid, the error of its narrowest channel per tensor and per channel, and
# every channel's error; printed: TFLite's roundings bit for bit, the exported `.tflite` run in
# TFLite Micro with zero differing bytes, float against int8 top-1.
#
# Write your code between the lines marked `# YOUR CODE HERE`; keep the function names. Each
# exercise says what to do (TODO), how (APPROACH), a HINT and the result of its visible example.
# **Run All works before you write anything**: an unfinished exercise's test cell says "not
# implemented yet", and the cells after it use the library's reference (with a NOTE) until your
# function works. Grade yourself any time with `mcunet-lite grade my-labs/01_int8.ipynb`
# (your copy from `mcunet-lite lab`).

# %%
# %matplotlib inline
import hashlib
import importlib.util
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import mcunet_lite
from mcunet_lite import assets, cache, data, int8ref, quant, safeio, scenes, tflite_io, train, zoo
from mcunet_lite import profile as prof
from mcunet_lite.from_torch import from_torch
from mcunet_lite.kit.scaffold import or_reference, visible_tests

KB = 1024
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
HAS_TFLM = importlib.util.find_spec("tflite_micro") is not None


def round_half_away(x):
    """C's round(): halves go away from zero (2.5 -> 3, -2.5 -> -3). TFLite rounds this way;
    numpy's np.round and Python's round() send halves to the even neighbour (2.5 -> 2)."""
    x = np.asarray(x, np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


# %% [markdown]
# ## 1. Why int8
#
# A float32 weight or activation takes 4 bytes; an int8 one takes 1. Both budgets of a
# microcontroller shrink by 4x: **Flash** holds the weights, **SRAM** the activations (Lab 00's
# peak). Integers are also what the processor computes fastest: a Cortex-M4 or M7 multiplies
# int8 values widened to 16 bits two at a time with one DSP instruction (`SMLAD`, measured in
# Lab 06), and many microcontrollers (Cortex-M0+, M3) have no floating-point unit at all.
#
# The two-class (person / no person) MobileNetV2s of Lab 00, against the STM32F746 (320 kB SRAM,
# 1 MB Flash):

# %%
# NBVAL_CHECK_OUTPUT
sram_budget, flash_budget = prof.MCU_BUDGETS["STM32F746"]
print(f"{'VWW MobileNetV2':22s} {'Flash fp32':>11s} {'Flash int8':>11s} {'SRAM fp32':>10s} {'SRAM int8':>10s}")
for width, resolution in ((0.35, 144), (1.0, 224)):
    p = prof.profile(zoo.mobilenet_v2(width, resolution, num_classes=2).graph())
    print(f"({width}, {resolution}){'':11s} {4 * p.params / KB:8.0f} kB {p.flash_bytes / KB:8.0f} kB "
          f"{4 * p.peak_sram_bytes / KB:7.0f} kB {p.peak_sram_bytes / KB:7.0f} kB")
print(f"STM32F746{'':13s} {flash_budget / KB:8.0f} kB {'':11s} {sram_budget / KB:7.0f} kB")

# %% [markdown]
# In float32 the (0.35, 144) network needs 1134 kB of SRAM and 1.5 MB of Flash: it fits neither
# budget. In int8 it fits both. (int8 Flash is a little over a quarter of float32's because
# every bias stays a 32-bit integer.)
#
# ### The affine scheme
#
# An int8 tensor stores integers `q` in [-128, 127] and two numbers shared by the whole tensor, a
# **scale** `S` (a positive float) and a **zero point** `Z` (an integer), with
#
# `real = S * (q - Z)`
#
# (Jacob et al., CVPR 2018, section 2.1; TFLite's int8 specification). The 256 values `q` are an
# evenly spaced grid of real numbers, `S` apart. `Z` is the integer that stands for real 0: zero
# must be exact, because zero padding and ReLU produce exact zeros everywhere.
#
# Activations get their range `[lo, hi]` from **calibration**: run the float network on sample
# images and record each tensor's smallest and largest value. To quantize a tensor with range
# `[lo, hi]`:
# - widen the range to include 0 (`lo = min(lo, 0)`, `hi = max(hi, 0)`);
# - `S = (hi - lo) / 255`, stored as `np.float32` (as a `.tflite` file stores it), but never below
#   `quant.MIN_SCALE` (a tensor that is always 0 still needs a positive scale);
# - `Z = round_half_away(-128 - lo / S)` computed with that float32 `S`, so that `lo` maps to
#   -128 and `hi` to 127; clip `Z` to [-128, 127].
#
# Write `choose_qparams(lo, hi)` returning `(scale, zero_point)`. Use `round_half_away` from the
# first cell: TFLite rounds halves away from zero, numpy's `np.round` does not.

# %% solution=true grade_id="choose_qparams"
def choose_qparams(lo, hi):
    """int8 (scale, zero point) of a tensor whose real values lie in [lo, hi]; real 0 exact."""
    # TODO: (scale, zero_point) as described above: float32 scale, int zero point in [-128, 127].
    # APPROACH: widen [lo, hi] to include 0; S = float32(max((hi - lo) / 255, quant.MIN_SCALE));
    #   Z = round_half_away(-128 - lo / S) with that float32 S, clipped to [-128, 127].
    # HINT: np.round rounds halves to even; use round_half_away.
    # EXAMPLE: choose_qparams(0.0, 6.0) -> (np.float32(6 / 255), -128)
    ### BEGIN SOLUTION
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = np.float32(max((hi - lo) / 255, quant.MIN_SCALE))
    zero_point = int(np.clip(round_half_away(-128 - lo / np.float64(scale)), -128, 127))
    return scale, zero_point
    ### END SOLUTION


# %% points=2 grade_id="choose_qparams_tests"
with visible_tests("choose_qparams"):
    assert choose_qparams(0.0, 6.0) == (np.float32(6 / 255), -128)     # ReLU6 output: real 0 is q = -128
    assert choose_qparams(0.5, 2.0) == choose_qparams(0.0, 2.0)         # the range is widened to include 0
    assert choose_qparams(-2.0, 6.0) == (np.float32(8 / 255), -64)
### BEGIN HIDDEN TESTS
from mcunet_lite.kit import checks
_r = checks.run("01_int8", "choose_qparams", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# The grid is `S` wide everywhere, so a value anywhere in the range is off by at most `S / 2`.
# With `[lo, hi] = [-1, 1]` that is 0.004:

# %%
# NBVAL_CHECK_OUTPUT
scale, zero_point = or_reference(choose_qparams)(-1.0, 1.0)
real = np.array([-1.0, -0.3, 0.0, 0.001, 0.5, 1.0])
q8 = np.clip(round_half_away(real / scale) + zero_point, -128, 127).astype(np.int8)
print(f"scale {scale:.6f}, zero point {zero_point}")
print("real      ", real)
print("q         ", q8)
print("S * (q - Z)", np.round(scale * (q8.astype(np.float64) - zero_point), 4))

# %% [markdown]
# ## 2. The network, and why weights get one scale per channel
#
# The rest of the lab uses a trained MobileNetV2 (width 0.35, 128x128 pixels, two classes): the
# course's `vww-classifier`, which ships with the kit (`mcunet_lite.assets`; `mcunet-lite assets
# list` says how it was made). It was trained by the kit's own command, printed below, on the
# synthetic Visual Wake Words images (`data.synthetic`: person / no person, made offline): 12
# epochs over 16,000 images, a CPU-hour or less. 128 pixels, because a person's face (eyes under hair) is
# what separates people from the look-alike negatives: at 64 pixels an eye is about three pixels
# across, and depthwise networks learn the task faster where it is larger.
#
# The validation images are a stream the training never saw (seed 1; training used seed 0).
# Set `TRAIN_LIVE = True` to train the network here instead, with the settings in `TRAIN` (a
# few minutes for the defaults; the trained network is cached under `cache.cache_dir()`, so only
# the first run trains). A few minutes of training give a network much closer to chance, which
# changes what section 5 shows.

# %%
TRAIN_LIVE = False
TRAIN = dict(width=0.35, resolution=128, n_train=3000, epochs=6, batch_size=32, lr=3e-3, difficulty=0.5, seed=0)
EVAL = dict(n_val=2000, n_calib=256, seed=assets.EVAL_SEED)   # fresh validation stream; calibration from training


def trained_network():
    """(network, metadata, training history): the course's trained one, or one trained here."""
    if not TRAIN_LIVE:
        print(f"the course's network, made by: {assets.entry('vww-classifier')['command']}")
        return train.load_checkpoint(assets.path("vww-classifier"))
    key = hashlib.sha256(json.dumps({**TRAIN, "data": scenes.VERSION}, sort_keys=True).encode()).hexdigest()[:12]
    checkpoint = cache.cache_dir() / f"lab01-mbv2-{key}.pt"
    if not checkpoint.exists():
        train.seed_everything(TRAIN["seed"])
        net = zoo.mobilenet_v2(TRAIN["width"], TRAIN["resolution"], num_classes=2).module()
        ds = data.synthetic(TRAIN["n_train"], TRAIN["resolution"], "train", TRAIN["seed"], TRAIN["difficulty"],
                            progress=False)
        val_ds = data.synthetic(500, TRAIN["resolution"], "val", TRAIN["seed"], TRAIN["difficulty"], progress=False)
        history = train.fit(net, ds, val_ds, TRAIN["epochs"], TRAIN["batch_size"], TRAIN["lr"], seed=TRAIN["seed"],
                            progress=False)
        meta = {"model": "mbv2", "width": TRAIN["width"], "resolution": TRAIN["resolution"], "num_classes": 2,
                "data": "synthetic", "lab01": TRAIN}
        train.save_checkpoint(checkpoint, net, meta, history)
    return train.load_checkpoint(checkpoint)


net, meta, history = trained_network()
RESOLUTION = meta["resolution"]
for rec in history:
    print(f"epoch {rec['epoch']}: train loss {rec['train_loss']:.3f}, validation top-1 {rec['val_accuracy']:.3f}")
train_ds = data.synthetic(EVAL["n_calib"], RESOLUTION, "train", 0, progress=False)
val_ds = data.synthetic(EVAL["n_val"], RESOLUTION, "val", EVAL["seed"], progress=False)
g = from_torch(net.eval(), RESOLUTION, name="mbv2-vww")


def nhwc(ds, n=None):
    """Images as the network sees them ((uint8 - 128) / 128, NHWC float32), and labels."""
    images, labels = ds.arrays(n)
    return data.to_tensor(images).permute(0, 2, 3, 1).numpy(), labels


# %% [markdown]
# `from_torch` has already **folded BatchNorm** into the convolutions: a BatchNorm after a conv
# multiplies output channel `c` by `gamma_c / sigma_c` and adds a constant, so it becomes part of
# that channel's weights and bias. The factor differs from channel to channel, and so does each
# channel's weight range. With **one scale for the whole tensor** (`max |w| / 127`), a channel
# whose weights are small lands on a handful of grid points. TFLite's int8 specification
# therefore gives conv weights **one scale per output channel**, symmetric (`Z = 0`, values in
# [-127, 127]); the cost is one multiplier per channel in the requantization of section 3.
# MobileNets lose much of their accuracy with one weight scale per tensor (Krishnamoorthi, 2018,
# "Quantizing deep convolutional networks for efficient inference: a whitepaper").
# `quant.quantize_weights` quantizes per channel; per tensor is the same with all channels
# flattened into one.
#
# Below: the 1x1 convolution of our network whose channel ranges differ the most. Left, all its
# weights and the per-tensor int8 grid; middle, the error of every weight of its narrowest channel
# (at most half a grid step, shaded); right, every channel's error.

# %%
def weight_error(w, q, scale):
    """Relative error ||w - S * q|| / ||w|| of every output channel."""
    diff = (w - q * scale.reshape(-1, *[1] * (w.ndim - 1))).reshape(len(w), -1)
    return np.linalg.norm(diff, axis=1) / np.maximum(np.linalg.norm(w.reshape(len(w), -1), axis=1), 1e-30)


def per_tensor(w):
    """Symmetric int8 with one scale for the whole tensor: (q, that scale repeated per channel)."""
    q, s = quant.quantize_weights(w.reshape(1, -1))
    return q.reshape(w.shape), np.full(len(w), s[0])


def channel_ranges(w):
    return np.abs(w.reshape(len(w), -1)).max(1)


# the 1x1 conv (many weights per channel) whose channel ranges differ the most
layer = max((op for op in g.ops if op.kind == "conv2d" and g.shape(op.inputs[1])[1:3] == (1, 1)),
            key=lambda op: (lambda r: r.max() / r.min())(channel_ranges(g.tensors[op.inputs[1]].data)))
w = g.tensors[layer.inputs[1]].data
(q_c, s_c), (q_t, s_t) = quant.quantize_weights(w), per_tensor(w)
err_c, err_t = weight_error(w, q_c, s_c), weight_error(w, q_t, s_t)
ranges = channel_ranges(w)
c = int(np.argmin(ranges))

fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 3.8))
ax1.hist(w.ravel(), bins=120, color="0.5")
ax1.plot(np.arange(-127, 128) * s_t[0], np.zeros(255), "|", color="tab:red", markersize=12,
         label="per-tensor int8 grid")
ax1.axvspan(-ranges[c], ranges[c], color="tab:blue", alpha=0.2, label=f"range of channel {c}")
ax1.set(title=f"{layer.name}: all weights", xlabel="weight", ylabel="count")
ax1.legend(fontsize=8)
for q_, s_, colour, label in ((q_t, s_t, "tab:red", "per tensor"), (q_c, s_c, "tab:blue", "per channel")):
    ax2.plot(w[c].ravel(), (w[c] - q_[c] * s_[c]).ravel(), ".", color=colour,
             label=f"{label}: {len(np.unique(q_[c]))} int8 values used")
    ax2.axhspan(-s_[c] / 2, s_[c] / 2, color=colour, alpha=0.1)
ax2.set(title=f"channel {c} (the narrowest): error of each weight", xlabel="weight", ylabel="w - S q")
ax2.legend(fontsize=8)
order = np.argsort(ranges)
ax3.semilogy(err_t[order], ".", color="tab:red", label="per tensor")
ax3.semilogy(err_c[order], ".", color="tab:blue", label="per channel")
ax3.set(title="error of every channel", xlabel="channel, narrowest range first", ylabel="||w - S q|| / ||w||")
ax3.legend(fontsize=8)
plt.tight_layout()
plt.show()
print(f"{layer.name}: channel ranges differ by {ranges.max() / ranges.min():.1f}x; relative error of the "
      f"worst channel {err_t.max():.4f} per tensor, {err_c.max():.4f} per channel")

# %% [markdown]
# Our network trained for minutes. Networks trained to convergence spread much more: the int8
# `.tflite` models made elsewhere that the course machines keep in `../shared/models` (MLPerf
# Tiny's and TinyEngine's MCUNet models) store every layer's per-channel scales, and their
# ratios tell how far apart the channels' ranges are.

# %%
MODELS = Path(mcunet_lite.__file__).resolve().parents[2] / "shared" / "models"
for path in sorted(MODELS.glob("*.tflite")) if MODELS.is_dir() else []:
    made_elsewhere = tflite_io.read(path)
    ratios = [float(s.max() / s.min()) for op in made_elsewhere.ops if op.kind == "conv2d"
              for s in [made_elsewhere.tensors[op.inputs[1]].quant.scale]]
    print(f"{path.name:40s} largest / smallest channel scale of a layer: median {np.median(ratios):.0f}x, "
          f"worst {max(ratios):.0e}x")
if not MODELS.is_dir():
    print(f"no real models at {MODELS} (only the course machines have ../shared/models)")

# %% [markdown]
# Per channel, every channel's error is about the same fraction of its own range (right, blue).
# Per tensor, the error grows as a channel's range shrinks: a channel 40 times narrower than the
# widest of its layer, typical of MLPerf Tiny's VWW model above, spans only about 3 grid steps on
# either side of 0, about 7 of the 255 int8 values.
#
# Activations keep one scale per tensor: an element-wise op such as ADD needs one scale across
# channels, and per-channel activation scales would put a multiplier inside the innermost loop of
# every kernel.
#
# ## 3. Rescaling with integers only
#
# An int8 convolution multiplies int8 weights `w` by int8 inputs `x` and sums the products in a
# 32-bit integer, the **accumulator**. With `real = S * (q - Z)` for every tensor, and weight
# zero points 0, output channel `c` is
#
# `real_out = S_in * S_w[c] * (acc + b_c)`, where `acc = sum_k w_k * (x_k - Z_in)`
#
# and the int32 bias `b_c` has scale `S_in * S_w[c]` so that it adds straight into the
# accumulator. The output integer is therefore
#
# `q_out = Z_out + M_c * (acc + b_c)`, with `M_c = S_in * S_w[c] / S_out`,
#
# rounded and clamped to int8. `M_c` is a real number, usually below 1. TinyEngine and TFLite
# Micro never touch a float at run time: `M_c` is stored as an integer `M0` of 31 bits and a
# power of two, `M = M0 * 2^(shift - 31)` (Jacob et al. 2018, section 2.2), and the product is
# computed with an integer multiply and shifts.
#
# ### `QuantizeMultiplier` (2 points)
#
# - Split `M` into a mantissa `m` in [0.5, 1) and an exponent `e` with `M = m * 2^e` (`np.frexp`).
# - `M0 = round_half_away(m * 2^31)`, an integer in [2^30, 2^31].
# - If rounding gave `M0 = 2^31` (it does not fit int32), halve it and add 1 to `e`.
# - If `e < -31` the multiplier is too small to matter: every bit would be shifted out; return
#   `M0 = 0, shift = 0` (and `M = 0` gives `(0, 0)` too).
# - `shift = e`.
#
# Write `quantize_multiplier(m)`: `m` is a numpy array of float64 multipliers (one per output
# channel); return `(M0, shift)`, two numpy integer arrays of the same shape.

# %% solution=true grade_id="quantize_multiplier"
def quantize_multiplier(m):
    """TFLite's QuantizeMultiplier: M ~ M0 * 2^(shift - 31) with M0 in [2^30, 2^31) (or 0)."""
    # TODO: (M0, shift) arrays with M ~ M0 * 2^(shift - 31), M0 in [2^30, 2^31), 0 for M = 0.
    # APPROACH: np.frexp splits M into a mantissa in [0.5, 1) and an exponent e; M0 =
    #   round_half_away(mantissa * 2^31); if that rounds up to 2^31, halve it and add 1 to e;
    #   exponents below -31 give (0, 0).
    # HINT: keep everything in int64 arrays; np.where handles the special cases element-wise.
    # EXAMPLE: quantize_multiplier(np.array([0.5, 0.0123, 3.0, 0.0])) ->
    #   ([1073741824, 1690499128, 1610612736, 0], [0, -6, 2, 0])
    ### BEGIN SOLUTION
    mantissa, e = np.frexp(np.asarray(m, np.float64))
    m0 = round_half_away(mantissa * 2.0 ** 31).astype(np.int64)
    e = e.astype(np.int64)
    full = m0 == 1 << 31
    m0, e = np.where(full, m0 // 2, m0), np.where(full, e + 1, e)
    tiny = e < -31
    return np.where(tiny, 0, m0), np.where(tiny, 0, e)
    ### END SOLUTION


# %% points=2 grade_id="quantize_multiplier_tests"
with visible_tests("quantize_multiplier"):
    m0, shift = quantize_multiplier(np.array([0.5, 0.0123, 3.0, 0.0]))
    assert m0.tolist() == [1073741824, 1690499128, 1610612736, 0] and shift.tolist() == [0, -6, 2, 0]
### BEGIN HIDDEN TESTS
_r = checks.run("01_int8", "quantize_multiplier", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# `M0` keeps 31 significant bits, so the stored multiplier is within one part in 2^31 of the real
# one (2^31 = 2147483648):

# %%
# NBVAL_CHECK_OUTPUT
m = np.array([0.0123, 0.7, 3e-5])
m0, shift = or_reference(quantize_multiplier)(m)
for real_m, a, b in zip(m, m0, shift):
    print(f"M = {real_m:<8g} M0 = {a:10d}  shift = {b:3d}  M0 * 2^(shift - 31) = {a * 2.0 ** (b - 31):.12g}")

# %% [markdown]
# ### Rounding right shift: `RoundingDivideByPOT` (2 points)
#
# Dividing by `2^e` is a right shift, `x >> e`. On a negative number an arithmetic shift rounds
# toward minus infinity (`-5 >> 1 == -3`, while -5 / 2 = -2.5), and on any number it drops the
# remainder instead of rounding it. TFLite rounds to the **nearest** integer, with **halves away
# from zero** (2.5 -> 3, -2.5 -> -3), using integer operations only: the bits that a shift drops
# are `x & (2^e - 1)`, always non-negative in two's complement (the remainder of the division
# rounded toward minus infinity). Round the shifted value up by one when that remainder is more
# than half of `2^e`; at exactly half, round up for positive `x` only.
#
# Write `rounding_divide_by_pot(x, exponent)`: `x` and `exponent` are numpy int64 arrays of the
# same shape, `x` holding int32 values and `exponent` values in 0..31; return an int64 array. No
# floats.

# %% solution=true grade_id="rounding_divide_by_pot"
def rounding_divide_by_pot(x, exponent):
    """x / 2^exponent rounded to nearest, halves away from zero (TFLite's RoundingDivideByPOT)."""
    # TODO: x / 2^exponent, element-wise, rounded to nearest with halves away from zero.
    # APPROACH: mask = 2^exponent - 1; remainder = x & mask; threshold = mask >> 1, plus 1 where
    #   x < 0; result = (x >> exponent) + (remainder > threshold).
    # HINT: work in np.int64; `>>` on a negative int64 rounds toward minus infinity.
    # EXAMPLE: rounding_divide_by_pot([5, -5, 6, -6, 7, 7], [1, 1, 2, 2, 1, 0]) -> [3, -3, 2, -2, 4, 7]
    ### BEGIN SOLUTION
    x, exponent = np.asarray(x, np.int64), np.asarray(exponent, np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)
    ### END SOLUTION


# %% points=2 grade_id="rounding_divide_by_pot_tests"
with visible_tests("rounding_divide_by_pot"):
    got = rounding_divide_by_pot(np.array([5, -5, 6, -6, 7, 7]), np.array([1, 1, 2, 2, 1, 0]))
    assert got.tolist() == [3, -3, 2, -2, 4, 7]
### BEGIN HIDDEN TESTS
_r = checks.run("01_int8", "rounding_divide_by_pot", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# ### The high multiply: `SaturatingRoundingDoublingHighMul` (2 points)
#
# `M0` is a fixed-point number: the integer `M0` stands for the real `M0 / 2^31` in [0.5, 1). The
# product of an int32 `a` and such a number is `a * b / 2^31`, rounded: the **high 32 bits of
# `2 * a * b`**, which is where the name comes from. TFLite's integer recipe:
# - `ab = a * b` in 64 bits;
# - `nudge = 2^30` if `ab >= 0`, else `1 - 2^30`;
# - result `= (ab + nudge) / 2^31`, the division **truncating toward zero** as C's `/` does
#   (numpy's `//` rounds toward minus infinity: `-7 // 2 == -4`, C gives -3);
# - the only product whose result does not fit int32 is `INT32_MIN * INT32_MIN` (the result
#   would be 2^31): it **saturates** to `INT32_MAX`.
#
# Write `saturating_rounding_doubling_high_mul(a, b)`: `a` and `b` are numpy int64 arrays of the
# same shape holding int32 values (their product fits int64); return an int64 array.

# %% solution=true grade_id="saturating_rounding_doubling_high_mul"
def saturating_rounding_doubling_high_mul(a, b):
    """Rounded a * b / 2^31 for int32 a, b (TFLite's SaturatingRoundingDoublingHighMul)."""
    # TODO: (a * b + nudge) / 2^31 truncated toward zero, nudge 2^30 (or 1 - 2^30 for a negative
    #   product); INT32_MAX for the one overflowing case a == b == INT32_MIN.
    # APPROACH: multiply in int64, add the nudge with np.where, divide by 2^31 truncating toward
    #   zero (shift the absolute value), then patch the overflow case.
    # HINT: C's division truncates toward zero; numpy's >> and // round toward minus infinity.
    # EXAMPLE: a = [1000, -1000, 3, -3, INT32_MIN], b = 2^30 (0.5) ... -> [500, -500, 2, -1, INT32_MAX]
    ### BEGIN SOLUTION
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    ab = a * b
    v = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    result = np.where(v >= 0, v >> 31, -((-v) >> 31))   # truncate toward zero, as C does
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, result)
    ### END SOLUTION


# %% points=2 grade_id="saturating_rounding_doubling_high_mul_tests"
with visible_tests("saturating_rounding_doubling_high_mul"):
    got = saturating_rounding_doubling_high_mul(np.array([1000, -1000, 3, -3, INT32_MIN]),
                                                np.array([1 << 30, 1 << 30, 1 << 30, 1 << 30, INT32_MIN]))
    assert got.tolist() == [500, -500, 2, -1, INT32_MAX]   # 1 << 30 stands for 0.5
### BEGIN HIDDEN TESTS
_r = checks.run("01_int8", "saturating_rounding_doubling_high_mul", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# Look at the halves: 1.5 became 2 and -1.5 became -1. This step rounds halves **up**, while
# `RoundingDivideByPOT` rounds them away from zero: two different roundings, and an engine must
# copy both to be bit-exact. Other int8 engines (XNNPACK, onnxruntime's `QLinearConv`, CMSIS-NN's
# optimised kernels) round some of these steps their own way and can be one step off TFLite
# Micro.
#
# ### Requantize a convolution's output (2 points)
#
# Now the whole step that ends every int8 conv, depthwise conv and fully-connected layer, for
# channel `c` (TFLite's `MultiplyByQuantizedMultiplier` and the clamp):
#
# 1. `v = acc + bias[c]`;
# 2. `left = max(shift[c], 0)`, `right = max(-shift[c], 0)`: a positive shift multiplies `v` by
#    `2^left` **before** the high multiply (exactly, no rounding), a negative one divides by
#    `2^right` **after** it, with rounding;
# 3. `v = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(v * 2^left, multiplier[c]), right)`;
# 4. `q = clip(v + out_zero_point, act_min, act_max)` as int8. The clamp is also the activation:
#    for a ReLU `act_min` is the output zero point (real 0), for ReLU6 `act_max` is the integer
#    that stands for 6 (`int8ref.activation_range` computes them).
#
# Write `requantize(acc, bias, multiplier, shift, out_zero_point, act_min, act_max)`: `acc` is an
# int64 array whose last axis is the output channel (int32 accumulators, e.g. shape `(N, H, W, C)`);
# `bias`, `multiplier` and `shift` are int64 arrays of `C` values; return the **int8** array of
# `acc`'s shape. Use your two functions above.

# %% solution=true grade_id="requantize"
def requantize(acc, bias, multiplier, shift, out_zero_point, act_min, act_max):
    """int32 accumulators -> int8 outputs: TFLite's per-channel MultiplyByQuantizedMultiplier, clamp."""
    # TODO: int8 outputs of int32 accumulators: add the bias, multiply by M0 * 2^(shift - 31) the
    #   TFLite way, add the output zero point, clamp to [act_min, act_max].
    # APPROACH: x = acc + bias (int64); left = max(shift, 0), right = max(-shift, 0); x = your
    #   saturating_rounding_doubling_high_mul(x * 2^left, multiplier); x = your
    #   rounding_divide_by_pot(x, right); clip(x + zero point) and cast to int8.
    # HINT: bias, multiplier and shift are per output channel: the last axis of acc.
    # EXAMPLE: the visible test's accumulators [[1000, -1000, 70000]] -> [[5, -15, 127]]
    ### BEGIN SOLUTION
    x = np.asarray(acc, np.int64) + np.asarray(bias, np.int64)
    shift = np.asarray(shift, np.int64)
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    x = saturating_rounding_doubling_high_mul(x * (1 << left), multiplier)
    x = rounding_divide_by_pot(x, np.broadcast_to(right, x.shape))
    return np.clip(x + out_zero_point, act_min, act_max).astype(np.int8)
    ### END SOLUTION


# %% points=2 grade_id="requantize_tests"
acc = np.array([[1000, -1000, 70000]])
args = (np.array([24, -24, 0]), np.array([1374389535, 1374389535, 1073741824]), np.array([-6, -6, 1]), -5)
with visible_tests("requantize"):
    assert requantize(acc, *args, -128, 127).tolist() == [[5, -15, 127]]   # M = 0.01, 0.01, 1.0
    assert requantize(acc, *args, -5, 127).dtype == np.int8
    assert requantize(acc, *args, -5, 127).tolist() == [[5, -5, 127]]      # ReLU: nothing below real 0
### BEGIN HIDDEN TESTS
_r = checks.run("01_int8", "requantize", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Put it together: quantize, export, run in TFLite Micro
#
# `quant.quantize` is post-training quantization, the scheme of this lab: it calibrates every
# activation's range on sample images (`choose_qparams`), gives conv weights per-channel scales,
# biases int32 scales, and folds ReLU6 into each output's clamp. The input needs no
# calibration: the network was trained on `(uint8 - 128) / 128`, which is exactly int8 with
# `S = 1/128` and `Z = 0`, so the camera's bytes minus 128 are the int8 input.
#
# First, your requantization inside the network: `int8ref` is the kit's int8 executor (numpy,
# bit-exact with TFLite Micro). For every 1x1 convolution (a matrix product over channels) we take
# its int8 input from `int8ref`, compute the int32 accumulators with numpy, and let your
# functions produce the output.

# %%
# NBVAL_CHECK_OUTPUT
calib, _ = nhwc(train_ds)
val, labels = nhwc(val_ds)
q = quant.quantize(g, calib, input_quant=(1 / 128, 0))
x_int8 = quant.quantize_input(q, val[:8])
env = int8ref.tensors(q, x_int8)
layers = checked = differ = 0
for op in q.ops:
    if op.kind != "conv2d" or op.attrs["groups"] != 1 or q.shape(op.inputs[1])[1:3] != (1, 1):
        continue
    x, wt, b, y = (q.tensors[n] for n in (*op.inputs, op.output))
    (s_in, z_in), (s_out, z_out) = int8ref.scale_zp(x.quant), int8ref.scale_zp(y.quant)
    acc = (env[x.name].astype(np.int64) - z_in) @ wt.data.reshape(len(wt.data), -1).T.astype(np.int64)
    m0, shift = or_reference(quantize_multiplier)(np.float64(s_in) * wt.quant.scale.astype(np.float64) / np.float64(s_out))
    mine = or_reference(requantize)(acc, b.data, m0, shift, z_out, *int8ref.activation_range(op.act, y.quant))
    layers, checked, differ = layers + 1, checked + mine.size, differ + int(np.sum(mine != env[y.name]))
print(f"{layers} pointwise convs on 8 images: {checked} int8 outputs, {differ} differ from int8ref")

# %% [markdown]
# Now the whole network in TFLite Micro, the interpreter that runs on microcontrollers (PyPI
# `tflite-micro`, built from its reference kernels). `tflite_io.to_bytes` writes our int8 graph
# as a `.tflite` flatbuffer, the file format TFLite Micro reads; we read it back and compare
# **every intermediate tensor** that TFLite Micro computes with `int8ref`'s.

# %%
# NBVAL_CHECK_OUTPUT
model_bytes = tflite_io.to_bytes(q)
back = tflite_io.from_bytes(model_bytes)
print(f".tflite file: {len(model_bytes) / KB:.0f} kB, {len(back.ops)} ops ({len(q.ops)} in our graph, "
      f"{sum(op.kind == 'pad' for op in back.ops)} PAD added); int8 weights and int32 biases "
      f"{prof.profile(q).flash_bytes / KB:.0f} kB (float32 weights: {4 * prof.profile(g).params / KB:.0f} kB)")
if HAS_TFLM:
    from tflite_micro import runtime
    index = back.meta["tflite_tensors"]
    tflm = runtime.Interpreter.from_bytes(model_bytes,
                                          intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    checked = differ = 0
    for x in quant.quantize_input(q, val[:8]):
        env = int8ref.tensors(back, x[None])
        tflm.set_input(x[None], 0)
        tflm.invoke()
        for op in back.ops:
            ref = tflm.GetTensor(index[op.output], 0)["tensor_data"]
            checked, differ = checked + ref.size, differ + int(np.sum(env[op.output] != ref))
        assert np.array_equal(tflm.get_output(0), int8ref.run(q, x[None]))
    print(f"TFLite Micro vs int8ref, the outputs of all {len(back.ops)} ops on 8 images: {checked} int8 values, "
          f"{differ} differ")
else:
    print("tflite-micro is not installed (pip install --pre tflite-micro): no TFLite Micro comparison")

# %% [markdown]
# The rest of the file is bookkeeping, mostly the per-channel scales and zero points (TFLite
# stores every zero point as a 64-bit integer, even those of symmetric weights, which are all 0).
# The PAD ops: the five stride-2 convolutions pad one pixel on every side, as PyTorch does.
# TFLite's `SAME` padding pads an even input 0 pixels before and 1 after, which would shift every
# output, so the writer adds the padding as explicit PAD ops (filled with the input's zero point,
# real 0).
#
# Zero differences: your requantization, the kit's executor and TFLite Micro compute the same
# bytes. This is what makes the rest of the course trustworthy: Lab 02 runs an int8 network inside
# a planned arena, Lab 03 patch by patch, Lab 06 as C code on an emulated STM32F746, and each is
# checked byte for byte against `int8ref`.
#
# ## 5. What int8 costs in accuracy
#
# The float network (`floatref`, the graph with folded BatchNorm) and its int8 version (`int8ref`)
# on the same 2000 fresh validation images. Both predict the class with the larger output;
# `top1_agreement` is how often they predict the same one. The int8 executor is the slow part
# (numpy, exact): it runs in two processes, about two minutes the first time; the result is
# cached under `cache.cache_dir()`, keyed by the int8 model's bytes and the images.

# %%
key = hashlib.sha256(tflite_io.to_bytes(q) + json.dumps({**EVAL, "data": scenes.VERSION}).encode()).hexdigest()[:16]
cached = cache.cache_dir() / f"lab01-float-vs-int8-{key}.json"
if cached.exists():
    r = json.loads(cached.read_text())
else:
    r = quant.float_vs_int8(g, q, val, labels, workers=2)
    safeio.write_atomic(cached, lambda tmp: tmp.write_text(json.dumps(r)))  # a reader never sees half of it
changed = round((1 - r["top1_agreement"]) * r["n"])
diff = r["int8_accuracy"] - r["float_accuracy"]
se = np.sqrt(r["float_accuracy"] * (1 - r["float_accuracy"]) / r["n"])
print(f"{r['n']} validation images; network trained {len(history)} epochs")
print(f"float top-1 {100 * r['float_accuracy']:.2f}%   int8 top-1 {100 * r['int8_accuracy']:.2f}%   "
      f"difference {100 * diff:+.2f} points")
print(f"int8 changed the prediction on {changed} of {r['n']} images; largest output difference "
      f"{r['max_abs_diff']:.4f} (real units)")
print(f"for scale: one image is {100 / r['n']:.2f} points; the standard error of either accuracy on "
      f"{r['n']} images is {100 * se:.2f} points")

# %% [markdown]
# The int8 network rounds every activation to its tensor's grid, layer after layer, so its
# outputs drift from the float ones by a few grid steps (the largest output difference above).
# A prediction changes only where the float network was nearly undecided between the two
# classes. A network that has learned its task decides most images by a wide margin, so int8
# changes few predictions, and the accuracy difference is the handful of changed images that
# went one way minus those that went the other: well under a point here, smaller than the
# sampling noise of either accuracy. That is why MCUNet can deploy every model in int8. A network still close
# to chance (`TRAIN_LIVE = True` with the short default training) has many undecided images, and
# int8 and float disagree on more of them. `benchmarks/int8_accuracy.py` also tries percentile
# calibration, which ignores rare outlier activations when choosing each range.
#
# ## What MCUNet does next
#
# Every activation is now one byte, and the bytes are exactly those a microcontroller computes.
# Lab 02 decides **where** those bytes live: TinyEngine's memory scheduler places every tensor in
# one static arena, reusing bytes as soon as a tensor dies, and runs an int8 network inside it.
