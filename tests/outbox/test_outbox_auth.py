"""Refused credentials keep the change queued, say how to fix them, and the change syncs once fixed.

A wrong secret is not the change's fault: the technician fixes the secret (``fieldtui login``
or the ``FIELDTUI_SECRET_*`` variable) and the change goes through, once.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

import pytest
from outbox_doubles import FAST

from fieldtui.core.actions import ActionState
from fieldtui.secrets import env_var_name
from fieldtui.service.writes import open_outbox


def _installation_posts(sim: Any, device: str) -> list[Any]:
    log = sim.admin("GET", "/_sim/mutations?backend=things").json()
    return [
        m["body"]["installation_status"] for m in log if m["path"].endswith(f"/things/{device}/installations")
    ]


def _target(device: Any) -> str:
    return "retired" if device.installation_status != "retired" else "installed"


async def test_a_refused_secret_keeps_the_change_queued_with_the_fix_then_it_syncs_once(
    sim_setup: Any, sim_clean: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = sorted(sim_clean.fleet.of("things").values(), key=lambda d: d.id)[0]
    target = _target(device)
    loaded = sim_setup.loaded()
    variable = env_var_name(loaded.profile_name, "things")
    right = sim_setup.env[variable]
    monkeypatch.setenv(variable, "not-the-secret")
    async with open_outbox(loaded, backoff=FAST) as outbox:
        record = await outbox.writes.set_installation_status(device.id, target, backend="things")
        for _ in range(2):  # refused again on the next attempt: still queued, never failed
            summary = await outbox.engine.drain()
            await asyncio.sleep(0.25)
        stored = await outbox.store.get(record.id)
        assert stored is not None and stored.state is ActionState.QUEUED
        assert stored.attempts >= 2 and not stored.uncertain
        assert not summary.failed and summary.remaining == {ActionState.QUEUED: 1}
        error = stored.last_error or ""
        assert "refused" in error
        assert "fieldtui login things" in error and variable in error
        assert "things" in summary.unreachable or summary.deferred
    assert _installation_posts(sim_clean, device.id) == []

    monkeypatch.setenv(variable, right)  # the technician fixed the secret
    async with open_outbox(sim_setup.loaded(), backoff=FAST) as outbox:
        await outbox.store.make_due()
        done = await outbox.engine.drain()
        assert [r.id for r in done.done] == [record.id] and done.remaining == {}
    assert _installation_posts(sim_clean, device.id) == [target]  # once


def test_the_cli_shows_the_fix_and_outbox_sync_sends_it_once_fixed(sim_setup: Any, sim_clean: Any) -> None:
    device = sorted(sim_clean.fleet.of("things").values(), key=lambda d: d.id)[1]
    target = _target(device)
    variable = env_var_name(sim_setup.loaded().profile_name, "things")
    wrong = {**sim_setup.env, variable: "not-the-secret"}

    def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*sim_setup.cli(), *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    queued = run(wrong, "set-status", device.id, target, "--backend", "things", "--json")
    assert queued.returncode == 0, queued.stderr
    body = json.loads(queued.stdout)
    assert body["status"] == "queued"
    assert "fieldtui login things" in body["reason"] and variable in body["reason"]
    listed = json.loads(run(wrong, "outbox", "list", "--json").stdout)
    [action] = listed["actions"]
    assert action["state"] == "queued" and variable in action["last_error"]
    # The technician fixes the secret and syncs by hand: tried at once, backoff or not.
    synced = run(sim_setup.env, "outbox", "sync", "--json")
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["done"] == [body["action"]["id"]]
    assert _installation_posts(sim_clean, device.id) == [target]
