r"""Branch-free ``exp``, ``expm1``, ``log`` and ``log1p`` that LLVM can vectorise.

Numba compiles ``math.exp`` and its kin to one scalar libm call per element, so a kernel's loop
around them never vectorises, while NumPy's ufuncs use SIMD code. These functions are plain
float64 arithmetic, integer operations on the bits and selects (no branch, no call, no table),
compiled into the calling kernel (``inline="always"``), so its loop vectorises with them
(packed ``...pd`` on xmm/ymm/zmm at every x86-64 level the image bakes).

Method (facts from the literature, code our own):

- ``exp``, ``expm1``: Cody and Waite's reduction x = k ln2 + r, |r| <= ln2/2, with k rounded by
  adding 1.5 * 2**52 and fdlibm's split of ln2 (k * LN2_HI exact), keeping r's rounding error;
  exp(r) - 1 - r by its Taylor polynomial to r**13/13! (degrees 4-11 in Estrin's pairs, the
  leading four in Horner's order); the sum 1 + r + tail with Fast2Sum;
  2**k applied as two normal powers of two (one rounding, also for subnormal results and at
  overflow). ``expm1``: (2**k - 1) + 2**k r + 2**k tail with an exact TwoSum for -53 <= k <= 52,
  else exp(x) - 1 through the scaled mantissa.
- ``log``, ``log1p``: u = 2**k (1 + f) with sqrt(2)/2 <= 1 + f < sqrt(2) from the bits (musl's
  split), then fdlibm's log1p(f) = f - f**2/2 + s (f**2/2 + R(s**2)), s = f / (2 + f), with
  fdlibm's published minimax coefficients. ``log1p`` forms u = 1 + x and moves its exact rounding
  error (TwoSum) into f, scaled by 2**-k (no second division).
- Special values by selects: inf, NaN, +-0 and the domain edges give libm's result class.

Accuracy (``python -m bench.vmath``, tests/kernels/test_vmath.py): within 1 ulp of glibc's
libm on 1e8 random arguments per function over the whole domain (every binade, subnormals
included), equal to it on >= 96 % of them, and the same result on the edge cases (0, inf, NaN,
exp(0) = 1, log(1) = 0, log1p(-1) = -inf, expm1(-inf) = -1, x itself for tiny expm1/log1p).

Why these and not glibc's libmvec (measured on this repo's machine, llvmlite 0.50 / LLVM 22):
``llvmlite.binding.set_option("", "-vector-library=LIBMVEC")`` (also ``LIBMVEC-X86``, ``SVML``)
with libmvec.so.1 loaded changes nothing: the loop vectorises ``math.exp`` to
``llvm.exp.v8f64`` with or without fastmath flags, and code generation splits it into eight
scalar ``exp`` calls again; the option never reaches the pass pipeline llvmlite builds. Even
mapped, libmvec has per-ISA variants (SSE, AVX2, AVX-512) whose results differ by level and
are documented to 4 ulp, and a cached kernel would need libmvec loaded before it links. Here,
1e6 arguments, best of 15 interleaved rounds, with FMA: libm's loop / this module's = 4.3x
(exp), 6.9x (expm1), 3.3x (log), 8.3x (log1p); NumPy's own SIMD ufuncs are 1.0-1.4x faster
than these alone, so a kernel wins by fusing its passes, not on the function. A table-driven
``exp`` (x = (64k + j) ln2/64 + r, 2**(j/64) from a 64-entry double-double table, a degree-6
polynomial; also within 1 ulp) was 1.29x slower than this one in the same loop, 1e6
arguments, AVX-512: the table reads vectorise into gathers (a throwaway measurement).

The polynomials' steps are ``jit.muladd``: one fused multiply-add where the CPU has FMA (every
x86-64-v3 or v4 CPU), a product and a sum elsewhere (1e6 entries, one thread, with Estrin's
order: Poisson 1.58 -> 1.10 ms, binary cross-entropy 5.17 -> 3.94 ms). So the image's levels
with FMA give the same bits, and those without it (``generic``, ``x86-64-v2``) can differ from
them in the last bit, both within 1 ulp of libm (tests/kernels/test_fma_levels.py runs every
level). LLVM's ``contract`` flag instead would fuse wherever a product and its sum land in one
basic block, which differs between a loop's vectorised body and its remainder: the same
entry's bits would depend on its position.
"""

import numpy as np

from service.kernels.jit import element, muladd

INF = np.inf
NAN = np.nan
#: ln 2 split (fdlibm's constants): LN2_HI has 32 significant bits, so k * LN2_HI is exact
#: for |k| < 2**21; LN2_LO carries the next 53 bits.
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
INV_LN2 = 1.44269504088896338700e00
#: 1.5 * 2**52: adding it rounds a double of magnitude < 2**51 to an integer, which is then the
#: low bits of the sum's significand.
SHIFTER = 6755399441055744.0
SHIFTER_BITS = 0x4338000000000000
EXPONENT_BIAS = 1023
MANTISSA_BITS = 52
#: exp(x) overflows above ~709.78 and underflows to 0 below ~-745.13: clamping x just past
#: those keeps the exponent arithmetic in range while the result still overflows/underflows.
EXP_HIGH = 710.0
EXP_LOW = -746.0
#: 1/n! for n = 2..13: exp(r) - 1 - r = r^2 (1/2! + r/3! + ... + r^11/13!) + O(r^14/14!).
EXP_2 = 1.0 / 2.0
EXP_3 = 1.0 / 6.0
EXP_4 = 1.0 / 24.0
EXP_5 = 1.0 / 120.0
EXP_6 = 1.0 / 720.0
EXP_7 = 1.0 / 5040.0
EXP_8 = 1.0 / 40320.0
EXP_9 = 1.0 / 362880.0
EXP_10 = 1.0 / 3628800.0
EXP_11 = 1.0 / 39916800.0
EXP_12 = 1.0 / 479001600.0
EXP_13 = 1.0 / 6227020800.0
#: fdlibm's minimax coefficients for log1p(f) = f - f^2/2 + s (f^2/2 + R(s^2)), s = f/(2+f).
LG1 = 6.666666666666735130e-01
LG2 = 3.999999999940941908e-01
LG3 = 2.857142874366239149e-01
LG4 = 2.222219843214978396e-01
LG5 = 1.818357216161805012e-01
LG6 = 1.531383769920937332e-01
LG7 = 1.479819860511658591e-01
#: The bits of ~sqrt(2)/2: subtracting it from a double's bits splits it as 2^k * z with z in
#: [sqrt(2)/2, sqrt(2)).
SQRT_HALF_BITS = 0x3FE6A09E667F3BCD
EXPONENT_MASK = -(1 << MANTISSA_BITS)  # 0xfff0000000000000: sign and exponent bits
MIN_NORMAL = 2.2250738585072014e-308
#: ~sqrt(2)/2, the double of SQRT_HALF_BITS.
SQRT_HALF = 0.7071067811865476
TWO_54 = 18014398509481984.0


@element
def _bits(x):
    """The IEEE 754 bits of a float64, as an int64."""
    return np.float64(x).view(np.int64)


@element
def _from_bits(bits):
    return np.int64(bits).view(np.float64)


@element
def _power_of_two(n):
    """2.0 ** n for a normal exponent n (-1022 <= n <= 1023), built from its bits."""
    return _from_bits((n + EXPONENT_BIAS) << MANTISSA_BITS)


@element
def _small_int_to_float(n):
    """float(n) for |n| < 2**51, without an int64-to-double conversion (SSE2 and AVX2 have
    none for vectors)."""
    return _from_bits(n + SHIFTER_BITS) - SHIFTER


@element
def _scale(p, k):
    """p * 2**k for k in [-1077, 1025], in two normal factors: one rounding, also where the
    result is subnormal or overflows."""
    half = k >> 1
    return p * _power_of_two(half) * _power_of_two(k - half)


@element
def _exp_reduce(x):
    """(k, r, r_low) with x = k ln2 + r + r_low, |r| <= ~ln2/2, r_low the rounding error of r."""
    x = EXP_HIGH if x > EXP_HIGH else x  # NaN passes both
    x = EXP_LOW if x < EXP_LOW else x
    return _exp_reduce_in_range(x)


@element
def _exp_reduce_in_range(x):
    """:func:`_exp_reduce` for x in [EXP_LOW, EXP_HIGH] (or NaN)."""
    shifted = x * INV_LN2 + SHIFTER
    k = _bits(shifted) - SHIFTER_BITS
    k_float = shifted - SHIFTER
    high = muladd(-k_float, LN2_HI, x)  # exact, fused or not
    low = k_float * LN2_LO
    r = high - low
    return k, r, (high - r) - low


@element
def _exp_tail(r, r_low):
    """exp(r + r_low) - 1 - r, to a small relative error."""
    r2 = r * r
    # 1/6! + r/7! + ... + r^7/13! in pairs (Estrin's scheme: a shorter chain of dependent
    # operations), then the four leading terms one after the other (Horner's), where the
    # rounding matters most: with Estrin's throughout, expm1 was 2 ulp off at a few arguments
    upper = muladd(
        r2 * r2,
        muladd(r2, muladd(r, EXP_13, EXP_12), muladd(r, EXP_11, EXP_10)),
        muladd(r2, muladd(r, EXP_9, EXP_8), muladd(r, EXP_7, EXP_6)),
    )
    polynomial = muladd(r, upper, EXP_5)
    polynomial = muladd(r, polynomial, EXP_4)
    polynomial = muladd(r, polynomial, EXP_3)
    polynomial = muladd(r, polynomial, EXP_2)
    return muladd(r2, polynomial, r_low)


@element
def exp(x):
    k, r, r_low = _exp_reduce(x)
    tail = _exp_tail(r, r_low)
    head = 1.0 + r
    head_error = (1.0 - head) + r  # exact (Fast2Sum, |r| < 1)
    return _scale(head + (head_error + tail), k)


@element
def _expm1_near(k, r, tail):
    """(2^k - 1) + 2^k r + 2^k tail for -53 <= k <= 52: 2^k - 1 is exact, and so is the first
    sum's error (TwoSum). Other k give something finite, unused."""
    return _expm1_near_in_range(min(max(k, -53), 52), r, tail)


@element
def _expm1_near_in_range(k, r, tail):
    """:func:`_expm1_near` for -53 <= k <= 52."""
    scale = _power_of_two(k)
    offset = scale - 1.0
    shifted_r = scale * r
    near_head = offset + shifted_r
    virtual = near_head - offset
    near_error = (offset - (near_head - virtual)) + (shifted_r - virtual)
    return near_head + (near_error + scale * tail)


@element
def expm1(x):
    k, r, r_low = _exp_reduce(x)
    tail = _exp_tail(r, r_low)
    near = _expm1_near(k, r, tail)
    # Otherwise exp(x) - 1: for k > 52 the 1 is a tail term 2^-k inside the mantissa; for
    # k < -53 it dominates and exp(x) is subtracted from it in one rounding.
    head = 1.0 + r
    head_error = (1.0 - head) + r
    big = k > 52
    unit = _power_of_two(-min(k, 1022)) if big else 0.0
    far = _scale(head + ((head_error + tail) - unit), k)
    far = far if big else far - 1.0
    result = near if (k >= -53) & (k <= 52) else far
    return result if x != 0.0 else x


@element
def expm1_moderate(x):
    """``expm1`` for -37 <= x <= 36, with its accuracy, and nothing of its other paths (the
    range keeps -53 <= k <= 52); x beyond is taken at -37 or 36, -inf at -37. For kernels where
    e^-37 = 8.5e-17 next to -1 is below what they keep (log_cosh)."""
    k, r, r_low = _exp_reduce_in_range(min(max(x, -37.0), 36.0))
    return _expm1_near_in_range(k, r, _exp_tail(r, r_low))


@element
def _log_split(u):
    """(k, f) with u = 2^k (1 + f) and sqrt(2)/2 <= 1 + f < sqrt(2), for a positive normal
    finite u; f is exact."""
    bits = _bits(u)
    offset = bits - SQRT_HALF_BITS
    k = offset >> MANTISSA_BITS
    return k, _from_bits(bits - (offset & EXPONENT_MASK)) - 1.0


@element
def _log_reduced(k, f):
    """k ln2 + log1p(f) for |f| <= ~0.42 (fdlibm's form: s = f / (2 + f),
    log1p(f) = f - f^2/2 + s (f^2/2 + R(s^2)))."""
    return _log_reduced_float(_small_int_to_float(k), f)


@element
def _log_reduced_float(k_float, f):
    """:func:`_log_reduced` with k as a float."""
    s = f / (2.0 + f)
    s2 = s * s
    s4 = s2 * s2
    even = s4 * muladd(s4, muladd(s4, LG6, LG4), LG2)
    odd = s2 * muladd(s4, muladd(s4, muladd(s4, LG7, LG5), LG3), LG1)
    half_f2 = 0.5 * f * f
    correction = muladd(s, half_f2 + (odd + even), k_float * LN2_LO)
    return muladd(k_float, LN2_HI, f - (half_f2 - correction))  # k * LN2_HI is exact


@element
def log(x):
    subnormal = x < MIN_NORMAL
    k, f = _log_split(x * TWO_54 if subnormal else x)
    result = _log_reduced(k - 54 if subnormal else k, f)
    special = -INF if x == 0.0 else (x if x > 0.0 else NAN)
    return result if (x > 0.0) & (x < INF) else special


@element
def log1p(x):
    u = 1.0 + x
    regular = (u > 0.0) & (u < INF)
    result = log1p_finite(x if regular else 0.0)
    special = u if u > 0.0 else NAN  # inf, or NaN below -1 and for NaN
    special = -INF if u == 0.0 else special
    result = result if regular else special
    return result if x != 0.0 else x  # the sign of zero (the result on the true side: faster)


@element
def log1p_finite(x):
    """``log1p`` for x > -1 with 1 + x finite, to the bit (the general function is this plus its
    selects for special values, NaN and the sign of zero; here both zeros give +0). MSLE's
    quotients, at least -1/2, call it directly (+inf gives something finite there, and MSLE
    redoes those entries)."""
    u = 1.0 + x
    virtual = u - 1.0
    error = (1.0 - (u - virtual)) + (x - virtual)  # 1 + x = u + error exactly (TwoSum)
    k, f = _log_split(u)
    # 1 + x = 2^k (1 + f + error 2^-k): the rounding error of 1 + x moves into f, exactly where
    # it matters (k = 0 gives f = x; k = -1 is exact too), instead of fdlibm's division by u.
    return _log_reduced(k, muladd(error, _power_of_two(-min(k, 1022)), f))  # product exact


@element
def log1p_half(e):
    """``log1p(e / 2)`` for -1 <= e <= 0 (e an ``expm1`` of a non-positive number: log-cosh),
    to the bit, without its general steps: 1 + e/2 = 2^k (1 + f) has k = 0 and f = e/2 where
    1 + e/2 rounds to sqrt(2)/2 or more (the general split's boundary), else k = -1 and f = 1 +
    e, exact by Sterbenz's lemma (e in [-1, -1/2]). So no TwoSum, no split from the bits and no
    integer k."""
    low = 1.0 + 0.5 * e < SQRT_HALF
    return _log_reduced_float(-1.0 if low else 0.0, 1.0 + e if low else 0.5 * e)
