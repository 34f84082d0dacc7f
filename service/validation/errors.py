"""One small error hierarchy, rendered as RFC 9457 problem+json by one renderer
(:mod:`service.api.problems`).

Validation stages raise the subclass that names their stage (structure, shape, domain,
result); handlers never build error bodies themselves. ``type`` is a relative URI reference
``/problems/<slug>``; the README lists the slugs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PROBLEM_MEDIA_TYPE = "application/problem+json"
#: A 422 lists at most this many problems; ``detail`` counts the rest.
MAX_LISTED_ERRORS = 20
Loc = Sequence[str | int]


class ServiceError(Exception):
    """Base of every error a client can cause. Subclasses fix ``status``, ``slug`` and ``title``."""

    status = 500
    slug = "internal-error"
    title = "Internal Server Error"

    def __init__(
        self,
        detail: str,
        errors: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.headers = headers

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"/problems/{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        return body


class MalformedBody(ServiceError):
    status, slug, title = 400, "malformed-json", "Malformed JSON"


class UnknownLoss(ServiceError):
    status, slug, title = 404, "unknown-loss", "Unknown Loss"


class PayloadTooLarge(ServiceError):
    status, slug, title = 413, "payload-too-large", "Payload Too Large"


class WorkTooLarge(PayloadTooLarge):
    """413: the request's estimated work is past ``LOSS_SERVICE_MAX_WORK``."""

    slug, title = "work-too-large", "Work Too Large"


class RequestTimeout(ServiceError):
    """408: the body stalled (``LOSS_SERVICE_BODY_TIMEOUT_SECONDS``); the connection closes."""

    status, slug, title = 408, "request-timeout", "Request Timeout"


class HeadersTooLarge(ServiceError):
    """431: request line plus headers past ``LOSS_SERVICE_MAX_HEADER_BYTES`` (answered by the
    connection guards, :mod:`service.api.connections`, before the app sees the request)."""

    status, slug, title = 431, "headers-too-large", "Request Header Fields Too Large"


class DeadlineExceeded(ServiceError):
    """504: the computation passed ``LOSS_SERVICE_COMPUTE_TIMEOUT_SECONDS`` and was stopped."""

    status, slug, title = 504, "deadline-exceeded", "Deadline Exceeded"


class UnsupportedMediaType(ServiceError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported Media Type"


class InvalidInput(ServiceError):
    """422: the request parsed but does not fit the loss. Carries ``errors: [{loc, msg}]``."""

    status, slug, title = 422, "invalid-input", "Invalid Input"

    def __init__(
        self, loc: Loc, msg: str, more: Sequence[dict[str, Any]] = (), unlisted: int = 0
    ) -> None:
        """``unlisted``: problems found beyond those in ``errors`` (a list is capped at
        :data:`MAX_LISTED_ERRORS`, so a request with a million mistakes gets a small answer)."""
        errors = [{"loc": list(loc), "msg": msg}, *more]
        self.unlisted = unlisted
        if unlisted:
            detail = (
                f"{msg} (and {len(more) + unlisted} more problem(s); errors lists the first "
                f"{len(errors)})"
            )
        elif more:
            detail = f"{msg} (and {len(more)} more problem(s), see errors)"
        else:
            detail = msg
        super().__init__(detail, errors)


class StructureError(InvalidInput):
    """Stage 1: types, required fields, params (Pydantic), array structure."""

    slug, title = "invalid-structure", "Invalid Request Structure"


class ShapeError(InvalidInput):
    """Stage 2: the loss's shape contract."""

    slug, title = "shape-mismatch", "Shape Mismatch"


class DomainError(InvalidInput):
    """Stage 3: values outside the loss's domain (non-finite input, negative weights, ...)."""

    slug, title = "out-of-domain", "Value Out Of Domain"


class NonFiniteResult(InvalidInput):
    """The computation overflowed: a 200 never carries NaN or Infinity."""

    slug, title = "non-finite-result", "Non-Finite Result"


def body_loc(field: str, *index: int | str) -> list[str | int]:
    """The ``loc`` of a request body field, in FastAPI's convention (``["body", field, ...]``)."""
    return ["body", field, *index]


def index_text(field: str, index: Sequence[int]) -> str:
    """``predictions[2][0]``: how messages name one entry of an array."""
    return field + "".join(f"[{int(i)}]" for i in index)
