"""Merging shard states in a tree through ``POST /v1/evaluate/merge``.

States are kept as the compact JSON text of the ``state`` objects the service sent (opaque to
the client), so a merge body is those texts joined. One merge takes at most ``fan_in`` states
and, past two, at most ``max_bytes`` of them; the merged states of one level are merged again
(a state left alone goes up as it is), until one request holds everything that is left. Its answer is the result. The service merges
exactly whatever the order or grouping, so any number of shards works.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

MERGE_PATH = "/v1/evaluate/merge"
FAN_IN = 32
MAX_MERGE_BYTES = 64 * 1024 * 1024

#: POST a body to a path, starting at the replica of the given round-robin position.
Post = Callable[[str, bytes, int], dict[str, Any]]


def state_text(response: dict[str, Any]) -> bytes:
    """The ``state`` of a ``/v1/evaluate`` or merge answer, as compact JSON."""
    try:
        state = response["state"]
    except (KeyError, TypeError):
        raise ValueError(
            "the service's answer has no 'state' (does it support \"state\": true, API.md "
            "'Evaluation at scale'?)"
        ) from None
    return json.dumps(state, separators=(",", ":"), allow_nan=False).encode()


def merge_body(states: Sequence[bytes]) -> bytes:
    return b'{"states":[' + b",".join(states) + b"]}"


def batches(
    states: Sequence[bytes], fan_in: int = FAN_IN, max_bytes: int = MAX_MERGE_BYTES
) -> list[list[bytes]]:
    """Consecutive groups of at most ``fan_in`` states; a group of two or more stays within
    ``max_bytes`` (a group always takes two, so every level at least halves the count)."""
    if fan_in < 2:
        raise ValueError("a merge takes at least two states")
    groups: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for state in states:
        full = len(current) >= fan_in or (len(current) >= 2 and size + len(state) > max_bytes)
        if full:
            groups.append(current)
            current, size = [], 0
        current.append(state)
        size += len(state)
    if current:
        groups.append(current)
    return groups


def merge_tree(
    post: Post,
    states: Sequence[bytes],
    pool: Executor,
    *,
    first: int = 0,
    fan_in: int = FAN_IN,
    max_bytes: int = MAX_MERGE_BYTES,
    on_level: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """The answer of the last merge, whose states hold every shard once. ``first`` is the
    round-robin position of the first merge request; ``on_level(level, requests)`` is told
    of each level before it runs."""
    if not states:
        raise ValueError("nothing to merge")
    level = list(states)
    depth = 0
    while True:
        depth += 1
        groups = batches(level, fan_in, max_bytes)
        if on_level is not None:
            on_level(depth, len(groups))
        if len(groups) == 1:
            return post(MERGE_PATH, merge_body(groups[0]), first)
        # A group of one (the last, at most) goes up a level as it is.
        futures = [
            pool.submit(post, MERGE_PATH, merge_body(group), first + position)
            if len(group) > 1
            else group[0]
            for position, group in enumerate(groups)
        ]
        first += len(groups)
        level = [item if isinstance(item, bytes) else state_text(item.result()) for item in futures]
