"""A large answer goes out in the pieces it was encoded in, never joined whole.

``http._send`` is driven with a fake ASGI ``send`` and tracemalloc on: while it sends a 24 MB
answer, the memory Python allocates beyond the answer itself stays within a few batches. The
same measure, with the one-write threshold raised so the answer is joined first, grows by the
whole answer: the check can tell the two apart.
"""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
from typing import Any

import pytest

from service.api import http
from service.api.problems import Pieces, Reply

MiB = 1 << 20
SIZE = 24 * MiB  # three times the one-write threshold


def answer_pieces(size: int, piece: int = 64 << 10) -> tuple[Pieces, str]:
    """An answer of ``size`` bytes in pieces of ``piece`` bytes (views of larger bytes objects,
    as the encoder gives), and the SHA-256 of the whole."""
    chunks = [bytes([48 + index % 10]) * (4 * piece) for index in range(size // (4 * piece))]
    views = [memoryview(chunk)[start : start + piece] for chunk in chunks
             for start in range(0, len(chunk), piece)]  # fmt: skip
    return Pieces(views), hashlib.sha256(b"".join(chunks)).hexdigest()


def send_traced(reply: Reply) -> tuple[list[dict[str, Any]], int]:
    """The ASGI messages ``_send`` gave (bodies as their sizes) and the peak of Python's
    allocations above their level when it started."""
    messages: list[dict[str, Any]] = []
    received = hashlib.sha256()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            received.update(message["body"])
            message = {**message, "body": len(message["body"])}
        messages.append(message)
        await asyncio.sleep(0)

    async def run() -> int:
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            level = tracemalloc.get_traced_memory()[0]
            await http._send(send, reply, "r-1", {}, unread=False)
            return tracemalloc.get_traced_memory()[1] - level
        finally:
            tracemalloc.stop()

    peak = asyncio.run(run())
    messages.append({"type": "received", "body": received.hexdigest()})
    return messages, peak


def test_a_large_answer_is_sent_batch_by_batch_and_never_joined() -> None:
    assert http.ONE_WRITE_BYTES < SIZE
    pieces, digest = answer_pieces(SIZE)
    messages, peak = send_traced(Reply(200, pieces))
    assert messages.pop()["body"] == digest  # every byte, in order
    start, *bodies = messages
    assert dict(start["headers"])[b"content-length"] == str(SIZE).encode()
    sizes = [body["body"] for body in bodies]
    assert sum(sizes) == SIZE and max(sizes) <= 2 * Pieces.BATCH_BYTES, sizes
    assert [body.get("more_body", False) for body in bodies] == [True] * (len(bodies) - 1) + [False]
    # Beyond the answer's own pieces, only the batch in hand (measured: 1.0 MiB).
    assert peak <= 3 * Pieces.BATCH_BYTES, f"+{peak / MiB:.1f} MiB"


def test_the_measure_sees_an_answer_joined_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Joined before it is sent (as answers up to ``ONE_WRITE_BYTES`` are), the same measure
    grows by the answer at least once (measured: once, the join)."""
    monkeypatch.setattr(http, "ONE_WRITE_BYTES", 1 << 40)
    pieces, digest = answer_pieces(SIZE)
    messages, peak = send_traced(Reply(200, pieces))
    assert messages.pop()["body"] == digest
    assert [message["body"] for message in messages[1:]] == [SIZE]  # in one write
    assert peak >= SIZE, f"+{peak / MiB:.1f} MiB"
