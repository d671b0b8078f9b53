"""Connectivity states from call outcomes, change events, and probing lost backends back."""

from __future__ import annotations

import asyncio
import itertools
import random

from fieldtui.core.errors import (
    AuthError,
    ConnectionError_,
    InvalidResponse,
    NotFound,
    Rejected,
    ServerError,
    SessionLost,
    TimeoutError_,
)
from fieldtui.service.connectivity import BackendState, Connectivity, ConnectivityChange


def test_each_failure_kind_sets_its_state_and_an_answer_sets_online() -> None:
    conn = Connectivity(["things"])
    assert conn.status("things").state is BackendState.UNKNOWN
    cases = [
        (ConnectionError_("cannot reach", backend="things"), BackendState.OFFLINE),
        (TimeoutError_("too slow", backend="things"), BackendState.OFFLINE),
        (AuthError("credentials refused", backend="things"), BackendState.AUTH_ERROR),
        (ServerError("HTTP 503", backend="things", status_code=503), BackendState.DEGRADED),
        (InvalidResponse("not JSON", backend="things"), BackendState.DEGRADED),
        (SessionLost("another client took the session", backend="things"), BackendState.DEGRADED),
    ]
    for error, state in cases:
        conn.record_failure("things", error)
        status = conn.status("things")
        assert status.state is state, error
        assert status.last_error == str(error)
    conn.record_failure("things", NotFound("no such device", backend="things"))
    status = conn.status("things")
    assert status.state is BackendState.ONLINE
    assert status.last_error is None and status.last_success is not None
    conn.record_failure("things", Rejected("bad group", backend="things"))
    assert conn.status("things").state is BackendState.ONLINE


async def test_changes_reach_subscribers_and_callbacks_once_per_change() -> None:
    conn = Connectivity(["a", "b"])
    seen: list[ConnectivityChange] = []
    unsubscribe = conn.on_change(seen.append)
    received: list[ConnectivityChange] = []

    async def listen() -> None:
        async for change in conn.subscribe():
            received.append(change)
            if len(received) == 3:
                return

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0)
    conn.record_success("a")
    conn.record_success("a")  # no change: no event
    conn.record_failure("a", ConnectionError_("down", backend="a"))
    conn.record_failure("a", ConnectionError_("still down", backend="a"))  # same state: no event
    conn.record_failure("b", AuthError("refused", backend="b"))
    await asyncio.wait_for(listener, 2)
    transitions = [(c.backend, c.old, c.new) for c in received]
    assert transitions == [
        ("a", BackendState.UNKNOWN, BackendState.ONLINE),
        ("a", BackendState.ONLINE, BackendState.OFFLINE),
        ("b", BackendState.UNKNOWN, BackendState.AUTH_ERROR),
    ]
    assert [(c.backend, c.new) for c in seen] == [(c.backend, c.new) for c in received]
    assert conn.status("a").last_error == "a: still down"
    unsubscribe()
    conn.record_success("b")
    assert len(seen) == 3


async def test_offline_backend_is_probed_with_backoff_until_it_answers() -> None:
    attempts: list[float] = []
    loop = asyncio.get_running_loop()

    async def probe(backend: str) -> None:
        attempts.append(loop.time())
        if len(attempts) < 4:
            raise ConnectionError_("connection refused", backend=backend)

    conn = Connectivity(
        ["things"], probe=probe, probe_interval=0.05, probe_max_interval=1.0, rng=random.Random(1)
    )
    conn.record_failure("things", ConnectionError_("connection refused", backend="things"))
    conn.start()
    try:
        await asyncio.wait_for(conn.wait_online("things"), 5)
    finally:
        await conn.stop()
    assert conn.status("things").state is BackendState.ONLINE
    assert len(attempts) == 4
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    # each wait is at least half the doubled base: 0.05, 0.1, 0.2 -> >= 0.05, 0.1
    assert gaps[1] >= 0.05 and gaps[2] >= 0.1


async def test_wait_online_returns_at_once_for_an_online_backend_and_waits_otherwise() -> None:
    conn = Connectivity(["a"])
    conn.record_success("a")
    await asyncio.wait_for(conn.wait_online("a"), 1)
    conn.record_failure("a", ConnectionError_("down", backend="a"))
    waiter = asyncio.create_task(conn.wait_online("a"))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    conn.record_success("a")
    await asyncio.wait_for(waiter, 1)


async def test_a_probe_that_hangs_counts_as_offline() -> None:
    async def probe(backend: str) -> None:
        await asyncio.sleep(10)

    conn = Connectivity(["a"], probe=probe, probe_timeout=0.05)
    assert await conn.probe_now("a") is BackendState.OFFLINE
    assert conn.status("a").last_error == "no answer in time"
