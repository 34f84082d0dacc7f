r"""The conventions of API.md, in one place: weights, per-sample means, cost, gradient scale.

Element :math:`e` of sample :math:`i` has weight :math:`w_e = s_i v_e`, where :math:`s_i` is the
sample weight and :math:`v_e` the element weight inside the sample (mask x class weight x
ignore, from the contract). Then, with :math:`S_i = \sum_{e \in i} v_e l_e` and
:math:`V_i = \sum_{e \in i} v_e`:

- ``per_sample[i]`` = :math:`S_i / V_i` (0 where :math:`V_i = 0`): the sample's weighted mean
  without its own sample weight;
- ``sum`` = :math:`\sum_i s_i S_i`, ``weight_sum`` = :math:`W = \sum_i s_i V_i`;
- ``cost`` = ``sum / weight_sum`` under ``mean`` (0 when W = 0), ``sum`` under ``sum``;
- ``d cost / d predictions`` = :math:`\sum_e c_e \, \partial l_e / \partial p` with
  :math:`c_e = w_e / W` (mean) or :math:`w_e` (sum). The weights do not depend on the
  predictions, so :math:`c_e` is known before the kernel runs and the kernel applies it in
  the same pass that computes :math:`l_e`.

**Means of tiny weights.** A mean does not change when every weight is multiplied by the same
number, but ``sum`` and ``weight_sum`` underflow where the weights are tiny (subnormal:
``5e-324 * 0.1`` is 0, ``1e-320 * 0.3`` keeps about 3 digits), so ``sum / weight_sum`` can be
0 or wrong in the leading digit. The means are therefore formed from weights multiplied by exact
powers of two (:func:`numpy.ldexp`): each sample's element weights so that their largest lies
in [0.5, 1), then the sample factors so that the largest lies in [0.5, 1). Only weights below
0.5 are scaled, and only up: large weights can only overflow, which is a 422 either way. A
scaling by a power of two is exact wherever nothing underflows, so for ordinary weights every
number is bit for bit what the unscaled formulas give (and when no weight is below 0.5 the
unscaled arrays are used as they are). ``cost``, ``per_sample`` and ``c_e`` (under ``mean``)
come from the scaled weights; ``sum`` and ``weight_sum`` keep their definitions, scaled back,
and may underflow (they are what shards merge with).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

import numpy as np

Reduction = Literal["mean", "sum"]
#: A kernel's ``gradient`` and ``scale`` when no gradient is wanted: empty, and two arrays. Passed
#: as one array for both, the kernels ran their loops unvectorised (LLVM's runtime overlap check
#: between the array the loop writes and one it reads fails for the very same buffer):
#: log_cosh on 20,000 entries 630 against 116 us.
NO_GRADIENT = np.empty(0)
NO_SCALE = np.empty(0)
#: Weights at or above this are used as they are (the bottom of frexp's mantissa range).
NORMALISED = 0.5


@dataclass(slots=True)  # (not frozen: a frozen dataclass's __init__ costs ~1 us more)
class Weights:
    r"""The weights as sent (``sample``, ``element``, ``per_sample_total``, ``total``), and the
    same weights scaled for the means (``mean_*``): ``mean_sample[i] * mean_element[e]`` is
    :math:`w_e \cdot 2^{-shift}` (exactly, wherever nothing underflows) and ``mean_total`` is
    :math:`W \cdot 2^{-shift}`. ``mean_element`` row i is :math:`v_e` times a power of two of
    its own, which ``per_sample`` (a ratio within the row) does not see. Without scaling the
    ``mean_*`` fields are the unscaled ones and ``shift`` is 0."""

    n_samples: int
    elements_per_sample: int
    sample: np.ndarray | None  # (N,) or None = all ones
    element: np.ndarray | None  # (N*K,) or None = all ones
    per_sample_total: np.ndarray  # V_i, (N,)
    total: float  # W
    mean_sample: np.ndarray | None  # (N,) or None = all ones
    mean_element: np.ndarray | None  # (N*K,) or None = all ones
    mean_per_sample_total: np.ndarray  # (N,)
    mean_total: float  # W * 2**-shift
    shift: int  # <= 0


def inner_weights(*factors: np.ndarray | None) -> np.ndarray | None:
    r""":math:`v_e`, the weights inside a sample, flat over the element grid: the product of
    the factors a contract gives (mask, class weight of the element's class, 0 where the target
    is ``ignore_index``); ``None`` factors are all ones, and None comes back when all are."""
    weights = None
    for factor in factors:
        if factor is not None:
            weights = factor if weights is None else weights * factor
    return weights


def weights_by_element(
    n: int, k: int, element: np.ndarray | None, sample_weight: np.ndarray | None
) -> np.ndarray:
    r""":math:`w_e = s_i v_e`, flat over the ``(n, k)`` element grid (what the metrics weigh
    their entries by)."""
    if element is None:
        weights = np.ones(n * k)
    else:
        weights = np.array(element, dtype=np.float64, copy=True)
    if sample_weight is not None:
        weights.reshape(n, k)[:] *= sample_weight[:, None]
    return weights


def weigh(n: int, k: int, element: np.ndarray | None, sample_weight: np.ndarray | None) -> Weights:
    """The weights of an element grid of ``n`` samples by ``k`` elements: ``element`` (flat,
    ``n * k``, None = all ones) inside each sample, ``sample_weight`` (``n``, None = all ones)."""
    if element is None:
        per_sample_total = np.full(n, float(k))
    else:
        per_sample_total = element.reshape(n, k).sum(axis=1)
    if sample_weight is None and element is None:
        total = float(n * k)  # what the sum of n copies of k gives, exactly
        return _unscaled(n, k, None, None, per_sample_total, total)
    scaled = _scaled(n, k, sample_weight, element, per_sample_total)
    if scaled is not None:
        return scaled
    if sample_weight is None:
        total = float(per_sample_total.sum())
    else:
        total = float(sample_weight @ per_sample_total)
    return _unscaled(n, k, sample_weight, element, per_sample_total, total)


def _unscaled(
    n: int,
    k: int,
    sample: np.ndarray | None,
    element: np.ndarray | None,
    per_sample_total: np.ndarray,
    total: float,
) -> Weights:
    return Weights(
        n,
        k,
        sample,
        element,
        per_sample_total,
        total,
        mean_sample=sample,
        mean_element=element,
        mean_per_sample_total=per_sample_total,
        mean_total=total,
        shift=0,
    )


def _scaled(
    n: int,
    k: int,
    sample_weight: np.ndarray | None,
    element: np.ndarray | None,
    per_sample_total: np.ndarray,
) -> Weights | None:
    r"""The weights scaled by powers of two for the means; None when none is below 0.5.

    Row i's element weights are multiplied by :math:`2^{-b_i}`, :math:`b_i \le 0` the exponent
    of their largest (in frexp's sense: largest = m 2^b, m in [0.5, 1)) when that is below 0.5.
    Sample i then stands for the factor :math:`f_i = s_i 2^{b_i}`, whose exponent is
    :math:`a_i + b_i` (:math:`s_i = m_i 2^{a_i}`); the factors are multiplied by
    :math:`2^{-E}`, E the largest exponent among the samples that weigh anything, when E < 0.
    Samples that weigh nothing (sample weight 0, or every element weight 0) get factor 0: their
    terms are all 0 anyway, and a huge weight there must not overflow the others' scaling.
    """
    row_exponent = None
    mean_element, mean_per_sample_total = element, per_sample_total
    if element is not None and ((element > 0) & (element < NORMALISED)).any():
        # A row whose total is >= k / 2 has an entry >= 1/2: only the others need their max
        # (and none does when every positive weight is >= 1/2, as with 0/1 masks).
        small = np.flatnonzero((per_sample_total > 0) & (per_sample_total < NORMALISED * k))
        if small.size:
            grid = element.reshape(n, k)
            exponents = np.minimum(np.frexp(grid[small].max(axis=1))[1], 0)
            if exponents.any():
                row_exponent = np.zeros(n, dtype=np.int64)
                row_exponent[small] = exponents
                mean_element = np.ldexp(grid, -row_exponent[:, None]).reshape(-1)
                mean_per_sample_total = mean_element.reshape(n, k).sum(axis=1)
    if row_exponent is None:  # at most the sample weights to scale, by one power of two
        if sample_weight is None:
            return None
        weighing = sample_weight
        if element is not None:
            weighing = np.where(per_sample_total > 0, sample_weight, 0.0)
        largest = float(weighing.max())
        if not 0.0 < largest < NORMALISED:
            return None
        shift = int(np.frexp(largest)[1])
        mean_sample = np.ldexp(weighing, -shift)
    else:
        if sample_weight is None:
            mantissa, exponent = np.full(n, 0.5), np.ones(n, dtype=np.int64)  # 1 = 0.5 * 2**1
        else:
            mantissa, exponent = np.frexp(sample_weight)
        exponent = exponent + row_exponent
        weighs = (mantissa > 0) & (mean_per_sample_total > 0)
        if not weighs.any():
            return None  # W = 0: nothing to scale
        shift = min(int(exponent[weighs].max()), 0)
        mean_sample = np.ldexp(np.where(weighs, mantissa, 0.0), exponent - shift)
    mean_total = float(mean_sample @ mean_per_sample_total)
    return Weights(
        n,
        k,
        sample_weight,
        element,
        per_sample_total,
        total=float(np.ldexp(mean_total, shift)),
        mean_sample=mean_sample,
        mean_element=mean_element,
        mean_per_sample_total=mean_per_sample_total,
        mean_total=mean_total,
        shift=shift,
    )


def mean_weight_grid(weights: Weights) -> np.ndarray:
    r""":math:`w_e \cdot 2^{-shift}` over the element grid (N, K): the weights to form any other
    weighted mean from (a per-class mean, say) without the underflow of the raw products."""
    n, k = weights.n_samples, weights.elements_per_sample
    sample, element = weights.mean_sample, weights.mean_element
    grid = np.ones((n, k)) if element is None else element.reshape(n, k).copy()
    if sample is not None:
        grid *= sample[:, None]
    return grid


def column_means(element_losses: np.ndarray, weights: Weights) -> np.ndarray:
    r"""The weighted mean over samples of each element position (a class, for the overlap
    losses' ``per_class``): :math:`\sum_i w_{ik} l_{ik} / \sum_i w_{ik}`, 0 where the weights
    are 0; formed from the scaled weights, so tiny weights do not underflow."""
    grid = (weights.n_samples, weights.elements_per_sample)
    w = mean_weight_grid(weights)
    totals = w.sum(axis=0)
    means = np.zeros(grid[1])
    np.divide((w * element_losses.reshape(grid)).sum(axis=0), totals, out=means, where=totals > 0)
    return means


def gradient_scale(weights: Weights, reduction: Reduction) -> np.ndarray | float:
    """:math:`c_e`, flat over the element grid: what each element's derivative is multiplied by;
    one number when it is the same for every element (no weights: 1 / W under ``mean``, 1 under
    ``sum``), which the kernels read as such (:func:`service.kernels.jit.scale_at`).

    Under ``mean`` the scaled weights are divided by their total (never multiplied by 1/W,
    which overflows for W below ~5.6e-309 although every weight / W is representable).
    """
    n, k = weights.n_samples, weights.elements_per_sample
    if reduction == "mean":
        sample, element, total = weights.mean_sample, weights.mean_element, weights.mean_total
    else:
        sample, element, total = weights.sample, weights.element, weights.total
    if sample is None and element is None:
        if reduction != "mean":
            return 1.0
        return float(1.0 / total) if total > 0 else 0.0  # = 1 / W, each weight being 1
    if element is None:
        scale = np.repeat(cast(np.ndarray, sample), k)  # (not None: one of the two is set)
    elif sample is None:
        scale = element.copy()
    else:
        scale = (element.reshape(n, k) * sample[:, None]).reshape(-1)
    if reduction == "mean":
        if total > 0:
            scale /= total
        else:
            scale[:] = 0.0
    return scale


@dataclass(frozen=True)
class Reduced:
    cost: float
    per_sample: np.ndarray
    sum: float
    weight_sum: float
    #: The weighted mean sum / weight_sum under either reduction, formed from the scaled
    #: weights (exact where ``sum`` and ``weight_sum`` underflow); 0 when W = 0.
    mean: float


def reduce(element_losses: np.ndarray, weights: Weights, reduction: Reduction) -> Reduced:
    n, k = weights.n_samples, weights.elements_per_sample
    losses = element_losses.reshape(n, k)
    element, sample = weights.mean_element, weights.mean_sample
    if element is None:
        per_sample_sum = losses.sum(axis=1)
    else:
        per_sample_sum = np.einsum("ij,ij->i", losses, element.reshape(n, k))
    if element is None and k > 0:  # every sample's total is k: one division
        per_sample = per_sample_sum / float(k)
    else:
        per_sample = np.zeros(n)
        np.divide(
            per_sample_sum,
            weights.mean_per_sample_total,
            out=per_sample,
            where=weights.mean_per_sample_total > 0,
        )
    if sample is None:
        scaled_sum = float(per_sample_sum.sum())
    else:
        scaled_sum = float(sample @ per_sample_sum)
    total_sum = float(np.ldexp(scaled_sum, weights.shift)) if weights.shift else scaled_sum
    mean = scaled_sum / weights.mean_total if weights.mean_total > 0 else 0.0
    return Reduced(
        cost=mean if reduction == "mean" else total_sum,
        per_sample=per_sample,
        sum=total_sum,
        weight_sum=weights.total,
        mean=mean,
    )
