"""A running engine with nothing it may send sleeps: it does not claim in a loop.

Changes waiting for an offline cloud, behind a failed change of their device, or for a group's
pending creation are all "queued and due", but none can be claimed; an engine that counted them
as due would query the outbox twenty times a second for as long as the app stays open.
"""

from __future__ import annotations

import asyncio
from typing import Any

from outbox_doubles import FakeCloud, FakeDevice

from fieldtui.core.actions import Action, ActionState, ActionType
from fieldtui.core.errors import Rejected
from fieldtui.service.store import OutboxStore
from fieldtui.service.sync import SyncEngine


def _status(device: str, status: str = "installed") -> Action:
    return Action(
        type=ActionType.SET_INSTALLATION_STATUS, device=device, backend="cloud", params={"status": status}
    )


async def _claims_while_running(store: OutboxStore, engine: SyncEngine, seconds: float) -> int:
    count = 0
    claim = store.claim

    async def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal count
        count += 1
        return await claim(*args, **kwargs)

    store.claim = counting  # type: ignore[method-assign]
    runner = asyncio.create_task(engine.run())
    try:
        await asyncio.sleep(seconds)
    finally:
        await engine.stop()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        store.claim = claim  # type: ignore[method-assign]
    return count


async def test_changes_for_an_offline_cloud_do_not_keep_the_engine_busy(store: OutboxStore) -> None:
    cloud = FakeCloud("cloud", {"D1": FakeDevice()})
    online = False
    engine = SyncEngine(store, {"cloud": cloud}, is_reachable=lambda _name: online)
    await store.enqueue(_status("D1"))
    assert await _claims_while_running(store, engine, 1.5) <= 2
    assert cloud.mutations == []
    online = True
    engine.backend_online("cloud")
    await engine.drain()
    assert [v for _op, _d, v in cloud.mutations] == ["installed"]


async def test_changes_behind_a_failure_or_a_pending_group_do_not_keep_it_busy(store: OutboxStore) -> None:
    cloud = FakeCloud("cloud", {"D1": FakeDevice(), "D2": FakeDevice()})
    cloud.errors["status"] = [Rejected("no such status", backend="cloud")]
    engine = SyncEngine(store, {"cloud": cloud})
    failed = await store.enqueue(_status("D1"))
    await store.enqueue(_status("D1", "retired"))  # waits behind the failure
    await engine.drain()
    stored = await store.get(failed.id)
    assert stored is not None and stored.state is ActionState.FAILED
    # A group creation another process is sending, and a move into that group waiting for it.
    create = await store.enqueue(
        Action(type=ActionType.CREATE_GROUP, device=None, backend="cloud", params={"group": "roof"})
    )
    [taken] = await store.claim("elsewhere", limit=1, lease_seconds=60)
    assert taken.record.id == create.id
    await store.enqueue(
        Action(type=ActionType.MOVE_TO_GROUP, device="D2", backend="cloud", params={"group": "roof"})
    )
    assert await _claims_while_running(store, engine, 1.5) <= 2
    assert [op for op, _d, _v in cloud.mutations] == []
