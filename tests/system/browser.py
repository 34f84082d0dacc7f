"""Headless Chromium for the system tests: a page rendered with no network (every host name but
127.0.0.1 unresolvable, anything else sent to a proxy that refuses), its DOM once its scripts
ran, and what the page asked for from Chromium's network log (``--log-net-log``).

A page's requests are the navigation and those whose initiator is the page's origin; Chromium's
own background calls (update checks, sign-in), which no page causes, have no origin and are
left aside. Used by test_docs_browser.py (the server from this checkout) and test_image.py (the
container).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from service.api import docs
from tests.system.server import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Seconds of the page's own (virtual) time to run its scripts; Chromium fast-forwards idle time.
VIRTUAL_TIME_MS = 30_000
BROWSER_TIMEOUT = 180.0  # s of real time for one page, start to exit
LOOPBACK = "127.0.0.1"
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on PATH (Debian: apt-get install chromium; .ci/run installs it as root)",
)


@dataclass(frozen=True)
class Rendered:
    dom: str
    #: (url, initiator) of every URL request in the network log.
    requests: list[tuple[str, str]]
    origin: str

    def page_requests(self) -> list[str]:
        """What the page asked for: the navigation and the requests its origin initiated."""
        return [url for url, initiator in self.requests if initiator in (self.origin, "")]


def net_log_requests(path: Path) -> list[tuple[str, str]]:
    """(url, initiator) of each URL_REQUEST_START_JOB: every request Chromium started. The
    navigation has no initiator (Chromium writes "not an origin"); it is given as ""
    when its request type is the main frame."""
    log = json.loads(path.read_text(encoding="utf-8"))
    event_types = log["constants"]["logEventTypes"]
    start = event_types["URL_REQUEST_START_JOB"]
    found = []
    for event in log["events"]:
        params: dict[str, Any] = event.get("params") or {}
        if event["type"] != start or "url" not in params:
            continue
        initiator = params.get("initiator", "")
        if params.get("request_type") == "main frame":
            initiator = ""
        found.append((params["url"], initiator))
    return found


def browser_command(url: str, profile: Path, net_log: Path, refusing_port: int) -> list[str]:
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--disable-gpu",
        f"--user-data-dir={profile}",
        # No name resolves but 127.0.0.1, and anything else goes to a proxy that refuses.
        f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {LOOPBACK}",
        f"--proxy-server=http://{LOOPBACK}:{refusing_port}",
        f"--log-net-log={net_log}",
        # Less of Chromium's own traffic (it is refused all the same).
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-domain-reliability",
        "--no-pings",
        "--disable-breakpad",
        "--disable-features=NetworkTimeServiceQuerying,AutofillServerCommunication,"
        "OptimizationHints,Translate,MediaRouter",
        f"--virtual-time-budget={VIRTUAL_TIME_MS}",
        "--dump-dom",
        url,
    ]
    if os.geteuid() == 0:
        command.insert(1, "--no-sandbox")  # Chromium's sandbox refuses to run as root
    return command


def render(url: str, workdir: Path) -> Rendered:
    """The DOM of ``url`` once its scripts ran, and the requests Chromium made."""
    workdir.mkdir(parents=True, exist_ok=True)
    net_log = workdir / "net-log.json"
    stderr = workdir / "stderr.txt"
    command = browser_command(url, workdir / "profile", net_log, free_port())
    with stderr.open("wb") as errors:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            start_new_session=True,  # its zygote and renderers in one group, ended together
        )
        try:
            out, _ = process.communicate(timeout=BROWSER_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"chromium did not finish {url} in {BROWSER_TIMEOUT:.0f} s")
        finally:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, stderr.read_text(errors="replace")[-3000:]
    split = urlsplit(url)
    return Rendered(
        out.decode("utf-8", "replace"),
        net_log_requests(net_log),
        f"{split.scheme}://{split.netloc}",
    )


def operations(document: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(method, path, operation id, summary) of every operation of the document."""
    return [
        (method, path, operation["operationId"], operation["summary"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def assert_stayed_local(rendered: Rendered, expected: set[str]) -> None:
    asked = rendered.page_requests()
    away = [url for url in asked if urlsplit(url).hostname != LOOPBACK]
    assert away == [], f"the page asked for other hosts: {away}"
    paths = {
        split.path + (f"?{split.query}" if split.query else "") for split in map(urlsplit, asked)
    }
    assert expected <= paths, (expected - paths, sorted(paths))


def check_swagger_ui(base: str, document: dict[str, Any], workdir: Path) -> None:
    """Swagger UI at ``base``/docs renders every operation of ``document`` (the server's OpenAPI
    document) and asks for nothing but its own assets."""
    rendered = render(f"{base}/docs", workdir)
    # Every opblock: its method (class), id (operations-<tag>-<operationId>) and path.
    blocks = re.findall(
        r'<div class="opblock opblock-(\w+)[^"]*" id="operations-([^"]+)">.*?'
        r'data-path="([^"]*)"',
        rendered.dom,
    )
    assert blocks, rendered.dom[:2000]
    found = {(method, html.unescape(path), block_id) for method, block_id, path in blocks}
    for method, path, operation_id, _ in operations(document):
        assert any(
            m == method and p == path and i.endswith(f"-{operation_id}") for m, p, i in found
        ), (method, path, operation_id)
    assert len(blocks) == len(operations(document))
    for path in ("/v1/losses/{name}", "/v1/evaluate/merge", "/v2/models/{name}/infer"):
        assert f'data-path="{path}"' in rendered.dom
    assert_stayed_local(
        rendered,
        {
            "/docs",
            "/openapi.json",
            docs.asset_url("swagger-ui-bundle.js"),
            docs.asset_url("swagger-ui.css"),
            docs.asset_url("favicon.png"),
        },
    )


def check_redoc(base: str, document: dict[str, Any], workdir: Path) -> None:
    """ReDoc at ``base``/redoc has a section headed by its summary for every operation of
    ``document``, and asks for nothing but its own assets."""
    rendered = render(f"{base}/redoc", workdir)
    # Each operation's section: id="operation/<operationId>", then its heading (the summary).
    headings = dict(
        re.findall(
            r'id="operation/([^"]+)"[^>]*>(?:<div[^>]*>)*<h2[^>]*>(?:<a[^>]*></a>)?([^<]*)</h2>',
            rendered.dom,
        )
    )
    assert headings, rendered.dom[:2000]
    expected = {operation_id: summary for _, _, operation_id, summary in operations(document)}
    rendered_headings = {key: html.unescape(value).strip() for key, value in headings.items()}
    assert rendered_headings == expected
    assert_stayed_local(
        rendered,
        {
            "/redoc",
            "/openapi.json",
            docs.asset_url("redoc.standalone.js"),
            docs.asset_url("favicon.png"),
            docs.REDOC_LOGO_PATH,
        },
    )
