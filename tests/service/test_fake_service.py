"""The fake port's own hands: what a screen test drives (failures, conflicts, telemetry, task
changes, clouds going away) behaves as the real service does in the same situation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta

import pytest
from fakes.fake_service import FIXED_NOW, FakeService, Ids

from fieldtui.core.errors import NoBackendReachable, Unsupported
from fieldtui.core.models import StreamEvent, StreamEventKind, Task, TaskState, TelemetrySample
from fieldtui.service.api import ActionEvent, ActionState, BackendState, ConnectivityChange


async def test_a_refused_change_shows_the_clouds_words_and_holds_the_devices_later_changes() -> None:
    fake = FakeService()
    events: list[ActionEvent] = []
    unsubscribe = fake.outbox.on_change(events.append)
    first = await fake.writes.move_to_group(Ids.THING, "depot-basement")
    second = await fake.writes.set_installation_status(Ids.THING, "uninstalled")
    fake.fail(first.id, "group depot-basement is full")
    assert fake.apply_pending() == []  # the later change waits behind the failed one
    view = await fake.device(Ids.THING)
    group = view.pending_for("group")
    assert group is not None and group.words() == "failed: group depot-basement is full"
    outcome = await fake.writes.first_outcome(second)
    assert outcome.status == "queued" and "held by an earlier action" in outcome.reason
    await fake.outbox.drop(first.id)
    assert [r.id for r in fake.apply_pending()] == [second.id]
    assert [(e.record.id, e.state) for e in events] == [
        (first.id, ActionState.QUEUED),
        (second.id, ActionState.QUEUED),
        (first.id, ActionState.FAILED),
        (first.id, ActionState.CANCELLED),
        (second.id, ActionState.DONE),
    ]
    unsubscribe()
    assert fake.outbox.listeners == 0


async def test_a_conflict_waits_for_the_technician_then_applies_over_what_the_device_holds() -> None:
    fake = FakeService()
    record = await fake.writes.move_to_group(Ids.THING, "tower-lobby")
    assert record.action.precondition == {"group": "plant-roof"}
    fake.conflict(record.id)
    change = (await fake.device(Ids.THING)).pending_for("group")
    assert change is not None and change.state == "conflict"
    assert (await fake.outbox.counts()).conflict == 1
    again = await fake.outbox.resolve_conflict(record.id, apply=True)
    assert again.state is ActionState.QUEUED and again.action.precondition == {}
    fake.apply_pending()
    view = await fake.device(Ids.THING)
    assert view.device.group == "tower-lobby" and view.pending == ()
    members = await fake.group_members("things", "tower-lobby")
    assert {m.id for m in members} == {Ids.THING, Ids.GATEWAY}


async def test_auto_apply_answers_synced_as_a_reachable_cloud_does() -> None:
    fake = FakeService(auto_apply=True)
    record = await fake.writes.set_installation_status(Ids.THING, "quarantine")
    outcome = await fake.writes.first_outcome(record)
    assert outcome.synced
    history = await fake.history(Ids.THING)
    assert (history.entries[0].summary, history.entries[0].who) == ("quarantine", "installer-7")


async def test_a_cloud_that_goes_offline_is_heard_shown_and_holds_its_writes() -> None:
    fake = FakeService()
    changes: list[ConnectivityChange] = []
    fake.connectivity.on_change(changes.append)
    fake.connectivity.set_state("things", BackendState.OFFLINE)
    assert [(c.backend, c.new) for c in changes] == [("things", BackendState.OFFLINE)]
    view = await fake.device(Ids.GATEWAY)
    assert "things" in view.errors
    assert {s.backend: s.stale for s in view.sources} == {"things": True, "gateways": False}
    record = await fake.writes.set_installation_status(Ids.GATEWAY, "retired")
    assert fake.apply_pending() == []
    assert (await fake.outbox.counts()).last_sync_error == "backend unreachable"
    fake.connectivity.set_state("things", BackendState.ONLINE)
    assert [r.id for r in fake.apply_pending()] == [record.id]
    for name in ("sensors", "things", "gateways", "fleet", "live"):
        fake.connectivity.set_state(name, BackendState.OFFLINE)
    with pytest.raises(NoBackendReachable):
        await fake.device("UNCACHED-0001")


async def test_telemetry_delivers_what_the_test_pushes_until_it_ends() -> None:
    fake = FakeService()
    early = fake.sample(Ids.MQTT_TWIN, co2=612)  # pushed before anyone listens: kept
    stream = fake.telemetry(Ids.MQTT_TWIN)
    assert await anext(stream) == early
    event = StreamEvent(
        device=Ids.MQTT_TWIN,
        backend="live",
        kind=StreamEventKind.RECONNECTING,
        message="lost",
        timestamp=FIXED_NOW,
    )
    fake.push_telemetry(event)
    assert await anext(stream) == event
    assert fake.listening(Ids.MQTT_TWIN) == 1
    fake.end_telemetry(Ids.MQTT_TWIN)
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    assert isinstance(early, TelemetrySample) and early.timestamp == FIXED_NOW
    with pytest.raises(Unsupported, match="offer no telemetry"):
        await anext(fake.telemetry(Ids.OFFLINE))


async def test_a_task_monitor_shows_each_change_at_once() -> None:
    fake = FakeService()
    monitor = fake.task_monitor("gateways", Ids.GATEWAY)
    first = await anext(monitor)
    assert [t.id for t in first] == ["T-2001", "T-1998"]
    done = first[0].model_copy(update={"state": TaskState.DONE, "raw_state": "SUCCESS", "updated": FIXED_NOW})
    fake.set_task(done)
    second = await asyncio.wait_for(anext(monitor), timeout=5)
    assert second[0] == done
    assert isinstance(monitor, AsyncGenerator)
    await monitor.aclose()
    with pytest.raises(Unsupported):
        await anext(fake.task_monitor("things", Ids.THING))
    assert isinstance(done, Task)


async def test_the_clock_is_the_tests_and_the_fake_is_the_same_every_time() -> None:
    later = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
    fake = FakeService(now=lambda: later)
    record = await fake.writes.send_command(Ids.MQTT_TWIN, "identify")
    assert record.action.created_at == later and record.updated_at == later
    assert (await fake.device(Ids.OFFLINE)).device.last_seen == later - timedelta(days=3)
    other = FakeService(now=lambda: later)
    assert (await other.writes.send_command(Ids.MQTT_TWIN, "identify")).id == record.id
    assert [v.device.id async for v in fake.known_devices()] == sorted(Ids.ALL)
