"""``fieldtui set-status``, ``move`` and ``outbox ...`` as a technician runs them, against the simulator."""

from __future__ import annotations

import json
import subprocess
from typing import Any


def _run(setup: Any, *args: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*setup.cli(), *args], env=setup.env, capture_output=True, text=True, stdin=stdin, timeout=60
    )


def _device(sim: Any) -> Any:
    return sorted(sim.fleet.of("things").values(), key=lambda d: d.id)[0]


def test_set_status_prints_the_action_id_and_synced_now(sim_setup: Any, sim_clean: Any) -> None:
    device = _device(sim_clean)
    target = "retired" if device.installation_status != "retired" else "installed"
    result = _run(sim_setup, "set-status", device.id, target, "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["status"] == "synced" and len(body["action"]["id"]) == 32
    assert sim_clean.admin("GET", f"/_sim/inspect/things/{device.id}").json()["installation_status"] == target


def test_move_while_unreachable_is_queued_with_the_reason(sim_setup: Any, sim_clean: Any) -> None:
    device = _device(sim_clean)
    sim_clean.admin("PUT", "/_sim/faults/things", {"unreachable": True})
    result = _run(sim_setup, "move", device.id, "roof", "--backend", "things")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("action ")
    assert "queued: " in result.stdout
    offline = _run(sim_setup, "--offline", "set-status", device.id, "installed")
    assert offline.returncode == 0
    assert "queued: offline (--offline)" in offline.stdout
    listed = json.loads(_run(sim_setup, "outbox", "list", "--json").stdout)
    assert listed["counts"]["queued"] == 2


def test_drop_needs_a_terminal_or_yes(sim_setup: Any, sim_clean: Any) -> None:
    device = _device(sim_clean)
    queued = json.loads(_run(sim_setup, "--offline", "move", device.id, "roof", "--json").stdout)
    action_id = queued["action"]["id"]
    refused = _run(sim_setup, "outbox", "drop", action_id[:8])
    assert refused.returncode == 2 and "--yes" in refused.stderr
    dropped = _run(sim_setup, "outbox", "drop", action_id[:8], "--yes", "--json")
    assert dropped.returncode == 0 and json.loads(dropped.stdout)["action"]["state"] == "cancelled"
    again = _run(sim_setup, "outbox", "drop", action_id, "--yes")
    assert again.returncode == 1 and "already cancelled" in again.stderr


def test_sync_exits_1_with_the_server_words_when_an_action_failed(sim_setup: Any, sim_clean: Any) -> None:
    device = _device(sim_clean)
    _run(sim_setup, "--offline", "move", device.id, "no-such-group", "--backend", "things")
    result = _run(sim_setup, "outbox", "sync")
    assert result.returncode == 1
    assert "no-such-group" in result.stderr and "not found" in result.stderr
    retried = _run(
        sim_setup,
        "outbox",
        "retry",
        json.loads(_run(sim_setup, "outbox", "list", "--json").stdout)["actions"][0]["id"],
    )
    assert retried.returncode == 0 and "queued again" in retried.stdout


def test_read_only_refuses_changes_with_exit_2(sim_setup: Any, sim_clean: Any) -> None:
    device = _device(sim_clean)
    result = _run(sim_setup, "--read-only", "set-status", device.id, "installed")
    assert result.returncode == 2 and "read-only" in result.stderr
    assert _run(sim_setup, "--read-only", "outbox", "sync").returncode == 2
    assert json.loads(_run(sim_setup, "outbox", "list", "--json").stdout)["actions"] == []


def test_unknown_device_exits_3(sim_setup: Any, sim_clean: Any) -> None:
    result = _run(sim_setup, "set-status", "NO-SUCH-DEVICE", "installed")
    assert result.returncode == 3 and "no cloud knows NO-SUCH-DEVICE" in result.stderr
