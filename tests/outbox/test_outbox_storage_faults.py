"""Storage faults, as a technician meets them: the real CLI against a real SQLite file.

Each fault gets a message naming the file and what to do, exit 2 (never "unexpected error"),
and ``outbox list`` shows whatever can still be read. Nothing is lost silently: a deleted or
replaced file refuses the change under a running session, and actions lost with a damaged
write-ahead log are counted instead of "the outbox is empty".
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fieldtui.core.actions import Action, ActionType
from fieldtui.service.store import OutboxStore, StorageFault

#: A script that queues N actions and dies without closing the outbox (a crash, a pulled plug).
CRASH = """
import asyncio, os, sys
from fieldtui.core.actions import Action, ActionType
from fieldtui.service.store import OutboxStore

async def main():
    store = await OutboxStore.open()
    for i in range(int(sys.argv[1])):
        await store.enqueue(Action(type=ActionType.SET_INSTALLATION_STATUS, device=f"D{i}",
                                   backend="things", params={"status": "installed"}))
    os._exit(0)

asyncio.run(main())
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "config.toml"
    config.write_text(
        'default_profile = "site"\n'
        "[profiles.site.backends.things]\n"
        'kind = "things"\nurl = "http://127.0.0.1:9/things"\nclient_id = "installer"\n'
    )
    return {
        **os.environ,
        "FIELDTUI_DATA_DIR": str(tmp_path / "data"),
        "FIELDTUI_LOG_DIR": str(tmp_path / "logs"),
        "FIELDTUI_CONFIG": str(config),
        "FIELDTUI_SECRET_SITE_THINGS": "not-used-offline",
    }


def _outbox(env: dict[str, str]) -> Path:
    return Path(env["FIELDTUI_DATA_DIR"]) / "outbox.sqlite3"


def _cli(
    env: dict[str, str], *args: str, limit_file_size: int | None = None
) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if limit_file_size is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, limit_file_size))

    return subprocess.run(
        [sys.executable, "-m", "fieldtui", *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        preexec_fn=limit if limit_file_size is not None else None,
    )


def _queue(env: dict[str, str], device: str, status: str = "installed") -> None:
    result = _cli(env, "--offline", "set-status", device, status, "--backend", "things")
    assert result.returncode == 0, result.stderr


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr, result.stderr


def _listed(env: dict[str, str]) -> dict[str, Any]:
    result = _cli(env, "outbox", "list", "--json")
    assert result.returncode == 0, result.stderr
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def test_a_damaged_outbox_file_is_named_with_what_to_do_and_exit_2(env: dict[str, str]) -> None:
    path = _outbox(env)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database, it was overwritten by something" * 200)
    for args in (("outbox", "list"), ("--offline", "set-status", "TH1", "installed", "--backend", "things")):
        result = _cli(env, *args)
        _no_traceback(result)
        assert result.returncode == 2, result.stderr
        assert str(path) in result.stderr and "damaged" in result.stderr
        assert f"mv {path} {path}.damaged" in result.stderr


def test_a_directory_in_place_of_the_outbox_is_named_with_exit_2(env: dict[str, str]) -> None:
    path = _outbox(env)
    path.mkdir(parents=True)
    for args in (("outbox", "list"), ("--offline", "set-status", "TH1", "installed", "--backend", "things")):
        result = _cli(env, *args)
        _no_traceback(result)
        assert result.returncode == 2, result.stderr
        assert f"{path} is a directory, not the outbox file" in result.stderr
        assert "FIELDTUI_DATA_DIR" in result.stderr


@pytest.fixture
def read_only(env: dict[str, str]) -> Iterator[list[Path]]:
    """Make paths read-only for this user: chmod, or ``chattr +i`` when running as root."""
    made: list[Path] = []
    yield made
    for path in reversed(made):
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=False)
        else:
            path.chmod(0o700 if path.is_dir() else 0o600)


def _make_read_only(made: list[Path], path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)
    else:
        path.chmod(0o500 if path.is_dir() else 0o400)
    made.append(path)


def test_a_read_only_outbox_refuses_changes_and_list_shows_what_it_holds(
    env: dict[str, str], read_only: list[Path]
) -> None:
    _queue(env, "TH1")
    _queue(env, "TH2", "retired")
    path = _outbox(env)
    _make_read_only(read_only, path)
    _make_read_only(read_only, path.parent)

    refused = _cli(env, "--offline", "set-status", "TH3", "installed", "--backend", "things")
    _no_traceback(refused)
    assert refused.returncode == 2
    assert str(path) in refused.stderr and "read-only" in refused.stderr
    assert "no change can be queued" in refused.stderr

    listed = _cli(env, "outbox", "list")
    _no_traceback(listed)
    assert listed.returncode == 2
    assert "read-only" in listed.stderr and str(path) in listed.stderr
    assert "set TH1 status to installed" in listed.stdout and "set TH2 status to retired" in listed.stdout
    assert "TH3" not in listed.stdout
    as_json = _cli(env, "outbox", "list", "--json")
    body = json.loads(as_json.stdout)
    assert [a["device"] for a in body["actions"]] == ["TH1", "TH2"] and body["error"]["partial"] is True


def test_a_full_disk_refuses_the_change_clearly_and_keeps_the_outbox(env: dict[str, str]) -> None:
    _queue(env, "TH1")
    full = _cli(
        env, "--offline", "set-status", "TH2", "installed", "--backend", "things", limit_file_size=20_000
    )
    _no_traceback(full)
    assert full.returncode == 2
    assert str(_outbox(env)) in full.stderr and "disk is full" in full.stderr
    assert "no change can be queued" in full.stderr and "free some space" in full.stderr
    assert [a["device"] for a in _listed(env)["actions"]] == ["TH1"]


async def test_a_disk_filling_up_under_a_running_session_refuses_that_change(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    async with await OutboxStore.open(path) as store:
        await store.enqueue(_status("D1"))
        biggest = _largest_file(tmp_path)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (biggest, hard))
        try:
            with pytest.raises(StorageFault) as refused:
                # Larger than any file may grow now: the write-ahead log cannot take it.
                await store.enqueue(_status("D2", note="x" * (4 * biggest)))
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        assert str(path) in str(refused.value) and "this change is NOT queued" in str(refused.value)
        assert "disk is full" in str(refused.value)
        assert [r.action.device for r in await store.list_actions()] == ["D1"]
        await store.enqueue(_status("D3"))  # space again: the outbox goes on
        assert [r.action.device for r in await store.list_actions()] == ["D1", "D3"]


def _largest_file(folder: Path) -> int:
    return max(p.stat().st_size for p in folder.iterdir())


def _status(device: str, status: str = "installed", *, note: str | None = None) -> Action:
    params: dict[str, object] = {"status": status}
    if note is not None:
        params["note"] = note
    return Action(type=ActionType.SET_INSTALLATION_STATUS, device=device, backend="things", params=params)


def test_an_outbox_deleted_under_a_running_session_refuses_and_the_loss_is_reported(
    env: dict[str, str],
) -> None:
    path = _outbox(env)

    async def session() -> str:
        async with await OutboxStore.open(path) as store:
            for i in range(3):
                await store.enqueue(_status(f"D{i}"))
            path.unlink()
            with pytest.raises(StorageFault) as refused:
                await store.enqueue(_status("D9"))
            return str(refused.value)

    message = asyncio.run(session())
    assert str(path) in message and "deleted or replaced" in message and "NOT queued" in message
    assert "start it again" in message

    listed = _cli(env, "outbox", "list")
    assert listed.returncode == 0, listed.stderr
    assert "the outbox is empty" not in listed.stdout
    assert "LOST: 3 queued changes were lost from the outbox (the outbox file was deleted or replaced" in (
        listed.stdout
    )
    body = _listed(env)
    assert body["lost"][0]["count"] == 3


def test_an_outbox_replaced_under_a_running_session_refuses_the_change(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"

    async def session() -> str:
        async with await OutboxStore.open(path) as store:
            await store.enqueue(_status("D1"))
            other = tmp_path / "other.sqlite3"
            other.write_bytes(path.read_bytes())
            other.replace(path)
            with pytest.raises(StorageFault) as refused:
                await store.enqueue(_status("D2"))
            return str(refused.value)

    assert "deleted or replaced" in asyncio.run(session())


def _crash_after_queueing(env: dict[str, str], count: int) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CRASH, str(count)], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    wal = Path(str(_outbox(env)) + "-wal")
    assert wal.stat().st_size > 0, "the crash left no write-ahead log to damage"


@pytest.mark.parametrize("damage", ["removed", "truncated", "garbage in the middle"])
def test_a_write_ahead_log_lost_after_a_crash_is_reported_as_lost_actions(
    env: dict[str, str], damage: str
) -> None:
    _crash_after_queueing(env, 20)
    wal = Path(str(_outbox(env)) + "-wal")
    if damage == "removed":
        wal.unlink()
    elif damage == "truncated":
        with wal.open("r+b") as handle:
            handle.truncate(32 + 4096)
    else:
        data = bytearray(wal.read_bytes())
        middle = len(data) // 3
        data[middle : middle + 4096] = os.urandom(4096)
        wal.write_bytes(bytes(data))

    listed = _cli(env, "outbox", "list")
    _no_traceback(listed)
    assert "the outbox is empty" not in listed.stdout
    body = _listed(env)
    actions = body["actions"]
    lost = body["lost"]
    assert isinstance(actions, list) and isinstance(lost, list)
    assert len(actions) + sum(loss["count"] for loss in lost) == 20
    assert lost and "write-ahead log" in lost[0]["cause"]
    assert "queued changes were lost from the outbox" in listed.stdout

    synced = _cli(env, "outbox", "sync", "--timeout", "5")
    assert "LOST:" in synced.stdout.splitlines()[0] or "LOST:" in synced.stderr.splitlines()[0]

    # Actions queued afterwards get numbers of their own, and nothing more is reported lost.
    _queue(env, "TH1")
    again = _listed(env)
    assert sum(loss["count"] for loss in again["lost"]) == sum(loss["count"] for loss in lost)


def test_an_unreadable_row_is_set_aside_as_damaged_and_stops_nobody(env: dict[str, str]) -> None:
    _queue(env, "TH1")
    _queue(env, "TH2")
    _queue(env, "TH3")
    with sqlite3.connect(_outbox(env)) as conn:
        conn.execute("UPDATE actions SET params = 'not json {' WHERE device = 'TH2'")
    listed = _cli(env, "outbox", "list")
    _no_traceback(listed)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert any("set TH1 status" in line for line in lines) and any("set TH3 status" in line for line in lines)
    [damaged] = [line for line in lines if "damaged" in line and "TH2" in line]
    assert "set aside, never sent" in damaged
    body = _listed(env)
    assert [a["device"] for a in body["actions"]] == ["TH1", "TH3"]
    assert [d["device"] for d in body["damaged"]] == ["TH2"]
    assert body["counts"]["damaged"] == 1
