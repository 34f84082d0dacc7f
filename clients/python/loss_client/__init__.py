"""Evaluation client of loss-service: a data set of any size scored in shards over replicas,
the shards' states merged exactly by the service (``loss-eval`` on the command line).

    from loss_client import Client

    result = Client(["http://127.0.0.1:8000"]).evaluate(
        predictions, targets, terms=["binary_cross_entropy"], metrics=["roc_auc"]
    )
    result.cost, result.metrics["roc_auc"], result.terms["binary_cross_entropy"].sum
"""

from loss_client.arrays import InputError, read_array
from loss_client.client import Client
from loss_client.result import GroupResult, Result, TermResult, Worst
from loss_client.specs import SpecError, parse_metric, parse_term
from loss_client.transport import (
    Cancelled,
    ClientError,
    ServiceError,
    Transport,
    UnavailableError,
)
from loss_client.version import __version__

__all__ = [
    "Cancelled",
    "Client",
    "ClientError",
    "GroupResult",
    "InputError",
    "Result",
    "ServiceError",
    "SpecError",
    "TermResult",
    "Transport",
    "UnavailableError",
    "Worst",
    "__version__",
    "parse_metric",
    "parse_term",
    "read_array",
]
