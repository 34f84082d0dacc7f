"""The failover tests' client threads (tests/system/cluster.py, ``Load``) against a local server
that cuts chosen answers short: a cut answer is sent again once and counted apart, and only a
right second answer counts as ok. The failover tests allow cuts, so this checks they cannot hide
a wrong answer or a failed request behind one."""

from __future__ import annotations

import time

import pytest

from tests.client.fake_service import Cut, Reply, Script, serving
from tests.system.cluster import Load

pytestmark = pytest.mark.system

EXPECTED = {"cost": 0.5}
RIGHT = Reply(200, EXPECTED)
WRONG = Reply(200, {"cost": 0.25})


def run_load(script: Script, requests: int) -> Load:
    """One client thread through the scripted server (tests/client/fake_service.py): the
    ``script``'s replies in order (a ``Cut`` stops short of its Content-Length and closes the
    connection, as a replica that dies while it answers), then right answers."""
    with serving(script, otherwise=lambda _: RIGHT) as service:
        load = Load(int(service.url.rsplit(":", 1)[1]), [("/v1/losses/mse", b"{}")], [EXPECTED])
        load.start(1)
        deadline = time.monotonic() + 10.0
        while load.count() < requests and time.monotonic() < deadline:
            time.sleep(0.01)
        load.join()
    assert load.count() >= requests, "the load did not run"
    return load


def test_a_cut_answer_is_sent_again_and_counts_apart() -> None:
    load = run_load([RIGHT, RIGHT, RIGHT, Cut()], 6)
    assert len(load.cut) == 1 and "IncompleteRead" in load.cut[0], load.cut
    assert load.failures == []
    assert load.ok == load.count()


def test_a_wrong_answer_after_a_cut_is_a_failure() -> None:
    load = run_load([RIGHT, RIGHT, RIGHT, Cut(), WRONG], 6)
    assert len(load.cut) == 1
    assert len(load.failures) == 1 and "different numbers" in load.failures[0], load.failures


def test_a_second_cut_is_a_failure() -> None:
    load = run_load([RIGHT, RIGHT, RIGHT, Cut(), Cut()], 6)
    assert len(load.cut) == 1
    assert len(load.failures) == 1 and "sent again after a cut" in load.failures[0]
    assert "IncompleteRead" in load.failures[0]


def test_a_wrong_answer_is_a_failure_not_a_cut() -> None:
    load = run_load([RIGHT, RIGHT, WRONG], 5)
    assert load.cut == []
    assert len(load.failures) == 1 and "different numbers" in load.failures[0]
