"""Admission to compute: one worker's bounds on scoring work, shared by every protocol.

``LOSS_SERVICE_MAX_IN_FLIGHT`` requests computing (or queued to), and
``LOSS_SERVICE_MAX_IN_FLIGHT_BYTES`` of request bytes held; past either a request is refused at
once (a 503 with ``Retry-After`` over HTTP) instead of waiting, so memory and queueing stay
bounded under any load.
"""

from __future__ import annotations

import threading

from service.validation.errors import ServiceError


class Overloaded(ServiceError):
    status, slug, title = 503, "overloaded", "Service Overloaded"


class Admission:
    """Bounds on one worker's scoring work: requests computing, and body bytes held.

    ``requests`` counts requests from the moment they are handed to a compute lane until their
    computation ends (queued or running): a request holds a slot only while it computes, never
    while its body arrives. ``bytes`` counts body bytes that have arrived (and, for compressed
    bodies, the inflated bytes), until the request's answer is ready. Past either bound the
    request gets a 503 with ``Retry-After`` instead of waiting, so memory and queueing stay
    bounded under any load. Bytes are charged from compute threads too (inflation), hence the
    lock; requests only from the event loop.
    """

    def __init__(self, max_requests: int, max_bytes: int, retry_after: int) -> None:
        self.max_requests, self.max_bytes, self.retry_after = max_requests, max_bytes, retry_after
        self.requests = 0
        self.bytes = 0
        self._lock = threading.Lock()

    def refusal(self, detail: str) -> Overloaded:
        return Overloaded(detail, headers={"Retry-After": str(self.retry_after)})

    def enter(self) -> None:
        if self.requests >= self.max_requests:
            raise self.refusal(
                f"{self.requests} scoring requests are computing or waiting to, the limit of this "
                f"worker (LOSS_SERVICE_MAX_IN_FLIGHT); retry after {self.retry_after} s"
            )
        self.requests += 1

    def leave(self) -> None:
        self.requests -= 1

    def reserve(self, size: int) -> None:
        with self._lock:
            if self.bytes + size > self.max_bytes:
                raise self.refusal(
                    f"the worker holds {self.bytes} body bytes and this request needs {size} "
                    f"more, past LOSS_SERVICE_MAX_IN_FLIGHT_BYTES ({self.max_bytes}); "
                    f"retry after {self.retry_after} s"
                )
            self.bytes += size

    def release(self, size: int) -> None:
        with self._lock:
            self.bytes -= size


class Holding:
    """The bytes one request holds in the worker's budget, all released when it ends."""

    __slots__ = ("admission", "bytes")

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self.bytes = 0

    def reserve(self, size: int) -> None:
        self.admission.reserve(size)
        self.bytes += size

    def release(self) -> None:
        self.admission.release(self.bytes)
        self.bytes = 0
