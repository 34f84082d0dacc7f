"""The connection guards' units (service/api/connections/): the bound on open connections derived
from the open-file limit, which connection is closed to make room, and the protocol class
surviving the pickling into spawned workers. The guards against a real server, over raw
sockets, are in tests/system/test_connections.py.
"""

from __future__ import annotations

import logging
import pickle
import resource

import pytest
import uvicorn

from service.api.connections.bound import (
    UNLIMITED_FILES,
    ConnectionTable,
    Phase,
    derive_max_connections,
    resolve_max_connections,
)
from service.api.connections.protocol import GuardedHttpToolsProtocol


def test_the_bound_leaves_ten_percent_and_32_files_for_the_process() -> None:
    assert derive_max_connections(400) == 400 - 40 - 32 == 328
    assert derive_max_connections(1024) == 1024 - 102 - 32 == 890
    assert derive_max_connections(65_536) == 65_536 - 6553 - 32
    assert derive_max_connections(35) == 1  # never below one
    unlimited = derive_max_connections(UNLIMITED_FILES)
    assert derive_max_connections(resource.RLIM_INFINITY) == unlimited


def test_a_configured_bound_wins_and_one_past_the_file_limit_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert resolve_max_connections(0, soft_limit=400) == 328
    with caplog.at_level(logging.WARNING, logger="service"):
        assert resolve_max_connections(40, soft_limit=400) == 40
        assert not caplog.records
        assert resolve_max_connections(1000, soft_limit=400) == 1000
    assert "EMFILE" in caplog.text
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert resolve_max_connections(0) == derive_max_connections(soft)


class FakeConnection:
    def __init__(self, table: ConnectionTable, phase: Phase, responding: bool = False) -> None:
        self.table, self.phase, self.responding = table, phase, responding
        self.evicted = False
        table.phases[phase][self] = None

    def response_in_progress(self) -> bool:
        return self.responding

    def evict(self) -> None:
        del self.table.phases[self.phase][self]
        self.evicted = True


def test_room_is_made_by_closing_headers_then_idle_then_bodies_never_busy() -> None:
    table = ConnectionTable(max_connections=6)
    busy = FakeConnection(table, Phase.BUSY)
    answering = FakeConnection(table, Phase.BODY, responding=True)  # early answer being written
    body = FakeConnection(table, Phase.BODY)
    idle = FakeConnection(table, Phase.IDLE)
    older_headers = FakeConnection(table, Phase.HEADERS)
    newer_headers = FakeConnection(table, Phase.HEADERS)
    assert len(table) == 6
    order = []
    for _ in range(4):
        victim = table.victim()
        assert table.make_room()
        order.append(victim)
        assert victim is not None and victim.evicted
        FakeConnection(table, Phase.BUSY)  # the newcomer ends up busy
    assert order == [older_headers, newer_headers, idle, body]
    assert not table.make_room()  # only busy ones and one writing a response are left
    assert not (busy.evicted or answering.evicted)
    assert (table.evicted, table.refused) == (4, 1)
    closing = FakeConnection(table, Phase.CLOSING)
    assert table.victim() is closing


def test_the_protocol_pickles_into_spawned_workers() -> None:
    config = uvicorn.Config(
        "service.app:create_app", factory=True, http=GuardedHttpToolsProtocol, log_config=None
    )
    assert pickle.loads(pickle.dumps(config)).http is GuardedHttpToolsProtocol
