"""Every answer of the HTTP API as a :class:`Reply`, and every error as RFC 9457 problem+json.

One renderer for both protocols: ``/v1`` answers the service's problem; ``/v2`` (the Open
Inference Protocol) adds the protocol's ``error`` member, which tritonclient and KServe clients
read, and answers every invalid request with a 400 (a ``/v1`` 422 is a ``/v2`` 400 with the same
``type``, ``title``, ``detail`` and ``errors``).
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson

from service.validation.errors import PROBLEM_MEDIA_TYPE, InvalidInput, ServiceError

JSON = "application/json"
BINARY = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    media_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()


def json_reply(body: Any, status: int = 200) -> Reply:
    return Reply(status, orjson.dumps(body))


def problem(error: ServiceError, *, inference: bool = False) -> dict[str, Any]:
    """The problem+json body; for ``/v2`` with the protocol's status and ``error`` member."""
    body = error.problem()
    if inference:
        body["status"] = 400 if isinstance(error, InvalidInput) else error.status
        body["error"] = error.detail
    return body


def problem_reply(error: ServiceError, *, inference: bool = False) -> Reply:
    body = problem(error, inference=inference)
    headers = tuple((error.headers or {}).items())
    return Reply(body["status"], orjson.dumps(body), PROBLEM_MEDIA_TYPE, headers)


class HttpProblem(ServiceError):
    """An HTTP-level error of the router: an unknown route (404), a wrong method (405)."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status, self.title, self.slug = status, HTTPStatus(status).phrase, f"http-{status}"
        super().__init__(self.title, headers=headers)


INTERNAL_ERROR = "The service failed to process the request."
