"""Hostile clients against the real server (issue 11, findings 1-6 of the hostile-client review).

Each class starts its own ``python -m service`` on a free 127.0.0.1 port (one worker, the
class's settings through the environment), as tests/system/test_server.py does, and stops it at
the end of the class, so what one finding does to a server (memory kept, CPU still burning)
never shows up in another finding's figures. Clients are raw sockets
(tests/system/hostile_clients.py);
what a request costs the server is read from /proc: resident memory of the whole process tree
(the worker and its decode helper), its peak (``VmHWM``, reset before the request), and CPU
time (``utime + stime``) to see work run and stop.

Every loop is bounded in count and in time. Speed is not asserted (bench/hostile.py measures
latencies); where the old behaviour was a stall of many seconds, a deadline several times
the expected time catches it. The figures in comments are those of the review ("old") and of
the code before the fixes at these sizes (``python -m bench.hostile`` prints both).
"""

from __future__ import annotations

import re
import select
import socket
import time
from collections.abc import Callable, Iterator
from typing import ClassVar, NamedTuple

import orjson
import pytest

from tests.system import hostile_clients as hostile
from tests.system.hostile_clients import MiB, Response
from tests.system.server import Server, clean_env, free_port, running

pytestmark = pytest.mark.system

PROBLEM = "application/problem+json"
#: Every class's server: a short graceful stop (a test that failed may leave work running),
#: and a short body timeout so stalled bodies are cut off in seconds.
BASE_SETTINGS = {
    "LOSS_SERVICE_GRACEFUL_TIMEOUT_SECONDS": "2",
    "LOSS_SERVICE_BODY_TIMEOUT_SECONDS": "2",
}
BODY_TIMEOUT = 2.0
MSE = "/v1/losses/mse"
CUSTOM = "/v1/losses/custom"
EVALUATE = "/v1/evaluate"
INFER = "/v2/models/mse/infer"
GZIP_JSON = {"Content-Type": "application/json", "Content-Encoding": "gzip"}


class Served(NamedTuple):
    server: Server
    port: int
    pid: int  # the server process; measures cover it and its descendants


def serve(request: pytest.FixtureRequest) -> Iterator[Served]:
    """``python -m service --port <free>`` with ``BASE_SETTINGS`` and the class's ``SETTINGS``."""
    settings = {**BASE_SETTINGS, **getattr(request.cls, "SETTINGS", {})}
    port = free_port()
    with running(["--port", str(port)], clean_env(**settings)) as server:
        server.wait_ready()
        yield Served(server, port, server.process.pid)


@pytest.fixture(scope="class")
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    """One server for the tests of a class."""
    yield from serve(request)


@pytest.fixture
def fresh(request: pytest.FixtureRequest) -> Iterator[Served]:
    """A server of its own for one test (its memory figures owe nothing to other tests)."""
    yield from serve(request)


def assert_problem(response: Response, status: int, slug: str) -> dict:
    assert response.status == status, response.body[:500]
    assert response.headers.get("content-type", "").startswith(PROBLEM), response.headers
    problem = response.json()
    assert problem["type"] == f"/problems/{slug}", problem
    return problem


def assert_serving(port: int) -> None:
    """The server still answers /healthz and a small scoring request."""
    assert hostile.request(port, "GET", "/healthz", timeout=10).status == 200
    response = hostile.post_json(port, MSE, hostile.SMALL_MSE, timeout=10)
    assert response.status == 200, response.body[:300]


def peak_growth(served: Served, send: Callable[[], Response]) -> tuple[Response, int]:
    """``send()``'s response and the peak growth of the tree's resident memory meanwhile."""
    if not hostile.peak_reset_works(served.pid):
        pytest.skip("this kernel cannot reset VmHWM (/proc/<pid>/clear_refs)")
    before = hostile.rss_bytes(served.pid)
    hostile.reset_peak(served.pid)
    response = send()
    return response, hostile.peak_rss_bytes(served.pid) - before


# ---- 1. memory is freed when the response is sent ---------------------------------------------


class TestMemoryIsFreedAfterEachRequest:
    """Finding 1: a request's memory outlived its response (reference cycles that only a garbage
    collection frees, and an idle worker runs none; a compute thread's reference to its last
    job), so RSS grew with every request (old: 30 failed 4.8 MB requests +525 MiB; 20
    successful 1e6-entry requests +868 MiB; three ~200 MB 413s 1.4 -> 8.7 GB).

    Each test has a server of its own. It sends one request (so allocator pools and caches
    are filled), takes the level, sends more of the same, and lets the worker idle a moment
    (``/healthz`` round trips, which provoke no collection). The level may then be over the
    first one by a bound far below what the old code kept (given with each test)."""

    SETTINGS: ClassVar[dict[str, str]] = {"LOSS_SERVICE_MAX_ELEMENTS": "4000000"}

    def growth(self, fresh: Served, body: bytes, status: int, more: int, bound: int) -> int:
        first = hostile.post_json(fresh.port, MSE, body, timeout=60)
        assert first.status == status, first.body[:300]
        level = hostile.settled_rss(fresh.pid, fresh.port, at_most=0, within=0.5)
        for _ in range(more):
            response = hostile.post_json(fresh.port, MSE, body, timeout=60)
            assert response.status == status, response.body[:300]
        after = hostile.settled_rss(fresh.pid, fresh.port, at_most=level + bound)
        return after - level

    def test_successful_requests(self, fresh: Served) -> None:
        """12 more 36 MB mse requests of 1e6 entries (200, a 22 MB answer each): old +265 MiB;
        fixed +40 to +60 MiB (the allocator's slack); bound 128 MiB."""
        predictions = hostile.matrix(1000, 1000, b"0.123456789012345")
        targets = hostile.matrix(1000, 1000, b"0.987654321098765")
        body = hostile.document(predictions=predictions, targets=targets)
        growth = self.growth(fresh, body, 200, more=12, bound=128 * MiB)
        assert growth <= 128 * MiB, f"RSS grew {growth / MiB:.0f} MiB over 12 requests"

    def test_failed_requests(self, fresh: Served) -> None:
        """15 more 5 MB shape mismatches (422): old +168 MiB (~11 MB each); fixed +10 to +20 MiB;
        bound 48 MiB."""
        predictions = hostile.flat(240_000, b"0.12345678")
        targets = hostile.flat(239_999, b"0.12345678")
        body = hostile.document(predictions=predictions, targets=targets)
        growth = self.growth(fresh, body, 422, more=15, bound=48 * MiB)
        assert growth <= 48 * MiB, f"RSS grew {growth / MiB:.0f} MiB over 15 failed requests"

    def test_requests_over_the_element_limit(self, fresh: Served) -> None:
        """2 more 20 MB bodies of 1e7 elements (413 past 4e6): old +190 MiB; fixed +20 to +36 MiB;
        bound 80 MiB."""
        body = hostile.document(predictions=hostile.flat(10_000_000, b"0"), targets=b"[0]")
        growth = self.growth(fresh, body, 413, more=2, bound=80 * MiB)
        assert growth <= 80 * MiB, f"RSS grew {growth / MiB:.0f} MiB over 2 refused requests"
        assert_serving(fresh.port)


# ---- 2. slow bodies lock nobody out -------------------------------------------------------------


class TestSlowBodies:
    """Finding 2: admission reserved the declared Content-Length before a byte arrived and
    nothing timed out a stalled body (old: 4 sockets declaring 256 MiB made every scoring
    request a 503; 70 declaring 10 bytes took all 64 in-flight slots; both for as long as the
    sockets stayed open). Now a client holds only the bytes it sent, a request holds a compute
    slot only while it computes, and a stalled body is cut off after
    ``LOSS_SERVICE_BODY_TIMEOUT_SECONDS`` (2 here) with a 408 problem and a close."""

    def served_meanwhile(self, port: int, stalled: list[socket.socket]) -> None:
        """20 scoring requests on one other connection, all 200, while ``stalled`` are held."""
        with hostile.Connection(port, timeout=10) as connection:
            statuses = [
                connection.request("POST", MSE, hostile.SMALL_MSE, hostile.JSON_HEADERS).status
                for _ in range(20)
            ]
        assert statuses == [200] * 20
        answered = sum(hostile.answered_yet(sock) for sock in stalled)
        # They were held throughout: none was answered (or cut off) before the 20 were served.
        assert answered == 0, f"{answered} stalled bodies were answered before their timeout"

    def assert_cut_off(self, stalled: list[socket.socket], since: float) -> None:
        """Each stalled socket gets a 408 request-timeout problem within the body timeout plus
        3 s of its last byte, and then the server closes the connection."""
        deadline = since + BODY_TIMEOUT + 3.0
        for sock in stalled:
            try:
                response = hostile.read_response(sock, deadline)
            except hostile.NoAnswer as error:
                pytest.fail(f"a stalled body got no 408 within {BODY_TIMEOUT + 3:.0f} s: {error}")
            assert_problem(response, 408, "request-timeout")
            assert hostile.closes_after(sock, deadline + 1.0), "connection left open after 408"

    def stall(self, served: Served, declared: int, sockets: int) -> None:
        """``sockets`` bodies declaring ``declared`` bytes and sending one: others are served
        meanwhile, each stalled one gets its 408, and the server serves afterwards."""
        stalled = [hostile.stalled_body(served.port, MSE, declared, b"{") for _ in range(sockets)]
        since = time.monotonic()
        try:
            self.served_meanwhile(served.port, stalled)
            self.assert_cut_off(stalled, since)
        finally:
            for sock in stalled:
                sock.close()
        assert_serving(served.port)

    def test_large_declared_bodies_that_stall_lock_nobody_out(self, served: Served) -> None:
        """8 sockets declare 256 MiB (the body limit) and send 1 byte: 2 GiB declared against a
        1 GiB in-flight budget. Old: every scoring request a 503, no 408 ever."""
        self.stall(served, declared=256 * MiB, sockets=8)

    def test_many_small_stalled_bodies_leave_the_slots_free(self, served: Served) -> None:
        """70 sockets declare 10 bytes and send 1, past LOSS_SERVICE_MAX_IN_FLIGHT (64). Old:
        the slots were all taken (503s), no 408 ever."""
        self.stall(served, declared=10, sockets=70)

    def test_a_trickling_body_is_cut_off_by_the_rate_check(self, served: Served) -> None:
        """One byte every 0.25 s never waits BODY_TIMEOUT for the next bytes, but averages far
        below LOSS_SERVICE_BODY_MIN_BYTES_PER_SECOND (16384): a 408 once the body has arrived
        for the timeout. Bounded: at most 5 s of trickle, then 3 s for the answer."""
        sock = hostile.stalled_body(served.port, MSE, 100_000, b"{")
        started = time.monotonic()
        try:
            for _ in range(20):  # 20 x 0.25 s
                readable, _, _ = select.select([sock], [], [], 0.25)
                if readable:
                    break
                try:
                    sock.sendall(b" ")
                except OSError:  # the server cut it off meanwhile: its answer waits
                    break
            try:
                response = hostile.read_response(sock, time.monotonic() + 3.0)
            except hostile.NoAnswer as error:
                pytest.fail(f"a trickling body was not cut off in 8 s: {error}")
            waited = time.monotonic() - started
            assert_problem(response, 408, "request-timeout")
            assert waited <= BODY_TIMEOUT + 3.0, f"cut off after {waited:.1f} s"
        finally:
            sock.close()
        assert_serving(served.port)


# ---- 3. memory proportional to the decoded size ------------------------------------------------


class TestJsonStructureCannotInflateMemory:
    """Finding 3: memory followed the JSON's structure, not its size (old: a 12 MB unknown field
    of arrays nested 30 deep +465 MiB, 41x; a 145 KB gzip body of 49.6 MB such JSON +2.3 GB;
    a 200 MB malformed body parsed twice). Now one request peaks within 10x its decoded size
    whatever its structure, an unknown top-level field is refused before its value is built,
    the in-flight byte budget counts decoded bytes, and nothing is parsed twice.

    Peaks are the growth of the tree's summed ``VmHWM`` over its RSS before the request."""

    SETTINGS: ClassVar[dict[str, str]] = {
        "LOSS_SERVICE_MAX_ELEMENTS": "4000000",
        "LOSS_SERVICE_MAX_IN_FLIGHT_BYTES": str(48 * MiB),
    }

    def test_unknown_field_of_deep_arrays(self, served: Served) -> None:
        """12 MB: ``junk`` holds arrays nested 30 deep. A 422 naming it; peak <= 10x the body
        (old: 49x, +561 MiB)."""
        body = hostile.document(
            predictions=b"[0.5]", targets=b"[0.5]", junk=hostile.nested_of_size(30, 12_000_000)
        )
        response, peak = peak_growth(served, lambda: hostile.post_json(served.port, MSE, body))
        problem = assert_problem(response, 422, "invalid-structure")
        assert "junk" in problem["detail"]
        assert peak <= 10 * len(body), f"peak +{peak / MiB:.0f} MiB for {len(body) / 1e6:.0f} MB"

    def test_deep_arrays_in_a_tensor_field(self, served: Served) -> None:
        """6 MB: predictions and targets of shape (k, 1, ..., 1), 30 dimensions, written as
        nested lists (valid, so they must be read). Peak <= 10x the body (old: ~49x)."""
        values = hostile.nested_of_size(29, 3_000_000)
        body = hostile.document(predictions=values, targets=values, include=b'["cost"]')
        response, peak = peak_growth(served, lambda: hostile.post_json(served.port, MSE, body))
        assert response.status < 500, response.body[:300]
        assert peak <= 10 * len(body), f"peak +{peak / MiB:.0f} MiB for {len(body) / 1e6:.0f} MB"

    def test_gzip_body_of_deep_arrays(self, served: Served) -> None:
        """/v2 infer, Content-Encoding gzip: ~50 KB inflating to 10 MB whose unknown member
        holds arrays nested 30 deep. A 400 (the protocol's status for invalid input); peak
        <= 10x the decoded size (old: 49x)."""
        decoded = hostile.infer_body(1, junk=hostile.nested_of_size(30, 10_000_000))
        body = hostile.gzip_member(decoded)
        response, peak = peak_growth(
            served, lambda: hostile.request(served.port, "POST", INFER, body, GZIP_JSON, 60)
        )
        assert_problem(response, 400, "invalid-structure")
        assert peak <= 10 * len(decoded), (
            f"peak +{peak / MiB:.0f} MiB for {len(decoded) / 1e6:.0f} MB decoded "
            f"({len(body) / 1e3:.0f} KB sent)"
        )

    def test_a_large_request_peaks_under_three_times_its_body(self, served: Served) -> None:
        """36 MB: mse of 1e6 entries with its gradient (a 22 MB answer), sent once the worker
        has given the memory of an earlier such request back (its lanes trim after 0.5 s idle),
        so the figure owes nothing to pools left filled: peak growth <= 3x the body, as the
        performance issue asks (before it, 6.1x). Measured in 14 runs: 1.72-1.73x in 11, and
        2.46-2.59x in 3 (where the allocator puts the body, the arrays and the answer varies
        from run to run). Sent while the pools are still full it peaks lower (0.56-0.68x), but that state
        depends on timing, so it is not the one checked. That the answer is never joined whole
        is checked exactly, with tracemalloc, in tests/api/test_answer_pieces.py; that the body
        is let go once decoded, in tests/api/test_memory.py."""
        predictions = hostile.matrix(1000, 1000, b"0.123456789012345")
        targets = hostile.matrix(1000, 1000, b"0.987654321098765")
        body = hostile.document(predictions=predictions, targets=targets)
        warm = hostile.post_json(served.port, MSE, body, timeout=60)
        assert warm.status == 200, warm.body[:300]
        hostile.pause(1.0)
        hostile.settled_rss(served.pid, served.port, at_most=0, within=1.0)
        response, peak = peak_growth(
            served, lambda: hostile.post_json(served.port, MSE, body, timeout=60)
        )
        assert response.status == 200, response.body[:300]
        assert len(response.body) > 20_000_000
        assert peak <= 3 * len(body), f"peak +{peak / MiB:.0f} MiB for {len(body) / 1e6:.0f} MB"

    def test_in_flight_budget_counts_decoded_bytes(self, served: Served) -> None:
        """A 64 KB gzip body inflating to 64 MB (a valid request padded with spaces) against a
        48 MiB in-flight budget: refused (503 overloaded, or 413), never decoded in full. Old:
        the budget counted the 64 KB sent, so it was served (200)."""
        decoded = hostile.infer_body(1).removesuffix(b"}") + b" " * (64 << 20) + b"}"
        body = hostile.gzip_member(decoded)
        response = hostile.request(served.port, "POST", INFER, body, GZIP_JSON, 60)
        assert response.status in (413, 503), response.body[:300]
        problem = response.json()
        assert problem["type"] in ("/problems/overloaded", "/problems/payload-too-large"), problem

    def test_malformed_body_is_parsed_once(self, served: Served) -> None:
        """18 MB of numbers like 1.5e-300 with its last ``}`` missing: a 400, for about the CPU
        time of one parse. Bound: twice this process's own orjson parse of the valid body,
        +0.2 s. Old: orjson, then the standard library again (~7x slower on such numbers)."""
        values = hostile.flat(1_000_000, b"1.5e-300")
        valid = hostile.document(predictions=values, targets=values)
        started = time.process_time()
        orjson.loads(valid)
        one_parse = time.process_time() - started
        before = hostile.cpu_seconds(served.pid)
        response = hostile.post_json(served.port, MSE, valid[:-1], timeout=60)
        used = hostile.cpu_seconds(served.pid) - before
        assert_problem(response, 400, "malformed-json")
        assert used <= 2 * one_parse + 0.2, (
            f"the server used {used:.2f} s of CPU; one orjson parse takes {one_parse:.2f} s"
        )
        assert_serving(served.port)


# ---- 4. gzip members -------------------------------------------------------------------------


class TestGzipMembers:
    """Finding 4: each gzip member copied the rest of the body, so many members were quadratic
    (old: 100k empty members, 2 MB, 4 s; two 4.9 MB such bodies held a small request 41 s)."""

    def test_many_empty_members_cost_linear_time(self, served: Served) -> None:
        """A valid /v2 request gzipped, then 200k empty members (4 MB): a 200, for at most 3 s
        of the server's CPU (linear: ~0.5 s; old: ~10 s; the client waits up to 60 s)."""
        body = hostile.gzip_members(hostile.infer_body(2), 200_000)
        before = hostile.cpu_seconds(served.pid)
        try:
            response = hostile.request(served.port, "POST", INFER, body, GZIP_JSON, 60)
        except hostile.NoAnswer:
            pytest.fail("no answer in 60 s to a 4 MB body of 200k gzip members")
        used = hostile.cpu_seconds(served.pid) - before
        assert response.status == 200, response.body[:300]
        assert used <= 3.0, f"{used:.1f} s of CPU for 200k gzip members"
        assert_serving(served.port)


# ---- 5. expensive work --------------------------------------------------------------------------


HEAVY_ENTRIES = 2_000_000  # x ~6 us per entry of the expensive expression: ~12 s of one core


class TestWorkIsEstimatedBeforeItRuns:
    """Finding 5a: a 1 KB custom expression costs ~6 us of a core per entry (~1000x mse), and
    nothing looked at the cost before running it. Now work estimated past
    ``LOSS_SERVICE_MAX_WORK_SECONDS`` (0.1 s here) is a 413 ``work-too-large`` whose detail says
    what fits, before it runs. The refused requests take ~1.2 s and ~2.4 s of a core: an
    estimate could be 10x low and still refuse them; the cheap one takes ~10 ms."""

    SETTINGS: ClassVar[dict[str, str]] = {"LOSS_SERVICE_MAX_WORK_SECONDS": "0.1"}

    def assert_refused(self, served: Served, path: str, body: bytes) -> None:
        before = hostile.cpu_seconds(served.pid)
        response = hostile.post_json(served.port, path, body, timeout=60)
        used = hostile.cpu_seconds(served.pid) - before
        problem = assert_problem(response, 413, "work-too-large")
        assert re.search(r"\d", problem["detail"]), problem  # says what fits
        assert used <= 0.5, f"{used:.1f} s of CPU spent on work it refused"

    def test_expensive_custom_loss(self, served: Served) -> None:
        """The expression on 2e5 entries (old: computed, ~1.2 s of CPU, 200)."""
        self.assert_refused(served, CUSTOM, hostile.custom_body(200_000))

    def test_expensive_evaluate(self, served: Served) -> None:
        """/v1/evaluate with 4 terms of the expression on 1e5 entries (old: computed, 200)."""
        self.assert_refused(served, EVALUATE, hostile.evaluate_body(100_000, expression_terms=4))

    def test_cheap_request_of_the_same_size_is_served(self, served: Served) -> None:
        response = hostile.post_json(served.port, MSE, hostile.mse_body(200_000), timeout=60)
        assert response.status == 200, response.body[:300]


class TestComputeDeadline:
    """Finding 5b: nothing bounded a computation. Now past
    ``LOSS_SERVICE_COMPUTE_TIMEOUT_SECONDS`` (2 here) the work stops and the answer is a 504
    ``deadline-exceeded``."""

    SETTINGS: ClassVar[dict[str, str]] = {
        "LOSS_SERVICE_MAX_WORK_SECONDS": "1000",  # admitted, so that the deadline stops it
        "LOSS_SERVICE_COMPUTE_TIMEOUT_SECONDS": "2",
    }

    def test_work_past_the_deadline_stops_with_a_504(self, served: Served) -> None:
        """The expression on 2e6 entries (~12 s of one core). A 504 within the client's 12 s
        (old: a 200 after the whole computation), then the tree's CPU time stops growing
        within 3 s."""
        try:
            response = hostile.post_json(
                served.port, CUSTOM, hostile.custom_body(HEAVY_ENTRIES), 12
            )
        except hostile.NoAnswer:
            pytest.fail("no answer within 12 s to work past a 2 s deadline")
        assert_problem(response, 504, "deadline-exceeded")
        settled = hostile.cpu_settles(served.pid, within=3.0)
        assert settled is not None, "the server kept computing after its 504"
        assert_serving(served.port)


class TestHeavyWorkRunsInItsOwnLane:
    """Finding 5c: heavy requests shared the compute threads with everything else, so small
    requests queued behind them (old: 7-14 s behind two 2e6-entry requests), and a request kept
    computing after its client had gone. Now requests estimated past
    ``LOSS_SERVICE_HEAVY_WORK_SECONDS`` compute in the heavy lane, and work stops when its client
    goes away (the deadline here is 60 s, so it is the hang-up that stops it)."""

    SETTINGS: ClassVar[dict[str, str]] = {
        "LOSS_SERVICE_MAX_WORK_SECONDS": "1000",  # admitted
        "LOSS_SERVICE_COMPUTE_TIMEOUT_SECONDS": "60",
    }

    def start_heavy(self, served: Served, count: int) -> list[hostile.Abandoned]:
        body = hostile.custom_body(HEAVY_ENTRIES)
        heavy = [hostile.Abandoned.send(served.port, CUSTOM, body) for _ in range(count)]
        if not hostile.cpu_grows(served.pid, by=1.0, within=15.0):
            for request in heavy:
                request.hang_up()
            pytest.fail("the heavy requests did not start computing within 15 s")
        return heavy

    def test_small_requests_do_not_queue_behind_heavy_ones(self, served: Served) -> None:
        """While two heavy requests compute, 10 small requests and /healthz each answer within
        3 s (old: 7-14 s). Then the heavy clients hang up."""
        heavy = self.start_heavy(served, 2)
        try:
            for _ in range(10):
                try:
                    response = hostile.post_json(served.port, MSE, hostile.SMALL_MSE, timeout=3)
                    health = hostile.request(served.port, "GET", "/healthz", timeout=3)
                except hostile.NoAnswer:
                    pytest.fail("a small request waited more than 3 s behind heavy work")
                assert (response.status, health.status) == (200, 200), response.body[:300]
        finally:
            for request in heavy:
                request.hang_up()
            hostile.cpu_settles(served.pid, within=15.0)  # the next test starts from idle

    def test_work_stops_when_the_client_goes_away(self, served: Served) -> None:
        """A heavy request's client hangs up while it computes: the tree's CPU time stops
        growing within 3 s (old: it computed to the end, ~12 s of CPU)."""
        (heavy,) = self.start_heavy(served, 1)
        heavy.hang_up()
        settled = hostile.cpu_settles(served.pid, within=3.0)
        assert settled is not None, "the server kept computing for a client that had gone"
        assert_serving(served.port)


# ---- 6. a bounded error list -------------------------------------------------------------------


class TestErrorListIsBounded:
    """Finding 6: every unknown key of ``params`` was an error of its own (old: 1M keys, 12 MB,
    a 422 of 87 MB after 15 s and +1.5 GB). Now at most ~20 errors are listed and the detail
    counts the rest; validation stops early."""

    def test_many_unknown_params(self, served: Served) -> None:
        """100k unknown keys (1.1 MB): a 422 of < 20 KB listing <= 21 errors, whose detail
        counts the rest (old: 8.5 MB, 100k errors)."""
        keys = 100_000
        body = hostile.document(
            predictions=b"[0.5]", targets=b"[0.5]", params=hostile.unknown_params(keys)
        )
        response = hostile.post_json(served.port, MSE, body, timeout=60)
        problem = assert_problem(response, 422, "invalid-structure")
        assert len(response.body) < 20_000, f"a {len(response.body)}-byte answer"
        assert len(problem["errors"]) <= 21, f"{len(problem['errors'])} errors listed"
        numbers = re.findall(r"\d[\d,]*", problem["detail"])  # 99999 or 99,999
        counts = [int(number.replace(",", "")) for number in numbers]
        assert any(keys - 25 <= count <= keys for count in counts), problem["detail"]
        assert_serving(served.port)
