"""Real processes on one outbox: killed at random moments, or two draining at once.

The simulator's own mutation log is the judge: every queued change reaches it exactly once,
in order per device, however the ``fieldtui outbox sync`` processes die.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import time
from typing import Any

import pytest

from fieldtui.core.actions import Action, ActionType
from fieldtui.paths import outbox_path
from fieldtui.service.store import OutboxStore

ORDER = ["installed", "uninstalled", "quarantine", "retired", "new"]


class Plan:
    """Status changes queued per device, each different from the one before."""

    def __init__(self, devices: dict[str, Any]) -> None:
        self.current = {device_id: d.installation_status for device_id, d in devices.items()}
        self.queued: dict[str, list[str]] = {device_id: [] for device_id in devices}
        self.history_before: dict[str, int] = {}

    def next_actions(self, devices: list[str]) -> list[Action]:
        actions = []
        for device in devices:
            now = self.current[device]
            status = ORDER[(ORDER.index(now) + 1) % len(ORDER)] if now in ORDER else ORDER[0]
            self.current[device] = status
            self.queued[device].append(status)
            actions.append(
                Action(
                    type=ActionType.SET_INSTALLATION_STATUS,
                    device=device,
                    backend="things",
                    params={"status": status},
                )
            )
        return actions


def _enqueue(actions: list[Action]) -> None:
    async def go() -> None:
        async with await OutboxStore.open(outbox_path()) as store:
            await store.enqueue_many(actions)

    asyncio.run(go())


def _open_count(setup: Any) -> int:
    out = subprocess.run(
        [*setup.cli(), "outbox", "list", "--json"], env=setup.env, capture_output=True, text=True, check=True
    )
    counts = json.loads(out.stdout)["counts"]
    return int(counts["queued"] + counts["sending"] + counts["failed"] + counts["conflict"])


def _sync_until_empty(setup: Any, deadline: float = 90.0) -> None:
    end = time.monotonic() + deadline
    while True:
        result = subprocess.run(
            [*setup.cli(), "outbox", "sync"], env=setup.env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr
        if _open_count(setup) == 0:
            return
        assert time.monotonic() < end, "the outbox did not empty: " + result.stdout
        time.sleep(1.0)


def _posted(sim: Any, device: str) -> list[str]:
    log = sim.admin("GET", "/_sim/mutations?backend=things").json()
    return [
        m["body"]["installation_status"] for m in log if m["path"].endswith(f"/things/{device}/installations")
    ]


def _history_len(sim: Any, device: str) -> int:
    return len(sim.admin("GET", f"/_sim/inspect/things/{device}").json()["installation_history"])


def _assert_each_applied_once_in_order(sim: Any, plan: Plan) -> None:
    for device, statuses in plan.queued.items():
        assert _posted(sim, device) == statuses, device
        assert _history_len(sim, device) == plan.history_before[device] + len(statuses), device


@pytest.mark.slow
def test_sync_killed_at_random_moments_loses_nothing_and_applies_nothing_twice(
    sim_setup: Any, sim_clean: Any
) -> None:
    rng = random.Random(20240611)
    things = dict(sorted(sim_clean.fleet.of("things").items())[:8])
    plan = Plan(things)
    plan.history_before = {d: _history_len(sim_clean, d) for d in things}
    sim_clean.admin("PUT", "/_sim/faults/things", {"latency": 0.05})
    kills = runs = 0
    # 30 kills at random moments reach every phase of a sync (claim, send, record) many times
    # over; each costs a process start and up to 1.2 s, so more only lengthen the suite.
    while kills < 30:
        runs += 1
        assert runs <= 90, f"only {kills} of {runs} runs were still going when killed"
        _enqueue(plan.next_actions(rng.sample(sorted(things), 3)))
        proc = subprocess.Popen(
            [*sim_setup.cli(), "outbox", "sync"],
            env=sim_setup.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.05, 1.2))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    sim_clean.admin("DELETE", "/_sim/faults")
    _sync_until_empty(sim_setup)
    assert sum(len(s) for s in plan.queued.values()) == 3 * runs
    _assert_each_applied_once_in_order(sim_clean, plan)


@pytest.mark.slow
def test_two_processes_draining_one_outbox_send_each_action_once(sim_setup: Any, sim_clean: Any) -> None:
    things = dict(sorted(sim_clean.fleet.of("things").items())[:12])
    plan = Plan(things)
    plan.history_before = {d: _history_len(sim_clean, d) for d in things}
    for _ in range(5):
        _enqueue(plan.next_actions(sorted(things)))
    sim_clean.admin("PUT", "/_sim/faults/things", {"latency": 0.02})
    procs = [
        subprocess.Popen(
            [*sim_setup.cli(), "outbox", "sync", "--json"],
            env=sim_setup.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    done = [set(json.loads(out)["done"]) for out, _err in outputs]
    assert not (done[0] & done[1])
    sim_clean.admin("DELETE", "/_sim/faults")
    _sync_until_empty(sim_setup)
    _assert_each_applied_once_in_order(sim_clean, plan)
