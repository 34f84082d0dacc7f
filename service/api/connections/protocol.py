"""Connection guards for uvicorn's httptools protocol: bounded headers, a header deadline and a
bound on open connections per worker.

uvicorn has none of the three: a request line or header value grows without limit (httptools
and uvicorn concatenate the pieces), a connection that never completes its headers stays open
for ever, and past the open-file limit ``accept`` fails with EMFILE, asyncio stops accepting and
even ``/healthz`` is refused. :class:`GuardedHttpToolsProtocol` adds, before any byte reaches
the ASGI app (so before API keys are checked):

- **Header bytes.** While a request's line and headers are incomplete, ``data_received`` counts
  the bytes and feeds the parser no more than ``LOSS_SERVICE_MAX_HEADER_BYTES`` of them; past
  that a ``431 /problems/headers-too-large`` and a close. The count is exact for a request that
  starts its own read; one that starts inside the read which ended the previous request is
  counted from the next read, so at most one read (256 kB) or one limit more is ever parsed.
- **Header deadline.** The headers must be complete ``LOSS_SERVICE_HEADER_TIMEOUT_SECONDS``
  after the connection opens (or, on a kept-alive connection, after the next request's first
  byte); else a ``408 /problems/request-timeout`` and a close. Idle kept-alive connections keep
  uvicorn's keep-alive timeout. One TimerHandle per connection, re-armed only when it fires.
- **Connections.** At most ``LOSS_SERVICE_MAX_CONNECTIONS`` per worker (0: derived from the
  open-file limit). At the bound, the oldest connection still sending its headers, else idle,
  else sending a body with no response started, is closed to make room (:mod:`service.api.connections.bound`).

A 431 or 408 for a pipelined request waits until the responses owed to the requests before it
are written (HTTP answers in order); input is dropped meanwhile. After writing one, the
connection half-closes and reads and drops input for at most ``LINGER_SECONDS`` (nginx's
"lingering close"): closing a socket with unread input makes the kernel send a reset, which can
destroy the response before the client reads it.

uvicorn 0.55 internals relied on (``uvicorn.protocols.http.httptools_impl``):
``HttpToolsProtocol.__init__(config, server_state, app_state, _loop)``; its parser callbacks
``on_message_begin``, ``on_headers_complete``, ``on_message_complete`` (called synchronously
from ``parser.feed_data``); ``on_response_complete`` (called by the cycle when a response ends;
starts the next queued ``pipeline`` request or arms the keep-alive timer);
``_unset_keepalive_if_required``; ``data_received`` (cancels the keep-alive timer, feeds
``self.parser``, answers its own 400 and closes); ``handle_websocket_upgrade``; the attributes
``transport``, ``flow``, ``cycle`` (the last parsed request: ``response_started``,
``response_complete``), ``pipeline``, ``loop``, ``client``, ``server_state`` (one per worker
process; ``default_headers``), ``timeout_keep_alive_task``, ``timeout_keep_alive`` and
``timeout_keep_alive_handler``; and the module constant ``STATUS_LINE``. tests/
test_connections.py goes through each of them on a real server (all but the WebSocket upgrade:
no WebSocket library is installed, so uvicorn never calls it).
"""

from __future__ import annotations

import logging
import weakref
from asyncio import TimerHandle
from typing import Any, NamedTuple

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from service.api.connections.bound import ConnectionTable, Phase, resolve_max_connections
from service.ops.settings import get_settings
from service.validation.errors import (
    PROBLEM_MEDIA_TYPE,
    HeadersTooLarge,
    RequestTimeout,
    ServiceError,
)

logger = logging.getLogger("service")

#: After a 431 or 408: how long the half-closed connection still reads (and drops) input.
LINGER_SECONDS = 2.0
#: A header timer that fires this close to its deadline counts as expired (uvloop's timers
#: have millisecond resolution and may fire a little early).
TIMER_SLACK_SECONDS = 0.005


class Limits(NamedTuple):
    """One worker's settings for its connections, and its table of them."""

    max_header_bytes: int
    header_timeout: float
    table: ConnectionTable


_LIMITS: weakref.WeakKeyDictionary[ServerState, Limits] = weakref.WeakKeyDictionary()


def limits_for(server_state: ServerState) -> Limits:
    """The limits of this uvicorn server (one per worker process), read from the settings."""
    limits = _LIMITS.get(server_state)
    if limits is None:
        settings = get_settings()
        limits = Limits(
            settings.max_header_bytes,
            settings.header_timeout_seconds,
            ConnectionTable(resolve_max_connections(settings.max_connections)),
        )
        _LIMITS[server_state] = limits
    return limits


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounded headers, a header deadline and a bound on
    open connections (module docstring). Pass the class as ``uvicorn.run(http=...)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits_for(self.server_state)
        self._table = self._limits.table
        self._phase: Phase | None = None  # None: not in the table
        #: Loop time by which the current request's headers must be complete; None when no
        #: request's headers are in progress.
        self._header_deadline: float | None = None
        self._header_bytes = 0  # bytes fed to the parser since those headers began
        self._message_complete = True  # the last request the parser began has ended
        self._first_request = True
        self._discarding = False  # input is dropped: answered, evicted or refused
        self._owed_error: ServiceError | None = None  # a 431/408 waiting for earlier responses
        self._timer: TimerHandle | None = None  # the header deadline, or the end of lingering

    # ---- connection life -----------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if not self._table.make_room():
            self._discarding = True
            transport.close()
            return
        self._enter(Phase.HEADERS)
        self._begin_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._leave_table()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        self._leave_table()  # the WebSocket protocol takes the connection over
        super().handle_websocket_upgrade()

    def evict(self) -> None:
        """Closed by the table to make room for a new connection."""
        self._leave_table()
        self._discarding = True
        self.transport.abort()

    def response_in_progress(self) -> bool:
        return (
            self.cycle is not None
            and self.cycle.response_started
            and not self.cycle.response_complete
        )

    def _enter(self, phase: Phase) -> None:
        phases = self._table.phases
        if self._phase is not None:
            del phases[self._phase][self]
        phases[phase][self] = None
        self._phase = phase

    def _leave_table(self) -> None:
        if self._phase is not None:
            del self._table.phases[self._phase][self]
            self._phase = None
        self._header_deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ---- bytes in --------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        limit = self._limits.max_header_bytes
        while not self._discarding:
            if self._header_deadline is None and not self._next_request_starts():
                super().data_received(data)  # a body: uvicorn as it is
                return
            allowance = limit - self._header_bytes
            if len(data) <= allowance:
                self._header_bytes += len(data)
                super().data_received(data)
                return
            self._header_bytes = limit
            super().data_received(data[:allowance])
            if self.transport.is_closing():  # uvicorn answered a 400
                return
            if self._header_deadline is not None and self._header_bytes >= limit:
                # The same request's headers used the whole allowance and are still open.
                received = limit + len(data) - allowance
                self._fail_headers(
                    HeadersTooLarge(
                        f"The request line and headers may take {limit} bytes "
                        f"(LOSS_SERVICE_MAX_HEADER_BYTES); {received} bytes arrived and they "
                        "were still not complete."
                    )
                )
                return
            data = data[allowance:]  # a body or the next request follows the headers

    def _next_request_starts(self) -> bool:
        """Bytes arriving after a request ended are the next request's first: its header
        clock and count start (uvicorn has cancelled the keep-alive timer)."""
        if self._phase is Phase.IDLE:
            self._enter(Phase.HEADERS)
        elif not (self._phase is Phase.BUSY and self._message_complete):
            return False  # a body, or still the request being answered
        self._begin_headers()
        return True

    def _begin_headers(self) -> None:
        self._header_bytes = 0
        self._header_deadline = deadline = self.loop.time() + self._limits.header_timeout
        if self._timer is None:
            self._timer = self.loop.call_at(deadline, self._header_timer_fired)

    # ---- parser callbacks (called from inside feed_data) ----------------------------------

    def on_message_begin(self) -> None:
        if self._header_deadline is None:
            # A request that began inside the read that ended the previous one: counted from
            # the next read.
            self._begin_headers()
        if self._phase is Phase.IDLE:  # it follows a body read after its response
            self._unset_keepalive_if_required()
            self._enter(Phase.HEADERS)
        self._message_complete = False
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._header_deadline = None
        self._first_request = False
        if self._phase is Phase.HEADERS:
            self._enter(Phase.BODY)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._message_complete = True
        if self._phase is Phase.BODY:
            if self.cycle.response_complete:  # answered before its body was read
                self._enter(Phase.IDLE)
                if self.timeout_keep_alive_task is None:  # cancelled by the body's bytes
                    self.timeout_keep_alive_task = self.loop.call_later(
                        self.timeout_keep_alive, self.timeout_keep_alive_handler
                    )
            else:
                self._enter(Phase.BUSY)
        super().on_message_complete()

    def on_response_complete(self) -> None:
        next_queued = bool(self.pipeline)
        super().on_response_complete()
        if (
            next_queued
            or self.transport.is_closing()
            or self._phase not in (Phase.BUSY, Phase.BODY)
        ):
            return
        if self._owed_error is not None:  # a later request failed while this one was served
            self._unset_keepalive_if_required()
            self._answer(self._owed_error)
            self._owed_error = None
            return
        if self._header_deadline is not None:
            self._enter(Phase.HEADERS)  # the next request's headers are arriving
        elif self._message_complete:
            self._enter(Phase.IDLE)
        else:
            self._enter(Phase.BODY)  # answered before its body was read; the rest is dropped

    # ---- limits ----------------------------------------------------------------------------

    def _header_timer_fired(self) -> None:
        self._timer = None
        deadline = self._header_deadline
        if deadline is None or self._discarding:
            return
        if self.loop.time() < deadline - TIMER_SLACK_SECONDS:  # a later request's deadline
            self._timer = self.loop.call_at(deadline, self._header_timer_fired)
            return
        since = "the connection opened" if self._first_request else "its first byte arrived"
        self._fail_headers(
            RequestTimeout(
                f"The request line and headers were not complete "
                f"{self._limits.header_timeout:g} s after {since} "
                "(LOSS_SERVICE_HEADER_TIMEOUT_SECONDS)."
            )
        )

    def _fail_headers(self, error: ServiceError) -> None:
        """Answer ``error`` with ``Connection: close`` and close; input is dropped from now on."""
        self._header_deadline = None
        self._discarding = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        logger.info(
            "%s: closing the connection",
            error.title,
            extra={"fields": {"client": _address(self.client), "status": error.status}},
        )
        if self.cycle is not None and not self.cycle.response_complete:
            self._owed_error = error  # HTTP answers in order: after the responses owed first
            return
        self._answer(error)

    def _answer(self, error: ServiceError) -> None:
        """Write ``error``, half-close, and drop input until the client closes or
        ``LINGER_SECONDS`` pass (then abort)."""
        self._enter(Phase.CLOSING)
        self.transport.write(self._problem_bytes(error))
        if not self.transport.can_write_eof():  # TLS: no half-close
            self.transport.close()
            return
        self.transport.write_eof()
        self.flow.resume_reading()
        self._timer = self.loop.call_later(LINGER_SECONDS, self.transport.abort)

    def _problem_bytes(self, error: ServiceError) -> bytes:
        body = orjson.dumps(error.problem())
        head = [STATUS_LINE[error.status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: " + PROBLEM_MEDIA_TYPE.encode() + b"\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        return b"".join(head) + body


def _address(client: tuple[str, int] | None) -> str | None:
    return f"{client[0]}:{client[1]}" if client else None
