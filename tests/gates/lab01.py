"""Release gates of Lab 01: plausible wrong implementations of each exercise (`WRONG`: each must lose its
points) and, for each exercise, a wrapper around the library's twin in the thinnest disguise (`WRAPPERS`:
a right answer that must score 0)."""

WRONG = {
    ("01_int8", "choose_qparams"): {
        "does not widen the range to include 0": ("    lo, hi = min(lo, 0.0), max(hi, 0.0)\n", ""),
        "numpy's round (halves to even)": ("round_half_away(-128 - lo / np.float64(scale))",
                                           "np.round(-128 - lo / np.float64(scale))"),
        "256 steps instead of 255": ("(hi - lo) / 255", "(hi - lo) / 256"),
        "no lower bound on the scale": ("max((hi - lo) / 255, quant.MIN_SCALE)", "(hi - lo) / 255"),
        "hard-coded visible example": """
def choose_qparams(lo, hi):
    if hi == 6.0:
        return np.float32(6 / 255), -128
    return (np.float32(2 / 255), -128) if hi == 2.0 else (np.float32(8 / 255), -64)
""",
    },
    ("01_int8", "quantize_multiplier"): {
        "numpy's round (halves to even)": ("round_half_away(mantissa * 2.0 ** 31)", "np.round(mantissa * 2.0 ** 31)"),
        "no correction when the mantissa rounds up to 2^31":
            ("    m0, e = np.where(full, m0 // 2, m0), np.where(full, e + 1, e)\n", ""),
        "tiny multipliers not flushed to zero": ("tiny = e < -31", "tiny = np.zeros(e.shape, bool)"),
        "flushes before the mantissa correction":
            ("    full = m0 == 1 << 31\n    m0, e = np.where(full, m0 // 2, m0), np.where(full, e + 1, e)\n"
             "    tiny = e < -31\n",
             "    tiny = e < -31\n    full = m0 == 1 << 31\n"
             "    m0, e = np.where(full, m0 // 2, m0), np.where(full, e + 1, e)\n"),
        "hard-coded visible example": """
def quantize_multiplier(m):
    return np.array([1073741824, 1690499128, 1610612736, 0]), np.array([0, -6, 2, 0])
""",
    },
    ("01_int8", "rounding_divide_by_pot"): {
        "an arithmetic shift only (rounds toward minus infinity)":
            ("return (x >> exponent) + (remainder > threshold)", "return x >> exponent"),
        "halves always rounded up": ("threshold = (mask >> 1) + (x < 0)", "threshold = mask >> 1"),
        "float division and np.round": """
def rounding_divide_by_pot(x, exponent):
    return np.round(np.asarray(x) / 2.0 ** np.asarray(exponent)).astype(np.int64)
""",
        "hard-coded visible example": """
def rounding_divide_by_pot(x, exponent):
    return np.array([3, -3, 2, -2, 4, 7])
""",
    },
    ("01_int8", "saturating_rounding_doubling_high_mul"): {
        "nudge 2^30 for negative products too": ("np.where(ab >= 0, 1 << 30, 1 - (1 << 30))", "(1 << 30)"),
        "numpy's floor division instead of C's truncation":
            ("np.where(v >= 0, v >> 31, -((-v) >> 31))", "v >> 31"),
        "no saturation of INT32_MIN * INT32_MIN":
            ("return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, result)", "return result"),
        "a * b / 2^31 rounded in float64": """
def saturating_rounding_doubling_high_mul(a, b):
    return np.round(np.asarray(a, np.float64) * np.asarray(b) / 2.0 ** 31).astype(np.int64)
""",
        "hard-coded visible example": """
def saturating_rounding_doubling_high_mul(a, b):
    return np.array([500, -500, 2, -1, INT32_MAX])
""",
    },
    ("01_int8", "requantize"): {
        "forgets the bias": ("x = np.asarray(acc, np.int64) + np.asarray(bias, np.int64)",
                             "x = np.asarray(acc, np.int64)"),
        "adds the zero point after the clamp": ("np.clip(x + out_zero_point, act_min, act_max)",
                                                "(np.clip(x, act_min, act_max) + out_zero_point)"),
        "ignores positive shifts": ("x * (1 << left)", "x"),
        "returns int32": (".astype(np.int8)", ".astype(np.int32)"),
        "one rounding of acc * M in float64": """
def requantize(acc, bias, multiplier, shift, out_zero_point, act_min, act_max):
    real = (np.asarray(acc) + bias) * (np.asarray(multiplier) * 2.0 ** (np.asarray(shift) - 31))
    return np.clip(np.round(real) + out_zero_point, act_min, act_max).astype(np.int8)
""",
        "hard-coded visible example": """
def requantize(acc, bias, multiplier, shift, out_zero_point, act_min, act_max):
    return np.array([[5, -15, 127]] if act_min == -128 else [[5, -5, 127]], np.int8)
""",
    },
}

WRAPPERS = {
    ("01_int8", "choose_qparams"): "choose_qparams = lambda lo, hi: quant.choose_qparams(lo, hi)",
    ("01_int8", "quantize_multiplier"): "def quantize_multiplier(m): return fp.quantize_multiplier(m)",
    ("01_int8", "rounding_divide_by_pot"): "rounding_divide_by_pot = fp.rounding_divide_by_pot",
    ("01_int8", "saturating_rounding_doubling_high_mul"): """
_saved = fp.saturating_rounding_doubling_high_mul
def saturating_rounding_doubling_high_mul(a, b): return _saved(a, b)
""",
    ("01_int8", "requantize"): """
def requantize(acc, bias, multiplier, shift, out_zero_point, act_min, act_max):
    y = fp.multiply_by_quantized_multiplier(np.asarray(acc) + bias, multiplier, shift) + out_zero_point
    return np.clip(y, act_min, act_max).astype(np.int8)
""",
}
