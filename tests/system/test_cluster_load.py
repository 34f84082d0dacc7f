"""The failover tests' client threads (tests/system/cluster.py, ``Load``) against a local server
that cuts chosen answers short: a cut answer is sent again once and counted apart, and only a
right second answer counts as ok. The failover tests allow cuts, so this checks they cannot hide
a wrong answer or a failed request behind one."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.system.cluster import Load

pytestmark = pytest.mark.system

EXPECTED = {"cost": 0.5}
RIGHT = json.dumps(EXPECTED).encode()
WRONG = json.dumps({"cost": 0.25}).encode()

#: The n-th request's answer (n from 0): "right", "wrong", or "cut" (a Content-Length the body
#: does not reach, then the connection closed, as when a replica dies while it answers).
Plan = Callable[[int], str]


@contextmanager
def server(plan: Plan) -> Iterator[int]:
    counter = iter(range(1 << 30))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as nginx answers

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                what = plan(next(counter))
            body = WRONG if what == "wrong" else RIGHT
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body) + (100 if what == "cut" else 0)))
            self.end_headers()
            self.wfile.write(body)
            if what == "cut":
                self.wfile.flush()
                self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def run_load(plan: Plan, requests: int) -> Load:
    with server(plan) as port:
        load = Load(port, [("/v1/losses/mse", b"{}")], [EXPECTED])
        load.start(1)
        deadline = time.monotonic() + 10.0
        while load.count() < requests and time.monotonic() < deadline:
            time.sleep(0.01)
        load.join()
    assert load.count() >= requests, "the load did not run"
    return load


def test_a_cut_answer_is_sent_again_and_counts_apart() -> None:
    load = run_load(lambda n: "cut" if n == 3 else "right", 6)
    assert len(load.cut) == 1 and "IncompleteRead" in load.cut[0], load.cut
    assert load.failures == []
    assert load.ok == load.count()


def test_a_wrong_answer_after_a_cut_is_a_failure() -> None:
    load = run_load(lambda n: {3: "cut", 4: "wrong"}.get(n, "right"), 6)
    assert len(load.cut) == 1
    assert len(load.failures) == 1 and "different numbers" in load.failures[0], load.failures


def test_a_second_cut_is_a_failure() -> None:
    load = run_load(lambda n: "cut" if n in (3, 4) else "right", 6)
    assert len(load.cut) == 1
    assert len(load.failures) == 1 and "sent again after a cut" in load.failures[0]
    assert "IncompleteRead" in load.failures[0]


def test_a_wrong_answer_is_a_failure_not_a_cut() -> None:
    load = run_load(lambda n: "wrong" if n == 2 else "right", 5)
    assert load.cut == []
    assert len(load.failures) == 1 and "different numbers" in load.failures[0]
