"""Naive, obviously-right references for every loss and for the reduction, sharing no code
with the service's kernels (every formula re-typed from ../shared/LOSSES.md and API.md).

- :data:`REFERENCES`: the one table, keyed by canonical loss name (:mod:`.losses`), built on
  the families' formulas (:mod:`.regression`, :mod:`.classification`, :mod:`.structured`,
  :mod:`.ctc`);
- the reduction of API.md over them (:mod:`.reduction`) and central differences of the
  reference cost (:mod:`.gradients`);
- the JSON reader's reference, the decoder before it (:mod:`.jsonread`).
"""

from tests.reference.gradients import finite_difference_gradient
from tests.reference.losses import REFERENCES, Reference, class_vectors, flat
from tests.reference.reduction import (
    ReferenceResult,
    element_grid,
    element_losses,
    element_weights,
    entry_weights,
    extras,
    has_class_axis,
    reduce,
    reference_cost,
    reference_result,
)

__all__ = [
    "REFERENCES",
    "Reference",
    "ReferenceResult",
    "class_vectors",
    "element_grid",
    "element_losses",
    "element_weights",
    "entry_weights",
    "extras",
    "finite_difference_gradient",
    "flat",
    "has_class_axis",
    "reduce",
    "reference_cost",
    "reference_result",
]
