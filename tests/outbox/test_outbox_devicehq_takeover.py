"""Queued DeviceHQ changes through a session taken by another client: retried, never failed.

The simulator's ``reworded`` fault keeps each 423 but replaces its words, so nothing here can
pass by recognising what the server says about sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from outbox_doubles import FAST

from fieldtui.connectors.devicehq import forget_sessions
from fieldtui.core.actions import ActionState
from fieldtui.service.writes import open_outbox

GROUP = "Basement B2"


@pytest.fixture(autouse=True)
def _fresh_sessions() -> Iterator[None]:
    forget_sessions()
    yield
    forget_sessions()


def reword(sim: Any) -> None:
    assert sim.admin("PUT", "/_sim/faults/gateways", json={"reworded": True}).status_code == 200


async def take_the_session(sim: Any, http: httpx.AsyncClient) -> None:
    response = await http.post(
        sim.urls["devicehq"] + "/session", headers={"X-API-KEY": sim.credentials.devicehq_api_key}
    )
    assert response.status_code == 200, response.text


def moves(sim: Any, serial: str) -> list[Any]:
    log = sim.admin("GET", "/_sim/mutations?backend=gateways").json()
    return [
        m["body"] for m in log if m["method"] in ("PUT", "PATCH") and m["path"].endswith(f"/devices/{serial}")
    ]


def a_gateway(sim: Any) -> Any:
    return next(d for d in sorted(sim.fleet.of("devicehq").values(), key=lambda d: d.id) if d.group != GROUP)


async def test_a_queued_move_after_another_client_took_the_session_is_sent_not_failed(
    sim_setup: Any, sim_clean: Any
) -> None:
    device = a_gateway(sim_clean)
    reword(sim_clean)
    async with open_outbox(sim_setup.loaded(), backoff=FAST) as outbox, httpx.AsyncClient(timeout=10) as http:
        await outbox.connectors["gateways"].get_device(device.id)  # the session works
        await take_the_session(sim_clean, http)
        record = await outbox.writes.move_to_group(
            device.id, GROUP, backend="gateways", precondition={"group": device.group}
        )
        summary = await outbox.engine.drain()
        stored = await outbox.store.get(record.id)
    assert [r.id for r in summary.done] == [record.id] and not summary.failed
    assert stored is not None and stored.state is ActionState.DONE
    assert sim_clean.admin("GET", f"/_sim/inspect/gateways/{device.id}").json()["group"] == GROUP
    assert len(moves(sim_clean, device.id)) == 1


async def test_a_queued_move_while_another_client_keeps_taking_the_session_waits_then_syncs_once(
    sim_setup: Any, sim_clean: Any
) -> None:
    device = a_gateway(sim_clean)
    reword(sim_clean)
    async with open_outbox(sim_setup.loaded(), backoff=FAST) as outbox, httpx.AsyncClient(timeout=10) as http:
        await outbox.connectors["gateways"].get_device(device.id)

        async def thief() -> None:
            while True:
                # The other client's own connection may meet a keep-alive race on a loaded
                # machine: it just tries again (what it does is not under test).
                with contextlib.suppress(httpx.TransportError):
                    await take_the_session(sim_clean, http)
                await asyncio.sleep(0.005)

        stealing = asyncio.create_task(thief())
        try:
            record = await outbox.writes.move_to_group(
                device.id, GROUP, backend="gateways", precondition={"group": device.group}
            )
            for _ in range(3):
                summary = await outbox.engine.drain()
                assert not summary.failed, [r.last_error for r in summary.failed]
                await asyncio.sleep(0.05)
        finally:
            stealing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stealing
        deadline = time.monotonic() + 30
        while True:
            stored = await outbox.store.get(record.id)
            assert stored is not None
            assert stored.state is not ActionState.FAILED, stored.last_error
            if stored.state is ActionState.DONE:
                break
            assert time.monotonic() < deadline, f"still {stored.state.value}: {stored.last_error}"
            await asyncio.sleep(0.2)
            await outbox.engine.drain()
    assert sim_clean.admin("GET", f"/_sim/inspect/gateways/{device.id}").json()["group"] == GROUP
    assert len(moves(sim_clean, device.id)) == 1
