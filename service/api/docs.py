"""``/openapi.json``, ``/docs`` (Swagger UI) and ``/redoc``, from the route table."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)

from service import __version__
from service.api import openapi
from service.api.problems import Reply
from service.api.routes import Request, Route

HTML = "text/html; charset=utf-8"
TITLE = "loss-service"
DESCRIPTION = """\
Scores model predictions against targets: per-sample losses, the weighted cost and the exact
gradient with respect to the predictions, from Numba kernels. Conventions (elements, weights,
per-sample means, merging shards with `sum` / `weight_sum`) are those of the API contract;
`GET /v1/losses` lists every loss with its formula and parameters.
"""


class Document:
    """The OpenAPI document of a route table (set once the table is whole), built on first
    use and kept."""

    def __init__(self) -> None:
        self.routes: tuple[Route, ...] = ()
        self._encoded: bytes | None = None

    def json(self) -> dict[str, Any]:
        return openapi.document(self.routes, TITLE, __version__, DESCRIPTION)

    def encoded(self) -> bytes:
        if self._encoded is None:
            self._encoded = orjson.dumps(self.json())
        return self._encoded


async def openapi_json(document: Document, _request: Request) -> Reply:
    return Reply(200, document.encoded())


async def swagger_ui(_request: Request) -> Reply:
    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title=f"{TITLE} - Swagger UI",
        oauth2_redirect_url="/docs/oauth2-redirect",
    )
    return Reply(200, bytes(page.body), HTML)


async def swagger_ui_redirect(_request: Request) -> Reply:
    return Reply(200, bytes(get_swagger_ui_oauth2_redirect_html().body), HTML)


async def redoc(_request: Request) -> Reply:
    page = get_redoc_html(openapi_url="/openapi.json", title=f"{TITLE} - ReDoc")
    return Reply(200, bytes(page.body), HTML)
