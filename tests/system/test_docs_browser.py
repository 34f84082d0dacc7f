"""/docs and /redoc in a real browser with no network: headless Chromium renders every operation
of the real server's OpenAPI document, and the page asks nothing of any host but 127.0.0.1.

Chromium (Debian's ``chromium``; ``.ci/run`` installs it when root, and the tests skip without
it) runs as tests/system/browser.py says: nothing could leave the machine, and its network log
shows what the page *asked* for. The stock FastAPI page, its assets on a CDN, is the control:
under the same conditions it renders nothing, and its CDN requests are found in the log.

The server runs with API keys configured: a browser sends none, so the pages, the document and
the assets must be open routes.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.openapi.docs import get_swagger_ui_html

from tests.system.browser import LOOPBACK, check_redoc, check_swagger_ui, needs_chromium, render
from tests.system.server import clean_env, fetch, free_port, running

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, dict[str, Any]]]:
    """The real server, API keys on, and its OpenAPI document."""
    port = free_port()
    with running(["--port", str(port)], clean_env(LOSS_SERVICE_API_KEYS="docs-key")) as process:
        process.wait_ready()
        status, body = fetch(port, "GET", "/openapi.json")
        assert status == 200
        yield port, json.loads(body)


@needs_chromium
def test_swagger_ui_renders_every_operation_offline(server, tmp_path: Path) -> None:
    port, document = server
    check_swagger_ui(f"http://{LOOPBACK}:{port}", document, tmp_path)


@needs_chromium
def test_redoc_renders_every_operation_offline(server, tmp_path: Path) -> None:
    port, document = server
    check_redoc(f"http://{LOOPBACK}:{port}", document, tmp_path)


def test_asset_paths_with_dot_segments_are_404s(server) -> None:
    """Sent as they are (http.client normalizes nothing): no file outside the list."""
    port, _ = server
    for path in (
        "/docs/assets/../../pyproject.toml",
        "/docs/assets/..",
        "/docs/assets/%2e%2e/LICENSE",
        "/docs/assets/..%2f..%2fpyproject.toml",
        "/docs/assets/swagger/swagger-ui-bundle.js",
    ):
        status, _ = fetch(port, "GET", path)
        assert status == 404, path


# --- the control: FastAPI's stock page, its assets on a CDN -----------------------------------


@contextmanager
def stock_page() -> Iterator[tuple[str, str]]:
    """FastAPI's default Swagger UI page (its script and style from a CDN) on a local server:
    its URL and its HTML."""
    page = bytes(get_swagger_ui_html(openapi_url="/openapi.json", title="stock").body)

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page if self.path == "/docs" else b"{}"
            kind = "text/html" if self.path == "/docs" else "application/json"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer((LOOPBACK, 0), Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{httpd.server_address[1]}/docs", page.decode()
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=30)


@needs_chromium
def test_the_stock_page_is_blank_offline_and_the_log_shows_its_cdn(tmp_path: Path) -> None:
    with stock_page() as (url, page):
        rendered = render(url, tmp_path)
    assert "opblock" not in rendered.dom
    # The scripts' CDN (a favicon link is fetched, or not, as Chromium gets round to it).
    cdn = {urlsplit(u).hostname for u in re.findall(r'src="(https://[^"]+)"', page)}
    assert cdn, page
    away = {urlsplit(u).hostname for u in rendered.page_requests()} - {LOOPBACK}
    assert cdn <= away, (cdn, rendered.requests)
