"""The client's transport against a scripted local server: what is retried, where, after how
long (a fake clock records the back-offs instead of waiting them), and what is not."""

from __future__ import annotations

import email.utils
import json
import time

import pytest
from loss_client.transport import ServiceError, Transport, UnavailableError

from tests.client.fake_service import (
    Cut,
    Drop,
    FakeTime,
    Reply,
    problem,
    refusing_url,
    serving,
)

BODY = json.dumps({"predictions": [1.0], "targets": [0.0]}).encode()
OK = Reply(200, {"state": {"n": 1}})


def transport(urls: list[str], time_source: FakeTime, **options) -> Transport:
    return Transport(
        urls, jitter=False, clock=time_source.clock, sleep=time_source.sleep, **options
    )


def test_a_503_is_retried_after_its_retry_after() -> None:
    time_source = FakeTime()
    with serving([problem(503, "overloaded"), OK]) as service:
        client = transport([service.url], time_source)
        answer = client.post("/v1/evaluate", BODY)
    assert answer == {"state": {"n": 1}}
    assert service.paths() == ["/v1/evaluate", "/v1/evaluate"]
    assert time_source.sleeps == [0.5]  # no Retry-After: the first back-off


def test_retry_after_seconds_is_honoured() -> None:
    time_source = FakeTime()
    with serving([Reply(503, {"detail": "busy"}, {"Retry-After": "7"}), OK]) as service:
        transport([service.url], time_source, backoff=0.5).post("/v1/evaluate", BODY)
    assert len(service.received) == 2
    assert time_source.sleeps == [7.0]


def test_retry_after_as_an_http_date_is_honoured() -> None:
    time_source = FakeTime()
    later = email.utils.formatdate(time.time() + 120, usegmt=True)
    with serving([Reply(503, {"detail": "busy"}, {"Retry-After": later}), OK]) as service:
        transport([service.url], time_source, backoff=0.5).post("/v1/evaluate", BODY)
    assert len(service.received) == 2
    (slept,) = time_source.sleeps
    assert 100 < slept <= 120


def test_backoff_doubles_while_a_replica_keeps_failing() -> None:
    time_source = FakeTime()
    script = [problem(503, "busy")] * 4 + [OK]
    with serving(script) as service:
        transport([service.url], time_source, backoff=0.5).post("/v1/evaluate", BODY)
    assert len(service.received) == 5
    assert time_source.sleeps == [0.5, 1.0, 2.0, 4.0]


def test_a_503_moves_the_request_to_the_next_replica_without_waiting() -> None:
    time_source = FakeTime()
    with (
        serving([Reply(503, {"detail": "busy"}, {"Retry-After": "30"})]) as busy,
        serving([OK]) as free,
    ):
        transport([busy.url, free.url], time_source).post("/v1/evaluate", BODY)
    assert len(busy.received) == len(free.received) == 1
    assert time_source.sleeps == []


def test_a_refused_url_is_skipped_and_left_alone_while_it_backs_off() -> None:
    time_source = FakeTime()
    with refusing_url() as dead, serving(otherwise=lambda request: OK) as alive:
        client = transport([dead, alive.url], time_source, backoff=5.0)
        for shard in range(6):  # round-robin would send shards 0, 2, 4 to the dead URL
            assert client.post("/v1/evaluate", BODY, first=shard) == {"state": {"n": 1}}
    assert len(alive.received) == 6
    assert time_source.sleeps == []  # the live replica took over at once
    dead_replica = client.replicas[0]
    assert dead_replica.failures == 1  # tried once, then skipped during its back-off
    assert dead_replica.not_before == 5.0


def test_a_connection_closed_without_an_answer_is_sent_again_elsewhere() -> None:
    time_source = FakeTime()
    with serving([Drop()]) as dying, serving([OK]) as alive:
        answer = transport([dying.url, alive.url], time_source).post("/v1/evaluate", BODY)
    assert answer == {"state": {"n": 1}}
    assert len(dying.received) == len(alive.received) == 1
    assert alive.received[0].body == json.loads(BODY)


def test_an_answer_cut_short_is_sent_again_elsewhere() -> None:
    """A replica killed while it sends its answer: behind nginx too, which cannot retry an
    answer it has begun passing on (README, Scale-out)."""
    time_source = FakeTime()
    with serving([Cut()]) as dying, serving([OK]) as alive:
        answer = transport([dying.url, alive.url], time_source).post("/v1/evaluate", BODY)
    assert answer == {"state": {"n": 1}}
    assert len(dying.received) == len(alive.received) == 1


def test_a_422_is_not_retried_and_its_detail_is_surfaced() -> None:
    time_source = FakeTime()
    detail = "terms[0].loss: unknown loss 'msee'; close matches: mse"
    with serving([problem(422, detail)]) as first, serving(otherwise=lambda r: OK) as second:
        client = transport([first.url, second.url], time_source)
        with pytest.raises(ServiceError) as raised:
            client.post("/v1/evaluate", BODY)
    assert raised.value.status == 422
    assert raised.value.detail == detail
    assert detail in str(raised.value)
    assert len(first.received) == 1
    assert second.received == []
    assert time_source.sleeps == []


@pytest.mark.parametrize("status", [400, 401, 404, 413, 415, 500, 504])
def test_other_errors_are_final(status: int) -> None:
    time_source = FakeTime()
    with (
        serving([problem(status, f"problem {status}")]) as service,
        pytest.raises(ServiceError) as raised,
    ):
        transport([service.url], time_source).post("/v1/evaluate", BODY)
    assert raised.value.status == status
    assert len(service.received) == 1
    if status == 413:
        assert "smaller --shard-size" in str(raised.value)


def test_a_502_is_retried() -> None:
    time_source = FakeTime()
    with serving([Reply(502, b"<html>Bad Gateway</html>"), OK]) as service:
        transport([service.url], time_source).post("/v1/evaluate", BODY)
    assert len(service.received) == 2


def test_attempts_are_bounded_and_the_last_error_is_said() -> None:
    time_source = FakeTime()
    with serving(otherwise=lambda request: problem(503, "still warming up")) as service:
        client = transport([service.url], time_source, max_attempts=3)
        with pytest.raises(UnavailableError, match=r"after 3 attempts.*still warming up"):
            client.post("/v1/evaluate", BODY)
    assert len(service.received) == 3


def test_every_url_refusing_fails_after_the_attempts() -> None:
    time_source = FakeTime()
    with refusing_url() as first, refusing_url() as second:
        client = transport([first, second], time_source, max_attempts=4, backoff=1.0)
        with pytest.raises(UnavailableError, match="after 4 attempts"):
            client.post("/v1/evaluate", BODY)
    # one attempt at each, then a wait for the first to be free again (1 s), then the second
    # (free at the same moment)
    assert time_source.sleeps == [1.0]


def test_the_api_key_is_a_bearer_token() -> None:
    time_source = FakeTime()
    with serving([OK, OK]) as service:
        transport([service.url], time_source, api_key="s3cret").post("/v1/evaluate", BODY)
        transport([service.url], time_source).post("/v1/evaluate", BODY)
    with_key, without = service.received
    assert with_key.headers["authorization"] == "Bearer s3cret"
    assert "authorization" not in without.headers
    assert with_key.headers["content-type"] == "application/json"


def test_urls_are_checked() -> None:
    with pytest.raises(ValueError, match="http://"):
        Transport(["localhost:8000"])
    with pytest.raises(ValueError, match="at least one URL"):
        Transport([])
