"""The bound on open connections per worker, and which connection is closed to make room.

uvicorn accepts until ``accept`` fails with EMFILE at the open-file limit; asyncio then stops
accepting for a while and every new client, ``/healthz`` included, is refused. The bound keeps
the connections of one worker below that limit, with room for the process's own files.

At the bound, a new connection closes the oldest connection (the one longest in its phase) that
is, in this order: closing after a 431/408; still sending its headers (or nothing yet); idle
between requests; sending a body with no response started. A connection with a request
computing or a response being written is never closed for room: when every one is like that,
the new connection is closed instead. One insertion-ordered dict per phase makes the choice
O(1), however many connections are open (a scan only over bodies whose early answer is being
written).
"""

from __future__ import annotations

import logging
import resource
import time
from enum import IntEnum
from typing import Any, Protocol

logger = logging.getLogger("service")

#: Files kept for the process itself when the bound is derived from the open-file limit: 10 %
#: of the limit plus 32 (listening socket, event loop, stdio and log handlers, numba's cache
#: files, pipes, prometheus' multiprocess files). A worker that has just
#: started holds about 25.
RESERVE_FRACTION = 0.10
RESERVE_FILES = 32
#: What an unlimited open-file soft limit counts as (Linux's default ``fs.nr_open``).
UNLIMITED_FILES = 1_048_576
#: At most one "connection bound reached" warning per worker this often.
WARN_INTERVAL_SECONDS = 60.0


def derive_max_connections(soft_limit: int) -> int:
    """Connections one worker may hold under an open-file soft limit of ``soft_limit``.

    The limit minus a reserve for the process's own files (``RESERVE_FRACTION`` of the limit
    plus ``RESERVE_FILES``); at least 1. 400 gives 328, 1024 gives 890, 65536 gives 58951.
    """
    if soft_limit < 0 or soft_limit == resource.RLIM_INFINITY:
        soft_limit = UNLIMITED_FILES
    reserve = int(soft_limit * RESERVE_FRACTION) + RESERVE_FILES
    return max(1, soft_limit - reserve)


def open_file_soft_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def resolve_max_connections(configured: int, soft_limit: int | None = None) -> int:
    """``configured`` when set (> 0), else :func:`derive_max_connections` of the soft limit.

    A configured bound above the derived one is kept, with a warning: accepting may then fail
    with EMFILE before the bound is reached.
    """
    soft_limit = open_file_soft_limit() if soft_limit is None else soft_limit
    derived = derive_max_connections(soft_limit)
    if not configured:
        return derived
    if configured > derived:
        logger.warning(
            "LOSS_SERVICE_MAX_CONNECTIONS=%d is above the %d connections that the open-file "
            "limit (%d) leaves room for; past that, new connections fail with EMFILE",
            configured,
            derived,
            soft_limit,
        )
    return configured


class Phase(IntEnum):
    """Where a connection is; the order is the order in which connections are closed to make
    room (``BUSY`` never is)."""

    CLOSING = 0  # answered a 431/408, lingering
    HEADERS = 1  # a request's line and headers are incomplete (or nothing sent yet)
    IDLE = 2  # between requests (uvicorn's keep-alive timer runs)
    BODY = 3  # a request's body is arriving
    BUSY = 4  # a request is computing or its response is being written


class Evictable(Protocol):
    def response_in_progress(self) -> bool: ...

    def evict(self) -> None: ...


class ConnectionTable:
    """One worker's open connections, one insertion-ordered dict per :class:`Phase` (so the
    first entry is the one longest in that phase)."""

    def __init__(self, max_connections: int) -> None:
        self.max_connections = max_connections
        self.phases: tuple[dict[Any, None], ...] = tuple({} for _ in Phase)
        self.evicted = 0
        self.refused = 0
        self._warned_at: float | None = None

    def __len__(self) -> int:
        return sum(len(members) for members in self.phases)

    def victim(self) -> Evictable | None:
        """The connection to close to make room, or None when every one is busy."""
        for phase in (Phase.CLOSING, Phase.HEADERS, Phase.IDLE):
            for connection in self.phases[phase]:
                return connection
        for connection in self.phases[Phase.BODY]:
            if not connection.response_in_progress():  # an early answer is being written
                return connection
        return None

    def make_room(self) -> bool:
        """Whether a new connection may stay: below the bound, or once a victim is closed."""
        if len(self) < self.max_connections:
            return True
        victim = self.victim()
        if victim is not None:
            victim.evict()  # leaves the table at once; its file closes in the next loop turn
            self.evicted += 1
        else:
            self.refused += 1
        self._warn()
        return victim is not None

    def _warn(self) -> None:
        now = time.monotonic()
        if self._warned_at is not None and now - self._warned_at < WARN_INTERVAL_SECONDS:
            return
        self._warned_at = now
        logger.warning(
            "at the connection bound (%d, LOSS_SERVICE_MAX_CONNECTIONS): %d connection(s) "
            "closed to make room and %d new one(s) refused so far",
            self.max_connections,
            self.evicted,
            self.refused,
        )
