"""The outbox against the simulated clouds over loopback: what the clouds end up holding."""

from __future__ import annotations

import asyncio
from typing import Any

from outbox_doubles import FAST

from fieldtui.core.actions import ActionState
from fieldtui.core.errors import LimitReached
from fieldtui.service.writes import open_outbox


def _installation_posts(sim: Any, device: str) -> list[Any]:
    log = sim.admin("GET", "/_sim/mutations?backend=things").json()
    return [
        m["body"]["installation_status"] for m in log if m["path"].endswith(f"/things/{device}/installations")
    ]


def _inspect(sim: Any, device: str) -> dict[str, Any]:
    response = sim.admin("GET", f"/_sim/inspect/things/{device}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _cycle(current: str | None, n: int) -> list[str]:
    order = ["installed", "uninstalled", "quarantine", "retired", "new"]
    start = order.index(current) if current in order else -1
    return [order[(start + 1 + i) % len(order)] for i in range(n)]


async def test_changes_queue_while_unreachable_and_sync_once_each_in_order(
    sim_setup: Any, sim_clean: Any
) -> None:
    devices = sorted(sim_clean.fleet.of("things").values(), key=lambda d: d.id)[:4]
    plan = {d.id: _cycle(d.installation_status, 3) for d in devices}
    before = {d.id: len(_inspect(sim_clean, d.id)["installation_history"]) for d in devices}
    sim_clean.admin("PUT", "/_sim/faults/things", {"unreachable": True})
    async with open_outbox(sim_setup.loaded(), backoff=FAST) as outbox:
        records = [
            await outbox.writes.set_installation_status(device, status, backend="things")
            for i in range(3)
            for device, statuses in plan.items()
            for status in [statuses[i]]
        ]
        offline = await outbox.engine.drain()
        assert offline.ok and not offline.done
        assert offline.remaining == {ActionState.QUEUED: 12}
        assert "things" in offline.unreachable
        outcome = await outbox.writes.first_outcome(records[0], timeout=0.1)
        assert outcome.status == "queued"
        assert all(_installation_posts(sim_clean, d) == [] for d in plan)

        sim_clean.admin("DELETE", "/_sim/faults")
        await asyncio.sleep(0.25)
        online = await outbox.engine.drain()
        assert online.ok and len(online.done) == 12 and online.remaining == {}
    for device, statuses in plan.items():
        assert _installation_posts(sim_clean, device) == statuses
        inspected = _inspect(sim_clean, device)
        assert len(inspected["installation_history"]) == before[device] + 3
        assert inspected["installation_status"] == statuses[-1]
    # Intents only: no secret ever reaches the outbox file.
    data = b"".join(p.read_bytes() for p in sim_setup.data_dir.iterdir())
    assert all(secret.encode() not in data for secret in sim_setup.env_secrets)


async def test_move_of_a_device_moved_meanwhile_is_a_conflict(sim_setup: Any, sim_clean: Any) -> None:
    device = sorted(sim_clean.fleet.of("things").values(), key=lambda d: d.id)[0]
    async with open_outbox(sim_setup.loaded(), offline=True) as outbox:
        things = outbox.connectors["things"]
        groups = [g.id for g in await things.list_groups() if g.id != device.group]
        record = await outbox.writes.move_to_group(
            device.id, groups[0], backend="things", precondition={"group": device.group}
        )
        await things.move_to_group(device.id, groups[1])  # another technician, meanwhile
    async with open_outbox(sim_setup.loaded()) as outbox:
        summary = await outbox.engine.drain()
    [conflict] = summary.conflicts
    assert conflict.id == record.id and not summary.ok
    assert f"now in group {groups[1]}, not {device.group}" in (conflict.last_error or "")
    assert _inspect(sim_clean, device.id)["group"] == groups[1]


async def test_permanent_failure_keeps_the_server_words(sim_setup: Any, sim_clean: Any) -> None:
    device = sorted(sim_clean.fleet.of("things").values(), key=lambda d: d.id)[0]
    async with open_outbox(sim_setup.loaded()) as outbox:
        record = await outbox.writes.move_to_group(device.id, "no-such-group", backend="things")
        summary = await outbox.engine.drain()
        stored = await outbox.store.get(record.id)
    [failed] = summary.failed
    assert stored is not None and stored.state is ActionState.FAILED and stored.attempts == 1
    direct = sim_clean.admin("GET", "/_sim/inspect/things/" + device.id).json()["group"]
    assert direct == device.group
    assert "no-such-group" in (failed.last_error or "") and "not found" in (failed.last_error or "")


async def test_devicehq_task_cap_holds_then_succeeds_when_a_task_is_cancelled(
    sim_setup: Any, sim_clean: Any
) -> None:
    fleet = sim_clean.fleet.of("devicehq")
    async with open_outbox(sim_setup.loaded(), backoff=FAST) as outbox:
        dhq: Any = outbox.connectors["gateways"]
        firmwares = await dhq.device_firmwares()
        # Firmware matching each gateway's product (the cloud refuses the wrong one).
        fitting = {
            serial: fw.id
            for serial, device in fleet.items()
            for fw in firmwares
            if fw.model and device.model and str(device.model).startswith(fw.model)
        }
        gateways = sorted(fitting)
        assert len(gateways) >= 2
        ours: list[tuple[str, str]] = []
        for i in range(60):
            serial = gateways[i % len(gateways)]
            try:
                task = await dhq.create_task(serial, "SOFTWARE_UPGRADE", {"firmware_id": fitting[serial]})
            except LimitReached:
                break
            ours.append((serial, task.id))
        else:
            raise AssertionError("the 25-task cap never applied")
        target = gateways[-1]
        record = await outbox.writes.create_task(
            target, "SOFTWARE_UPGRADE", {"firmware_id": fitting[target]}, backend="gateways"
        )
        held = await outbox.engine.drain()
        assert held.ok and not held.done
        [deferred] = held.deferred
        assert deferred.state is ActionState.QUEUED
        assert (deferred.last_error or "").startswith("held: ") and "limit" in (deferred.last_error or "")
        serial, task_id = ours[0]
        await dhq.cancel_task(serial, task_id)
        await asyncio.sleep(0.15)
        done = await outbox.engine.drain()
        assert [r.id for r in done.done] == [record.id]
        created = done.done[0].result["created_id"]
        assert created in {t.id for t in await dhq.list_tasks(target)}
