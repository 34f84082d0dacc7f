"""The scoring requests, end to end: body in, bytes out, every CPU step on a compute thread.

``POST /v1/losses/{name}``, ``POST /v1/evaluate`` and ``POST /v2/models/{name}/infer`` share one
pipeline: check the media type (``/v1``), read the body within ``LOSS_SERVICE_MAX_BODY_BYTES``
and the worker's in-flight byte budget, then hand decode, validation, kernels and encoding to
the compute pool (a fixed set of threads: ``LOSS_SERVICE_COMPUTE_THREADS``), so the event loop
only moves bytes. Every outcome is a :class:`Reply`; errors are problem+json (``/v2`` adds the
protocol's ``error`` member). :mod:`service.front` calls this directly for speed; the FastAPI
operations that document these routes call it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import orjson

from service import codec, evaluate, loss_request
from service.decoding import DECODER, lower_priority
from service.engine import compute
from service.errors import PROBLEM_MEDIA_TYPE, ServiceError
from service.inference import protocol
from service.inference.errors import protocol_problem
from service.inference.transport import HEADER_LENGTH
from service.registry import LossSpec
from service.settings import Settings

JSON = "application/json"
BINARY = "application/octet-stream"
T = TypeVar("T")


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    media_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()


def problem_reply(error: ServiceError, *, inference: bool = False) -> Reply:
    """problem+json; for ``/v2`` with the protocol's status and ``error`` member."""
    body = protocol_problem(error) if inference else error.problem()
    return Reply(
        body["status"],
        orjson.dumps(body),
        PROBLEM_MEDIA_TYPE,
        tuple((error.headers or {}).items()),
    )


class Overloaded(ServiceError):
    status, slug, title = 503, "overloaded", "Service Overloaded"


class Admission:
    """Bounds on one worker's scoring work: requests in flight, and body bytes held.

    Used from the event loop only (no locks). Past a bound the request gets a 503 with
    ``Retry-After`` instead of waiting, so memory and queueing stay bounded under any load.
    """

    def __init__(self, max_requests: int, max_bytes: int, retry_after: int) -> None:
        self.max_requests, self.max_bytes, self.retry_after = max_requests, max_bytes, retry_after
        self.requests = 0
        self.bytes = 0

    def refusal(self, detail: str) -> Overloaded:
        return Overloaded(detail, headers={"Retry-After": str(self.retry_after)})

    def enter(self) -> None:
        if self.requests >= self.max_requests:
            raise self.refusal(
                f"{self.requests} scoring requests are in flight, the limit of this worker "
                f"(LOSS_SERVICE_MAX_IN_FLIGHT); retry after {self.retry_after} s"
            )
        self.requests += 1

    def leave(self) -> None:
        self.requests -= 1

    def reserve(self, size: int) -> None:
        if self.bytes + size > self.max_bytes:
            raise self.refusal(
                f"the worker holds {self.bytes} body bytes and this request needs {size} more, "
                f"past LOSS_SERVICE_MAX_IN_FLIGHT_BYTES ({self.max_bytes}); "
                f"retry after {self.retry_after} s"
            )
        self.bytes += size

    def release(self, size: int) -> None:
        self.bytes -= size


Job = tuple[asyncio.AbstractEventLoop, asyncio.Future, Callable[[], Any]]
Done = tuple[asyncio.Future, bool, Any]


class ComputePool:
    """A fixed set of compute threads that hand results back to the event loop in batches.

    A plain executor costs every request a thread wake-up and an event-loop wake-up: measured
    here ~90 us of CPU per request, more than validating and scoring a small batch. These
    threads take the next job without sleeping while jobs are queued, and post the results
    they have to the loop in one call once the queue is empty or the oldest waited 1 ms, so
    under load those wake-ups are shared by many requests. No job is taken ahead of time, so
    an idle thread always gets the next one; threads run at nice +10 (see
    :func:`service.decoding.lower_priority`) so the event loop keeps its core.
    """

    FLUSH_AFTER = 0.001  # s: the longest a finished result waits for the batch

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()

    def _start(self) -> None:
        with self._lock:
            if self._workers:
                return
            self._workers = [
                threading.Thread(target=self._work, name=f"compute-{i}", daemon=True)
                for i in range(self.threads)
            ]
            for worker in self._workers:
                worker.start()

    async def run(self, work: Callable[[], T]) -> T:
        if not self._workers:
            self._start()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.put((loop, future, work))
        return await future

    def close(self) -> None:
        """Stop the threads once the queued jobs are done (a later ``run`` starts new ones)."""
        with self._lock:
            workers, self._workers = self._workers, []
        for _ in workers:
            self._jobs.put(None)

    def _work(self) -> None:
        lower_priority()
        pending: list[tuple[asyncio.AbstractEventLoop, Done]] = []
        oldest = 0.0
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                _deliver_all(pending)
                pending = []
                job = self._jobs.get()
            if job is None:
                _deliver_all(pending)
                return
            loop, future, work = job
            try:
                done: Done = (future, True, work())
            except BaseException as error:  # the caller raises it; this thread never dies
                done = (future, False, error)
            if not pending:
                oldest = time.perf_counter()
            pending.append((loop, done))
            if time.perf_counter() - oldest > self.FLUSH_AFTER:
                _deliver_all(pending)
                pending = []


def _deliver_all(pending: list[tuple[asyncio.AbstractEventLoop, Done]]) -> None:
    """One ``call_soon_threadsafe`` per event loop for all these results."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Done]] = {}
    for loop, done in pending:
        by_loop.setdefault(loop, []).append(done)
    for loop, batch in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            loop.call_soon_threadsafe(_settle, batch)


def _settle(batch: list[Done]) -> None:
    for future, ok, value in batch:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class Scoring:
    """One worker's scoring pipeline: settings, the compute pool and the admission bounds."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool = ComputePool(settings.compute_threads)
        self.admission = Admission(
            settings.max_in_flight, settings.max_in_flight_bytes, settings.retry_after_seconds
        )

    def close(self) -> None:
        self.pool.close()

    async def run(self, work: Callable[[], T]) -> T:
        """``work`` on a compute thread; the pool's size bounds the CPU work at once."""
        return await self.pool.run(work)

    def _busy(self) -> bool:
        return self.admission.requests > 1

    async def _body(self, headers: Mapping[str, str], chunks: AsyncIterator[bytes]) -> bytes:
        return await codec.read_body(
            headers.get("content-length"), chunks, self.settings.max_body_bytes, self.admission
        )

    async def loss(
        self, spec: LossSpec, headers: Mapping[str, str], chunks: AsyncIterator[bytes]
    ) -> Reply:
        return await self._json(partial(score, spec), headers, chunks)

    async def evaluate(self, headers: Mapping[str, str], chunks: AsyncIterator[bytes]) -> Reply:
        return await self._json(evaluate.evaluate, headers, chunks)

    async def _json(
        self, work: Work, headers: Mapping[str, str], chunks: AsyncIterator[bytes]
    ) -> Reply:
        body = b""
        try:
            codec.check_json_content_type(headers.get("content-type"))
            body = await self._body(headers, chunks)
            payload = await self.run(
                partial(decode_and_run, work, body, self.settings.max_elements, self._busy())
            )
            return Reply(200, payload)
        except ServiceError as error:
            return problem_reply(error)
        finally:
            self.admission.release(len(body))

    async def infer(
        self,
        model: Callable[[], LossSpec],
        headers: Mapping[str, str],
        chunks: AsyncIterator[bytes],
    ) -> Reply:
        """``/v2`` inference; ``model`` resolves the loss (404 for unknown names/versions)."""
        body = b""
        try:
            spec = model()
            body = await self._body(headers, chunks)
            settings = self.settings
            response = await self.run(
                partial(
                    protocol.infer,
                    spec,
                    body,
                    headers.get("content-encoding"),
                    headers.get(HEADER_LENGTH.lower()),
                    settings.max_body_bytes,
                    settings.max_elements,
                    self._busy(),
                )
            )
        except ServiceError as error:
            return problem_reply(error, inference=True)
        finally:
            self.admission.release(len(body))
        if response.header_length is None:
            return Reply(200, response.content)
        return Reply(200, response.content, BINARY, ((HEADER_LENGTH, str(response.header_length)),))


Work = Callable[[dict, int, bool], dict]


def score(spec: LossSpec, document: dict, max_elements: int, check_booleans: bool) -> dict:
    """Validate and compute one loss: the response body."""
    request = loss_request.parse(spec, document, max_elements, check_booleans=check_booleans)
    result = compute(
        spec,
        request.inputs,
        request.params,
        request.reduction,
        with_gradient="gradient" in request.include,
    )
    return loss_request.render(result, request.include)


def decode_and_run(work: Work, body: bytes, max_elements: int, busy: bool = False) -> bytes:
    """All the CPU work of one JSON request: decode, work, encode. ``busy``: other scoring
    requests are in flight (see :meth:`service.decoding.Decoder.decode`)."""
    document: dict[str, Any] = DECODER.decode(body, max_elements, busy)
    return codec.encode(work(document, max_elements, codec.may_hold_booleans(body)))
