"""A request body, read within its limits: size, time, and the worker's byte budget.

- **Size**: a declared ``Content-Length`` over ``LOSS_SERVICE_MAX_BODY_BYTES`` is a 413 before
  anything is read; a body is counted as it arrives and refused as soon as it passes the limit.
- **Memory**: the worker's in-flight byte budget (``LOSS_SERVICE_MAX_IN_FLIGHT_BYTES``) is charged
  with the bytes that have *arrived*, chunk by chunk, never with what a header declares: a client
  that declares 256 MiB and sends one byte holds one byte.
- **Time**: the next bytes must arrive within ``LOSS_SERVICE_BODY_TIMEOUT_SECONDS``, and once the
  body has been arriving that long it must average ``LOSS_SERVICE_BODY_MIN_BYTES_PER_SECOND``;
  else a 408 (Apache's ``mod_reqtimeout`` works the same way: ``body=20,MinRate=500``). Answers
  given before the body was read whole close the connection, so nothing is left half-read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from service.compute.admission import Holding
from service.validation.errors import PayloadTooLarge, RequestTimeout

Receive = Callable[[], Awaitable[dict[str, Any]]]
#: Sent with every answer given before the body was read whole.
CLOSE = {"Connection": "close"}


class ClientGone(Exception):
    """The client disconnected before its body arrived."""


@dataclass
class Progress:
    """How much of the body arrived (for the access log), and whether all of it did."""

    received: int = 0
    complete: bool = False


@dataclass(frozen=True)
class BodyLimits:
    max_bytes: int
    idle_seconds: float
    min_bytes_per_second: int


async def read_body(
    receive: Receive,
    declared: str | None,
    limits: BodyLimits,
    holding: Holding,
    progress: Progress,
) -> bytes | bytearray:
    """The whole body, within ``limits``; the bytes stay charged to ``holding``."""
    if declared is not None and declared.isdigit() and int(declared) > limits.max_bytes:
        raise PayloadTooLarge(
            f"the body has {int(declared)} bytes; the limit is {limits.max_bytes} "
            "(LOSS_SERVICE_MAX_BODY_BYTES)",
            headers=CLOSE,
        )
    body = bytearray()
    loop = asyncio.get_running_loop()
    started = loop.time()
    timer = _IdleTimer(loop, limits.idle_seconds)
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            if chunk:
                progress.received += len(chunk)
                if progress.received > limits.max_bytes:
                    raise PayloadTooLarge(
                        f"the body exceeds the limit of {limits.max_bytes} bytes "
                        "(LOSS_SERVICE_MAX_BODY_BYTES)",
                        headers=CLOSE,
                    )
                holding.reserve(len(chunk))
                if not message.get("more_body", False) and not body:
                    progress.complete = True
                    return chunk  # the whole body in one piece: no copy
                body += chunk
            if not message.get("more_body", False):
                progress.complete = True
                return body
            now = loop.time()
            _check_rate(progress.received, now - started, limits)
            timer.restart(now)
    except asyncio.CancelledError:
        if not timer.fired:
            raise
        if timer.task is not None:
            timer.task.uncancel()
        raise RequestTimeout(
            f"no bytes of the body arrived for {limits.idle_seconds:g} s "
            f"(LOSS_SERVICE_BODY_TIMEOUT_SECONDS) after {progress.received} bytes; "
            "the connection is closed",
            headers=CLOSE,
        ) from None
    finally:
        timer.stop()


class _IdleTimer:
    """Cancels the reading task when no bytes came for ``seconds``: one timer handle per
    request (per chunk of a streamed body), lighter than ``asyncio.timeout``, which costs a
    small request several microseconds more."""

    __slots__ = ("fired", "handle", "loop", "seconds", "task")

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        self.loop, self.seconds = loop, seconds
        self.task = asyncio.current_task()
        self.fired = False
        self.handle = loop.call_at(loop.time() + seconds, self._fire)

    def _fire(self) -> None:
        self.fired = True
        if self.task is not None:
            self.task.cancel()

    def restart(self, now: float) -> None:
        self.handle.cancel()
        self.handle = self.loop.call_at(now + self.seconds, self._fire)

    def stop(self) -> None:
        self.handle.cancel()


def _check_rate(received: int, elapsed: float, limits: BodyLimits) -> None:
    rate = limits.min_bytes_per_second
    if rate and elapsed > limits.idle_seconds and received < rate * elapsed:
        raise RequestTimeout(
            f"the body arrives at {received / elapsed:.0f} bytes/s ({received} bytes in "
            f"{elapsed:.1f} s), below LOSS_SERVICE_BODY_MIN_BYTES_PER_SECOND ({rate}); "
            "the connection is closed",
            headers=CLOSE,
        )


def watch_disconnect(receive: Receive, on_disconnect: Callable[[], None]) -> asyncio.Task:
    """A task calling ``on_disconnect`` if the client leaves (after its body was read whole):
    cancel it once the answer is ready."""
    return asyncio.ensure_future(_await_disconnect(receive, on_disconnect))


async def _await_disconnect(receive: Receive, on_disconnect: Callable[[], None]) -> None:
    message = await receive()
    if message["type"] == "http.disconnect":
        on_disconnect()
