"""Merging shard states in a tree through ``POST /v1/evaluate/merge``.

States are kept as the compact JSON text of the ``state`` objects the service sent (opaque to
the client), so a merge body is those texts joined. One merge takes at most ``fan_in`` states
and, past two, at most ``max_bytes`` of them; the merged states of one level are merged again
(a state left alone goes up as it is), until one request holds everything that is left; its
answer is the result. A merge the service refuses as too large (413) is split in two, and
later merges take fewer. The service merges exactly whatever the order or grouping, so any
number of shards works.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

from loss_client.transport import ServiceError

MERGE_PATH = "/v1/evaluate/merge"
FAN_IN = 32
MAX_MERGE_BYTES = 64 * 1024 * 1024

TOO_LARGE = (
    "the merged state is too large for one request: roc_auc keeps every distinct score, and "
    "each slice its own; round the scores roc_auc ranks, or use fewer slices"
)

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
) -> dict[str, Any]:
    """The answer of the last merge, whose states hold every shard once. ``first`` is the
    round-robin position of the first merge request."""
    if not states:
        raise ValueError("nothing to merge")
    tree = _Tree(post, fan_in)
    level = list(states)
    while True:
        groups = batches(level, tree.fan_in, max_bytes)
        if len(groups) == 1:
            return tree.merge(groups[0], first)
        # A group of one (the last, at most) goes up a level as it is.
        futures = [
            pool.submit(tree.merge, group, first + position) if len(group) > 1 else group[0]
            for position, group in enumerate(groups)
        ]
        first += len(groups)
        level = [item if isinstance(item, bytes) else state_text(item.result()) for item in futures]


class _Tree:
    """Merges one group; a group the service finds too large (413: the states' numbers count
    toward its element and body limits, and "a 413 says to merge fewer at once") is merged as
    two halves, and so are the next levels' groups. Two states that are too large together
    are the service's last word (its detail is raised)."""

    def __init__(self, post: Post, fan_in: int) -> None:
        if fan_in < 2:
            raise ValueError("a merge takes at least two states")
        self.post, self.fan_in = post, fan_in

    def merge(self, group: Sequence[bytes], first: int) -> dict[str, Any]:
        try:
            return self.post(MERGE_PATH, merge_body(group), first)
        except ServiceError as error:
            if error.status != 413:
                raise
            if len(group) <= 2:
                raise ServiceError(
                    413, error.detail + f" ({TOO_LARGE})", error.url, error.body
                ) from None
        half = len(group) // 2
        self.fan_in = max(2, min(self.fan_in, half))
        parts = [group[:half], group[half:]]
        merged = [
            part[0] if len(part) == 1 else state_text(self.merge(part, first)) for part in parts
        ]
        return self.merge(merged, first)
