"""Exactly once, judged by the simulator's own mutation log, while answers are lost or late.

``answer_lost`` applies a change and closes the connection without the answer; ``lands_late``
applies it and holds the answer past the client's timeout. Either way the client cannot tell
whether the change took effect: the engine must check before sending again, and the check must
find this very change (a command by its transactionId, a task by its parameters as the cloud
shows them, a device update by the values themselves), never another one.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from outbox_doubles import FAST, drain_all

from fieldtui.core.actions import ActionState
from fieldtui.core.errors import LimitReached
from fieldtui.core.models import InstallationStatus
from fieldtui.service.writes import Outbox, open_outbox

#: The clients' request timeout in these tests: a late answer costs this long.
TIMEOUT = 2.0
#: How long a drain loop may take at most (generous: the machine may be loaded).
PATIENCE = 240.0


@pytest.fixture
def quick_setup(sim_setup: Any) -> Iterator[Any]:
    """The simulator's config with a short request timeout, so late answers are given up fast."""
    text = sim_setup.config.read_text()
    sim_setup.config.write_text(re.sub(r'^(kind = "[a-z]+")$', rf"\1\ntimeout = {TIMEOUT}", text, flags=re.M))
    yield sim_setup


def _mutations(sim: Any, backend: str, method: str, pattern: str) -> list[dict[str, Any]]:
    log = sim.admin("GET", f"/_sim/mutations?backend={backend}").json()
    return [m for m in log if m["method"] == method and re.fullmatch(pattern, m["path"])]


def _faulty(sim: Any, backend: str, *, lost: float = 0.4, late: float = 0.3) -> None:
    response = sim.admin("PUT", f"/_sim/faults/{backend}", {"answer_lost": lost, "lands_late": late})
    assert response.status_code == 200, response.text


def _pick(sim: Any, kind: str, n: int, offset: int = 0) -> list[Any]:
    return sorted(sim.fleet.of(kind).values(), key=lambda d: d.id)[offset : offset + n]


async def test_a_lost_answer_is_applied_and_a_late_one_never_arrives(
    quick_setup: Any, sim_clean: Any
) -> None:
    device = _pick(sim_clean, "things", 1)[0]
    async with open_outbox(quick_setup.loaded(), offline=True) as outbox:
        things = outbox.connectors["things"]
        await things.installation_history(device.id)  # the client token first: its POST is a change too
        for fault in ("answer_lost", "lands_late"):
            sim_clean.admin("DELETE", "/_sim/faults")
            sim_clean.admin("PUT", "/_sim/faults/things", {fault: 1})
            started = time.monotonic()
            with pytest.raises(Exception) as caught:
                await things.set_installation_status(device.id, InstallationStatus.QUARANTINE)
            if fault == "lands_late":
                assert time.monotonic() - started >= TIMEOUT * 0.9, "a late answer is given up at the timeout"
            assert "Traceback" not in str(caught.value)
            # Reads are not affected: the check before a resend can see what happened.
            history = await things.installation_history(device.id)
            assert history[0].status.value == "quarantine"
    posts = _mutations(sim_clean, "things", "POST", rf"/things/prod/v1/things/{device.id}/installations")
    assert len(posts) == 2
    faults = sim_clean.admin("GET", "/_sim/faults").json()
    assert {"answer_lost", "lands_late"} <= set(faults["things"])


async def test_things_commands_each_sent_once_by_transaction_id(quick_setup: Any, sim_clean: Any) -> None:
    devices = _pick(sim_clean, "things", 4)
    async with open_outbox(quick_setup.loaded(), backoff=FAST, offline=True) as outbox:
        # Two identical commands per thing: only their transactionIds tell them apart.
        records = [
            await outbox.writes.send_command(d.id, "1500", {"tsmEv": 1, "profileId": 2}, backend="things")
            for d in devices
            for _ in range(2)
        ]
    correlations = {r.action.params["correlation"] for r in records}
    assert len(correlations) == len(records)
    _faulty(sim_clean, "things")
    async with open_outbox(quick_setup.loaded(), backoff=FAST) as outbox:
        await drain_all(outbox, PATIENCE)
        final = [await outbox.store.get(r.id) for r in records]
    assert all(r is not None and r.state is ActionState.DONE for r in final)
    assert any(r is not None and r.attempts > 1 for r in final), "no answer was lost: the faults did not bite"
    sent: Counter[Any] = Counter()
    for m in _mutations(sim_clean, "things", "POST", r"/things/prod/v1/things/[^/]+/commands"):
        for command in m["body"]:
            sent[command["transactionId"]] += 1
    assert sent == Counter({c: 1 for c in correlations})  # 0 lost, 0 doubled
    # Each action claims its own command, never its twin's.
    created = [r.result["created_id"] for r in final if r is not None]
    assert len(set(created)) == len(created)


async def test_things_statuses_under_lost_and_late_answers_apply_once_in_order(
    quick_setup: Any, sim_clean: Any
) -> None:
    devices = _pick(sim_clean, "things", 4, offset=4)
    cycle = ["new", "installed", "uninstalled", "quarantine", "retired"]
    # Three changes per thing, none of them to the status it has now.
    plan = {d.id: [s for s in cycle if s != d.installation_status][-3:] for d in devices}
    async with open_outbox(quick_setup.loaded(), backoff=FAST, offline=True) as outbox:
        for step in range(3):
            for tuid, statuses in plan.items():
                await outbox.writes.set_installation_status(tuid, statuses[step], backend="things")
    _faulty(sim_clean, "things")
    async with open_outbox(quick_setup.loaded(), backoff=FAST) as outbox:
        await drain_all(outbox, PATIENCE)
    for tuid, statuses in plan.items():
        posts = _mutations(sim_clean, "things", "POST", rf"/things/prod/v1/things/{tuid}/installations")
        assert [m["body"]["installation_status"] for m in posts] == statuses


async def test_mysensor_tasks_created_once_each(quick_setup: Any, sim_clean: Any) -> None:
    devices = _pick(sim_clean, "mysensor", 3)
    plan = [
        (d.id, kind, 1_600_000 + i)
        for i, d in enumerate(devices)
        for kind in ("update_firmware", "update_configuration")
    ]
    async with open_outbox(quick_setup.loaded(), backoff=FAST, offline=True) as outbox:
        for serial, kind, file_id in plan:
            await outbox.writes.create_task(serial, kind, {"file_id": file_id}, backend="sensors")
    _faulty(sim_clean, "sensors")
    async with open_outbox(quick_setup.loaded(), backoff=FAST) as outbox:
        await drain_all(outbox, PATIENCE)
    puts = _mutations(sim_clean, "sensors", "PUT", r"/mysensor/api/tasks")
    made = Counter((str(m["body"]["sensor_serial"]), m["body"]["type"], m["body"]["file_id"]) for m in puts)
    assert made == Counter({(serial, kind, file_id): 1 for serial, kind, file_id in plan})


async def _config_ids(outbox: Outbox) -> list[str]:
    dhq: Any = outbox.connectors["gateways"]
    for listed in await dhq.apps():
        app = await dhq.app(listed.id)
        ids = [c.id for c in app.app_configs if c.id]
        if len(ids) >= 2:
            return ids[:2]
    raise AssertionError("the simulated catalogue has no app with two configs")


async def test_devicehq_tasks_with_config_ids_as_a_list_are_created_once(
    quick_setup: Any, sim_clean: Any
) -> None:
    devices = _pick(sim_clean, "devicehq", 3)
    async with open_outbox(quick_setup.loaded(), backoff=FAST, offline=True) as outbox:
        first, second = await _config_ids(outbox)
        # Queued as lists (one and two ids) and as a lower-case type; shown as "a,b" and upper case.
        for d in devices:
            await outbox.writes.create_task(
                d.id, "install_configs", {"config_ids": [first]}, backend="gateways"
            )
            await outbox.writes.create_task(
                d.id, "INSTALL_CONFIGS", {"config_ids": [first, second]}, backend="gateways"
            )
    _faulty(sim_clean, "gateways")
    async with open_outbox(quick_setup.loaded(), backoff=FAST) as outbox:
        await drain_all(outbox, PATIENCE)
    posts = _mutations(sim_clean, "gateways", "POST", r"/devicehq/api/v2/devices/[^/]+/tasks")
    made = Counter(
        (m["path"].split("/")[-2], ",".join(m["body"]["data"]["attributes"]["config_ids"])) for m in posts
    )
    assert made == Counter({(d.id, ids): 1 for d in devices for ids in (first, f"{first},{second}")})


async def test_fleet_updates_apply_once_and_a_field_changed_meanwhile_is_a_conflict(
    quick_setup: Any, sim_clean: Any
) -> None:
    devices = _pick(sim_clean, "fleet", 4)
    async with open_outbox(quick_setup.loaded(), backoff=FAST, offline=True) as outbox:
        fleet = outbox.connectors["fleet"]
        shown = {d.id: (await fleet.get_device(d.id)).raw for d in devices}
        records = {
            d.id: await outbox.writes.update_device(
                d.id,
                {"owner_ref": f"site-b-{i}"},
                backend="fleet",
                precondition={"fields": {"owner_ref": shown[d.id]["owner_ref"]}},
            )
            for i, d in enumerate(devices)
        }
        # Someone else edits the last device's owner before the change is sent.
        await fleet.update_device(devices[-1].id, {"owner_ref": "someone-else"})
    _faulty(sim_clean, "fleet")
    async with open_outbox(quick_setup.loaded(), backoff=FAST) as outbox:
        await drain_all(outbox, PATIENCE)
        final = {k: await outbox.store.get(r.id) for k, r in records.items()}
    sim_clean.admin("DELETE", "/_sim/faults")
    for i, d in enumerate(devices[:-1]):
        patches = _mutations(sim_clean, "fleet", "PATCH", rf"/fleet/api/v0/projects/demo/devices/{d.id}")
        assert [m["body"] for m in patches] == [{"owner_ref": f"site-b-{i}"}]
        record = final[d.id]
        assert record is not None and record.state is ActionState.DONE
    conflicted = final[devices[-1].id]
    assert conflicted is not None and conflicted.state is ActionState.CONFLICT
    assert "owner_ref is now someone-else" in (conflicted.last_error or "")
    patches = _mutations(
        sim_clean, "fleet", "PATCH", rf"/fleet/api/v0/projects/demo/devices/{devices[-1].id}"
    )
    assert [m["body"] for m in patches] == [{"owner_ref": "someone-else"}]  # not overwritten


async def test_a_sync_paused_past_its_lease_sends_nothing_once_another_took_over(
    quick_setup: Any, sim_clean: Any
) -> None:
    """Ctrl-Z on a sync: its lease runs out, another process takes the move over. When the
    paused one resumes it must not send: one move reaches the cloud, by the other process."""
    device = _pick(sim_clean, "things", 1, offset=9)[0]
    async with (
        open_outbox(quick_setup.loaded(), backoff=FAST) as paused,
        open_outbox(quick_setup.loaded()) as other,
    ):
        things: Any = paused.connectors["things"]
        target = next(g.id for g in await things.list_groups() if g.id != device.group)
        record = await paused.writes.move_to_group(
            device.id, target, backend="things", precondition={"group": device.group}
        )
        checking, resume = asyncio.Event(), asyncio.Event()
        real_get_group = things.get_group

        async def frozen_get_group(device_id: str) -> str | None:
            current: str | None = await real_get_group(device_id)
            checking.set()
            await resume.wait()  # the process is stopped here, past its lease
            return current

        setattr(things, "get_group", frozen_get_group)  # noqa: B010 - this instance only
        drain = asyncio.create_task(paused.engine.drain())
        await asyncio.wait_for(checking.wait(), 30)
        # The lease has run out (seen from an hour later): the other process takes the move over.
        [taken] = await other.store.claim(
            other.engine.owner, limit=1, lease_seconds=30, now=time.time() + 3600
        )
        assert taken.record.id == record.id and taken.interrupted
        resume.set()
        summary = await asyncio.wait_for(drain, 60)
        assert summary.done == []
        # The other process sends it (once) and records it.
        await other.connectors["things"].move_to_group(device.id, target)
        assert await other.store.complete(other.engine.owner, record.id) is not None
    moves = _mutations(sim_clean, "things", "POST", rf"/things/prod/v1/things/{device.id}/group")
    assert [m["body"]["group_id"] for m in moves] == [target]


async def test_a_sync_stopped_between_its_lease_confirmation_and_the_request_sends_nothing(
    quick_setup: Any, sim_clean: Any
) -> None:
    """SIGSTOP right after the lease was confirmed, before the request's bytes left (seen in the
    long soak: a things status sent twice). Another process takes the move over and sends it;
    when the stopped one wakes, its transport refuses the stale request: one move reaches the cloud."""
    device = _pick(sim_clean, "things", 1, offset=11)[0]
    async with (
        open_outbox(quick_setup.loaded(), backoff=FAST) as paused,
        open_outbox(quick_setup.loaded()) as other,
    ):
        things: Any = paused.connectors["things"]
        target = next(g.id for g in await things.list_groups() if g.id != device.group)
        record = await paused.writes.move_to_group(device.id, target, backend="things")
        paused.engine.lease_seconds = 0.6  # its send window closes 0.3 s after the confirmation
        confirmed, resume = asyncio.Event(), asyncio.Event()
        real_confirm = paused.store.confirm_lease

        async def confirm_then_stop(owner: str, action_id: str, lease_seconds: float) -> Any:
            answer = await real_confirm(owner, action_id, lease_seconds)
            confirmed.set()
            await resume.wait()  # stopped here, past the lease
            return answer

        setattr(paused.store, "confirm_lease", confirm_then_stop)  # noqa: B010 - this instance only
        drain = asyncio.create_task(paused.engine.drain())
        await asyncio.wait_for(confirmed.wait(), 30)
        [taken] = await other.store.claim(
            other.engine.owner, limit=1, lease_seconds=30, now=time.time() + 3600
        )
        assert taken.record.id == record.id
        await other.connectors["things"].move_to_group(device.id, target)
        assert await other.store.complete(other.engine.owner, record.id) is not None
        await asyncio.sleep(0.5)  # the stop lasts past the window
        resume.set()
        summary = await asyncio.wait_for(drain, 60)
        assert summary.done == []
        final = await other.store.get(record.id)
    assert final is not None and final.state is ActionState.DONE
    moves = _mutations(sim_clean, "things", "POST", rf"/things/prod/v1/things/{device.id}/group")
    assert [m["body"]["group_id"] for m in moves] == [target]


async def test_a_cancel_passes_a_create_held_by_the_25_task_cap(quick_setup: Any, sim_clean: Any) -> None:
    device = _pick(sim_clean, "devicehq", 1, offset=5)[0]
    async with open_outbox(quick_setup.loaded(), backoff=FAST) as outbox:
        dhq: Any = outbox.connectors["gateways"]
        first, second = await _config_ids(outbox)
        fillers: list[str] = []
        for _ in range(40):  # the account's unfinished tasks up to the cap
            try:
                task = await dhq.create_task(device.id, "INSTALL_CONFIGS", {"config_ids": [first]})
            except LimitReached:
                break
            fillers.append(task.id)
        else:
            raise AssertionError("no task cap reached")
        assert fillers, "the cap was full before the test began"
        create = await outbox.writes.create_task(
            device.id, "INSTALL_CONFIGS", {"config_ids": [first, second]}, backend="gateways"
        )
        cancel = await outbox.writes.cancel_task(device.id, fillers[0], backend="gateways")
        await drain_all(outbox, PATIENCE)
        states = [(await outbox.store.get(r.id)) for r in (create, cancel)]
    assert [s.state if s else None for s in states] == [ActionState.DONE, ActionState.DONE]
    log = sim_clean.admin("GET", "/_sim/mutations?backend=gateways").json()
    ours = [
        m["path"].rsplit("/", 1)[-1]
        for m in log
        if m["path"].endswith(f"/tasks/{fillers[0]}/cancel")
        or (
            m["method"] == "POST"
            and (m.get("body") or {}).get("data", {}).get("attributes", {}).get("config_ids")
            == [first, second]
        )
    ]
    assert ours == ["cancel", "tasks"]  # the cancel went first, then the create, once
