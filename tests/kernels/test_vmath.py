"""service/kernels/vmath.py against the C library: within 1 ulp of libm's ``exp``, ``expm1``,
``log`` and ``log1p`` on random arguments over each whole domain, and exactly libm's result
class (0, inf, NaN, exact values) on the edge cases.

The reference is glibc's libm (``math.*`` compiled by numba, one scalar call per argument),
which shares no code with vmath; ``python -m bench.vmath`` runs the random part with 1e8
arguments per function.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.vmath import LIBM, NAMES, VMATH, arguments, elementwise, evaluate, ulp_distance
from service.kernels import vmath

pytestmark = pytest.mark.compiled  # IEEE inf and NaN, where Python's math raises

TINY = 5e-324  # the smallest subnormal
MIN_NORMAL = 2.2250738585072014e-308
MAX = 1.7976931348623157e308
#: exp overflows above log(MAX) and gives 0 below log(TINY / 2): the thresholds and neighbours.
EXP_OVERFLOW = 709.782712893384
EXP_UNDERFLOW = -745.1332191019411
COMMON = [
    0.0,
    -0.0,
    math.inf,
    -math.inf,
    math.nan,
    TINY,
    -TINY,
    MIN_NORMAL,
    -MIN_NORMAL,
    1e-300,
    -1e-300,
    1e-20,
    -1e-20,
    2.0**-54,
    -(2.0**-54),
    0.5,
    -0.5,
    1.0,
    -1.0,
    2.0,
    10.0,
    1e300,
    -1e300,
    MAX,
    -MAX,
]
EDGES = {
    "exp": [
        *COMMON,
        EXP_OVERFLOW,
        np.nextafter(EXP_OVERFLOW, math.inf),
        np.nextafter(EXP_OVERFLOW, -math.inf),
        EXP_UNDERFLOW,
        np.nextafter(EXP_UNDERFLOW, math.inf),
        np.nextafter(EXP_UNDERFLOW, -math.inf),
        -708.4,  # the result leaves the normal range
        -708.3964185322641,
        -740.0,  # deep subnormal results
        -744.4,
        710.0,
        -746.0,
        math.log(2.0),
        -math.log(2.0),
        0.5 * math.log(2.0),
        -0.5 * math.log(2.0),
    ],
    "expm1": [
        *COMMON,
        EXP_OVERFLOW,
        np.nextafter(EXP_OVERFLOW, math.inf),
        -37.0,
        -37.5,  # expm1 rounds to -1 from here on
        -38.0,
        36.7,
        37.5,
        -746.0,
        -1000.0,
        1e-10,
        -1e-10,
        0.3465,
        -0.3465,
        0.35,
        -0.35,
    ],
    "log": [
        *COMMON,
        np.nextafter(1.0, 0.0),
        np.nextafter(1.0, 2.0),
        0.7071067811865476,
        0.7071067811865475,
        1.4142135623730951,
        2.0**-1074,
        2.0**-1030,
        2.0**1023,
        math.e,
    ],
    "log1p": [
        *COMMON,
        np.nextafter(-1.0, 0.0),
        np.nextafter(-1.0, -2.0),
        -2.0,
        -0.9999999999999999,
        -0.29289321881345254,
        0.41421356237309515,
        1e-10,
        -1e-10,
        2.0**53,
        2.0**53 + 2.0,
    ],
}


def libm(name: str, values) -> np.ndarray:
    return evaluate(LIBM, name, np.asarray(values, dtype=np.float64))


def mine(name: str, values) -> np.ndarray:
    return evaluate(VMATH, name, np.asarray(values, dtype=np.float64))


@pytest.mark.parametrize("name", NAMES)
def test_edge_cases_have_libms_result_class_and_are_within_one_ulp(name: str) -> None:
    values = np.array(EDGES[name], dtype=np.float64)
    expected, got = libm(name, values), mine(name, values)
    for value, want, have in zip(values, expected, got, strict=True):
        if math.isnan(want):
            assert math.isnan(have), (name, value, have)
        elif want == 0.0 or math.isinf(want) or abs(want) == 1.0:
            # 0, inf, -1 (expm1's floor) and 1 (exp's) are exact, signs included
            assert have == want and math.copysign(1.0, have) == math.copysign(1.0, want), (
                name,
                value,
                have,
                want,
            )
        else:
            assert ulp_distance(np.array([have]), np.array([want]))[0] <= 1.0, (
                name,
                value,
                have,
                want,
            )


@pytest.mark.parametrize("name", NAMES)
def test_random_arguments_over_the_whole_domain_are_within_one_ulp(name: str) -> None:
    values = arguments(name, 2_000_000, np.random.default_rng(2024))
    distance = ulp_distance(mine(name, values), libm(name, values))
    worst = int(np.argmax(distance))
    assert distance[worst] <= 1.0, (name, values[worst])
    # Most results are libm's to the bit (correctly rounded there); the rest are neighbours.
    assert np.count_nonzero(distance) < 0.05 * values.size


def test_exact_values() -> None:
    """Where libm's result is exact, vmath's is the same number."""
    assert mine("exp", [0.0, -0.0, -math.inf]).tolist() == [1.0, 1.0, 0.0]
    assert mine("expm1", [-math.inf]).tolist() == [-1.0]
    assert mine("log", [1.0, 0.0, -0.0, math.inf]).tolist() == [0.0, -math.inf, -math.inf, math.inf]
    assert mine("log1p", [-1.0, math.inf]).tolist() == [-math.inf, math.inf]
    for name in ("expm1", "log1p"):  # both are x to the bit for |x| below 2**-54, sign of 0 too
        values = np.array([0.0, -0.0, TINY, -TINY, 1e-300, -1e-300, 2.0**-60, -(2.0**-60)])
        got = mine(name, values)
        assert got.tolist() == values.tolist()
        assert (np.signbit(got) == np.signbit(values)).all()
    powers = 2.0 ** np.arange(-1074, 1024)  # log of every power of two, subnormals too
    assert (ulp_distance(mine("log", powers), libm("log", powers)) <= 1.0).all()


def test_nan_and_out_of_domain() -> None:
    assert np.isnan(mine("log", [-1.0, -TINY, -math.inf, math.nan])).all()
    assert np.isnan(mine("log1p", [-1.0000000000000002, -2.0, -math.inf, math.nan])).all()
    assert np.isnan(mine("exp", [math.nan, -math.nan])).all()
    assert np.isnan(mine("expm1", [math.nan])).all()


def test_the_moderate_forms_are_the_general_ones_on_their_ranges() -> None:
    """``expm1_moderate`` on [-37, 36] gives the general function's results to the bit (so its
    accuracy), ``log1p_half(e)`` gives ``log1p(e / 2)``'s for e in [-1, 0], and
    ``log1p_finite`` gives ``log1p``'s for x > -1 with 1 + x finite, over random
    arguments of every scale in those ranges, their ends and the reduction's boundaries;
    outside, expm1_moderate takes the argument at -37 or 36."""
    expm1_moderate = {"expm1": elementwise(vmath.expm1_moderate)}
    log1p_half = {"log1p": elementwise(vmath.log1p_half)}
    rng = np.random.default_rng(36)

    def spread(high: float) -> np.ndarray:  # magnitudes from 1e-300 to high, both signs
        magnitudes = high * 10.0 ** rng.uniform(-300, 0, 400_000)
        return np.concatenate([magnitudes, -magnitudes, rng.uniform(-high, high, 200_000)])

    expm1_arguments = np.concatenate(
        [np.clip(spread(37.0), -37.0, 36.0), [0.5 * math.log(2.0), -0.5 * math.log(2.0)]]
    )
    got = evaluate(expm1_moderate, "expm1", expm1_arguments)
    assert got.tolist() == mine("expm1", expm1_arguments).tolist()
    # e in [-1, 0], and around -0.5857864376269049 = 2 (sqrt(2)/2 - 1), where 1 + e/2 crosses
    # the split's boundary: every double within 2,000 ulps of it
    boundary = -0.5857864376269049 + np.arange(-2000, 2001) * 2.0**-53
    halves = np.concatenate(
        [-np.abs(spread(1.0)).clip(0.0, 1.0), boundary, [-1.0, -0.5, 0.0, -5e-324]]
    )
    got = evaluate(log1p_half, "log1p", halves)
    assert got.tolist() == mine("log1p", 0.5 * halves).tolist()
    # log1p_finite: x in (-1, MAX], random bit patterns (every binade) and the ends
    above = np.concatenate(
        [
            np.abs(spread(1e300)),
            -np.abs(spread(1.0)).clip(0.0, 1.0 - 2.0**-53),
            np.random.default_rng(37)
            .integers(0, 0x7FEFFFFFFFFFFFFF, 400_000, dtype=np.int64)
            .view(np.float64),
            [-0.5, -(1.0 - 2.0**-53), MAX, 2.0**53, 1.0, -0.29289321881345254, 0.41421356237309515],
        ]
    )
    got = evaluate({"log1p": elementwise(vmath.log1p_finite)}, "log1p", above)
    assert got.tolist() == mine("log1p", above).tolist()
    outside = np.array([-37.5, -700.0, -math.inf, 40.0])
    assert (
        evaluate(expm1_moderate, "expm1", outside).tolist()
        == mine("expm1", [-37.0, -37.0, -37.0, 36.0]).tolist()
    )
