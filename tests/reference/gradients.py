"""Central differences of the reference cost: the gradient every kernel is checked against.

The finite differences differentiate the reference (:mod:`tests.reference`), which shares no
code with the service, so a wrong derivative, a wrong chain-rule scale (1 / weight_sum under
mean, w_e under sum) or a weight applied in the wrong place all show.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.reference import reduction as reference

#: Default step: h = STEP * max(1, |p|).
STEP = 1e-6


def finite_difference_gradient(
    case: Any, reduction: str, step: float = STEP, relative: bool = True
) -> np.ndarray:
    """Central differences of the reference cost, one entry of predictions at a time, with step
    ``step * max(1, |p|)`` (``relative``) or ``step``. ``case`` is a
    :class:`tests.strategies.samplers.Case` (name, arrays, params, weights, mask).

    The weights do not depend on the predictions and the reduction is linear in the element
    losses, so cost(p + h) - cost(p - h) is the reduction of the element-wise differences
    l_e(p + h) - l_e(p - h); taking the differences first leaves the elements an entry does not
    enter at exactly 0, so the rounding error scales with the elements it enters, not with the
    whole cost (an O(1) cost would otherwise swamp a derivative of 1e-5 through a small weight).
    """
    weights = reference.element_weights(
        case.name, case.predictions, case.targets, case.params, case.mask
    )
    gradient = np.zeros(case.predictions.shape)
    flat_gradient = gradient.reshape(-1)
    for index in range(case.predictions.size):
        point = float(case.predictions.reshape(-1)[index])
        h = step * max(1.0, abs(point)) if relative else step
        losses = []
        for shifted in (point + h, point - h):
            predictions = case.predictions.copy()
            predictions.reshape(-1)[index] = shifted
            losses.append(
                reference.element_losses(case.name, predictions, case.targets, case.params)
            )
        differences = [up - down for up, down in zip(*losses, strict=True)]
        reduced = reference.reduce(
            differences, case.n_samples, case.sample_weight, weights, reduction
        )
        # (point + h) - (point - h) as actually represented, not 2 * h.
        flat_gradient[index] = reduced.cost / ((point + h) - (point - h))
    return gradient
