"""HTTP to the replicas: JSON POSTs, round-robin, retries with backoff.

What is retried, and why (the same choices as the project's nginx, ``proxy_next_upstream``):

- a connection error (refused, reset, closed before the answer or in the middle of it, short
  of its Content-Length): the replica is down or died mid-request; scoring has no side
  effects, so the request goes to the next replica. nginx cannot do this for an answer it has
  begun passing on, so behind it too a replica's death mid-answer costs no request;
- ``503`` (overloaded, warming up, draining) and ``502`` (a gateway that could not reach a
  replica): the replica is not sent anything before its ``Retry-After`` (seconds, or an HTTP
  date), or before an exponential backoff without one; meanwhile the others are used.

Never retried: any 4xx (the request itself is wrong: it would fail everywhere), a 500, the
service's own 504 (its compute deadline: a smaller shard is the cure) and a read timeout (the
request reached a replica and may still be computing there; replaying it would run it twice).

Each replica has a time before which nothing is sent to it. A request starts at the replica
its caller names (round-robin) and takes the first one that is free to use; when none is, it
waits for the earliest. Every failed attempt counts; after ``max_attempts`` the last error is
raised.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError, ReadTimeoutError

from loss_client.version import __version__

RETRIED_STATUSES = frozenset({502, 503})


class ClientError(Exception):
    """Base of the errors the client raises; ``str(error)`` is one line for the user."""


class ServiceError(ClientError):
    """The service answered with an error that is not retried (its problem ``detail`` kept)."""

    def __init__(self, status: int, detail: str, url: str, body: Any = None) -> None:
        super().__init__(f"{detail} (HTTP {status} from {url})")
        self.status, self.detail, self.url, self.body = status, detail, url, body


class UnavailableError(ClientError):
    """No replica answered a request within the attempts allowed."""


class Cancelled(ClientError):
    """The run stopped (another request failed, or the caller gave up)."""


@dataclass
class Replica:
    url: str
    #: clock() before which nothing is sent to it (back-off, or a 503's Retry-After).
    not_before: float = 0.0
    #: failures in a row (connection errors, 502/503); the next back-off doubles with each.
    failures: int = 0


class Transport:
    """JSON POSTs to a set of replicas, shared by the threads of one run."""

    def __init__(
        self,
        urls: Sequence[str],
        api_key: str | None = None,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 300.0,
        max_attempts: int = 10,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 300.0,
        connections: int = 8,
        jitter: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if not urls:
            raise ValueError("at least one URL is needed")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.replicas = [Replica(_base_url(url)) for url in urls]
        self.max_attempts = max_attempts
        self.backoff, self.max_backoff, self.max_retry_after = backoff, max_backoff, max_retry_after
        self.jitter = jitter
        self.clock = clock
        self._stopped = threading.Event()
        self._sleep = sleep
        self._lock = threading.Lock()
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"loss-eval/{__version__}",
        }
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        # No proxies from the environment; our own retries only (urllib3's are off).
        self._pool = urllib3.PoolManager(
            num_pools=max(4, len(self.replicas)),
            maxsize=max(1, connections),
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=False,
        )

    def post(self, path: str, body: bytes, first: int = 0) -> dict[str, Any]:
        """POST ``body`` to ``path``, starting at replica ``first`` (modulo their number);
        the parsed JSON answer of the first 200."""
        start = first % len(self.replicas)
        last_error = ""
        for _attempt in range(self.max_attempts):
            index = self._choose(start)
            replica = self.replicas[index]
            self._wait_until(replica.not_before)
            url = replica.url + path
            try:
                response = self._pool.request(
                    "POST", url, body=body, headers=self._headers, preload_content=True
                )
            except ReadTimeoutError:
                raise UnavailableError(
                    f"{url} did not answer within the read timeout (not retried: the request "
                    "may still be computing there; try a smaller --shard-size)"
                ) from None
            except (HTTPError, OSError) as error:
                last_error = f"{url}: {_reason(error)}"
                self._failed(replica, None)
                start = index + 1
                continue
            if response.status == 200:
                self._succeeded(replica)
                return json.loads(response.data)
            if response.status in RETRIED_STATUSES:
                detail = _problem_detail(response.data)[0]
                last_error = f"{url}: HTTP {response.status}: {detail}"
                self._failed(replica, _retry_after(response.headers.get("Retry-After")))
                start = index + 1
                continue
            detail, problem = _problem_detail(response.data)
            if response.status == 413 and not path.endswith("/merge"):
                detail += " (try a smaller --shard-size)"
            raise ServiceError(response.status, detail, url, problem)
        raise UnavailableError(
            f"no replica answered after {self.max_attempts} attempts; last: {last_error}"
        )

    def stop(self) -> None:
        """Requests waiting to retry give up (:class:`Cancelled`); those on the wire finish."""
        self._stopped.set()

    def close(self) -> None:
        self.stop()
        self._pool.clear()

    # -- replicas ---------------------------------------------------------------------------

    def _choose(self, start: int) -> int:
        """The first replica from ``start`` (round-robin) that may be used now, else the one
        free soonest."""
        now = self.clock()
        count = len(self.replicas)
        with self._lock:
            order = [(start + step) % count for step in range(count)]
            for index in order:
                if self.replicas[index].not_before <= now:
                    return index
            return min(order, key=lambda index: self.replicas[index].not_before)

    def _failed(self, replica: Replica, retry_after: float | None) -> None:
        with self._lock:
            replica.failures += 1
            delay = min(self.max_backoff, self.backoff * 2 ** (replica.failures - 1))
            if self.jitter:
                delay *= random.uniform(0.5, 1.0)
            if retry_after is not None:  # never before the replica said, nor sooner than backoff
                delay = max(delay, min(self.max_retry_after, retry_after))
            replica.not_before = max(replica.not_before, self.clock() + delay)

    def _succeeded(self, replica: Replica) -> None:
        with self._lock:
            replica.failures = 0

    def _wait_until(self, moment: float) -> None:
        if self._stopped.is_set():
            raise Cancelled("the run was stopped")
        delay = moment - self.clock()
        if delay <= 0:
            return
        if self._sleep is not None:
            self._sleep(delay)
        elif self._stopped.wait(delay):
            raise Cancelled("the run was stopped")
        if self._stopped.is_set():
            raise Cancelled("the run was stopped")


def _base_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{url!r}: a URL starts with http:// or https://")
    return url


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds, or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _problem_detail(data: bytes) -> tuple[str, Any]:
    """The problem's ``detail`` (else its ``title``, else the body's text) on one line."""
    problem: Any = None
    try:
        problem = json.loads(data)
    except ValueError:
        text = data.decode("utf-8", "replace")
    else:
        if isinstance(problem, dict):
            text = str(problem.get("detail") or problem.get("title") or problem)
        else:
            text = str(problem)
    line = " ".join(text.split())
    if len(line) > 2000:
        line = line[:2000] + " ..."
    return line or "(no detail)", problem


def _reason(error: BaseException) -> str:
    """The innermost cause of a connection error, on one line."""
    while error.__context__ is not None and isinstance(error, HTTPError):
        error = error.__context__
    reason = getattr(error, "reason", None)
    text = str(reason) if isinstance(reason, BaseException) else str(error)
    return " ".join(text.split()) or type(error).__name__
