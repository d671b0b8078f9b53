"""The outbox file itself: private, durable, migrated, leased, and never blocking the event loop."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import stat
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fieldtui.core.actions import Action, ActionState, ActionType
from fieldtui.core.models import (
    BackendKind,
    Device,
    Group,
    InstallationRecord,
    InstallationStatus,
    Task,
    TaskState,
)
from fieldtui.service.store import SCHEMA_VERSION, OutboxStore, StoreError


def _status(device: str, status: str = "installed", backend: str | None = "cloud") -> Action:
    return Action(
        type=ActionType.SET_INSTALLATION_STATUS, device=device, backend=backend, params={"status": status}
    )


async def test_outbox_file_is_private_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "data" / "sub" / "outbox.sqlite3"
    async with await OutboxStore.open(path) as store:
        await store.enqueue(_status("D1"))
        for name in ("outbox.sqlite3", "outbox.sqlite3-wal", "outbox.sqlite3-shm"):
            mode = stat.S_IMODE((path.parent / name).stat().st_mode)
            assert mode == 0o600, (name, oct(mode))
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        with sqlite3.connect(path) as other:
            assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert other.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION


async def test_queued_action_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    async with await OutboxStore.open(path) as store:
        record = await store.enqueue(_status("D1"))
    async with await OutboxStore.open(path) as store:
        again = await store.get(record.id)
    assert again is not None
    assert again.state is ActionState.QUEUED
    assert again.action == record.action


async def test_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    async with await OutboxStore.open(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer fieldtui"):
        await OutboxStore.open(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION + 1


async def test_claims_only_the_head_of_each_device_queue(store: OutboxStore) -> None:
    a1 = await store.enqueue(_status("A", "installed"))
    await store.enqueue(_status("A", "retired"))
    b1 = await store.enqueue(_status("B"))
    claimed = await store.claim("me", limit=10, lease_seconds=30)
    assert [c.record.id for c in claimed] == [a1.id, b1.id]
    assert all(c.record.state is ActionState.SENDING and not c.needs_check for c in claimed)
    # While A's head is sending, A's next action is not claimable by anyone.
    assert await store.claim("other", limit=10, lease_seconds=30) == []


async def test_failed_head_holds_its_device_only(store: OutboxStore) -> None:
    a1 = await store.enqueue(_status("A"))
    await store.enqueue(_status("A", "retired"))
    b1 = await store.enqueue(_status("B"))
    b2 = await store.enqueue(_status("B", "retired"))
    claimed = await store.claim("me", limit=10, lease_seconds=30)
    await store.settle_failed("me", a1.id, "refused")
    await store.complete("me", b1.id)
    nxt = await store.claim("me", limit=10, lease_seconds=30)
    assert [c.record.id for c in nxt] == [b2.id]
    assert len(claimed) == 2


async def test_a_lease_is_exclusive_between_two_connections(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    async with await OutboxStore.open(path) as one, await OutboxStore.open(path) as two:
        for i in range(40):
            await one.enqueue(_status(f"D{i}"))
        got = await asyncio.gather(
            *(s.claim(f"owner{n}", limit=5, lease_seconds=30) for n, s in enumerate([one, two] * 6))
        )
        ids = [c.record.id for batch in got for c in batch]
        assert len(ids) == len(set(ids)) == 40


async def test_an_expired_lease_is_reclaimed_and_must_be_checked(store: OutboxStore) -> None:
    record = await store.enqueue(_status("A"))
    now = time.time()
    [first] = await store.claim("crashed", limit=1, lease_seconds=30, now=now)
    assert await store.claim("me", limit=1, lease_seconds=30, now=now + 10) == []
    [again] = await store.claim("me", limit=1, lease_seconds=30, now=now + 31)
    assert again.record.id == record.id == first.record.id
    assert again.needs_check
    # The old owner cannot record an outcome any more.
    assert await store.complete("crashed", record.id) is None


async def test_a_dead_process_lease_is_reclaimed_at_once(store: OutboxStore) -> None:
    import socket

    await store.enqueue(_status("A"))
    dead_owner = f"{socket.gethostname()}:999999999:abcd"
    [first] = await store.claim(dead_owner, limit=1, lease_seconds=3600)
    [again] = await store.claim("me", limit=1, lease_seconds=30)
    assert again.record.id == first.record.id and again.needs_check


async def test_retry_and_drop_follow_the_rules(store: OutboxStore) -> None:
    move = Action(
        type=ActionType.MOVE_TO_GROUP,
        device="A",
        backend="cloud",
        params={"group": "roof"},
        precondition={"group": "basement"},
    )
    record = await store.enqueue(move)
    await store.claim("me", limit=1, lease_seconds=30)
    with pytest.raises(StoreError, match="being sent"):
        await store.drop(record.id)
    await store.settle_failed("me", record.id, "moved elsewhere", state=ActionState.CONFLICT)
    retried = await store.retry(record.id[:6])
    assert retried.state is ActionState.QUEUED
    assert retried.action.precondition == {}  # the technician chose to apply it anyway
    dropped = await store.drop(record.id)
    assert dropped.state is ActionState.CANCELLED
    with pytest.raises(StoreError, match="cancelled"):
        await store.retry(record.id)
    with pytest.raises(StoreError, match="no action"):
        await store.drop("ffffffff")


async def test_heavy_writes_do_not_block_the_event_loop(store: OutboxStore) -> None:
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    actions = [_status(f"D{i % 50}") for i in range(3000)]

    async def producer() -> None:
        while actions:
            await store.enqueue(actions.pop())

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)
    await asyncio.gather(*(producer() for _ in range(32)))
    for _ in range(20):
        await store.claim("me", limit=8, lease_seconds=30)
    tick.cancel()
    assert len(gaps) > 3
    assert max(gaps) < 0.25


async def test_read_cache_round_trip(store: OutboxStore) -> None:
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    device = Device(id="TH-1", backend="things", kind=BackendKind.THINGS, name="Roof sensor", group="roof")
    await store.store_devices([device], at)
    [cached] = await store.cached_device("TH-1")
    assert cached.value == device and cached.backend == "things" and cached.fetched_at == at
    assert [c.value.id for c in await store.search_devices("roof s", 10)] == ["TH-1"]
    assert await store.search_devices("50%_", 10) == []
    task = Task(
        backend="things", device="TH-1", id="1", type="reboot", state=TaskState.RUNNING, raw_state="r"
    )
    await store.store_tasks("things", "TH-1", [task], at)
    assert (await store.cached_tasks("TH-1"))[0].value == [task]
    await store.store_groups("things", [Group(backend="things", id="roof", member_count=3)], at)
    groups = await store.cached_groups("things")
    assert groups is not None and groups.value[0].id == "roof"
    assert await store.cached_groups("nope") is None
    history = [
        InstallationRecord(device="TH-1", backend="things", status=InstallationStatus.NEW, timestamp=at)
    ]
    await store.store_history("things", "TH-1", history, at)
    assert (await store.cached_history("TH-1"))[0].value == history


_KILLED_WRITER = """
import asyncio, os, signal, sys
from fieldtui.core.actions import Action, ActionType
from fieldtui.service.store import OutboxStore

async def main() -> None:
    store = await OutboxStore.open(__import__("pathlib").Path(sys.argv[1]))
    action = Action(type=ActionType.SET_INSTALLATION_STATUS, device="D1", backend="cloud",
                    params={"status": "installed"})
    await store.enqueue(action)
    (claimed,) = await store.claim("killed-writer", limit=1, lease_seconds=600)
    assert await store.confirm_lease("killed-writer", action.id, 600) is not None
    await store.reschedule("killed-writer", action.id, delay=0, message="503 from the cloud", uncertain=True)
    print(action.id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint: only what the WAL holds

asyncio.run(main())
"""


async def test_commits_without_their_own_fsync_survive_the_process_being_killed(tmp_path: Path) -> None:
    """A lease confirmation and a rescheduled try are committed without an fsync of their own:
    a SIGKILLed sync loses neither (only the machine losing power could, and the claim before
    them is fsynced: the action would be back as ``sending``, checked before it is sent)."""
    path = tmp_path / "outbox.sqlite3"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _KILLED_WRITER, str(path), stdout=asyncio.subprocess.PIPE
    )
    out, _err = await proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    action_id = out.decode().strip()
    async with await OutboxStore.open(path) as store:
        record = await store.get(action_id)
    assert record is not None
    assert record.state is ActionState.QUEUED
    assert record.last_error == "503 from the cloud"
    assert record.uncertain  # the next claim checks the cloud before sending it again
