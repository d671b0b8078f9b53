"""Task queues and commands, driven through the app against the simulated clouds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fieldtui.connectors.devicehq import forget_sessions
from fieldtui.core.actions import ActionState, ActionType
from fieldtui.ui.app import FieldApp
from fieldtui.ui.modals.command import CommandModal, parse_parameters
from fieldtui.ui.modals.create_task import CreateTaskModal
from fieldtui.ui.screens.device import DeviceScreen
from fieldtui.ui.screens.device_tasks import DeviceTasksScreen
from fieldtui.ui.screens.fleet_tasks import FleetTasksScreen
from fieldtui.ui.widgets.confirm import ConfirmModal

SIZE = (80, 24)


@pytest.fixture(autouse=True)
def _fresh_devicehq_session() -> Iterator[None]:
    """The simulator may have been reset since an earlier test: no DeviceHQ session carried over."""
    forget_sessions()
    yield
    forget_sessions()


async def until(check: Callable[[], Any], timeout: float = 15.0, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(step)
    raise AssertionError(f"not true within {timeout} s")


def table_rows(screen: Any, selector: str) -> list[list[str]]:
    table = screen.query_one(selector)
    return [[str(getattr(c, "plain", c)) for c in table.get_row_at(i)] for i in range(table.row_count)]


def _gateway(sim: Any, index: int = 0) -> str:
    devices = sorted(sim.fleet.of("devicehq").values(), key=lambda d: d.id)
    return devices[index].id


async def _firmwares_for(app: FieldApp, sim: Any, device: str) -> list[Any]:
    """What the cloud lists for the device's model, read through the port as the modal reads it."""
    model = sim.fleet.of("devicehq")[device].model
    return await app.service.catalogue("gateways", "device_firmwares", model)


async def _open_tasks(app: FieldApp, pilot: Any, device: str) -> DeviceTasksScreen:
    await until(lambda: app.service is not None)
    view = await app.service.device(device)
    screen = DeviceTasksScreen(device, view, refresh_interval=1.0)
    await app.push_screen(screen)
    await pilot.pause()
    await until(lambda: screen.loaded)
    return screen


async def test_tasks_listed_with_their_states(sim_clean: Any, make_clean_app: Any) -> None:
    device = _gateway(sim_clean, 1)
    app = make_clean_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.service is not None)
        firmwares = await _firmwares_for(app, sim_clean, device)
        for firmware in firmwares[:2]:
            record = await app.service.writes.create_task(
                device, "SOFTWARE_UPGRADE", {"firmware_id": firmware.id}, backend="gateways"
            )
            assert (await app.service.writes.first_outcome(record)).synced
        screen = await _open_tasks(app, pilot, device)
        assert screen.query_one("#tasks-section").display
        rows = await until(
            lambda: [r for r in table_rows(screen, "#tasks-table") if r[1] == "SOFTWARE_UPGRADE"]
        )
        assert len(rows) == 2
        assert {r[0] for r in rows} <= {"queued", "running", "done", "failed", "cancelled"}
        assert all(r[2] == "gateways" for r in rows)
        # `/` filters the table; Escape clears the filter.
        await pilot.press("slash")
        screen.query_one("#tasks-filter").value = "no-such-task"
        await until(lambda: screen.query_one("#tasks-table").row_count == 0)
        await pilot.press("escape")
        await until(lambda: screen.query_one("#tasks-table").row_count >= 2)


async def test_create_firmware_task_from_the_list_then_cancel_and_delete(
    sim_clean: Any, make_clean_app: Any
) -> None:
    device = _gateway(sim_clean, 2)
    app = make_clean_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_tasks(app, pilot, device)
        before = screen.query_one("#tasks-table").row_count
        await pilot.press("n")
        modal = await until(lambda: app.screen if isinstance(app.screen, CreateTaskModal) else None)
        await until(lambda: modal.step == "kind")
        await pilot.press("enter")  # Device firmware
        options = modal.query_one("#create-task-options")
        await until(lambda: modal.step == "item" and options.option_count > 0)
        firmwares = await _firmwares_for(app, sim_clean, device)
        await pilot.press("enter")  # the first firmware the cloud lists for this model
        assert modal.step == "ready"
        await pilot.press("enter")  # Create
        await until(lambda: not isinstance(app.screen, CreateTaskModal))

        records = await until(lambda: _records_of(app, ActionType.CREATE_TASK, ActionState.DONE), timeout=20)
        assert records[0].action.params == {
            "type": "SOFTWARE_UPGRADE",
            "params": {"firmware_id": firmwares[0].id},
        }
        await until(lambda: screen.query_one("#tasks-table").row_count == before + 1)
        created = records[0].result.get("created_id") or _newest_task(screen)
        assert created

        table = screen.query_one("#tasks-table")
        table.focus()
        table.move_cursor(row=_row_of(screen, created))
        await pilot.press("c")
        confirm = await until(lambda: app.screen if isinstance(app.screen, ConfirmModal) else None)
        assert "Cancel this task?" in str(confirm.query_one(".modal-title").content)
        await pilot.press("y")
        await until(lambda: _records_of(app, ActionType.CANCEL_TASK, ActionState.DONE), timeout=20)
        await until(lambda: _state_of(screen, created) == "cancelled")

        await pilot.press("d")
        await until(lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("n")  # kept: nothing queued
        await pilot.pause()
        assert not await _records_of(app, ActionType.DELETE_TASK, None)
        await pilot.press("d")
        await until(lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await until(lambda: _records_of(app, ActionType.DELETE_TASK, ActionState.DONE), timeout=20)
        await until(lambda: _row_of(screen, created) is None)


async def test_mysensor_task_takes_a_typed_file_id(sim_clean: Any, make_clean_app: Any) -> None:
    device = sorted(sim_clean.fleet.of("mysensor"))[0]
    app = make_clean_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_tasks(app, pilot, device)
        await pilot.press("n")
        modal = await until(lambda: app.screen if isinstance(app.screen, CreateTaskModal) else None)
        await until(lambda: modal.step == "kind")
        await pilot.press("down", "enter")  # Configuration update
        assert modal.step == "file"
        await pilot.press(*"12ab")
        assert modal.query_one("#create-task-create").disabled
        await pilot.press("backspace", "backspace", *"3456", "enter")
        await until(lambda: not isinstance(app.screen, CreateTaskModal))
        done = await until(lambda: _records_of(app, ActionType.CREATE_TASK, ActionState.DONE), timeout=20)
        assert done[0].action.params == {"type": "update_configuration", "params": {"file_id": "123456"}}
        await until(lambda: any(r[1] == "update_configuration" for r in table_rows(screen, "#tasks-table")))


async def test_mqtt_command_sent_and_followed_to_done(sim_clean: Any, make_clean_app: Any) -> None:
    device = next(d.id for d in sim_clean.fleet.of("mqtt").values() if d.online)
    app = make_clean_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_tasks(app, pilot, device)
        assert screen.query_one("#commands-section").display
        assert not screen.query_one("#tasks-section").display, "MQTT has no task queue"
        await pilot.press("x")
        modal = await until(lambda: app.screen if isinstance(app.screen, CommandModal) else None)
        modal.query_one("#command-name").value = "reboot"
        await pilot.press("enter")
        modal.query_one("#command-params").value = "delay=0"
        await pilot.press("enter")
        await until(lambda: not isinstance(app.screen, CommandModal))
        await until(lambda: _records_of(app, ActionType.SEND_COMMAND, ActionState.DONE), timeout=20)
        statuses = set()

        def reboot_status() -> str | None:
            rows = [r for r in table_rows(screen, "#commands-table") if r[1] == "reboot"]
            if rows:
                statuses.add(rows[0][0])
            return rows[0][0] if rows else None

        await until(lambda: reboot_status() == "done", timeout=30)
        # Followed from the outbox (queued, sending, sent) to the device's own words.
        assert statuses <= {"queued", "sending", "sent", "pending", "in_progress", "done"}, statuses
        await pilot.press("c")  # a command cannot be cancelled once sent: said, nothing queued
        await pilot.pause()
        assert not await _records_of(app, ActionType.CANCEL_TASK, None)


async def test_command_only_device_opens_its_commands_and_offers_what_the_cloud_takes(
    sim_clean: Any, make_clean_app: Any
) -> None:
    device = next(d.id for d in sim_clean.fleet.of("mqtt").values() if d.online)
    app = make_clean_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.service is not None)
        app.open_device(device)
        await until(
            lambda: (
                isinstance(app.screen, DeviceScreen)
                and app.screen.view is not None
                and "live" in {s.backend for s in app.screen.view.sources}
            )
        )
        await pilot.press("k")  # MQTT has no task queue, but its commands are followed here
        screen = await until(lambda: app.screen if isinstance(app.screen, DeviceTasksScreen) else None)
        await until(lambda: screen.loaded)
        assert screen.query_one("#commands-section").display
        assert not screen.query_one("#tasks-section").display
        await pilot.press("x")
        modal = await until(lambda: app.screen if isinstance(app.screen, CommandModal) else None)
        offered = str(modal.query_one("#command-offered").content)
        assert "reboot" in offered and "update_firmware (url, version)" in offered
        assert "Commands list" in str(modal.query_one("#command-hint").content)
        await pilot.press("escape")


async def test_command_queued_while_the_cloud_is_unreachable_is_in_sight_then_sent(
    sim_clean: Any, make_clean_app: Any
) -> None:
    device = sorted(sim_clean.fleet.of("things"))[0]
    app = make_clean_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_tasks(app, pilot, device)
        before = {r[4] for r in table_rows(screen, "#commands-table")}
        assert sim_clean.admin("PUT", "/_sim/faults/things", json={"unreachable": True}).status_code == 200
        try:
            await pilot.press("x")
            modal = await until(lambda: app.screen if isinstance(app.screen, CommandModal) else None)
            modal.query_one("#command-name").value = "12200"
            await pilot.press("enter")
            modal.query_one("#command-params").value = "tsmEv=7"
            await pilot.press("enter")
            await until(lambda: not isinstance(app.screen, CommandModal))

            def outbox_row() -> list[str] | None:
                rows = [
                    r for r in table_rows(screen, "#commands-table") if r[1] == "12200" and r[4] not in before
                ]
                return rows[0] if rows else None

            row = await until(lambda: (r := outbox_row()) is not None and r[0] in ("queued", "sending") and r)
            assert "things" in row[2]
        finally:
            assert sim_clean.admin("DELETE", "/_sim/faults").status_code == 200
        await app.service.outbox.sync_now()
        # Sent: the outbox says so, then the cloud's own command log takes over.
        await until(lambda: _records_of(app, ActionType.SEND_COMMAND, ActionState.DONE), timeout=30)
        created = (await _records_of(app, ActionType.SEND_COMMAND, ActionState.DONE))[0].result["created_id"]
        await until(
            lambda: any(r[4] == created and r[0] != "queued" for r in table_rows(screen, "#commands-table")),
            timeout=30,
        )


async def test_fleet_queue_per_cloud_says_why_a_cloud_has_none(sim_clean: Any, make_clean_app: Any) -> None:
    device = _gateway(sim_clean, 3)
    app = make_clean_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.service is not None)
        firmware = (await _firmwares_for(app, sim_clean, device))[0]
        record = await app.service.writes.create_task(
            device, "SOFTWARE_UPGRADE", {"firmware_id": firmware.id}, backend="gateways"
        )
        assert (await app.service.writes.first_outcome(record)).synced
        screen = FleetTasksScreen()
        await app.push_screen(screen)
        await pilot.pause()
        await until(lambda: any(r[2] == device for r in table_rows(screen, "#fleet-tasks-table")), timeout=30)
        absent = str(screen.query_one("#fleet-tasks-absent").content)
        assert "fleet:" in absent and "things:" in absent and "live:" in absent
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, FleetTasksScreen)


def test_command_parameters_typed_as_pairs_or_json() -> None:
    assert parse_parameters("") == {}
    assert parse_parameters("version=2.1.0 retries=3 force=true") == {
        "version": "2.1.0",
        "retries": 3,
        "force": True,
    }
    assert parse_parameters('{"interval": 60}') == {"interval": 60}
    with pytest.raises(ValueError, match="key=value"):
        parse_parameters("reboot now")
    with pytest.raises(ValueError, match="JSON object"):
        parse_parameters("[1, 2]")


async def _records_of(app: FieldApp, kind: ActionType, state: ActionState | None) -> list[Any]:
    records = await app.service.outbox.list_actions()
    return [r for r in records if r.action.type is kind and (state is None or r.state is state)]


def _row_of(screen: DeviceTasksScreen, task_id: str) -> int | None:
    for index, row in enumerate(table_rows(screen, "#tasks-table")):
        if row[5] == task_id:
            return index
    return None


def _state_of(screen: DeviceTasksScreen, task_id: str) -> str | None:
    index = _row_of(screen, task_id)
    return None if index is None else table_rows(screen, "#tasks-table")[index][0]


def _newest_task(screen: DeviceTasksScreen) -> str | None:
    tasks = [t for t in screen.tasks if t.type == "SOFTWARE_UPGRADE"]
    return tasks[0].id if tasks else None
