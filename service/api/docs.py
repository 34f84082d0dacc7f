"""``/openapi.json``, ``/docs`` (Swagger UI) and ``/redoc``, from the route table; the pages'
scripts, styles and icons from the service itself (no CDN: ``/docs`` renders without internet).

The assets are the files the PyPI package ``fastapi-standalone-docs`` ships (swagger-ui-dist
and ReDoc's standalone bundle, whose Redocly logo it points at ``<page>/logo-mini.svg`` instead
of a CDN, and FastAPI's favicon), served byte for byte from a fixed list: nothing else of the
package's folder is reachable. Their URLs carry the package's version, so a browser may keep
them a week and still fetches the new ones after an upgrade.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)

from service import __version__
from service.api import openapi
from service.api.problems import HttpProblem, Reply, problem_reply
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


ASSETS_PACKAGE = "fastapi-standalone-docs"
ASSETS_VERSION = version(ASSETS_PACKAGE)
ASSETS_PATH = "/docs/assets"
#: ReDoc's bundle asks for its logo at the page's path + "/logo-mini.svg".
REDOC_LOGO_PATH = "/redoc/logo-mini.svg"
JAVASCRIPT = "text/javascript; charset=utf-8"
CACHE = (("Cache-Control", "public, max-age=604800"), ("X-Content-Type-Options", "nosniff"))


@dataclass(frozen=True)
class Asset:
    #: The file, relative to the package's ``static`` folder.
    source: str
    media_type: str


#: Every file the asset routes serve, by the name in their URL.
ASSETS = {
    "swagger-ui-bundle.js": Asset("swagger/swagger-ui-bundle.js", JAVASCRIPT),
    "swagger-ui.css": Asset("swagger/swagger-ui.css", "text/css; charset=utf-8"),
    "redoc.standalone.js": Asset("redoc/redoc.standalone.js", JAVASCRIPT),
    "favicon.png": Asset("fastapi/favicon.png", "image/png"),
    "logo-mini.svg": Asset("redoc/logo-mini.svg", "image/svg+xml"),
}


def static_folder() -> Path:
    """The package's ``static`` folder, found without running the package's code (it patches
    FastAPI applications on import, and this service is none)."""
    spec = importlib.util.find_spec(ASSETS_PACKAGE.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{ASSETS_PACKAGE} is not installed: /docs has no assets")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


@cache
def asset_bytes(name: str) -> bytes:
    """One listed asset's bytes, read on first use and kept (about 2.9 MB for all five)."""
    return (static_folder() / ASSETS[name].source).read_bytes()


def asset_url(name: str) -> str:
    return f"{ASSETS_PATH}/{name}?v={ASSETS_VERSION}"


def _asset_reply(name: str) -> Reply:
    asset = ASSETS.get(name)
    if asset is None:
        return problem_reply(HttpProblem(404))
    return Reply(200, asset_bytes(name), asset.media_type, CACHE)


async def docs_asset(request: Request) -> Reply:
    """``GET /docs/assets/{file}``: a listed asset, else 404 (no path is ever opened)."""
    return _asset_reply(request.params["file"])


async def redoc_logo(_request: Request) -> Reply:
    return _asset_reply("logo-mini.svg")


async def openapi_json(document: Document, _request: Request) -> Reply:
    return Reply(200, document.encoded())


async def swagger_ui(_request: Request) -> Reply:
    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title=f"{TITLE} - Swagger UI",
        oauth2_redirect_url="/docs/oauth2-redirect",
        swagger_js_url=asset_url("swagger-ui-bundle.js"),
        swagger_css_url=asset_url("swagger-ui.css"),
        swagger_favicon_url=asset_url("favicon.png"),
        # No badge from the online validator (validator.swagger.io): nothing leaves the page.
        swagger_ui_parameters={"validatorUrl": None},
    )
    return Reply(200, bytes(page.body), HTML)


async def swagger_ui_redirect(_request: Request) -> Reply:
    return Reply(200, bytes(get_swagger_ui_oauth2_redirect_html().body), HTML)


async def redoc(_request: Request) -> Reply:
    page = get_redoc_html(
        openapi_url="/openapi.json",
        title=f"{TITLE} - ReDoc",
        redoc_js_url=asset_url("redoc.standalone.js"),
        redoc_favicon_url=asset_url("favicon.png"),
        with_google_fonts=False,  # the page's own fonts: no request to Google
    )
    return Reply(200, bytes(page.body), HTML)
