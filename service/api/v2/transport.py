"""The raw request body: its Content-Encoding, and the binary tensor extension's framing.

Triton's binary tensor data extension sends a JSON inference header followed by raw tensor
bytes; the ``Inference-Header-Content-Length`` header says where the JSON ends. Without that
header the whole body is JSON. A ``Content-Encoding: gzip`` or ``deflate`` body is inflated
in bounded steps, so a small compressed body ("zip bomb") can never grow past
``LOSS_SERVICE_MAX_BODY_BYTES`` in memory.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

from service.api.v2.errors import MalformedTensorData, UnsupportedContentEncoding
from service.compute.deadline import checkpoint
from service.validation.errors import PayloadTooLarge

HEADER_LENGTH = "Inference-Header-Content-Length"
#: zlib ``wbits`` per Content-Encoding: gzip framing, and the zlib framing HTTP calls deflate.
WINDOW_BITS = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": zlib.MAX_WBITS,
}
RAW_DEFLATE = -zlib.MAX_WBITS
STEP = 1 << 20  # bytes inflated per step
FIRST_PIECE, LAST_PIECE = 256, 1 << 20  # bytes of input fed at once to a member, doubling


def decode_content(
    body: bytes | bytearray,
    encoding: str | None,
    max_bytes: int,
    reserve: Callable[[int], None] | None = None,
) -> bytes | bytearray:
    """The body without its Content-Encoding (``identity``, ``gzip`` or ``deflate``); the
    inflated bytes are charged to ``reserve`` (the worker's byte budget) as they come out."""
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        return body
    if name not in WINDOW_BITS:
        raise UnsupportedContentEncoding(
            f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or identity"
        )
    try:
        return _inflate(body, WINDOW_BITS[name], max_bytes, reserve)
    except zlib.error as error:
        if name != "deflate":
            raise MalformedTensorData(f"the body is not valid {name} data: {error}") from None
    try:  # Some clients send raw DEFLATE (RFC 1951) under "deflate".
        return _inflate(body, RAW_DEFLATE, max_bytes, reserve)
    except zlib.error as error:
        raise MalformedTensorData(f"the body is not valid deflate data: {error}") from None


def _inflate(
    data: bytes | bytearray,
    window_bits: int,
    max_bytes: int,
    reserve: Callable[[int], None] | None,
) -> bytearray:
    """Inflate every member (gzip allows several in a row), never holding more than
    ``max_bytes + 1`` bytes of output, in time linear in the input.

    zlib copies whatever input follows a member into ``unused_data``; handing it the whole rest
    of the body would copy the body once per member (quadratic: 100,000 empty members took 4 s).
    So input is fed in pieces that start small (:data:`FIRST_PIECE`) and double while a member
    goes on: what is copied after a member ends is at most about twice the member's size.
    """
    view = memoryview(data)
    size = len(view)
    out = bytearray()
    start = 0  # where the current member begins in the input
    members = 0
    while True:
        inflater = zlib.decompressobj(window_bits)
        fed = start
        piece = FIRST_PIECE
        pending: bytes | memoryview = b""
        while not inflater.eof:
            if not pending:
                if fed >= size:
                    raise zlib.error("the compressed data ends before its end-of-stream marker")
                pending = view[fed : fed + piece]
                fed += len(pending)
                piece = min(piece * 2, LAST_PIECE)
            chunk = inflater.decompress(pending, min(STEP, max_bytes + 1 - len(out)))
            if len(out) + len(chunk) > max_bytes:
                raise PayloadTooLarge(
                    f"the decompressed body exceeds the limit of {max_bytes} bytes "
                    "(LOSS_SERVICE_MAX_BODY_BYTES)"
                )
            if reserve is not None and chunk:
                reserve(len(chunk))
            out += chunk
            pending = inflater.unconsumed_tail
        start = fed - len(inflater.unused_data)
        members += 1
        if members % 256 == 0:
            checkpoint()  # a body of many tiny members is work like any other
        if start >= size:
            return out


@dataclass(frozen=True)
class Framing:
    """The JSON inference header and the binary section after it (empty without binary)."""

    header: bytes | bytearray
    binary: memoryview
    has_binary_header: bool


def split_body(body: bytes | bytearray, header_length: str | None) -> Framing:
    """Split the body at ``Inference-Header-Content-Length`` (absent: all of it is JSON)."""
    if header_length is None:
        return Framing(body, memoryview(b""), False)
    text = header_length.strip()
    if not text.isdigit() or not text.isascii():
        raise MalformedTensorData(
            f"{HEADER_LENGTH} must be a non-negative integer, got {header_length!r}"
        )
    length = int(text)
    if length > len(body):
        raise MalformedTensorData(
            f"{HEADER_LENGTH} is {length} but the body has only {len(body)} bytes"
        )
    view = memoryview(body)
    return Framing(bytes(view[:length]), view[length:], True)
