"""API keys: when ``LOSS_SERVICE_API_KEYS`` is set, every route the table does not mark open
needs one (``Authorization: Bearer <key>`` or ``X-API-Key: <key>``)."""

from __future__ import annotations

import hashlib
import hmac

from service.validation.errors import ServiceError


class Unauthorized(ServiceError):
    status, slug, title = 401, "unauthorized", "Unauthorized"


class ApiKeys:
    """The configured keys, as SHA-256 digests compared in constant time.

    Hashing first makes every comparison the same length, and every key is compared (no early
    exit), so the time taken says nothing about how much of a key was right.
    """

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.digests = [hashlib.sha256(key.encode()).digest() for key in keys]

    def check(self, headers: dict[bytes, bytes]) -> None:
        given = headers.get(b"x-api-key")
        authorization = headers.get(b"authorization")
        if given is None and authorization is not None:
            scheme, _, credentials = authorization.partition(b" ")
            if scheme.lower() == b"bearer":
                given = credentials.strip()
        if given is None:
            raise Unauthorized(
                "this route needs an API key: send 'Authorization: Bearer <key>' or "
                "'X-API-Key: <key>'",
                headers={"WWW-Authenticate": 'Bearer realm="loss-service"'},
            )
        digest = hashlib.sha256(given).digest()
        matched = False
        for known in self.digests:
            matched |= hmac.compare_digest(digest, known)
        if not matched:
            raise Unauthorized(
                "the API key is not valid",
                headers={"WWW-Authenticate": 'Bearer realm="loss-service", error="invalid_token"'},
            )
