"""The write API: outbox first, read-only refused, offline queued, preconditions from what was seen."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from outbox_doubles import FAST, FakeCloud, FakeDevice

from fieldtui.core.actions import ActionState
from fieldtui.core.errors import ConfigError, ConnectionError_
from fieldtui.core.models import BackendKind, Device
from fieldtui.service.store import OutboxStore
from fieldtui.service.sync import SyncEngine
from fieldtui.service.writes import OutboxWrites, ReadOnlyError


async def test_read_only_refuses_and_queues_nothing(store: OutboxStore, cloud: FakeCloud) -> None:
    writes = OutboxWrites(store, None, {"cloud": cloud}, read_only=True)
    with pytest.raises(ReadOnlyError, match="read-only"):
        await writes.move_to_group("D1", "roof", backend="cloud")
    assert await store.list_actions() == []


async def test_offline_queues_without_sending(store: OutboxStore, cloud: FakeCloud) -> None:
    engine = SyncEngine(store, {"cloud": cloud}, backoff=FAST)
    writes = OutboxWrites(store, engine, {"cloud": cloud}, offline=True)
    record = await writes.set_installation_status("D1", "installed", backend="cloud")
    outcome = await writes.first_outcome(record, timeout=0.2)
    assert outcome.status == "queued" and "offline" in outcome.reason
    assert cloud.mutations == []
    stored = await store.get(record.id)
    assert stored is not None and stored.state is ActionState.QUEUED


async def test_online_write_reports_synced_now(store: OutboxStore, cloud: FakeCloud) -> None:
    engine = SyncEngine(store, {"cloud": cloud}, backoff=FAST)
    writes = OutboxWrites(store, engine, {"cloud": cloud})
    record = await writes.set_installation_status("D1", "installed", backend="cloud")
    assert (await store.get(record.id)) is not None  # on disk before anything was sent
    assert cloud.mutations == []
    drain = engine.drain()
    outcome, _ = await asyncio.gather(writes.first_outcome(record, timeout=5), drain)
    assert outcome.synced and cloud.mutations == [("status", "D1", "installed")]


async def test_unreachable_backend_and_earlier_actions_are_the_reasons_given(
    store: OutboxStore, cloud: FakeCloud
) -> None:
    cloud.errors["move"] = [ConnectionError_("connection refused", backend="cloud")]
    engine = SyncEngine(store, {"cloud": cloud}, backoff=FAST.__class__(base=60, cap=60))
    writes = OutboxWrites(store, engine, {"cloud": cloud})
    first = await writes.move_to_group("D1", "roof", backend="cloud")
    second = await writes.set_installation_status("D1", "installed", backend="cloud")
    await engine.drain()
    one = await writes.first_outcome(first, timeout=0.1)
    two = await writes.first_outcome(second, timeout=0.1)
    assert one.status == "queued" and "connection refused" in one.reason
    assert two.status == "queued" and f"held by an earlier action {first.id[:8]}" in two.reason


async def test_precondition_comes_from_the_cache_then_from_earlier_queued_moves(
    store: OutboxStore, cloud: FakeCloud
) -> None:
    seen = Device(id="D1", backend="cloud", kind=BackendKind.THINGS, group="basement")
    await store.store_devices([seen], datetime.now(UTC))
    writes = OutboxWrites(store, None, {"cloud": cloud})
    first = await writes.move_to_group("D1", "roof")
    second = await writes.move_to_group("D1", "lobby")
    assert first.action.backend == "cloud"  # the one cloud the cache knows D1 on
    assert first.action.precondition == {"group": "basement"}
    assert second.action.precondition == {"group": "roof"}
    summary = await SyncEngine(store, {"cloud": cloud}, backoff=FAST).drain()
    assert len(summary.done) == 2 and cloud.devices["D1"].group == "lobby"


async def test_unknown_backend_and_ambiguous_device_are_usage_errors(
    store: OutboxStore, cloud: FakeCloud
) -> None:
    other = FakeCloud("other", {"D1": FakeDevice()})
    writes = OutboxWrites(store, None, {"cloud": cloud, "other": other})
    with pytest.raises(ConfigError, match="no backend named 'nope'"):
        await writes.move_to_group("D1", "roof", backend="nope")
    now = datetime.now(UTC)
    await store.store_devices(
        [Device(id="D1", backend=name, kind=BackendKind.THINGS) for name in ("cloud", "other")], now
    )
    with pytest.raises(ConfigError, match="more than one cloud"):
        await writes.move_to_group("D1", "roof")
