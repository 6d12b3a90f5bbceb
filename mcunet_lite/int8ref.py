"""int8 reference executor: the TFLite int8 arithmetic contract in numpy, bit-exact with TFLite Micro.

Each op kind has a kernel on plain arrays (`conv2d`, `linear`, `add`, `avgpool`, `maxpool`, `mean`,
`softmax`, `pad`, `quantize`, `dequantize`, `resize_nearest`) that a lab can call directly, and
`run_op` applies one Graph op to its input arrays, reading scales and zero points from the graph's
tensors; `run` executes a whole graph op by op. The memory scheduler and the patch-based executor
(MCUNetV2 section 3.1) run ops one at a time through `run_op`. The parameter helpers
(`activation_range`, `conv_multipliers`, `add_params`, `mean_params`, `softmax_params`) derive the
integer constants of each op, the ones a C emitter bakes into its kernels.

Accumulators are exact: int8 products are summed in float64, which represents every integer below
2^53, so BLAS matrix products give the same int32 sums as the C loops. Rescaling goes through
`fixedpoint`, as TFLite's reference kernels do (DESIGN.md section 4).
"""
from __future__ import annotations

import numpy as np

from . import fixedpoint as fp
from .errors import UserError
from .ir import Graph, Op, Quant

Pads = tuple[int, int, int, int]


# ------------------------------------------------------------------------------ parameters
def scale_zp(q: Quant | None, name: str = "") -> tuple[np.float32, int]:
    """(scale, zero point) of a per-tensor quantized tensor; the scale stays float32 as in .tflite."""
    if q is None:
        raise UserError(f"tensor '{name}' has no quantization parameters; quantize the graph first")
    return np.float32(np.ravel(q.scale)[0]), int(np.ravel(q.zero_point)[0])


def activation_range(act: str | None, q: Quant) -> tuple[int, int]:
    """CalculateActivationRangeQuantized: ReLU / ReLU6 folded into the int8 clamp of the output."""
    scale, zp = scale_zp(q)

    def quant(f: float) -> int:
        return zp + int(fp.round_half_away(np.float32(f) / scale))  # float32 division, as TFLite

    lo, hi = -128, 127
    if act in ("relu", "relu6"):
        lo = max(lo, quant(0.0))
    if act == "relu6":
        hi = min(hi, quant(6.0))
    return lo, hi


def conv_multipliers(s_in, s_w, s_out) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel (M0, shift) of M_c = S_in * S_w[c] / S_out, computed in double as TFLite."""
    m = np.float64(s_in) * np.asarray(s_w, np.float64).reshape(-1) / np.float64(s_out)
    return fp.quantize_multiplier(m)


def requantize(acc: np.ndarray, m0, shift, zp_out: int, lo: int, hi: int) -> np.ndarray:
    """int32 accumulator -> int8: `clamp(Z_out + MBQM(acc, M0, shift), lo, hi)` per channel (last axis)."""
    return np.clip(fp.multiply_by_quantized_multiplier(acc, m0, shift) + zp_out, lo, hi).astype(np.int8)


# ----------------------------------------------------------------------------------- kernels
def _windows(x: np.ndarray, kh: int, kw: int, stride: tuple[int, int]) -> np.ndarray:
    """Sliding windows (N, OH, OW, C, kh, kw) of an already padded NHWC array."""
    v = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    return v[:, ::stride[0], ::stride[1]]


def _pad_hw(x: np.ndarray, pads: Pads, value) -> np.ndarray:
    pt, pb, pl, pr = pads
    return np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=value)


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, zp_in: int, zp_out: int, m0, shift,
           stride: tuple[int, int], pads: Pads, groups: int, lo: int = -128, hi: int = 127) -> np.ndarray:
    """CONV_2D / DEPTHWISE_CONV_2D: sum(w * (x - Z_in)) + b per output channel, then requantize.

    `w` is OHWI (out, kh, kw, in/groups); depthwise is groups == in channels. Padded positions hold
    Z_in, so they add nothing after the offset (DESIGN.md section 4).
    """
    o, kh, kw, cg = w.shape
    xp = _pad_hw(x.astype(np.float64) - zp_in, pads, 0.0)
    n, oh, ow = x.shape[0], (xp.shape[1] - kh) // stride[0] + 1, (xp.shape[2] - kw) // stride[1] + 1
    wf = w.astype(np.float64)
    if groups == 1:  # im2col: one matrix product over (kh, kw, in)
        cols = _windows(xp, kh, kw, stride)[:, :oh, :ow].transpose(0, 1, 2, 4, 5, 3)
        acc = cols.reshape(n * oh * ow, -1) @ wf.reshape(o, -1).T
    else:  # grouped / depthwise: accumulate one kernel tap at a time
        acc = np.zeros((n, oh, ow, groups, o // groups))
        wg = wf.reshape(groups, o // groups, kh, kw, cg)
        for i in range(kh):
            for j in range(kw):
                tap = xp[:, i:i + stride[0] * (oh - 1) + 1:stride[0], j:j + stride[1] * (ow - 1) + 1:stride[1]]
                acc += np.einsum("nhwgc,goc->nhwgo", tap.reshape(n, oh, ow, groups, cg), wg[:, :, i, j])
    acc = acc.reshape(n, oh, ow, o).astype(np.int64) + b
    return requantize(acc, m0, shift, zp_out, lo, hi)


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray, zp_in: int, zp_out: int, m0, shift,
           lo: int = -128, hi: int = 127) -> np.ndarray:
    """FULLY_CONNECTED: (N, in) x (out, in) weights, the same requantization as conv2d."""
    acc = ((x.astype(np.float64) - zp_in) @ w.astype(np.float64).T).astype(np.int64) + b
    return requantize(acc, m0, shift, zp_out, lo, hi)


ADD_LEFT_SHIFT = 20  # int8 ADD lifts both inputs by 2^20 before rescaling them (TFLite reference)


def add_params(qa: Quant, qb: Quant, qo: Quant) -> tuple[tuple, tuple, tuple]:
    """(M0, shift) of ADD's three rescalings: S_a and S_b to the common scale 2*max(S_a, S_b), and the
    sum to S_out (with the 2^-20 of the left shift folded in)."""
    (sa, _), (sb, _), (so, _) = scale_zp(qa), scale_zp(qb), scale_zp(qo)
    twice_max = 2 * np.float64(max(sa, sb))
    return (fp.quantize_multiplier(np.float64(sa) / twice_max), fp.quantize_multiplier(np.float64(sb) / twice_max),
            fp.quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * np.float64(so))))


def add(a: np.ndarray, b: np.ndarray, qa: Quant, qb: Quant, qo: Quant, lo: int = -128, hi: int = 127) -> np.ndarray:
    """ADD: both inputs are shifted left 20 bits, rescaled to a common scale 2*max(S_a, S_b), summed and
    requantized to the output (TFLite's reference integer add)."""
    ma, mb, mo = add_params(qa, qb, qo)
    xa = fp.multiply_by_quantized_multiplier((a.astype(np.int64) - scale_zp(qa)[1]) << ADD_LEFT_SHIFT, *ma)
    xb = fp.multiply_by_quantized_multiplier((b.astype(np.int64) - scale_zp(qb)[1]) << ADD_LEFT_SHIFT, *mb)
    return np.clip(fp.multiply_by_quantized_multiplier(xa + xb, *mo) + scale_zp(qo)[1], lo, hi).astype(np.int8)


def _round_div(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Integer division rounding halves away from zero, as the reference average pool does."""
    q = (np.abs(total) + count // 2) // count
    return np.where(total > 0, q, -q)


def avgpool(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], pads: Pads,
            lo: int = -128, hi: int = 127) -> np.ndarray:
    """AVERAGE_POOL_2D on raw int8 values (input and output share scale and zero point); the
    average is over the window's positions inside the input, padding excluded."""
    sums = _windows(_pad_hw(x.astype(np.int64), pads, 0), *kernel, stride).sum(axis=(4, 5))
    ones = np.ones((1, *x.shape[1:3], 1), np.int64)
    counts = _windows(_pad_hw(ones, pads, 0), *kernel, stride).sum(axis=(4, 5))
    return np.clip(_round_div(sums, counts), lo, hi).astype(np.int8)


def maxpool(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], pads: Pads,
            lo: int = -128, hi: int = 127) -> np.ndarray:
    """MAX_POOL_2D over the window's positions inside the input, then the activation clamp."""
    xp = _pad_hw(x.astype(np.int16), pads, -129)
    return np.clip(_windows(xp, *kernel, stride).max(axis=(4, 5)), lo, hi).astype(np.int8)


def mean_params(qi: Quant, qo: Quant, count: int) -> tuple[int, int]:
    """(M0, shift) of MEAN over `count` elements: S_in / S_out with 1/count folded in, M0 shifted left
    by floor(log2(count)) (at most 32, and at most 31 + shift) and divided by count, truncating."""
    m0, shift = (int(v) for v in fp.quantize_multiplier(np.float64(scale_zp(qi)[0]) / np.float64(scale_zp(qo)[0])))
    s = min(count.bit_length() - 1, 32, 31 + shift)
    return (m0 << s) // count, shift - s


def mean(x: np.ndarray, axes: tuple[int, ...], keepdims: bool, qi: Quant, qo: Quant) -> np.ndarray:
    """MEAN (QuantizedMeanOrSum): sum(x - Z_in) over `axes`, rescaled by S_in / S_out / count."""
    count = int(np.prod([x.shape[a] for a in axes]))
    m0, shift = mean_params(qi, qo, count)
    total = x.astype(np.int64).sum(axis=tuple(axes), keepdims=keepdims) - scale_zp(qi)[1] * count
    return np.clip(fp.multiply_by_quantized_multiplier(total, m0, shift) + scale_zp(qo)[1], -128, 127).astype(np.int8)


SOFTMAX_DIFF_BITS, SOFTMAX_ACCUM_BITS = 5, 12  # Q5.26 input differences, Q12.19 sum of exponentials


def softmax_params(scale_in: float, beta: float = 1.0) -> tuple[int, int, int]:
    """(M0, left shift, diff_min) of int8 SOFTMAX: beta * S_in scaled to Q5.26 (capped at 2^31 - 1),
    and the most negative difference to the row maximum whose exponential still counts."""
    real = min(np.float64(beta) * np.float64(scale_in) * (1 << (31 - SOFTMAX_DIFF_BITS)), (1 << 31) - 1.0)
    m0, left = (int(v) for v in fp.quantize_multiplier(real))
    radius = np.floor(((1 << SOFTMAX_DIFF_BITS) - 1) * (1 << (31 - SOFTMAX_DIFF_BITS)) / (1 << left))
    return m0, left, -int(radius)


def softmax(x: np.ndarray, scale_in: float, beta: float = 1.0) -> np.ndarray:
    """SOFTMAX over the last axis, int8 in, int8 out with scale 1/256 and zero point -128.

    Differences to the row maximum are rescaled to Q5.26, exponentiated in fixed point, summed in
    Q12.19 and multiplied by the fixed-point reciprocal of the sum (gemmlowp; TFLite reference).
    """
    m0, left, diff_min = softmax_params(scale_in, beta)
    diff = x.astype(np.int64) - x.max(axis=-1, keepdims=True)
    valid = diff >= diff_min
    scaled = fp.saturating_rounding_doubling_high_mul(np.where(valid, diff, 0) << left, m0)
    exps = fp.exp_on_negative_values(scaled, SOFTMAX_DIFF_BITS)
    total = np.where(valid, fp.rounding_divide_by_pot(exps, SOFTMAX_ACCUM_BITS), 0).sum(axis=-1, keepdims=True)
    headroom = fp.count_leading_zeros32(total)
    recip = fp.one_over_one_plus_x_for_x_in_0_1((total << headroom) - (1 << 31))
    out = fp.rounding_divide_by_pot(fp.saturating_rounding_doubling_high_mul(recip, exps),
                                    SOFTMAX_ACCUM_BITS - headroom + 31 - 8) - 128
    return np.where(valid, np.clip(out, -128, 127), -128).astype(np.int8)


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """QUANTIZE float -> int8: round(x / S) + Z (float32 division, halves away from zero), clamped."""
    r = fp.round_half_away(np.asarray(x, np.float32) / np.float32(scale))
    return np.clip(np.clip(r, -2.0 ** 31, 2.0 ** 31 - 1) + zero_point, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """DEQUANTIZE int8 -> float32: S * (q - Z) in double, rounded to float32."""
    return (np.float64(scale) * (q.astype(np.int64) - zero_point)).astype(np.float32)


def pad(x: np.ndarray, paddings, value: int) -> np.ndarray:
    """PAD with the output zero point, i.e. with real 0."""
    return np.pad(x, paddings, constant_values=value)


def nearest_index(n_out: int, n_in: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """GetNearestNeighbor: source index of each output row/column, in float32 as TFLite computes it."""
    if align_corners and n_out > 1:
        scale = np.float32(n_in - 1) / np.float32(n_out - 1)
    else:
        scale = np.float32(n_in) / np.float32(n_out)
    v = (np.arange(n_out, dtype=np.float32) + np.float32(0.5 if half_pixel_centers else 0.0)) * scale
    idx = np.minimum((fp.round_half_away(v) if align_corners else np.floor(v)).astype(np.int64), n_in - 1)
    return np.maximum(idx, 0) if half_pixel_centers else idx


def resize_nearest(x: np.ndarray, size: tuple[int, int], align_corners: bool = False,
                   half_pixel_centers: bool = False) -> np.ndarray:
    """RESIZE_NEAREST_NEIGHBOR of an NHWC array to `size` (height, width)."""
    rows = nearest_index(size[0], x.shape[1], align_corners, half_pixel_centers)
    cols = nearest_index(size[1], x.shape[2], align_corners, half_pixel_centers)
    return x[:, rows][:, :, cols]


# ------------------------------------------------------------------------------- graph ops
def _conv_or_linear(g: Graph, op: Op, xs: list[np.ndarray]) -> np.ndarray:
    """conv2d / linear op: per-channel multipliers from the tensors' scales, clamp from the activation."""
    x, w, b = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.inputs[2]]
    y = g.tensors[op.output]
    (s_in, z_in), (s_out, z_out) = scale_zp(x.quant, x.name), scale_zp(y.quant, y.name)
    m0, shift = conv_multipliers(s_in, w.quant.scale, s_out)
    lo, hi = activation_range(op.act, y.quant)
    bias = b.data.astype(np.int64)
    if op.kind == "linear":
        return linear(xs[0], w.data, bias, z_in, z_out, m0, shift, lo, hi)
    a = op.attrs
    return conv2d(xs[0], w.data, bias, z_in, z_out, m0, shift, a["stride"], a["pads"], a["groups"], lo, hi)


KINDS = ("conv2d", "linear", "add", "avgpool", "maxpool", "mean", "softmax", "pad", "reshape", "transpose",
         "resize_nearest", "quantize", "dequantize")


def run_op(g: Graph, op: Op, xs: list[np.ndarray]) -> np.ndarray:
    """Apply one op of an int8 graph to its activation inputs `xs`; returns its output array.

    Scales and zero points come from the op's tensors in `g`; fused activations become the clamp.
    """
    a, q_out = op.attrs, g.tensors[op.output].quant
    q_in = [g.tensors[n].quant for n in g.activations(op)]
    if op.kind in ("conv2d", "linear"):
        return _conv_or_linear(g, op, xs)
    if op.kind in ("avgpool", "maxpool"):
        pool = avgpool if op.kind == "avgpool" else maxpool
        return pool(xs[0], a["kernel"], a["stride"], a["pads"], *activation_range(op.act, q_out))
    if op.kind == "add":
        return add(xs[0], xs[1], q_in[0], q_in[1], q_out, *activation_range(op.act, q_out))
    if op.kind == "mean":
        return mean(xs[0], a["axes"], a["keepdims"], q_in[0], q_out)
    if op.kind == "softmax":
        return softmax(xs[0], scale_zp(q_in[0], op.inputs[0])[0], a.get("beta", 1.0))
    if op.kind == "pad":
        return pad(xs[0], a["paddings"], scale_zp(q_out, op.output)[1])
    if op.kind == "reshape":  # any batch size: the leading dimension scales with the samples
        return xs[0].reshape(-1, *g.shape(op.output)[1:])  # (FULLY_CONNECTED reads (1, 6, 10) as (6, 10))
    if op.kind == "transpose":
        return xs[0].transpose(a["perm"])
    if op.kind == "resize_nearest":
        return resize_nearest(xs[0], a["size"], a["align_corners"], a["half_pixel_centers"])
    if op.kind == "quantize":
        return quantize(xs[0], *scale_zp(q_out, op.output))
    if op.kind == "dequantize":
        return dequantize(xs[0], *scale_zp(q_in[0], op.inputs[0]))
    raise UserError(f"int8ref: no int8 kernel for op kind '{op.kind}' ('{op.name}'); supported: {', '.join(KINDS)}")


def tensors(g: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Execute `g` on input `x` (in the input tensor's own dtype) and return every activation.

    `x` may hold any number of samples along axis 0; each is computed exactly as alone.
    """
    t = g.tensors[g.inputs[0]]
    x = np.asarray(x)
    if x.shape[1:] != t.shape[1:] or x.ndim != len(t.shape) or x.dtype != np.dtype(t.dtype):
        raise UserError(f"input of '{g.name}' must be {t.dtype} of shape (N, {', '.join(map(str, t.shape[1:]))}), "
                        f"got {x.dtype} {x.shape}")
    env = {t.name: x}
    for op in g.ops:
        env[op.output] = run_op(g, op, [env[n] for n in g.activations(op)])
    return env


def run_all(g: Graph, x: np.ndarray) -> list[np.ndarray]:
    """All graph outputs, in order."""
    env = tensors(g, x)
    return [env[o] for o in g.outputs]


def run(g: Graph, x: np.ndarray) -> np.ndarray:
    """The first graph output (like `floatref.run`)."""
    return run_all(g, x)[0]
