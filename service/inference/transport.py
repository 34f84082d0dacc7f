"""The raw request body: its Content-Encoding, and the binary tensor extension's framing.

Triton's binary tensor data extension sends a JSON inference header followed by raw tensor
bytes; the ``Inference-Header-Content-Length`` header says where the JSON ends. Without that
header the whole body is JSON. A ``Content-Encoding: gzip`` or ``deflate`` body is inflated
in bounded steps, so a small compressed body ("zip bomb") can never grow past
``LOSS_SERVICE_MAX_BODY_BYTES`` in memory.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from service.errors import PayloadTooLarge
from service.inference.errors import MalformedTensorData, UnsupportedContentEncoding

HEADER_LENGTH = "Inference-Header-Content-Length"
#: zlib ``wbits`` per Content-Encoding: gzip framing, and the zlib framing HTTP calls deflate.
WINDOW_BITS = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": zlib.MAX_WBITS,
}
RAW_DEFLATE = -zlib.MAX_WBITS
STEP = 1 << 20  # bytes inflated per step


def decode_content(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """The body without its Content-Encoding (``identity``, ``gzip`` or ``deflate``)."""
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        return body
    if name not in WINDOW_BITS:
        raise UnsupportedContentEncoding(
            f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or identity"
        )
    try:
        return _inflate(body, WINDOW_BITS[name], max_bytes)
    except zlib.error as error:
        if name != "deflate":
            raise MalformedTensorData(f"the body is not valid {name} data: {error}") from None
    try:  # Some clients send raw DEFLATE (RFC 1951) under "deflate".
        return _inflate(body, RAW_DEFLATE, max_bytes)
    except zlib.error as error:
        raise MalformedTensorData(f"the body is not valid deflate data: {error}") from None


def _inflate(data: bytes, window_bits: int, max_bytes: int) -> bytes:
    """Inflate every member (gzip allows several in a row), never holding more than
    ``max_bytes + 1`` bytes of output."""
    pieces: list[bytes] = []
    produced = 0
    while True:
        inflater = zlib.decompressobj(window_bits)
        pending = data
        while not inflater.eof:
            piece = inflater.decompress(pending, min(STEP, max_bytes + 1 - produced))
            produced += len(piece)
            if produced > max_bytes:
                raise PayloadTooLarge(
                    f"the decompressed body exceeds the limit of {max_bytes} bytes "
                    "(LOSS_SERVICE_MAX_BODY_BYTES)"
                )
            pieces.append(piece)
            pending = inflater.unconsumed_tail
            if not pending and not piece:
                break  # the input is used up and nothing more comes out: truncated
        if not inflater.eof:
            raise zlib.error("the compressed data ends before its end-of-stream marker")
        data = inflater.unused_data
        if not data:
            return b"".join(pieces)


@dataclass(frozen=True)
class Framing:
    """The JSON inference header and the binary section after it (empty without binary)."""

    header: bytes
    binary: memoryview
    has_binary_header: bool


def split_body(body: bytes, header_length: str | None) -> Framing:
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
