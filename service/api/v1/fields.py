"""What the ``/v1`` request bodies share: arrays typed for Pydantic without being walked by it,
the outputs a request may ask for, and the element budget their arrays are read within."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, WithJsonSchema

from service.api.codec import nested_size, to_array
from service.validation.contracts import Inputs
from service.validation.errors import PayloadTooLarge

#: JSON Schema of a nested array of numbers (inline, so Pydantic can merge field metadata).
NUMBER_ARRAY_SCHEMA = {
    "type": "array",
    "items": {"anyOf": [{"type": "number"}, {"type": "array"}]},
    "description": "A JSON nested list of numbers: rectangular, finite.",
}
NumberArray = Annotated[Any, WithJsonSchema(NUMBER_ARRAY_SCHEMA)]
Output = Literal["cost", "per_sample", "gradient"]
ALL_OUTPUTS: tuple[Output, ...] = ("cost", "per_sample", "gradient")
#: Longest ``include`` list (its names may repeat); a longer list is refused before its entries
#: are checked one by one.
MAX_INCLUDE = 16


class ElementBudget:
    """Counts array elements across a request; 413 past LOSS_SERVICE_MAX_ELEMENTS, decided
    from the decoded JSON lists' lengths before NumPy allocates the array."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen = 0

    def take(self, value: Any, convert: Callable[[Any], np.ndarray]) -> np.ndarray:
        """``convert(value)``, once the elements ``value`` holds fit in what is left."""
        self._check(self.seen + nested_size(value))
        array = convert(value)
        self.seen += array.size
        self._check(self.seen)
        return array

    def _check(self, total: int) -> None:
        if total > self.limit:
            raise PayloadTooLarge(
                f"the request holds more than {self.limit} array elements "
                "(LOSS_SERVICE_MAX_ELEMENTS)"
            )


def read_inputs(request: BaseModel, budget: ElementBudget, check_booleans: bool = True) -> Inputs:
    """The payload's arrays (predictions, targets, optional sample_weight and mask) as float64."""
    arrays: dict[str, np.ndarray | None] = {}
    for field in ("predictions", "targets", "sample_weight", "mask"):
        value = getattr(request, field)
        if value is None and field in ("sample_weight", "mask"):
            arrays[field] = None
            continue
        convert = partial(to_array, field=field, check_booleans=check_booleans)
        arrays[field] = budget.take(value, convert)
    return Inputs(**arrays)  # type: ignore[arg-type]
