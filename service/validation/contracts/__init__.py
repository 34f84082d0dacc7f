"""Stage 2, the shape contract: which arrays a loss takes, and what its elements are.

A contract turns validated float64 arrays (:class:`Inputs`) into a :class:`Batch`: the arrays
handed to the kernel and the *element grid* (N samples x K elements each) that the reduction
works on. Each family of losses declares one contract; messages name both shapes and say
what was expected.
"""

from service.validation.contracts.alignments import Alignments
from service.validation.contracts.base import (
    Batch,
    Contract,
    Inputs,
    check_sample_weight,
    element_mask,
    require_batch,
    require_same_shape,
    shape_text,
)
from service.validation.contracts.boxes import Boxes
from service.validation.contracts.classes import ClassAxis, ClassLabels, require_class_axis
from service.validation.contracts.elementwise import Elementwise
from service.validation.contracts.overlap import Overlap

__all__ = [
    "Alignments",
    "Batch",
    "Boxes",
    "ClassAxis",
    "ClassLabels",
    "Contract",
    "Elementwise",
    "Inputs",
    "Overlap",
    "check_sample_weight",
    "element_mask",
    "require_batch",
    "require_class_axis",
    "require_same_shape",
    "shape_text",
]
