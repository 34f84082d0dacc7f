"""The Python API: ``Client(urls).evaluate(predictions, targets, terms=..., metrics=...)``.

A run checks every array, cuts the samples into shards, sends each shard to
``POST /v1/evaluate`` with ``"state": true`` (``concurrency`` at a time, round-robin over the
replicas, retried as :mod:`loss_client.transport` says), keeps each shard's state once, by its
position, and merges the states in a tree (:mod:`loss_client.merge`). A shard whose request
was retried on another replica is still counted once: only the answer that arrived is kept.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from loss_client import specs
from loss_client.merge import FAN_IN, MAX_MERGE_BYTES, merge_body, merge_tree, state_text
from loss_client.progress import Progress
from loss_client.result import Result
from loss_client.shards import Field, as_field, check, shard_body, shard_bounds
from loss_client.transport import Transport

EVALUATE_PATH = "/v1/evaluate"
DEFAULT_SHARD_SIZE = 100_000
DEFAULT_CONCURRENCY = 4

Term = str | Mapping[str, Any]
Metric = str | Mapping[str, Any]


class Client:
    """Evaluates data sets of any size against one or more replicas of loss-service.

    ``urls``: one base URL or several (``http://host:8000``); ``api_key`` is sent as
    ``Authorization: Bearer KEY``. The other keywords tune :class:`~loss_client.transport.
    Transport` (timeouts, attempts, backoff)."""

    def __init__(
        self, urls: str | Sequence[str], api_key: str | None = None, **transport: Any
    ) -> None:
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        self.api_key = api_key
        self._transport_options = transport

    def evaluate(
        self,
        predictions: Any,
        targets: Any,
        *,
        terms: Iterable[Term] | Term,
        metrics: Iterable[Metric] | Metric | None = None,
        sample_weight: Any = None,
        groups: Any = None,
        top_k: int | None = None,
        shard_size: int = DEFAULT_SHARD_SIZE,
        concurrency: int = DEFAULT_CONCURRENCY,
        progress: bool | None = None,
        fan_in: int = FAN_IN,
    ) -> Result:
        """Score the whole set and return the final merge response as a :class:`Result`.

        Arrays may be NumPy arrays (memory maps included), nested lists, or file sources
        (``"preds.npy"``, ``"data.npz:key"``, ``"table.csv:column"``,
        ``"table.parquet:column"``). ``terms``: loss names or ``{"loss", "params", "weight",
        "label"}``; ``metrics``: names or ``{"name", "params"}``. ``progress``: a progress bar
        on stderr (default: when stderr is a terminal)."""
        if shard_size < 1:
            raise ValueError(f"shard_size must be at least 1, not {shard_size}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        if top_k is not None and (isinstance(top_k, bool) or top_k < 1):
            raise ValueError(f"top_k must be a positive integer, not {top_k!r}")
        definition: dict[str, Any] = {"terms": specs.terms_from(terms)}
        metric_list = specs.metrics_from(metrics)
        if metric_list:
            definition["metrics"] = metric_list
        if top_k is not None:
            definition["top_k"] = int(top_k)
        fields = [as_field("predictions", predictions), as_field("targets", targets)]
        for name, value in (("sample_weight", sample_weight), ("groups", groups)):
            if value is not None:
                fields.append(as_field(name, value))
        samples = check(fields)
        if progress is None:
            progress = sys.stderr.isatty()
        transport = self._transport(concurrency)
        try:
            return _run(
                transport, fields, samples, definition, shard_size, concurrency, progress, fan_in
            )
        finally:
            transport.close()

    def merge(self, states: Sequence[dict[str, Any]]) -> Result:
        """Merge states (``Result.state`` of earlier runs, or ``/v1/evaluate`` states) in one
        ``/v1/evaluate/merge`` request."""
        transport = self._transport(1)
        try:
            texts = [state_text({"state": state}) for state in states]
            return Result.from_json(transport.post("/v1/evaluate/merge", merge_body(texts)))
        finally:
            transport.close()

    def _transport(self, concurrency: int) -> Transport:
        options = {"connections": concurrency + 1, **self._transport_options}
        return Transport(self.urls, self.api_key, **options)


def _run(
    transport: Transport,
    fields: list[Field],
    samples: int,
    definition: dict[str, Any],
    shard_size: int,
    concurrency: int,
    progress: bool,
    fan_in: int,
) -> Result:
    bounds = shard_bounds(samples, shard_size)
    states: list[bytes | None] = [None] * len(bounds)
    pending: dict[Future, int] = {}

    def collect(done: Iterable[Future]) -> None:
        for future in done:
            index = pending.pop(future)
            if states[index] is not None:  # cannot happen: one future per shard
                raise AssertionError(f"shard {index} answered twice")
            states[index] = state_text(future.result())
            start, stop = bounds[index]
            bar.shard_done(stop - start)

    with (
        Progress(samples, len(bounds), enabled=progress) as bar,
        ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="loss-eval") as pool,
    ):
        try:
            for index, (start, stop) in enumerate(bounds):
                # Built here, in order and one at a time: at most `concurrency` bodies exist.
                body = shard_body(fields, start, stop, definition)
                while len(pending) >= concurrency:
                    collect(wait(pending, return_when=FIRST_COMPLETED).done)
                pending[pool.submit(transport.post, EVALUATE_PATH, body, index)] = index
                del body
            while pending:
                collect(wait(pending, return_when=FIRST_COMPLETED).done)
            missing = [index for index, state in enumerate(states) if state is None]
            if missing:  # cannot happen: every shard was collected above
                raise AssertionError(f"shards without a state: {missing[:10]}")
            bar.merging()
            answer = merge_tree(
                transport.post,
                [state for state in states if state is not None],
                pool,
                first=len(bounds),
                fan_in=fan_in,
                max_bytes=MAX_MERGE_BYTES,
            )
        except BaseException:
            transport.stop()
            for future in pending:
                future.cancel()
            raise
    return Result.from_json(answer, shards=len(bounds))
