"""A real ``fieldtui outbox sync`` stopped (SIGSTOP: Ctrl-Z, a suspended laptop) past its lease
while another process syncs, then resumed (SIGCONT): nothing reaches the cloud twice.

The lease is shortened for the test (``FIELDTUI_OUTBOX_LEASE_SECONDS``); the simulator's own
mutation log is the judge.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from fieldtui.core.actions import Action, ActionType
from fieldtui.service.store import OutboxStore

LEASE = 3.0
#: Each request of the stopped process takes this long: its check is still on the way when it
#: is stopped, and answered (before the other process moves anything) while it is stopped.
LATENCY = 3.0
#: The stopped process's request timeout: long, so it reads those answers when it resumes
#: rather than giving up on them (its timers run on while it is stopped).
PAUSED_TIMEOUT = 120.0
#: The other process's: it waits out this long (or the 3 s settle window) after the stopped
#: one's last sign of life before it checks and sends.
OTHER_TIMEOUT = 2.0
#: Generous: the machine may be loaded.
PATIENCE = 120.0


def _sending(db: str) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            return int(conn.execute("SELECT count(*) FROM actions WHERE state = 'sending'").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def _token_given(sim: Any) -> bool:
    log = sim.admin("GET", "/_sim/mutations?backend=things").json()
    return any(m["path"].endswith("/auth/client-token") for m in log)


def _config(setup: Any, name: str, timeout: float) -> str:
    path = setup.config.with_name(name)
    text = re.sub(r'^(kind = "[a-z]+")$', rf"\1\ntimeout = {timeout:g}", setup.config.read_text(), flags=re.M)
    path.write_text(text)
    return str(path)


def _sync(setup: Any, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*setup.cli(), "outbox", "sync", "--timeout", "60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def _enqueue(db: Path, actions: list[Action]) -> None:
    async with await OutboxStore.open(db) as store:
        await store.enqueue_many(actions)


@pytest.mark.slow
def test_a_sync_stopped_past_its_lease_sends_nothing_the_other_process_sent(
    sim_setup: Any, sim_clean: Any
) -> None:
    env = {**sim_setup.env, "FIELDTUI_OUTBOX_LEASE_SECONDS": str(LEASE)}
    paused_env = {**env, "FIELDTUI_CONFIG": _config(sim_setup, "paused.toml", PAUSED_TIMEOUT)}
    other_env = {**env, "FIELDTUI_CONFIG": _config(sim_setup, "other.toml", OTHER_TIMEOUT)}
    things = sorted(sim_clean.fleet.of("things").values(), key=lambda d: d.id)[:5]
    groups = sorted({d.group for d in sim_clean.fleet.of("things").values() if d.group})
    moves = {d.id: next(g for g in groups if g != d.group) for d in things}
    db = sim_setup.data_dir / "outbox.sqlite3"
    # Moves are checked against the group the technician saw before they are sent: the
    # paused process is stopped in that check, right before its change request.
    asyncio.run(
        _enqueue(
            db,
            [
                Action(
                    type=ActionType.MOVE_TO_GROUP,
                    device=d.id,
                    backend="things",
                    params={"group": moves[d.id]},
                    precondition={"group": d.group},
                )
                for d in things
            ],
        )
    )
    sim_clean.admin("PUT", "/_sim/faults/things", {"latency": LATENCY})
    paused = _sync(sim_setup, paused_env)
    try:
        deadline = time.monotonic() + PATIENCE
        while _sending(str(db)) == 0 or not _token_given(sim_clean):
            assert paused.poll() is None, paused.communicate()
            assert time.monotonic() < deadline, "the sync never started sending"
            time.sleep(0.05)
        # With its token, it asks each device's group: stopped meanwhile, it finds the answers
        # (taken before the other process moved the devices) waiting when it resumes.
        time.sleep(1.0)
        paused.send_signal(signal.SIGSTOP)
        sim_clean.admin("DELETE", "/_sim/faults")
        time.sleep(LEASE + 1.0)  # its leases run out while it is stopped

        other = _sync(sim_setup, other_env)
        out, err = other.communicate(timeout=PATIENCE)
        assert other.returncode == 0, out + err
        assert "Traceback" not in err
    finally:
        paused.send_signal(signal.SIGCONT)
    out, err = paused.communicate(timeout=PATIENCE)
    assert "Traceback" not in err, err

    log = sim_clean.admin("GET", "/_sim/mutations?backend=things").json()
    for device, group in moves.items():
        posts = [m["body"]["group_id"] for m in log if m["path"].endswith(f"/things/{device}/group")]
        assert posts == [group], device  # once: by the other process, never again on resume
        assert sim_clean.admin("GET", f"/_sim/inspect/things/{device}").json()["group"] == group
    with sqlite3.connect(db) as conn:
        states = dict(conn.execute("SELECT state, count(*) FROM actions GROUP BY state").fetchall())
    assert states == {"done": len(moves)}
