"""A request's compute deadline and cancel flag, checked between chunks of its work.

Every scoring request computes under a :class:`Deadline`: ``LOSS_SERVICE_COMPUTE_TIMEOUT_SECONDS``
from the moment it is admitted to compute, and cancelled early when its client goes away. Work
never runs for long between two :func:`checkpoint` calls: kernels run in chunks of about
:data:`CHUNK_SECONDS` (:mod:`service.compute.parallel`), gzip members and evaluation terms are checked one
by one. A checkpoint past the deadline raises :class:`~service.validation.errors.DeadlineExceeded` (a 504);
after a cancel it raises :class:`ClientClosed`, whose answer nobody reads.

The deadline of the running job is a context variable, set by the compute thread around the job
(:meth:`Deadline.bind_thread`), so code deep in the pipeline checks it without every signature carrying
it; threads a job spreads its kernels over receive it explicitly.
"""

from __future__ import annotations

import contextvars
import time

from service.validation.errors import DeadlineExceeded, ServiceError

#: Estimated seconds of work between two checks of the deadline.
CHUNK_SECONDS = 0.01


class ClientClosed(ServiceError):
    """The client went away while its request computed; the answer is never sent."""

    status, slug, title = 499, "client-closed-request", "Client Closed Request"


class Deadline:
    """When the work must stop (``time.monotonic`` seconds) and whether it was cancelled."""

    __slots__ = ("cancelled", "expires", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self.cancelled = False

    def cancel(self) -> None:
        """Stop at the next checkpoint (thread-safe: a plain flag read by the workers)."""
        self.cancelled = True

    def stopped(self) -> bool:
        return self.cancelled or time.monotonic() > self.expires

    def check(self) -> None:
        if self.cancelled:
            raise ClientClosed("the client closed the connection; the work was stopped")
        if time.monotonic() > self.expires:
            raise DeadlineExceeded(
                f"the computation passed its deadline of {self.seconds:g} s "
                "(LOSS_SERVICE_COMPUTE_TIMEOUT_SECONDS) and was stopped; send fewer entries per "
                "request, or split the batch"
            )

    def bind_thread(self) -> contextvars.Token:
        """Make this the current deadline of the calling thread (until :meth:`unbind_thread`)."""
        return _CURRENT.set(self)

    @staticmethod
    def unbind_thread(token: contextvars.Token) -> None:
        _CURRENT.reset(token)


_CURRENT: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("deadline", default=None)


def current() -> Deadline | None:
    """The deadline of the job running in this thread (None outside a request: tests, warm-up)."""
    return _CURRENT.get()


def checkpoint() -> None:
    """Raise if the current job passed its deadline or was cancelled."""
    deadline = _CURRENT.get()
    if deadline is not None:
        deadline.check()
