"""/docs and /redoc with no CDN: their pages name only the service's own URLs, and the asset
routes serve the packaged files byte for byte, from a fixed list, API keys or not.

The bytes are compared with the files as the installed distribution lists them
(``importlib.metadata``), not as the service finds them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib.metadata import distribution

import pytest
from fastapi.testclient import TestClient

from service.api import docs
from service.app import create_app
from service.ops.settings import Settings

PACKAGE = distribution(docs.ASSETS_PACKAGE)
#: What each file's first kilobyte holds, beside being the package's bytes.
SIGNATURES = {
    "swagger-ui-bundle.js": b"SwaggerUIBundle",
    "swagger-ui.css": b".swagger-ui",
    "redoc.standalone.js": b"Redoc",
    "favicon.png": b"\x89PNG\r\n\x1a\n",
    "logo-mini.svg": b"<svg",
}
#: (Literal dot segments are normalized away by the test client: tests/system/test_docs_browser.py
#: sends them to the real server.)
UNLISTED = [
    "x.js",
    "LICENSE",
    "redoc.standalone.js.LICENSE.txt",
    "swagger-ui-bundle.js.map",
    "index.html",
    "%2e%2e",
    "..%2F..%2Fpyproject.toml",
    "swagger%2Fswagger-ui-bundle.js",
    "SWAGGER-UI.CSS",
    "swagger-ui.css%00",
]
ATTRIBUTE_URL = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""")


def packaged(name: str) -> bytes:
    """The file as the installed distribution has it (its RECORD), by the asset's name."""
    wanted = f"fastapi_standalone_docs/static/{docs.ASSETS[name].source}"
    (entry,) = [file for file in PACKAGE.files or () if str(file) == wanted]
    return entry.read_binary()


@pytest.fixture(scope="module")
def keyed() -> Iterator[TestClient]:
    app = create_app(Settings(api_keys="docs-key"), warm=lambda: 0)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def asset_path(name: str) -> str:
    return "/redoc/logo-mini.svg" if name == "logo-mini.svg" else f"/docs/assets/{name}"


@pytest.mark.parametrize("name", sorted(docs.ASSETS))
def test_each_asset_is_the_packaged_file(client: TestClient, name: str) -> None:
    response = client.get(asset_path(name))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == docs.ASSETS[name].media_type
    assert response.content == packaged(name)
    assert SIGNATURES[name] in response.content[:1024]
    assert response.headers["cache-control"] == "public, max-age=604800"
    assert response.headers["x-content-type-options"] == "nosniff"
    head = client.head(asset_path(name))
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(response.content))


def test_the_media_types(client: TestClient) -> None:
    types = {name: client.get(asset_path(name)).headers["content-type"] for name in docs.ASSETS}
    assert types == {
        "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
        "redoc.standalone.js": "text/javascript; charset=utf-8",
        "swagger-ui.css": "text/css; charset=utf-8",
        "favicon.png": "image/png",
        "logo-mini.svg": "image/svg+xml",
    }


def test_redoc_asks_for_its_logo_here_not_on_a_cdn(client: TestClient) -> None:
    """ReDoc's bundle as published loads its logo from Redocly's CDN; this package's asks the
    page's own path (``/redoc`` + ``/logo-mini.svg``), which the service answers."""
    bundle = client.get("/docs/assets/redoc.standalone.js").content
    assert b"cdn.redoc.ly" not in bundle
    assert b'window.location.pathname+"/logo-mini.svg"' in bundle


@pytest.mark.parametrize("name", UNLISTED)
def test_an_unlisted_file_is_a_404(client: TestClient, name: str) -> None:
    response = client.get(f"/docs/assets/{name}")
    assert response.status_code == 404, (name, response.status_code)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/http-404"


@pytest.mark.parametrize("path", ["/docs/assets", "/docs/assets/", "/redoc/LICENSE"])
def test_no_listing_and_nothing_else_under_the_pages(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("/docs", {"swagger-ui.css", "favicon.png", "swagger-ui-bundle.js"}),
        ("/redoc", {"favicon.png", "redoc.standalone.js"}),
    ],
)
def test_the_pages_name_only_local_urls(client: TestClient, page: str, expected: set) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    html = response.text
    assert re.findall(r"[A-Za-z][A-Za-z0-9+.-]*://", html) == []  # no absolute URL at all
    urls = ATTRIBUTE_URL.findall(html)
    assert sorted(urls) == sorted(f"/docs/assets/{name}?v={PACKAGE.version}" for name in expected)
    assert "/openapi.json" in html
    assert "fonts.googleapis" not in html


def test_swagger_ui_asks_no_online_validator(client: TestClient) -> None:
    assert '"validatorUrl": null' in client.get("/docs").text


@pytest.mark.parametrize(
    "path",
    [
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/openapi.json",
        "/redoc/logo-mini.svg",
        *(f"/docs/assets/{name}" for name in docs.ASSETS if name != "logo-mini.svg"),
    ],
)
def test_documentation_is_open_when_keys_are_configured(keyed: TestClient, path: str) -> None:
    assert keyed.get(path).status_code == 200
    assert keyed.get("/v1/losses").status_code == 401  # the keys are on


def test_documentation_routes_are_not_in_the_document(openapi: dict) -> None:
    documented = [p for p in openapi["paths"] if p.startswith(("/docs", "/redoc", "/openapi"))]
    assert documented == []
