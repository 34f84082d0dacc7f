"""Every answer of the HTTP API as a :class:`Reply`, and every error as RFC 9457 problem+json.

One renderer for both protocols: ``/v1`` answers the service's problem; ``/v2`` (the Open
Inference Protocol) adds the protocol's ``error`` member, which tritonclient and KServe clients
read, and answers every invalid request with a 400 (a ``/v1`` 422 is a ``/v2`` 400 with the same
``type``, ``title``, ``detail`` and ``errors``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson

from service.validation.errors import PROBLEM_MEDIA_TYPE, InvalidInput, ServiceError

JSON = "application/json"
BINARY = "application/octet-stream"


class Pieces:
    """A large answer in the pieces it was encoded in (:func:`service.api.codec.encode`),
    never joined whole: the HTTP app sends them in turn, each batch of about
    :data:`BATCH_BYTES` joined and let go once sent, so the answer's bytes are held once (a
    join of 88 MB of JSON doubled them at its peak)."""

    BATCH_BYTES = 1 << 20

    __slots__ = ("_pieces", "size")

    def __init__(self, pieces: Iterable[bytes | memoryview]) -> None:
        self._pieces = deque(pieces)
        self.size = sum(len(piece) for piece in self._pieces)  # bytes: every view is of bytes

    def __len__(self) -> int:
        return self.size

    def batches(self) -> Iterator[bytes]:
        """The answer's bytes in order, about BATCH_BYTES at a time; each piece is dropped as
        it is taken, so what was sent is freed."""
        group: list[bytes | memoryview] = []
        length = 0
        while self._pieces:
            piece = self._pieces.popleft()
            group.append(piece)
            length += len(piece)
            if length >= self.BATCH_BYTES:
                yield b"".join(group)
                group, length = [], 0
        if group:
            yield b"".join(group)

    def __bytes__(self) -> bytes:
        """The whole answer in one buffer, joined once from the pieces, which are let go."""
        whole = b"".join(self._pieces)
        self._pieces.clear()
        return whole


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes | Pieces
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
