"""``fieldtui set-status``, ``move`` and ``outbox ...`` as a technician runs them, against the simulator."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from fieldtui.service.api import ActionState, SyncMode
from fieldtui.service.session import open_service


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
    # A refused outbox operation is fixed by what the technician types: exit 2, never 1 (bugs).
    assert again.returncode == 2 and "already cancelled" in again.stderr


async def _uncertain_status_change(setup: Any, sim: Any, fault: dict[str, Any]) -> tuple[Any, str, str]:
    """A status change whose one attempt got no answer under ``fault``: (device, target, id).

    Made through the port, in this process: the session reads the device first (its token is
    then held), so the fault meets the change itself and not the sign-in.
    """
    device = _device(sim)
    target = "retired" if device.installation_status != "retired" else "installed"
    service = await open_service(setup.loaded(), sync=SyncMode.DRAIN, path=setup.data_dir / "outbox.sqlite3")
    try:
        await service.device(device.id)
        record = await service.writes.set_installation_status(device.id, target, backend="things")
        sim.admin("PUT", "/_sim/faults/things", fault)
        await service.outbox.drain()  # one pass: the attempt gets no answer and is queued again
        sim.admin("DELETE", "/_sim/faults")
        after = await service.outbox.action(record.id)
    finally:
        await service.aclose()
    assert after.state is ActionState.QUEUED and after.uncertain and after.attempts == 1, after
    return device, target, record.id


def _state(setup: Any, action_id: str) -> str:
    listed = json.loads(_run(setup, "outbox", "list", "--json").stdout)
    return str(next(a["state"] for a in listed["actions"] if a["id"] == action_id))


async def test_drop_of_a_change_whose_answer_was_lost_finds_it_applied_and_keeps_it(
    sim_setup: Any, sim_clean: Any
) -> None:
    device, target, action_id = await _uncertain_status_change(sim_setup, sim_clean, {"answer_lost": 1.0})
    assert sim_clean.admin("GET", f"/_sim/inspect/things/{device.id}").json()["installation_status"] == target

    refused = _run(sim_setup, "outbox", "drop", action_id[:8], "--yes")
    assert refused.returncode == 2, refused.stderr
    assert "not dropped" in refused.stderr and "already took effect on things" in refused.stderr
    assert _state(sim_setup, action_id) == "queued"
    # The next sync records it as done, without sending it again.
    synced = _run(sim_setup, "outbox", "sync")
    assert synced.returncode == 0, synced.stderr
    assert _state(sim_setup, action_id) == "done"


async def test_drop_of_a_change_the_cloud_refused_to_hear_checks_and_drops_it(
    sim_setup: Any, sim_clean: Any
) -> None:
    device, target, action_id = await _uncertain_status_change(sim_setup, sim_clean, {"error_rate": 1.0})

    dropped = _run(sim_setup, "outbox", "drop", action_id[:8], "--yes")
    assert dropped.returncode == 0, dropped.stderr
    assert "checked things" in dropped.stdout and "did not take effect" in dropped.stdout
    assert _state(sim_setup, action_id) == "cancelled"
    assert sim_clean.admin("GET", f"/_sim/inspect/things/{device.id}").json()["installation_status"] != target


async def test_drop_when_the_cloud_cannot_tell_needs_force(sim_setup: Any, sim_clean: Any) -> None:
    _device, _target, action_id = await _uncertain_status_change(sim_setup, sim_clean, {"error_rate": 1.0})
    sim_clean.admin("PUT", "/_sim/faults/things", {"unreachable": True})
    refused = _run(sim_setup, "outbox", "drop", action_id[:8], "--yes", "--json")
    assert refused.returncode == 2
    assert "cannot tell" in json.loads(refused.stdout)["error"]["message"]
    offline = _run(sim_setup, "--offline", "outbox", "drop", action_id[:8], "--yes")
    assert offline.returncode == 2 and "--force" in offline.stderr
    assert _state(sim_setup, action_id) == "queued"

    forced = _run(sim_setup, "outbox", "drop", action_id[:8], "--yes", "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["checked"] == "unknown"
    assert "may have taken effect" in forced.stderr
    assert _state(sim_setup, action_id) == "cancelled"


def test_sync_exits_6_with_the_server_words_when_an_action_failed(sim_setup: Any, sim_clean: Any) -> None:
    device = _device(sim_clean)
    _run(sim_setup, "--offline", "move", device.id, "no-such-group", "--backend", "things")
    result = _run(sim_setup, "outbox", "sync")
    assert result.returncode == 6
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
