"""The sync engine's state machine, against a scripted cloud (a test double of a vendor)."""

from __future__ import annotations

import asyncio
import socket

from outbox_doubles import FAST, FakeCloud, FakeDevice

from fieldtui.core.actions import Action, ActionState, ActionType
from fieldtui.core.errors import ConnectionError_, LimitReached, Rejected, ServerError, TimeoutError_
from fieldtui.service.store import OutboxStore
from fieldtui.service.sync import ActionEvent, Backoff, SyncEngine, SyncSummary


def _status(device: str, status: str, backend: str | None = "cloud") -> Action:
    return Action(
        type=ActionType.SET_INSTALLATION_STATUS, device=device, backend=backend, params={"status": status}
    )


def _move(device: str, group: str, seen: str | None = None) -> Action:
    pre = {"group": seen} if seen is not None else {}
    return Action(
        type=ActionType.MOVE_TO_GROUP,
        device=device,
        backend="cloud",
        params={"group": group},
        precondition=pre,
    )


async def _state(store: OutboxStore, action_id: str) -> ActionState:
    record = await store.get(action_id)
    assert record is not None
    return record.state


async def test_each_device_syncs_in_order_and_devices_run_concurrently(
    store: OutboxStore, cloud: FakeCloud
) -> None:
    cloud.delay = 0.01
    statuses = ["installed", "uninstalled", "quarantine", "retired"]
    for i in range(10):
        for status in statuses:
            await store.enqueue(_status(f"D{i}", status))
    engine = SyncEngine(store, {"cloud": cloud}, concurrency=4, backoff=FAST)
    summary = await engine.drain()
    assert len(summary.done) == 40 and summary.ok
    for i in range(10):
        assert [v for op, d, v in cloud.mutations if d == f"D{i}"] == statuses
    assert 1 < cloud.max_active <= 4


async def _drain_when_due(engine: SyncEngine, *, count: int = 1) -> SyncSummary:
    """Drain again once the backoff has passed: a loaded machine may take longer than the
    backoff itself to get here, or less, so poll rather than sleep a guessed time."""
    for _ in range(200):
        await asyncio.sleep(0.05)
        summary = await engine.drain()
        if len(summary.done) >= count:
            return summary
    return summary


async def test_transient_error_backs_off_then_syncs(store: OutboxStore, cloud: FakeCloud) -> None:
    cloud.errors["status"] = [ConnectionError_("connection refused", backend="cloud")]
    record = await store.enqueue(_status("D1", "installed"))
    engine = SyncEngine(store, {"cloud": cloud}, backoff=FAST)
    first = await engine.drain()
    [deferred] = first.deferred
    assert deferred.state is ActionState.QUEUED and deferred.attempts == 1
    assert "connection refused" in (deferred.last_error or "")
    assert deferred.next_attempt_at > deferred.updated_at
    assert first.unreachable == {}  # one dropped connection does not pause the whole cloud
    second = await _drain_when_due(engine)
    assert [r.id for r in second.done] == [record.id]
    assert cloud.mutations == [("status", "D1", "installed")]


async def test_answer_lost_after_applying_is_checked_not_resent(store: OutboxStore, cloud: FakeCloud) -> None:
    cloud.lost_answers["status"] = [TimeoutError_("no answer", backend="cloud")]
    cloud.lost_answers["move"] = [ServerError("502 bad gateway", backend="cloud", status_code=502)]
    await store.enqueue(_status("D1", "installed"))
    await store.enqueue(_move("D2", "roof", seen="basement"))
    engine = SyncEngine(store, {"cloud": cloud}, backoff=FAST)
    await engine.drain()
    summary = await _drain_when_due(engine, count=2)
    assert len(summary.done) == 2
    assert cloud.mutations == [("status", "D1", "installed"), ("move", "D2", "roof")]


async def test_refusal_fails_at_once_with_server_words_and_holds_that_device_only(
    store: OutboxStore, cloud: FakeCloud
) -> None:
    cloud.errors["status"] = [
        Rejected("installation_status must be one of ...", backend="cloud", status_code=422)
    ]
    refused = await store.enqueue(_status("D1", "installed"))
    behind = await store.enqueue(_status("D1", "retired"))
    other = await store.enqueue(_status("D2", "retired"))
    summary = await SyncEngine(store, {"cloud": cloud}, backoff=FAST).drain()
    assert not summary.ok
    [failed] = summary.failed
    assert failed.id == refused.id and failed.last_error == "cloud: installation_status must be one of ..."
    assert await _state(store, behind.id) is ActionState.QUEUED
    assert await _state(store, other.id) is ActionState.DONE
    assert summary.remaining == {ActionState.QUEUED: 1, ActionState.FAILED: 1}


async def test_quota_holds_without_failing(store: OutboxStore, cloud: FakeCloud) -> None:
    cloud.errors["task"] = [LimitReached("account is at command limit (25)", backend="cloud")]
    record = await store.enqueue(
        Action(
            type=ActionType.CREATE_TASK, device="D1", backend="cloud", params={"type": "reboot", "params": {}}
        )
    )
    engine = SyncEngine(store, {"cloud": cloud}, backoff=FAST)
    first = await engine.drain()
    assert first.ok and first.deferred[0].state is ActionState.QUEUED
    assert (first.deferred[0].last_error or "").startswith("held: cloud: account is at command limit")
    await asyncio.sleep(0.15)
    second = await engine.drain()
    assert [r.id for r in second.done] == [record.id]
    assert second.done[0].result == {"created_id": "t1"}


async def test_crash_while_sending_is_checked_before_any_resend(store: OutboxStore, cloud: FakeCloud) -> None:
    applied = await store.enqueue(_status("D1", "installed"))
    not_applied = await store.enqueue(_status("D2", "installed"))
    dead = f"{socket.gethostname()}:999999999:dead"
    assert len(await store.claim(dead, limit=2, lease_seconds=3600)) == 2
    cloud.devices["D1"].status = "installed"  # the dead process's request reached the cloud
    engine = SyncEngine(store, {"cloud": cloud}, backoff=FAST, settle_seconds=0.3)
    early = await engine.drain()  # a request of the dead sender may still be on its way: not yet
    assert not early.done and all("interrupted send" in (r.last_error or "") for r in early.deferred)
    await asyncio.sleep(0.35)
    summary = await engine.drain()
    assert {r.id for r in summary.done} == {applied.id, not_applied.id}
    assert cloud.mutations == [("status", "D2", "installed")]


async def test_move_of_a_device_moved_by_someone_else_is_a_conflict(
    store: OutboxStore, cloud: FakeCloud
) -> None:
    cloud.devices["D1"].group = "lobby"
    conflict = await store.enqueue(_move("D1", "roof", seen="basement"))
    held = await store.enqueue(_status("D1", "installed"))
    already = await store.enqueue(_move("D2", "basement", seen="cellar"))
    summary = await SyncEngine(store, {"cloud": cloud}, backoff=FAST).drain()
    [record] = summary.conflicts
    assert record.id == conflict.id and "now in group lobby, not basement" in (record.last_error or "")
    assert await _state(store, held.id) is ActionState.QUEUED
    assert await _state(store, already.id) is ActionState.DONE
    assert cloud.mutations == []
    await store.retry(conflict.id)  # the technician decides: move it anyway
    summary = await SyncEngine(store, {"cloud": cloud}, backoff=FAST).drain()
    assert len(summary.done) == 2 and cloud.mutations[0] == ("move", "D1", "roof")


async def test_device_without_backend_is_resolved_at_sync_time(store: OutboxStore) -> None:
    one = FakeCloud("one", {"A": FakeDevice(), "BOTH": FakeDevice()})
    two = FakeCloud("two", {"B": FakeDevice(), "BOTH": FakeDevice()})
    a = await store.enqueue(_status("A", "installed", backend=None))
    nowhere = await store.enqueue(_status("NOWHERE", "installed", backend=None))
    both = await store.enqueue(_status("BOTH", "installed", backend=None))
    summary = await SyncEngine(store, {"one": one, "two": two}, backoff=FAST).drain()
    done = {r.id: r for r in summary.done}
    assert done[a.id].action.backend == "one" and one.mutations == [("status", "A", "installed")]
    failed = {r.id: r.last_error for r in summary.failed}
    assert failed[nowhere.id] == "no cloud knows NOWHERE (asked: one, two)"
    assert "--backend" in (failed[both.id] or "") and two.mutations == []


async def test_resolution_waits_when_a_cloud_does_not_answer(store: OutboxStore) -> None:
    one = FakeCloud("one", {"A": FakeDevice()})
    two = FakeCloud("two", {})

    async def unreachable(device_id: str) -> None:
        raise ConnectionError_("connection refused", backend="two")

    two.get_device = unreachable  # type: ignore[assignment,method-assign]
    await store.enqueue(_status("A", "installed", backend=None))
    summary = await SyncEngine(store, {"one": one, "two": two}, backoff=FAST).drain()
    assert "until two answers" in (summary.deferred[0].last_error or "")
    assert one.mutations == []


async def test_every_state_change_is_published(store: OutboxStore, cloud: FakeCloud) -> None:
    cloud.errors["status"] = [ServerError("503", backend="cloud", status_code=503)]
    reports: list[tuple[str, bool]] = []
    engine = SyncEngine(
        store,
        {"cloud": cloud},
        backoff=FAST,
        report=lambda name, error: reports.append((name, error is None)),
    )
    seen: list[ActionEvent] = []
    engine.subscribe(seen.append)
    record = await store.enqueue(_status("D1", "installed"))
    await engine.drain()
    await asyncio.sleep(0.25)
    await engine.drain()
    assert [(e.previous, e.state) for e in seen if e.record.id == record.id] == [
        (ActionState.QUEUED, ActionState.SENDING),
        (ActionState.SENDING, ActionState.QUEUED),
        (ActionState.QUEUED, ActionState.SENDING),
        (ActionState.SENDING, ActionState.DONE),
    ]
    assert reports == [("cloud", False), ("cloud", True)]


async def test_run_wakes_on_enqueue_and_on_backend_online(store: OutboxStore, cloud: FakeCloud) -> None:
    cloud.errors["status"] = [ConnectionError_("down", backend="cloud")]
    engine = SyncEngine(
        store, {"cloud": cloud}, backoff=FAST.__class__(base=60, cap=60, hold=60), down_after=1
    )
    online: asyncio.Queue[str | None] = asyncio.Queue()
    runner = asyncio.create_task(engine.run(online.get))
    try:
        record = await store.enqueue(_status("D1", "installed"))
        engine.wake()
        first = await engine.wait_for_outcome(record.id, 5)
        assert first is not None and first.state is ActionState.QUEUED
        await store.retry(record.id)  # due now, but the backend is marked down
        await asyncio.sleep(0.1)
        assert cloud.mutations == []
        done = asyncio.create_task(engine.wait_for_outcome(record.id, 5))
        await online.put("cloud")
        event = await done
        assert event is not None and event.state is ActionState.DONE
        cloud.errors["status"] = [ConnectionError_("down", backend="cloud")]
        later = await store.enqueue(_status("D2", "installed"))
        engine.wake()
        assert (await engine.wait_for_outcome(later.id, 5)) is not None  # backed off for 60 s
        synced = asyncio.create_task(engine.wait_for_outcome(later.id, 5))
        await engine.sync_now()  # the technician does not wait
        event = await synced
        assert event is not None and event.state is ActionState.DONE
    finally:
        await engine.stop()
        runner.cancel()


async def test_two_engines_on_one_file_send_each_action_once(tmp_path, cloud: FakeCloud) -> None:  # type: ignore[no-untyped-def]
    cloud.delay = 0.005
    path = tmp_path / "outbox.sqlite3"
    async with await OutboxStore.open(path) as one, await OutboxStore.open(path) as two:
        for i in range(10):
            for status in ("installed", "uninstalled", "retired"):
                await one.enqueue(_status(f"D{i}", status))
        a, b = await asyncio.gather(
            SyncEngine(one, {"cloud": cloud}, concurrency=3).drain(),
            SyncEngine(two, {"cloud": cloud}, concurrency=3).drain(),
        )
    assert len(a.done) + len(b.done) == 30
    assert len(cloud.mutations) == 30
    for i in range(10):
        assert [v for _op, d, v in cloud.mutations if d == f"D{i}"] == ["installed", "uninstalled", "retired"]


async def test_a_backend_whose_secret_is_missing_holds_its_actions(
    store: OutboxStore, cloud: FakeCloud
) -> None:
    from fieldtui.core.errors import SecretError
    from fieldtui.service.writes import LazyConnectors

    def broken() -> FakeCloud:
        raise SecretError("no secret for things", hint="set FIELDTUI_SECRET_SITE_THINGS")

    built: list[str] = []

    def fine() -> FakeCloud:
        built.append("cloud")
        return cloud

    connectors = LazyConnectors({"things": broken, "cloud": fine, "unused": broken})
    held = await store.enqueue(_status("D1", "installed", backend="things"))
    sent = await store.enqueue(_status("D2", "installed", backend="cloud"))
    # A backoff longer than the pass: on a slow machine a short one made the held action due
    # again within the same pass, and it was (rightly) held a second time.
    slow = Backoff(base=60.0, cap=120.0, hold=60.0)
    summary = await SyncEngine(store, connectors, backoff=slow).drain()
    assert [r.id for r in summary.done] == [sent.id]
    [deferred] = summary.deferred
    assert deferred.id == held.id and "no secret for things" in (deferred.last_error or "")
    assert built == ["cloud"]  # only the backend sent to was built
