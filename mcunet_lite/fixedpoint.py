"""Fixed-point arithmetic of the TFLite int8 contract (gemmlowp), vectorised over numpy int64.

An int8 layer computes its int32 accumulator exactly and then rescales it to the output scale with
one integer multiply and shift: the real multiplier M = S_in * S_w / S_out is stored as a 31-bit
mantissa M0 and a power-of-two `shift` (`quantize_multiplier`), and applied with two rounding
steps (`multiply_by_quantized_multiplier`). Every rounding here is the one TFLite Micro's reference
kernels use, so results are bit-exact with them (DESIGN.md section 4; Jacob et al. 2018, "Quantization
and Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference", section 2.2).

Values are int32 quantities held in int64 arrays so products never overflow. The second half holds
gemmlowp's fixed-point exp and reciprocal, which the int8 softmax is built from.
"""
from __future__ import annotations

import numpy as np

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def round_half_away(x) -> np.ndarray:
    """C's `round()` (TfLiteRound): halves go away from zero, unlike numpy's half-to-even."""
    x = np.asarray(x)
    t = np.trunc(x)
    return np.where(np.abs(x - t) >= 0.5, t + np.sign(x), t)


def quantize_multiplier(m) -> tuple[np.ndarray, np.ndarray]:
    """QuantizeMultiplier: real multiplier M -> (M0, shift) with M ~ M0 * 2^(shift - 31).

    `(q, e) = frexp(M)`, `M0 = round(q * 2^31)`; a mantissa that rounds up to 2^31 is halved (e + 1);
    multipliers below 2^-31 flush to (0, 0). Accepts a float or an array (per-channel scales).
    """
    q, e = np.frexp(np.asarray(m, dtype=np.float64))
    m0 = round_half_away(q * float(1 << 31)).astype(np.int64)
    e = e.astype(np.int64)
    full = m0 == (1 << 31)
    m0, e = np.where(full, m0 // 2, m0), np.where(full, e + 1, e)
    tiny = e < -31
    return np.where(tiny, 0, m0), np.where(tiny, 0, e)


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul: (a * b + nudge) / 2^31 truncated, nudge 2^30 or 1 - 2^30.

    The high 32 bits of 2ab, rounded; the one overflowing case INT32_MIN * INT32_MIN saturates.
    For ab < 0 the truncation toward zero of (ab + 1 - 2^30) / 2^31 is the floor of (ab + 2^30) / 2^31
    (ceil(v / n) = floor((v + n - 1) / n)), as it is for ab >= 0: one add and one arithmetic shift.
    """
    a, b = _i64(a), _i64(b)
    r = (a * b + (1 << 30)) >> 31
    sat = (a == INT32_MIN) & (b == INT32_MIN)
    return np.where(sat, INT32_MAX, r) if sat.any() else r


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """RoundingDivideByPOT: x / 2^exponent rounded to nearest, halves away from zero.

    TFLite adds 1 where the remainder exceeds half (half plus one for negative x); the same is the
    floor of (x + half) / 2^exponent, with half one less for negative x (and 0 when exponent is 0)."""
    x, exponent = _i64(x), _i64(exponent)
    half = (np.int64(1) << exponent) >> 1
    return (x + half - ((x < 0) & (half > 0))) >> exponent


def multiply_by_quantized_multiplier(x, m0, shift) -> np.ndarray:
    """MultiplyByQuantizedMultiplier: x * M0 * 2^(shift - 31) as TFLite's double-rounding version.

    A positive shift is applied as an exact left shift before the high multiply, a negative one as a
    rounding right shift after it.
    """
    shift = _i64(shift)
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(_i64(x) << left, m0), right)


# ---------------------------------------------------------------- gemmlowp fixed-point functions
def saturating_shift_left(x, exponent: int) -> np.ndarray:
    """SaturatingRoundingMultiplyByPOT with a positive exponent: x * 2^exponent, clamped to int32."""
    return np.clip(_i64(x) << exponent, INT32_MIN, INT32_MAX)


def rounding_half_sum(a, b) -> np.ndarray:
    """RoundingHalfSum: (a + b) / 2, rounded half away from zero."""
    s = _i64(a) + _i64(b)
    v = s + np.where(s >= 0, 1, -1)
    return np.where(v >= 0, v // 2, -((-v) // 2))


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a) -> np.ndarray:
    """exp(a) for a in [-1/4, 0), Q0.31 in and out: Taylor series around -1/8 (gemmlowp)."""
    srdhm = saturating_rounding_doubling_high_mul
    constant_term, one_third = 1895147668, 715827883  # exp(-1/8), 1/3 in Q0.31
    x = _i64(a) + (1 << 28)
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4_over_4 = rounding_divide_by_pot(srdhm(x2, x2), 2)
    poly = rounding_divide_by_pot(srdhm(x4_over_4 + x3, one_third) + x2, 1)
    return constant_term + srdhm(constant_term, x + poly)


# exp(-2^k) in Q0.31 for the barrel shifter of exp_on_negative_values, k = -2 .. 4
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535),
               (3, 720401), (4, 242))


def exp_on_negative_values(a, integer_bits: int) -> np.ndarray:
    """exp(a) for a <= 0 given in Q(integer_bits).(31 - integer_bits); result in Q0.31 (gemmlowp).

    exp of the input modulo 1/4 comes from a polynomial; each set bit above that multiplies in a
    constant exp(-2^k).
    """
    a = _i64(a)
    frac_bits = 31 - integer_bits
    quarter = 1 << (frac_bits - 2)
    a_mod = (a & (quarter - 1)) - quarter
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(saturating_shift_left(a_mod, integer_bits))
    remainder = a_mod - a
    for k, multiplier in _EXP_BARREL:
        if integer_bits > k:
            bit = remainder & (1 << (frac_bits + k))
            result = np.where(bit != 0, saturating_rounding_doubling_high_mul(result, multiplier), result)
    if integer_bits > 5:
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """1 / (1 + a) for a in [0, 1), Q0.31 in and out: three Newton-Raphson steps (gemmlowp)."""
    srdhm = saturating_rounding_doubling_high_mul
    half_denominator = rounding_half_sum(a, INT32_MAX)
    x = 1515870810 + srdhm(half_denominator, -1010580540)  # 48/17 - 32/17 * d, in Q2.29
    for _ in range(3):
        one_minus = (1 << 29) - srdhm(half_denominator, x)
        x = x + saturating_shift_left(srdhm(x, one_minus), 2)
    return saturating_shift_left(x, 1)


def count_leading_zeros32(x) -> np.ndarray:
    """CountLeadingZeros of a non-negative int32 seen as uint32 (32 minus its bit length)."""
    return 32 - np.frexp(_i64(x).astype(np.float64))[1].astype(np.int64)
