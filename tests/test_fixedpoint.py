"""Fixed-point helpers vs a plain big-integer statement of the same rounding (exact rationals)."""
import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mcunet_lite import fixedpoint as fp

INT32 = st.integers(-2 ** 31, 2 ** 31 - 1)


def floor_half_up(q: Fraction) -> int:
    """Round to nearest, halves toward +infinity."""
    return math.floor(q + Fraction(1, 2))


def round_half_away(q: Fraction) -> int:
    """Round to nearest, halves away from zero."""
    return int(math.copysign(math.floor(abs(q) + Fraction(1, 2)), q))


def srdhm_ref(a: int, b: int) -> int:
    """2ab / 2^32 rounded to nearest (ties up), saturated to int32."""
    return min(floor_half_up(Fraction(a * b, 2 ** 31)), 2 ** 31 - 1)


def rdbp_ref(x: int, e: int) -> int:
    return round_half_away(Fraction(x, 2 ** e))


def quantize_multiplier_ref(m: float) -> tuple[int, int]:
    """M = M0 * 2^(shift - 31) with M0 in [2^30, 2^31), M0 the exact rational rounded half away."""
    if m == 0:
        return 0, 0
    exact = Fraction(m)
    shift = math.floor(math.log2(m)) + 1
    while exact / Fraction(2) ** shift >= 1:
        shift += 1
    while exact / Fraction(2) ** shift < Fraction(1, 2):
        shift -= 1
    m0 = round_half_away(exact * Fraction(2) ** (31 - shift))
    if m0 == 2 ** 31:
        m0, shift = m0 // 2, shift + 1
    return (0, 0) if shift < -31 else (m0, shift)


@settings(max_examples=500)
@given(st.lists(st.tuples(INT32, INT32), min_size=1, max_size=20))
def test_srdhm_matches_exact_rounding(pairs):
    a, b = np.array(pairs).T
    assert fp.saturating_rounding_doubling_high_mul(a, b).tolist() == [srdhm_ref(x, y) for x, y in pairs]


def test_srdhm_saturates_the_one_overflow():
    assert fp.saturating_rounding_doubling_high_mul(-2 ** 31, -2 ** 31) == 2 ** 31 - 1


@settings(max_examples=500)
@given(st.lists(st.tuples(INT32, st.integers(0, 31)), min_size=1, max_size=20))
def test_rounding_divide_by_pot_rounds_half_away(pairs):
    x, e = np.array(pairs).T
    assert fp.rounding_divide_by_pot(x, e).tolist() == [rdbp_ref(v, k) for v, k in pairs]


def test_rounding_divide_by_pot_ties():
    assert fp.rounding_divide_by_pot([5, -5, 6, -6, 7, -7], 1).tolist() == [3, -3, 3, -3, 4, -4]


@settings(max_examples=500)
@given(st.floats(min_value=1e-12, max_value=1e4, allow_nan=False))
def test_quantize_multiplier_matches_exact(m):
    m0, shift = fp.quantize_multiplier(m)
    assert (int(m0), int(shift)) == quantize_multiplier_ref(m)
    if m0:
        assert 2 ** 30 <= m0 < 2 ** 31 and abs(m0 * 2.0 ** (int(shift) - 31) - m) <= m * 2 ** -30


def test_quantize_multiplier_edges():
    assert [tuple(map(int, fp.quantize_multiplier(v))) for v in (0.0, 0.5, 1.0, 2.0 ** -40)] == \
        [(0, 0), (2 ** 30, 0), (2 ** 30, 1), (0, 0)]
    # a mantissa that rounds up to 2^31 is halved and the exponent raised
    assert tuple(map(int, fp.quantize_multiplier(1 - 2.0 ** -40))) == (2 ** 30, 1)


@settings(max_examples=500)
@given(st.lists(st.integers(-2 ** 24, 2 ** 24), min_size=1, max_size=20),
       st.floats(min_value=1e-6, max_value=60.0))
def test_mbqm_is_srdhm_then_rdbp(xs, m):
    m0, shift = (int(v) for v in fp.quantize_multiplier(m))
    left, right = max(shift, 0), max(-shift, 0)
    want = [rdbp_ref(srdhm_ref(x * 2 ** left, m0), right) for x in xs]
    assert fp.multiply_by_quantized_multiplier(np.array(xs), m0, shift).tolist() == want
    # and the result is x * M to within one unit plus the multiplier's relative error
    for x, y in zip(xs, want):
        assert abs(y - x * m) <= 1 + abs(x * m) * 2 ** -29


@settings(max_examples=300)
@given(st.floats(min_value=-31.99, max_value=0.0))
def test_exp_on_negative_values_is_exp(v):
    raw = int(round(v * 2 ** 26))  # Q5.26
    got = int(fp.exp_on_negative_values(raw, 5)) / 2 ** 31
    assert abs(got - math.exp(raw / 2 ** 26)) < 5e-7  # measured worst case 2.3e-7 over a dense grid


@settings(max_examples=300)
@given(st.integers(0, 2 ** 31 - 1))
def test_one_over_one_plus_x(raw):
    got = int(fp.one_over_one_plus_x_for_x_in_0_1(raw)) / 2 ** 31
    assert abs(got - 1 / (1 + raw / 2 ** 31)) < 1e-8  # measured worst case 3.1e-9


def test_round_half_away_and_leading_zeros():
    x = np.array([0.5, -0.5, 1.5, 2.5, -2.5, 0.49999997], np.float32)
    assert fp.round_half_away(x).tolist() == [1, -1, 2, 3, -3, 0]
    assert fp.count_leading_zeros32([1, 2, 3, 2 ** 30, 2 ** 31 - 1]).tolist() == [31, 30, 30, 1, 1]
