"""Graded checks of Lab 01, int8 arithmetic: the cases each exercise is scored on, made in the grader's
process from the run's seed, and the library's answers they are compared with."""
from __future__ import annotations

import random
from typing import Any, Iterable

import numpy as np

from .. import int8ref, quant
from .. import fixedpoint as fp
from .exercise import LIB, Case, Exercise
from .compare import Exactly, Ints
from .inputs import np_rng

def _qparams_cases(rng: random.Random) -> Iterable[Case]:
    ranges = [(-rng.uniform(0, 8), rng.uniform(0, 8)) for _ in range(10)]
    ranges += [(0.0, rng.uniform(0.1, 6)) for _ in range(2)] + [(rng.uniform(0.1, 1), rng.uniform(2, 6))]
    ranges += [(-rng.uniform(2, 6), -rng.uniform(0.1, 1)), (-1e-6, 1e-6), (0.0, 0.0), (0.0, 6.0)]
    for _ in range(8):  # -lo / scale is exactly k + 1/2: the zero point is a rounding tie
        s, k = float(np.float32(2 ** rng.uniform(-10, 2))), rng.randint(0, 254)
        ranges.append((-(k + 0.5) * s, (254.5 - k) * s))
    for lo, hi in ranges:
        yield f"lo={lo!r}, hi={hi!r}", (lo, hi), _as_qparams(quant.choose_qparams(lo, hi))


def _multiplier_cases(rng: random.Random) -> Iterable[Case]:
    nrng = np_rng(rng)
    k, e = nrng.integers(1 << 30, (1 << 31) - 1, 60), nrng.integers(-25, 4, 60)
    edges = [0.0, 1.0, 0.5, 0.25, 2.0, 1 - 2 ** -33, 1 - 2 ** -32, 2 ** -31, 2 ** -32, 2 ** -33, 1.5 * 2 ** -32,
             (1 - 2 ** -40) * 2 ** -32, (1 - 2 ** -40) * 2 ** -31, 3 * 2 ** -35, 1e-12]
    sets = [("random multipliers in [2^-20, 2^6)", nrng.permutation(np.concatenate(
                [2.0 ** nrng.uniform(-20, 0, 200), 2.0 ** nrng.uniform(0, 6, 40)]))),
            ("multipliers whose mantissa * 2^31 ends in exactly .5", (k + 0.5) * 2.0 ** (e - 31)),
            ("edge multipliers (0, powers of two, just below 1, below 2^-31)", np.array(edges))]
    for label, m in sets:
        m0, shift = fp.quantize_multiplier(m)
        n = len(m)
        where = (lambda i, m=m, n=n: f"{('M0', 'shift')[i // n]} of M={float(m[i % n])!r}")
        yield f"<{n} {label}>", (m.copy(),), Exactly(np.stack([m0, shift]), where)


def _int32s(nrng: np.random.Generator, n: int) -> np.ndarray:
    """`n` int32 values of every magnitude (2^0 .. 2^31), either sign."""
    bits = nrng.integers(0, 32, n)
    return np.clip(nrng.integers(-(1 << 31), 1 << 31, n) >> (31 - bits), fp.INT32_MIN, fp.INT32_MAX)


def _srdhm_cases(rng: random.Random) -> Iterable[Case]:
    nrng = np_rng(rng)
    edges = np.array([fp.INT32_MIN, fp.INT32_MIN + 1, -(1 << 30), -3, -1, 0, 1, 3, 1 << 30, fp.INT32_MAX])
    odd = nrng.integers(-(1 << 20), 1 << 20, 100) * 2 + 1
    sets = [("random int32 pairs", _int32s(nrng, 1000), _int32s(nrng, 1000)),
            ("accumulators times multipliers", nrng.integers(-(1 << 24), 1 << 24, 500),
             nrng.integers(1 << 30, 1 << 31, 500)),
            ("pairs whose result is exactly x.5", odd, np.full(100, 1 << 30)),
            ("pairs of edge values (INT32_MIN, INT32_MAX, -1, 0, 1, ...)", np.repeat(edges, 10), np.tile(edges, 10))]
    for label, a, b in sets:
        yield (f"<{len(a)} {label}>", (a.copy(), b.copy()),
               Exactly(fp.saturating_rounding_doubling_high_mul(a, b), lambda i, a=a, b=b: f"a={a[i]}, b={b[i]}"))


def _divide_cases(rng: random.Random) -> Iterable[Case]:
    nrng = np_rng(rng)
    e_tie = nrng.integers(1, 31, 300)
    k = nrng.integers(0, 1 << 30, 300) >> e_tie
    edges = np.array([fp.INT32_MIN, fp.INT32_MIN + 1, -3, -1, 0, 1, 3, fp.INT32_MAX])
    sets = [("random int32 values and exponents 0..31", _int32s(nrng, 1000), nrng.integers(0, 32, 1000)),
            ("values exactly halfway between two results", (2 * k + 1) * (1 << (e_tie - 1)) * nrng.choice([-1, 1], 300),
             e_tie),
            ("edge values with exponents 0, 1, 2, 30, 31", np.repeat(edges, 5), np.tile([0, 1, 2, 30, 31], 8))]
    for label, x, e in sets:
        yield (f"<{len(x)} {label}>", (x.copy(), e.copy()),
               Exactly(fp.rounding_divide_by_pot(x, e), lambda i, x=x, e=e: f"x={x[i]}, exponent={e[i]}"))


def _requantize_cases(rng: random.Random) -> Iterable[Case]:
    nrng = np_rng(rng)
    for i in range(8):
        c = rng.randint(1, 12)
        shape = (rng.randint(1, 2), rng.randint(1, 5), rng.randint(1, 5), c) if i % 2 else (rng.randint(1, 40), c)
        m = 2.0 ** nrng.uniform(-14, 0, c)
        if i >= 5:  # some multipliers above 1: a positive shift, applied before the high multiply
            m[nrng.random(c) < 0.5] = 2.0 ** nrng.uniform(0, 3)
        m0, shift = fp.quantize_multiplier(m)
        if i == 7:  # M0 = 2^30: both roundings meet exact halves
            m0, shift = np.full(c, 1 << 30), nrng.integers(-8, 1, c)
        bias = nrng.integers(-(1 << 14), 1 << 14, c)
        target = nrng.uniform(-300, 300, shape)  # outputs around the int8 range, some clamped
        acc = np.clip(np.round(target / (m0 * 2.0 ** (shift - 31))), -(1 << 26), 1 << 26).astype(np.int64) - bias
        zp = rng.randint(-128, 127)
        lo, hi = rng.choice([(-128, 127), (zp, 127), (zp, min(127, zp + rng.randint(20, 200))),
                             tuple(sorted(rng.sample(range(-128, 128), 2)))])
        where = (lambda j, acc=acc, bias=bias, m0=m0, shift=shift, c=c:
                 f"acc={acc.ravel()[j]}, bias={bias[j % c]}, multiplier={m0[j % c]}, shift={shift[j % c]}")
        yield (f"<{shape} accumulators>, <{c} biases>, <{c} multipliers>, <{c} shifts>, out_zero_point={zp}, "
               f"act_min={lo}, act_max={hi}", (acc.copy(), bias.copy(), m0.copy(), shift.copy(), zp, lo, hi),
               Exactly(int8ref.requantize(acc + bias, m0, shift, zp, lo, hi), where, "int8"))


def _as_qparams(v: Any) -> Any:
    scale, zp = v
    return float(np.float32(scale)), int(zp) if float(zp).is_integer() else float(zp)


def _as_int_array(v: Any) -> Any:
    return Ints(v)


def _as_multiplier(v: Any) -> Any:
    try:
        m0, shift = v
        return Ints(np.stack([np.asarray(m0), np.asarray(shift)]))
    except Exception:  # not a pair of equal-length arrays
        return Ints(v)



def _choose_qparams(lo: float, hi: float):
    return quant.choose_qparams(lo, hi)


def _quantize_multiplier(m):
    return fp.quantize_multiplier(m)


def _requantize(acc, bias, multiplier, shift, out_zero_point: int, act_min: int, act_max: int):
    return int8ref.requantize(acc + bias, multiplier, shift, out_zero_point, act_min, act_max)


LAB = "01_int8"
EXERCISES: list[Exercise] = [
    Exercise("choose_qparams", "choose_qparams", 2, _qparams_cases, _as_qparams, (LIB + "quant.choose_qparams",), reference=_choose_qparams),
    Exercise("quantize_multiplier", "quantize_multiplier", 2, _multiplier_cases, _as_multiplier,
             (LIB + "fixedpoint.quantize_multiplier",), reference=_quantize_multiplier),
    Exercise("rounding_divide_by_pot", "rounding_divide_by_pot", 2, _divide_cases, _as_int_array,
             (LIB + "fixedpoint.rounding_divide_by_pot",)),
    Exercise("saturating_rounding_doubling_high_mul", "saturating_rounding_doubling_high_mul", 2, _srdhm_cases,
             _as_int_array, (LIB + "fixedpoint.saturating_rounding_doubling_high_mul",)),
    Exercise("requantize", "requantize", 2, _requantize_cases, _as_int_array,
             (LIB + "int8ref.requantize", LIB + "fixedpoint.multiply_by_quantized_multiplier",
              LIB + "fixedpoint.rounding_divide_by_pot", LIB + "fixedpoint.saturating_rounding_doubling_high_mul"), reference=_requantize),
]
