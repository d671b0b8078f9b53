"""Expired tokens and sessions, a restarted broker, an uncertain send: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fieldtui.config import LoadedConfig
from fieldtui.core.actions import ActionState
from fieldtui.core.models import StreamEvent, TelemetrySample
from fieldtui.service.factory import build_fleet_service
from fieldtui.service.sync import Backoff
from fieldtui.service.writes import open_outbox

FAST = Backoff(base=0.05, cap=0.3, hold=0.1)


def _mutations(sim: Any, backend: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = sim.admin("GET", f"/_sim/mutations?backend={backend}").json()
    return result


async def _drain_until_settled(outbox: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        await outbox.engine.drain()
        counts = await outbox.store.counts()
        if not counts.get(ActionState.QUEUED) and not counts.get(ActionState.SENDING):
            return
        assert time.monotonic() < deadline, counts
        await asyncio.sleep(0.1)


async def test_changes_sync_exactly_once_across_expired_tokens_and_sessions(
    loaded: LoadedConfig, sim_clean: Any
) -> None:
    thing = sorted(sim_clean.fleet.of("things"))[0]
    gateway = sorted(sim_clean.fleet.of("devicehq"))[0]
    async with open_outbox(loaded, backoff=FAST) as outbox:
        # Sessions exist, then the clouds forget them while the changes wait in the outbox.
        await outbox.connectors["things"].get_device(thing)
        await outbox.connectors["gateways"].get_device(gateway)
        writes = outbox.writes
        first = await writes.set_installation_status(thing, "quarantine", backend="things")
        second = await writes.move_to_group(gateway, "expired-1", backend="gateways")
        sim_clean.admin("POST", "/_sim/expire-credentials?backend=things")
        sim_clean.admin("POST", "/_sim/expire-credentials?backend=gateways")
        await _drain_until_settled(outbox)
        third = await writes.set_installation_status(thing, "retired", backend="things")
        fourth = await writes.move_to_group(gateway, "expired-2", backend="gateways")
        sim_clean.admin("POST", "/_sim/expire-credentials")
        await _drain_until_settled(outbox)
        for record in (first, second, third, fourth):
            stored = await outbox.store.get(record.id)
            assert stored is not None and stored.state is ActionState.DONE, stored
    posts = [
        m["body"]["installation_status"]
        for m in _mutations(sim_clean, "things")
        if m["path"].endswith("/installations")
    ]
    assert posts == ["quarantine", "retired"]
    puts = [
        m["body"]["data"]["attributes"]["group"]
        for m in _mutations(sim_clean, "gateways")
        if m["method"] == "PUT"
    ]
    assert puts == ["expired-1", "expired-2"]
    assert sim_clean.admin("GET", f"/_sim/inspect/gateways/{gateway}").json()["group"] == "expired-2"


async def test_an_older_task_of_the_same_type_is_not_taken_for_an_uncertain_one(
    loaded: LoadedConfig, sim_clean: Any
) -> None:
    """Found by the soak: a send that may have gone out is checked, and the check must not
    mistake another task of the same type (made a moment earlier by another tool) for ours."""
    sensor = sorted(sim_clean.fleet.of("mysensor"))[0]
    async with open_outbox(loaded, backoff=FAST) as outbox:
        record = await outbox.writes.create_task(
            sensor, "update_firmware", {"file_id": 1_650_001}, backend="sensors"
        )
        await outbox.connectors["sensors"].create_task(sensor, "update_firmware", {"file_id": 1_650_000})
        # A sync process claimed it and died mid-request: the next one must check before sending.
        [claimed] = await outbox.store.claim("gone:1:x", limit=1, lease_seconds=30)
        await outbox.store.release("gone:1:x", record.id, uncertain=True)
        assert claimed.record.id == record.id
        await _drain_until_settled(outbox)
        stored = await outbox.store.get(record.id)
    assert stored is not None and stored.state is ActionState.DONE
    file_ids = [m["body"]["file_id"] for m in _mutations(sim_clean, "sensors") if m["method"] == "PUT"]
    assert file_ids == [1_650_000, 1_650_001]


async def test_telemetry_resumes_after_the_broker_restarts(loaded: LoadedConfig, sim_clean: Any) -> None:
    live = sorted(d.id for d in sim_clean.fleet.of("mqtt").values() if d.online)[0]
    events: list[str] = []
    async with build_fleet_service(loaded) as service:
        stream = service.telemetry(live)

        async def next_sample() -> TelemetrySample:
            async for item in stream:
                if isinstance(item, StreamEvent):
                    events.append(item.kind.value)
                elif item.backend == "live":
                    return item
            raise AssertionError("the telemetry stream ended")

        await asyncio.wait_for(next_sample(), 20)
        for _ in range(2):
            assert sim_clean.admin("POST", "/_sim/broker/restart").status_code == 200
            back = time.time()
            while True:
                sample = await asyncio.wait_for(next_sample(), 30)
                if sample.timestamp.timestamp() > back:
                    break
        await stream.aclose()
    assert "reconnecting" in events
