"""Domains several losses share, as the ``domain`` of their records: checks on a batch that
its shape contract has accepted (:mod:`service.validation.domain` has the checks themselves)."""

from __future__ import annotations

from typing import Any

from service.validation.contracts import Batch
from service.validation.domain import require_probabilities, require_range


def probability_predictions(batch: Batch, params: Any) -> None:
    """A loss's domain: predictions are probabilities unless ``params.from_logits``."""
    require_probabilities(batch.predictions, params.from_logits)


def probabilities_and_soft_targets(batch: Batch, params: Any) -> None:
    """A loss's domain: probability predictions (unless logits) and targets in [0, 1]."""
    require_probabilities(batch.predictions, params.from_logits)
    require_range(batch.targets, "targets", 0.0, 1.0)
