"""The scoring routes over HTTP: a body read within its limits, then the pipeline.

``POST /v1/losses/{name}``, ``POST /v1/evaluate`` and ``POST /v2/models/{name}/infer`` differ
only in their adapter (the ``decode`` that turns the body into the pipeline's call, and the
answer it renders); this module reads the body on the event loop (:mod:`service.api.body`:
size, time, the worker's byte budget charged with the bytes that arrive), chooses the lane
(large or compressed bodies start in the heavy one), hands both to
:class:`~service.compute.pipeline.Pipeline` and renders its errors as problems.
"""

from __future__ import annotations

from functools import lru_cache, partial

from service.api.body import BodyLimits, read_body, watch_disconnect
from service.api.problems import Reply, problem_reply
from service.api.routes import Request
from service.compute.pipeline import Decode
from service.ops.settings import Settings
from service.validation.errors import ServiceError


@lru_cache(maxsize=8)
def body_limits(settings: Settings) -> BodyLimits:
    return BodyLimits(
        settings.max_body_bytes, settings.body_timeout_seconds, settings.body_min_bytes_per_second
    )


async def score(
    request: Request, decode: Decode, *, compressed: bool = False, inference: bool = False
) -> Reply:
    """Read the body, then decode, compute and answer it in the pipeline."""
    pipeline = request.services.pipeline
    holding = pipeline.holding()
    try:
        body = await read_body(
            request.receive,
            request.header(b"content-length"),
            body_limits(request.services.settings),
            holding,
            request.progress,
        )
        # A compressed body's decoded size is unknown until inflated: the heavy lane decodes it.
        heavy = compressed or len(body) >= pipeline.heavy_message_bytes
        watch = partial(watch_disconnect, request.receive)
        answer = pipeline.score(decode, body, holding, heavy=heavy, watch=watch)
        del body  # the pipeline's job holds it, and lets it go once decoded
        return await answer
    except ServiceError as error:
        return problem_reply(error, inference=inference)
    finally:
        holding.release()
