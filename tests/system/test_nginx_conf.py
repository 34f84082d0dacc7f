"""deploy/nginx/nginx.conf, parsed (tests/system/deployment.py): one balancer in front of the
compose service, keepalive and safe retries, the body limit and nginx's own health location.
tests/system/test_scaleout.py runs the same file under a real nginx.
"""

from __future__ import annotations

import pytest

from service.ops.settings import Settings
from tests.system.deployment import (
    NGINX_CONF,
    NGINX_HEALTH,
    SERVICE_NAME,
    find,
    nginx_http,
    nginx_location,
    nginx_seconds,
    nginx_size,
    nginx_upstream,
    parse_nginx,
    setting,
)

pytestmark = pytest.mark.system


def test_nginx_conf_parses_into_one_balancer() -> None:
    http = nginx_http()
    upstream = nginx_upstream()
    proxy_pass = setting(nginx_location("/"), "proxy_pass")
    assert proxy_pass == [f"http://{upstream.args[0]}"], "location / proxies to the upstream"
    assert not any(
        d.name == "daemon" for d in parse_nginx(NGINX_CONF.read_text(encoding="utf-8"))
    ), "the image's command passes `daemon off;`: a second one is an error"
    assert http.children, "an http block"


def test_nginx_upstream_is_the_compose_service(service_settings: Settings) -> None:
    http = nginx_http()
    upstream = nginx_upstream()
    servers = find(upstream, "server")
    assert len(servers) == 1, "one DNS name, every replica behind it"
    host, _, port = servers[0].args[0].rpartition(":")
    assert (host, int(port)) == (SERVICE_NAME, service_settings.port)
    parameters = dict(p.partition("=")[::2] for p in servers[0].args[1:])
    # Passive health checks: a failing replica is left alone for fail_timeout.
    assert int(parameters["max_fails"]) >= 1
    assert 0 < nginx_seconds(parameters["fail_timeout"]) <= 30
    if "resolve" in parameters:  # re-resolved at run time: needs shared state and a resolver
        assert find(upstream, "zone"), "`resolve` needs a zone in the upstream"
        assert find(http, "resolver") or find(upstream, "resolver")
    # Idle connections to the replicas are reused, and closed by nginx before the service
    # would close them (a request on a connection the service is closing would fail).
    assert int(setting(upstream, "keepalive")[0]) >= 1
    idle = nginx_seconds(setting(upstream, "keepalive_timeout")[0])
    assert idle < service_settings.keepalive_seconds


def test_nginx_proxies_with_keepalive_and_safe_retries(compose_service: dict) -> None:
    location = nginx_location("/")
    assert setting(location, "proxy_http_version") == ["1.1"], "upstream keepalive needs 1.1"
    headers = {d.args[0].lower(): d.args[1:] for d in find(location, "proxy_set_header")}
    assert headers.get("connection") == [""], 'proxy_set_header Connection "" (keepalive)'
    assert "x-request-id" in headers, "X-Request-ID passed on to the replica"
    conditions = set(setting(location, "proxy_next_upstream"))
    # A POST is only retried with non_idempotent; scoring has no side effects.
    assert {"error", "http_502", "http_503", "non_idempotent"} <= conditions
    assert "off" not in conditions
    # A request that reached a replica and timed out is never replayed on the others (issue
    # 11: an expensive request would run three times), nor is the service's own 504.
    assert not {"timeout", "http_504", "http_500"} & conditions
    tries = int(setting(location, "proxy_next_upstream_tries")[0])
    replicas = compose_service["deploy"]["replicas"]
    assert 2 <= tries <= replicas, "bounded: at most one attempt per replica"
    # A retry resends the body: nginx must have it all before the first attempt.
    buffering = find(location, "proxy_request_buffering")
    assert not buffering or buffering[0].args == ["on"]
    assert nginx_seconds(setting(location, "proxy_read_timeout")[0]) >= 60, "large requests"
    # The service answers by its compute deadline (504): nginx waits longer than that.
    deadline = Settings.model_fields["compute_timeout_seconds"].default
    assert nginx_seconds(setting(location, "proxy_read_timeout")[0]) > 2 * deadline
    assert nginx_seconds(setting(location, "proxy_send_timeout")[0]) >= 60


def test_nginx_body_limit_is_the_services(service_settings: Settings) -> None:
    limit = nginx_size(setting(nginx_http(), "client_max_body_size")[0])
    assert limit == service_settings.max_body_bytes, "nginx neither cuts off nor lets through more"


def test_nginx_has_its_own_health_location() -> None:
    location = nginx_location(NGINX_HEALTH)
    assert setting(location, "return")[0] == "200"
    assert not find(location, "proxy_pass"), "says whether nginx runs, asks no replica"
