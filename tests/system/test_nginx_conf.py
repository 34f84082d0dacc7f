"""deploy/nginx/nginx.conf, parsed (tests/system/nginx_conf.py): two balancers in front of the
compose service, HTTP and gRPC; keepalive and safe retries, the body limits and nginx's own
health location. tests/system/test_scaleout.py runs the same file under a real nginx.
"""

from __future__ import annotations

import pytest

from service.ops.settings import Settings
from tests.system.deployment import SERVICE_NAME
from tests.system.nginx_conf import (
    GRPC_PORT,
    HTTP_PORT,
    NGINX_CONF,
    NGINX_HEALTH,
    find,
    nginx_http,
    nginx_location,
    nginx_seconds,
    nginx_server,
    nginx_servers,
    nginx_size,
    nginx_upstream,
    parse_nginx,
    setting,
)

pytestmark = pytest.mark.system


def test_nginx_conf_parses_into_two_balancers() -> None:
    http = nginx_http()
    upstream = nginx_upstream(HTTP_PORT)
    proxy_pass = setting(nginx_location("/"), "proxy_pass")
    assert proxy_pass == [f"http://{upstream.args[0]}"], "location / proxies to the upstream"
    grpc_upstream = nginx_upstream(GRPC_PORT)
    grpc_pass = setting(nginx_location("/", GRPC_PORT), "grpc_pass")
    assert grpc_pass == [f"grpc://{grpc_upstream.args[0]}"], "cleartext gRPC to the upstream"
    assert grpc_upstream.args != upstream.args, "gRPC and HTTP go to different ports"
    assert sorted(u.args[0] for u in find(http, "upstream")) == sorted(
        [upstream.args[0], grpc_upstream.args[0]]
    ), "no upstream left unused"
    assert len(nginx_servers()) == 2, "HTTP and gRPC"
    assert not any(
        d.name == "daemon" for d in parse_nginx(NGINX_CONF.read_text(encoding="utf-8"))
    ), "the image's command passes `daemon off;`: a second one is an error"
    assert http.children, "an http block"


@pytest.mark.parametrize("port", [HTTP_PORT, GRPC_PORT], ids=["http", "grpc"])
def test_nginx_upstream_is_the_compose_service(port: int, service_settings: Settings) -> None:
    http = nginx_http()
    upstream = nginx_upstream(port)
    servers = find(upstream, "server")
    assert len(servers) == 1, "one DNS name, every replica behind it"
    host, _, replica_port = servers[0].args[0].rpartition(":")
    # The replicas' own port for that protocol: LOSS_SERVICE_PORT or LOSS_SERVICE_GRPC_PORT.
    wanted = {HTTP_PORT: service_settings.port, GRPC_PORT: service_settings.grpc_port}[port]
    assert (host, int(replica_port)) == (SERVICE_NAME, wanted)
    parameters = dict(p.partition("=")[::2] for p in servers[0].args[1:])
    # Passive health checks: a failing replica is left alone for fail_timeout; the same rule
    # for both protocols (a dead replica fails both at once).
    assert int(parameters["max_fails"]) >= 1
    assert 0 < nginx_seconds(parameters["fail_timeout"]) <= 30
    http_servers = find(nginx_upstream(HTTP_PORT), "server")
    assert servers[0].args[1:] == http_servers[0].args[1:], "the same failover rules"
    if "resolve" in parameters:  # re-resolved at run time: needs shared state and a resolver
        assert find(upstream, "zone"), "`resolve` needs a zone in the upstream"
        assert find(http, "resolver") or find(upstream, "resolver")
    # Idle connections to the replicas are reused, and closed by nginx before the service
    # would close them (a request on a connection the service is closing would fail); the
    # service's gRPC idle limit is the same LOSS_SERVICE_KEEPALIVE_SECONDS.
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


def test_nginx_grpc_server_speaks_http2_and_retries_only_unsent_calls(
    compose_service: dict,
) -> None:
    server = nginx_server(GRPC_PORT)
    assert setting(server, "http2") == ["on"], "gRPC is HTTP/2 (cleartext, prior knowledge)"
    assert not find(server, "ssl_certificate"), "h2c: grpcurl -plaintext"
    location = nginx_location("/", GRPC_PORT)
    assert not find(location, "proxy_pass"), "gRPC needs grpc_pass (HTTP/2 to the replicas)"
    headers = {d.args[0].lower(): d.args[1:] for d in find(location, "grpc_set_header")}
    assert headers.get("x-request-id") == ["$loss_request_id"], "the id of the access log"
    conditions = set(setting(location, "grpc_next_upstream"))
    # nginx streams gRPC request bodies, so it replays only a call that never reached a
    # replica: a refused connection (error) or a connect timeout (timeout). A status code
    # condition would never match (a replica answers 200 and a gRPC status).
    assert {"error", "timeout"} <= conditions
    assert "off" not in conditions
    assert not {c for c in conditions if c.startswith("http_")}, conditions
    tries = int(setting(location, "grpc_next_upstream_tries")[0])
    assert 2 <= tries <= compose_service["deploy"]["replicas"], "at most one per replica"
    http_location = nginx_location("/")
    for what in ("connect_timeout", "send_timeout", "read_timeout"):
        grpc_value = nginx_seconds(setting(location, f"grpc_{what}")[0])
        assert grpc_value == nginx_seconds(setting(http_location, f"proxy_{what}")[0]), what
    deadline = Settings.model_fields["compute_timeout_seconds"].default
    assert nginx_seconds(setting(location, "grpc_read_timeout")[0]) > 2 * deadline


def test_nginx_grpc_body_limit_is_the_services_message_limit(service_settings: Settings) -> None:
    # The replica refuses a message over LOSS_SERVICE_MAX_BODY_BYTES; on the wire a message
    # has a 5-byte prefix (compressed flag, 4-byte length).
    limit = nginx_size(setting(nginx_server(GRPC_PORT), "client_max_body_size")[0])
    assert limit == service_settings.max_body_bytes + 5
