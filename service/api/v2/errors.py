"""Errors of the ``/v2`` routes: the service's problem+json, plus the protocol's ``error``.

The Open Inference Protocol answers a failed request with ``{"error": "<message>"}`` (that is
what tritonclient and KServe clients read) and a 400 for any bad request. The service's
problem+json fields stay beside it: a ``/v1`` 422 (the request parsed but does not fit the
loss) is a ``/v2`` 400 with the same ``type``, ``title``, ``detail`` and ``errors``.
"""

from __future__ import annotations

from service.validation.errors import InvalidInput, ServiceError


class MalformedTensorData(ServiceError):
    """The binary tensor extension's framing is wrong (header length, chunk sizes)."""

    status, slug, title = 400, "malformed-tensor-data", "Malformed Tensor Data"


class UnknownModelVersion(ServiceError):
    status, slug, title = 404, "unknown-model-version", "Unknown Model Version"


class UnsupportedContentEncoding(ServiceError):
    status, slug, title = 415, "unsupported-content-encoding", "Unsupported Content-Encoding"


class UnsupportedFeature(InvalidInput):
    """A protocol feature this server does not offer (shared memory, classification)."""

    slug, title = "unsupported-feature", "Unsupported Feature"
