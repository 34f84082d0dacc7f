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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from service.contracts import Batch, shape_text
from service.errors import DomainError, ShapeError, body_loc

Reduction = Literal["mean", "sum"]
NO_GRADIENT = np.empty(0)


@dataclass(frozen=True)
class Weights:
    n_samples: int
    elements_per_sample: int
    sample: np.ndarray | None  # (N,) or None = all ones
    element: np.ndarray | None  # (N*K,) or None = all ones
    per_sample_total: np.ndarray  # V_i, (N,)
    total: float  # W


def check_sample_weight(sample_weight: np.ndarray | None, n_samples: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    if sample_weight.shape != (n_samples,):
        raise ShapeError(
            body_loc("sample_weight"),
            f"sample_weight has shape {shape_text(sample_weight.shape)} but predictions has "
            f"{n_samples} sample(s); sample_weight must be ({n_samples},)",
        )
    negative = sample_weight < 0
    if negative.any():
        index = int(np.argmax(negative))
        raise DomainError(
            body_loc("sample_weight", index),
            f"sample_weight[{index}] = {sample_weight[index]:g} is negative; weights must be >= 0",
        )
    return sample_weight


def weigh(batch: Batch, sample_weight: np.ndarray | None) -> Weights:
    n, k = batch.n_samples, batch.elements_per_sample
    element = batch.element_weights
    if element is None:
        per_sample_total = np.full(n, float(k))
    else:
        per_sample_total = element.reshape(n, k).sum(axis=1)
    if sample_weight is None and element is None:
        total = float(n * k)  # what the sum of n copies of k gives, exactly
    elif sample_weight is None:
        total = float(per_sample_total.sum())
    else:
        total = float(sample_weight @ per_sample_total)
    return Weights(n, k, sample_weight, element, per_sample_total, total)


def gradient_scale(weights: Weights, reduction: Reduction) -> np.ndarray:
    """:math:`c_e`, flat over the element grid: what each element's derivative is multiplied by.

    Under ``mean`` the weights are divided by W (never multiplied by 1/W, which overflows for
    W below ~5.6e-309 although every weight / W is representable).
    """
    n, k = weights.n_samples, weights.elements_per_sample
    if weights.sample is None and weights.element is None:
        if reduction == "mean" and weights.total > 0:
            return np.full(n * k, 1.0 / weights.total)  # = 1 / W, each weight being 1
        scale = np.ones(n * k)
    elif weights.element is None:
        scale = np.repeat(weights.sample, k)
    elif weights.sample is None:
        scale = weights.element.copy()
    else:
        scale = (weights.element.reshape(n, k) * weights.sample[:, None]).reshape(-1)
    if reduction == "mean":
        if weights.total > 0:
            scale /= weights.total
        else:
            scale[:] = 0.0
    return scale


@dataclass(frozen=True)
class Reduced:
    cost: float
    per_sample: np.ndarray
    sum: float
    weight_sum: float


def reduce(element_losses: np.ndarray, weights: Weights, reduction: Reduction) -> Reduced:
    n, k = weights.n_samples, weights.elements_per_sample
    losses = element_losses.reshape(n, k)
    if weights.element is None:
        per_sample_sum = losses.sum(axis=1)
    else:
        per_sample_sum = np.einsum("ij,ij->i", losses, weights.element.reshape(n, k))
    if weights.element is None and k > 0:  # every sample's total is k: one division
        per_sample = per_sample_sum / float(k)
    else:
        per_sample = np.zeros(n)
        np.divide(
            per_sample_sum,
            weights.per_sample_total,
            out=per_sample,
            where=weights.per_sample_total > 0,
        )
    if weights.sample is None:
        total_sum = float(per_sample_sum.sum())
    else:
        total_sum = float(weights.sample @ per_sample_sum)
    if reduction == "mean":
        cost = total_sum / weights.total if weights.total > 0 else 0.0
    else:
        cost = total_sum
    return Reduced(cost=cost, per_sample=per_sample, sum=total_sum, weight_sum=weights.total)
