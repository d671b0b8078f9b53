"""Task queues and commands, driven through the app over the in-memory port (the test plays the
clouds: ``auto_apply`` takes each change at once; ``set_task`` is the device answering)."""

from __future__ import annotations

from typing import Any

import pytest
from fakes.fake_service import FakeService, Ids
from ui_helpers import service_ready, wait_for

from fieldtui.core.actions import ActionState, ActionType
from fieldtui.core.models import TaskState
from fieldtui.service.api import BackendState
from fieldtui.ui.modals.command import CommandModal, parse_parameters
from fieldtui.ui.modals.create_task import CreateTaskModal
from fieldtui.ui.screens.device import DeviceScreen
from fieldtui.ui.screens.device_tasks import DeviceTasksScreen
from fieldtui.ui.screens.fleet_tasks import FleetTasksScreen
from fieldtui.ui.widgets.confirm import ConfirmModal

SIZE = (80, 24)


def table_rows(screen: Any, selector: str) -> list[list[str]]:
    table = screen.query_one(selector)
    return [[str(getattr(c, "plain", c)) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def _open_tasks(pilot: Any, device: str) -> DeviceTasksScreen:
    app = pilot.app
    await service_ready(pilot)
    view = await app.service.device(device)
    screen = DeviceTasksScreen(device, view, refresh_interval=1.0)
    await app.push_screen(screen)
    await wait_for(pilot, lambda: screen.loaded, what="the tasks")
    return screen


async def test_tasks_listed_with_their_states(make_fake_app: Any) -> None:
    fake = FakeService(auto_apply=True)
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await service_ready(pilot)
        for firmware in await app.service.catalogue("gateways", "device_firmwares", "MTCDT"):
            record = await app.service.writes.create_task(
                Ids.GATEWAY, "SOFTWARE_UPGRADE", {"firmware_id": firmware.id}, backend="gateways"
            )
            assert (await app.service.writes.first_outcome(record)).synced
        screen = await _open_tasks(pilot, Ids.GATEWAY)
        assert screen.query_one("#tasks-section").display
        await wait_for(
            pilot,
            lambda: len([r for r in table_rows(screen, "#tasks-table") if r[1] == "SOFTWARE_UPGRADE"]) == 3,
            what="the two new tasks and the old one",
        )
        rows = table_rows(screen, "#tasks-table")
        assert {(r[0], r[1]) for r in rows} == {
            ("queued", "SOFTWARE_UPGRADE"),
            ("done", "SOFTWARE_UPGRADE"),
            ("running", "CONFIG_UPGRADE"),
        }
        assert all(r[2] == "gateways" for r in rows)
        # `/` filters the table; Escape clears the filter.
        await pilot.press("slash")
        screen.query_one("#tasks-filter").value = "no-such-task"
        await wait_for(pilot, lambda: screen.query_one("#tasks-table").row_count == 0, what="no rows")
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.query_one("#tasks-table").row_count == 4, what="every row")


async def test_create_firmware_task_from_the_list_then_cancel_and_delete(make_fake_app: Any) -> None:
    fake = FakeService(auto_apply=True)
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_tasks(pilot, Ids.GATEWAY)
        before = screen.query_one("#tasks-table").row_count
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, CreateTaskModal), what="the task modal")
        modal = app.screen
        await wait_for(pilot, lambda: modal.step == "kind", what="the kinds")
        await pilot.press("enter")  # Device firmware
        options = modal.query_one("#create-task-options")
        await wait_for(pilot, lambda: modal.step == "item" and options.option_count > 0, what="firmwares")
        await pilot.press("enter")  # the first firmware the cloud lists for this model
        assert modal.step == "ready"
        await pilot.press("enter")  # Create
        await wait_for(pilot, lambda: not isinstance(app.screen, CreateTaskModal), what="the modal closed")

        (record,) = await _settled(pilot, fake, ActionType.CREATE_TASK, ActionState.DONE)
        assert record.action.params == {"type": "SOFTWARE_UPGRADE", "params": {"firmware_id": "fw-533"}}
        await wait_for(
            pilot, lambda: screen.query_one("#tasks-table").row_count == before + 1, what="the row"
        )
        created = record.result["created_id"]

        table = screen.query_one("#tasks-table")
        table.focus()
        table.move_cursor(row=_row_of(screen, created))
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the confirmation")
        assert "Cancel this task?" in str(app.screen.query_one(".modal-title").content)
        await pilot.press("y")
        await wait_for(pilot, lambda: _state_of(screen, created) == "cancelled", what="cancelled")
        await _settled(pilot, fake, ActionType.CANCEL_TASK, ActionState.DONE)

        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the confirmation")
        await pilot.press("n")  # kept: nothing queued
        await pilot.pause()
        assert not _records_of(fake, ActionType.DELETE_TASK, None)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: _row_of(screen, created) is None, what="deleted")
        await _settled(pilot, fake, ActionType.DELETE_TASK, ActionState.DONE)


async def test_mysensor_task_takes_a_typed_file_id(make_fake_app: Any) -> None:
    fake = FakeService(auto_apply=True)
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_tasks(pilot, Ids.SENSOR)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, CreateTaskModal), what="the task modal")
        modal = app.screen
        await wait_for(pilot, lambda: modal.step == "kind", what="the kinds")
        await pilot.press("down", "enter")  # Configuration update
        assert modal.step == "file"
        await pilot.press(*"12ab")
        assert modal.query_one("#create-task-create").disabled
        await pilot.press("backspace", "backspace", *"3456", "enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, CreateTaskModal), what="the modal closed")
        (done,) = await _settled(pilot, fake, ActionType.CREATE_TASK, ActionState.DONE)
        assert done.action.params == {"type": "update_configuration", "params": {"file_id": "123456"}}
        await wait_for(
            pilot,
            lambda: any(r[1] == "update_configuration" for r in table_rows(screen, "#tasks-table")),
            what="the new task",
        )


async def test_mqtt_command_sent_and_followed_to_done(make_fake_app: Any) -> None:
    fake = FakeService(auto_apply=True)
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_tasks(pilot, Ids.MQTT_TWIN)
        assert screen.query_one("#commands-section").display
        assert not screen.query_one("#tasks-section").display, "neither MQTT nor fleet has a task queue"
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandModal), what="the command modal")
        modal = app.screen
        modal.query_one("#command-name").value = "reboot"
        await pilot.press("enter")
        modal.query_one("#command-params").value = "delay=0"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, CommandModal), what="the modal closed")
        (record,) = await _settled(pilot, fake, ActionType.SEND_COMMAND, ActionState.DONE)
        created = record.result["created_id"]
        await wait_for(pilot, lambda: _command_state(screen, created) is not None, what="the sent command")
        # The device answers: in progress, then done; the row follows each answer.
        task = next(t for t in fake.cloud.tasks[("live", Ids.MQTT_TWIN)] if t.id == created)
        fake.set_task(task.model_copy(update={"state": TaskState.RUNNING, "raw_state": "in_progress"}))
        await wait_for(pilot, lambda: _command_state(screen, created) == "in_progress", what="in progress")
        fake.set_task(task.model_copy(update={"state": TaskState.DONE, "raw_state": "done"}))
        await wait_for(pilot, lambda: _command_state(screen, created) == "done", what="done")
        await pilot.press("c")  # a command cannot be cancelled once sent: said, nothing queued
        await pilot.pause()
        assert not _records_of(fake, ActionType.CANCEL_TASK, None)


async def test_command_only_device_opens_its_commands_and_offers_what_the_cloud_takes(
    make_fake_app: Any,
) -> None:
    app = make_fake_app(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await service_ready(pilot)
        app.open_device(Ids.MQTT_TWIN)
        await wait_for(
            pilot,
            lambda: (
                isinstance(app.screen, DeviceScreen)
                and app.screen.view is not None
                and "live" in {s.backend for s in app.screen.view.sources}
            ),
            what="the device",
        )
        await pilot.press("k")  # no task queue on its clouds, but its commands are followed here
        await wait_for(
            pilot, lambda: isinstance(app.screen, DeviceTasksScreen) and app.screen.loaded, what="commands"
        )
        screen = app.screen
        assert screen.query_one("#commands-section").display
        assert not screen.query_one("#tasks-section").display
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandModal), what="the command modal")
        modal = app.screen
        await wait_for(pilot, lambda: bool(str(modal.query_one("#command-offered").content)), what="offers")
        offered = str(modal.query_one("#command-offered").content)
        assert "reboot" in offered and "update_firmware (url, version)" in offered
        assert "Commands list" in str(modal.query_one("#command-hint").content)
        await pilot.press("escape")


async def test_command_queued_while_the_cloud_is_unreachable_is_in_sight_then_sent(
    make_fake_app: Any,
) -> None:
    fake = FakeService()
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_tasks(pilot, Ids.THING)
        before = {r[4] for r in table_rows(screen, "#commands-table")}
        fake.connectivity.set_state("things", BackendState.OFFLINE)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandModal), what="the command modal")
        modal = app.screen
        modal.query_one("#command-name").value = "12200"
        await pilot.press("enter")
        modal.query_one("#command-params").value = "tsmEv=7"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, CommandModal), what="the modal closed")

        def outbox_row() -> list[str] | None:
            rows = [
                r for r in table_rows(screen, "#commands-table") if r[1] == "12200" and r[4] not in before
            ]
            return rows[0] if rows else None

        await wait_for(pilot, lambda: (r := outbox_row()) is not None and r[0] == "queued", what="queued")
        row = outbox_row()
        assert row is not None and "things" in row[2]
        fake.connectivity.set_state("things", BackendState.ONLINE)
        await app.service.outbox.sync_now()
        # Sent: the outbox says so, then the cloud's own command log takes over.
        (record,) = await _settled(pilot, fake, ActionType.SEND_COMMAND, ActionState.DONE)
        created = record.result["created_id"]
        await wait_for(
            pilot,
            lambda: any(r[4] == created and r[0] != "queued" for r in table_rows(screen, "#commands-table")),
            what="the cloud's command",
        )


async def test_fleet_queue_per_cloud_says_why_a_cloud_has_none(make_fake_app: Any) -> None:
    app = make_fake_app(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await service_ready(pilot)
        screen = FleetTasksScreen()
        await app.push_screen(screen)
        await wait_for(
            pilot,
            lambda: any(r[2] == Ids.GATEWAY for r in table_rows(screen, "#fleet-tasks-table")),
            what="the running gateway task",
        )
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


async def _settled(pilot: Any, fake: FakeService, kind: ActionType, state: ActionState) -> list[Any]:
    """The outbox's records of ``kind`` in ``state``, once there are some (a worker queues them)."""
    await wait_for(pilot, lambda: bool(_records_of(fake, kind, state)), what=f"{kind.value} {state.value}")
    return _records_of(fake, kind, state)


def _records_of(fake: FakeService, kind: ActionType, state: ActionState | None) -> list[Any]:
    return [r for r in fake.outbox.records() if r.action.type is kind and (state is None or r.state is state)]


def _command_state(screen: DeviceTasksScreen, command_id: str) -> str | None:
    rows = [r for r in table_rows(screen, "#commands-table") if r[4] == command_id]
    return rows[0][0] if rows else None


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
