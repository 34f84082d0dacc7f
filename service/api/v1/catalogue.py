"""``GET /v1/losses`` and ``GET /v1/losses/{name}``: the catalogue, derived from the registry."""

from __future__ import annotations

import orjson

from service.api.problems import Reply, problem_reply
from service.api.routes import Request
from service.losses import catalogue
from service.losses.registry import REGISTRY
from service.validation.errors import ServiceError


async def list_losses(_request: Request) -> Reply:
    entries = [catalogue.entry(spec) for spec in REGISTRY.values()]
    return Reply(200, orjson.dumps({"losses": entries, "count": len(entries)}))


async def get_loss(request: Request) -> Reply:
    try:
        spec = request.named_loss()
    except ServiceError as error:
        return problem_reply(error)
    return Reply(200, orjson.dumps(catalogue.entry(spec)))
