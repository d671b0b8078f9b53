"""Tasks and commands: a device's queue across its clouds, the fleet-wide queues, and the modals
that create a task (chosen from the cloud's own lists) or send a command.

Every change goes through the outbox (``service.writes``); the tables refresh every few
seconds and after every action. Catalogue lists (firmwares, configurations, apps) are read in
workers; nothing here blocks a key press on the network.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Input, OptionList, Select, SelectionList, Static
from textual.widgets.option_list import Option

from fieldtui.core.models import Task, TaskState
from fieldtui.ui.text import age, clean
from fieldtui.ui.widgets.confirm import ConfirmModal
from fieldtui.ui.widgets.footer import FieldFooter
from fieldtui.ui.widgets.status_bar import StatusBar
from fieldtui.ui.widgets.table_filter import TableFilter, matches

#: Seconds between refreshes of a task table.
REFRESH_INTERVAL = 5.0
#: How long an action's first attempt is waited for before saying "queued".
OUTCOME_WAIT = 8.0

STATE_STYLE: dict[str, str] = {
    TaskState.QUEUED.value: "yellow",
    TaskState.RUNNING.value: "bold cyan",
    TaskState.DONE.value: "green",
    TaskState.FAILED.value: "bold red",
    TaskState.CANCELLED.value: "grey50",
}


# -- the service, as these screens use it -------------------------------------------------------
def connector_of(service: Any, backend: str) -> Any | None:
    """The connector of ``backend`` (None when it is not configured or cannot be built)."""
    connectors = getattr(service, "connectors", None)
    if connectors is not None:
        try:
            return connectors[backend]
        except Exception:  # noqa: BLE001 - a connector that cannot be built offers nothing
            return None
    try:
        return service.connector(backend)
    except Exception:  # noqa: BLE001
        return None


def backend_names(service: Any) -> list[str]:
    connectors = getattr(service, "connectors", None)
    if connectors is not None:
        return list(connectors)
    return list(getattr(service, "backends", []))


def backend_kind(service: Any, backend: str) -> str:
    connector = connector_of(service, backend)
    kind = getattr(connector, "kind", None)
    return str(getattr(kind, "value", kind or "?"))


def supports(service: Any, backend: str, capability: str) -> tuple[bool, str]:
    """Whether ``backend`` offers ``capability``, and if not, why (in words)."""
    connector = connector_of(service, backend)
    if connector is None:
        return False, f"{backend} is not configured or cannot be set up"
    reason = connector.capabilities.why_not(capability, backend_kind(service, backend))
    return reason is None, reason or ""


def view_backends(view: Any) -> list[str]:
    if view is None:
        return []
    return list(dict.fromkeys(str(s.backend) for s in getattr(view, "sources", ())))


def outcome_text(outcome: Any) -> str:
    """``synced``, ``queued (why)``, ``failed: the server's words`` for a WriteOutcome or record."""
    status = getattr(outcome, "status", None)
    if status is None:
        state = getattr(outcome, "state", None)
        status = str(getattr(state, "value", state) or "queued")
        reason = getattr(outcome, "last_error", None)
    else:
        reason = getattr(outcome, "reason", None)
    if status in ("synced", "done"):
        return "synced" + (f" ({clean(reason)})" if reason and reason not in ("synced", "done") else "")
    if status in ("failed", "conflict"):
        return f"{status}: {clean(reason) or 'no reason given'}"
    return f"{status}" + (f" ({clean(reason)})" if reason else "")


async def submit_write(
    app: App[Any],
    what: str,
    call: Callable[[Any], Awaitable[Any]],
    after: Callable[[], None] | None = None,
) -> Any | None:
    """Queue one change through the outbox, tell the technician how its first attempt went.

    ``call`` gets ``service.writes`` and returns the queued record. Failures to queue (read-only,
    an unsupported action) become a notification; the record is returned when queued.
    """
    writes = getattr(getattr(app, "service", None), "writes", None)
    if writes is None:
        app.notify("Not connected to the service yet; try again in a moment.", severity="warning")
        return None
    try:
        record = await call(writes)
    except Exception as exc:  # noqa: BLE001 - refused before queuing: said, never a traceback
        app.notify(f"{what}: not queued: {clean(exc)}", severity="error", timeout=10)
        return None
    refresh = getattr(app, "refresh_outbox_counts", None)
    if refresh is not None:
        await refresh()
    if after is not None:
        after()
    outcome: Any = record
    first = getattr(writes, "first_outcome", None)
    if first is not None:
        try:
            outcome = await first(record, timeout=OUTCOME_WAIT)
        except Exception as exc:  # noqa: BLE001 - the action is queued; only the wait failed
            app.notify(f"{what}: queued; its first attempt is unknown ({clean(exc)})", severity="warning")
            outcome = None
    if outcome is not None:
        text = outcome_text(outcome)
        failed = text.startswith(("failed", "conflict"))
        app.notify(
            f"{what}: {text}", severity="error" if failed else "information", timeout=10 if failed else 5
        )
    if refresh is not None:
        await refresh()
    if after is not None:
        after()
    return record


def state_cell(state: str, raw: str | None = None) -> Text:
    label = clean(raw or state, 14)
    return Text(label, style=STATE_STYLE.get(state, ""), no_wrap=True)


def when_cell(moment: datetime | None, now: datetime) -> str:
    return age(moment, now) if moment is not None else "—"


def task_cells(task: Task, now: datetime, *, with_device: bool = False) -> list[str | Text]:
    cells: list[str | Text] = [state_cell(task.state.value), clean(task.type, 24)]
    if with_device:
        cells.append(clean(task.device, 20))
    cells += [
        clean(task.backend, 12),
        when_cell(task.updated or task.created, now),
        "" if task.attempts is None else str(task.attempts),
        clean(task.id, 40),
        clean(task.detail or task.raw_state, 120),
    ]
    return cells


def task_search_text(task: Task) -> list[str]:
    return [
        task.state.value,
        task.raw_state,
        task.type,
        task.device,
        task.backend,
        task.id,
        task.detail or "",
    ]


def command_cells(task: Task, now: datetime) -> list[str | Text]:
    params = task.raw.get("parameters") if isinstance(task.raw, dict) else None
    shown = json.dumps(params, separators=(",", ":"), default=str) if params else ""
    detail = task.detail or shown
    return [
        state_cell(task.state.value, task.raw_state),
        clean(task.type, 24),
        clean(task.backend, 12),
        when_cell(task.updated or task.created, now),
        clean(task.id, 40),
        clean(detail, 120),
    ]


def fill_table(table: DataTable[Any], rows: Sequence[tuple[str, list[str | Text]]]) -> None:
    """Replace the rows, keeping the cursor on the same row key when it is still there."""
    keep: str | None = None
    if table.row_count and table.cursor_row >= 0:
        try:
            keep = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - no cursor row: nothing to keep
            keep = None
    table.clear()
    target = 0
    for index, (key, cells) in enumerate(rows):
        table.add_row(*cells, key=key)
        if key == keep:
            target = index
    if rows:
        table.move_cursor(row=target, animate=False)


def selected_key(table: DataTable[Any]) -> str | None:
    if not table.row_count:
        return None
    try:
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    except Exception:  # noqa: BLE001
        return None


def _task_key(task: Task) -> str:
    return f"{task.backend}\x1f{task.id}"


# -- one device's tasks and commands -----------------------------------------------------------
class DeviceTasksScreen(Screen[None]):
    """The device's tasks (cloud task queues) and commands (MQTT/things), refreshed live."""

    BINDINGS = [
        Binding("n", "new_task", "New task", id="tasks_new"),
        Binding("x", "send_command", "Command", id="tasks_command"),
        Binding("c", "cancel_task", "Cancel", id="tasks_cancel"),
        Binding("d", "delete_task", "Delete", id="tasks_delete"),
        Binding("slash", "filter", "Filter", id="tasks_filter"),
        Binding("r", "reload", "Refresh", id="tasks_refresh"),
        Binding("enter", "show_detail", "Detail", show=False, id="tasks_detail"),
        Binding("escape", "back", "Back", id="tasks_back"),
    ]

    def __init__(
        self, device_id: str, view: Any = None, *, refresh_interval: float = REFRESH_INTERVAL
    ) -> None:
        super().__init__()
        self.device_id = device_id
        self.view = view
        self.refresh_interval = refresh_interval
        self.tasks: list[Task] = []
        #: backend -> its commands as pushed live (MQTT), shown instead of the polled ones.
        self.live: dict[str, list[Task]] = {}
        self.loaded = False
        self._by_key: dict[str, Task] = {}
        self._note = "Loading tasks from the clouds…"

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        yield Static(Text(f" {clean(self.device_id)} · tasks and commands", style="bold"), id="tasks-title")
        yield Static("", id="tasks-summary", classes="summary")
        yield TableFilter(id="tasks-filter")
        with Vertical(id="tasks-section", classes="table-section"):
            yield Static("Tasks", classes="section-title")
            yield DataTable(id="tasks-table", cursor_type="row", zebra_stripes=True)
        with Vertical(id="commands-section", classes="table-section"):
            yield Static("Commands", classes="section-title")
            yield DataTable(id="commands-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="tasks-detail")
        yield FieldFooter()

    def on_mount(self) -> None:
        self.app.update_bar()  # type: ignore[attr-defined]
        tasks = self.query_one("#tasks-table", DataTable)
        for label, key, width in (
            ("State", "state", 9),
            ("Type", "type", 20),
            ("Cloud", "cloud", 9),
            ("Updated", "updated", 7),
            ("Try", "attempts", 3),
            ("Id", "id", 10),
            ("Detail", "detail", None),
        ):
            tasks.add_column(label, key=key, width=width)
        commands = self.query_one("#commands-table", DataTable)
        for label, key, width in (
            ("Status", "status", 11),
            ("Command", "name", 16),
            ("Cloud", "cloud", 9),
            ("Sent", "sent", 7),
            ("Id", "id", 10),
            ("Message", "message", None),
        ):
            commands.add_column(label, key=key, width=width)
        self._show_sections()
        self._draw_summary()
        tasks.focus()
        self.set_interval(self.refresh_interval, self.reload)
        self.reload()
        self._follow_live_commands()

    def _follow_live_commands(self) -> None:
        """Clouds that push command status (MQTT) are followed as it happens."""
        service = self.app.service  # type: ignore[attr-defined]
        if service is None or self.view is None:
            return
        for name in self._clouds("commands"):
            if name in self.live:
                continue
            if callable(getattr(connector_of(service, name), "command_updates", None)):
                self.live[name] = []
                self.run_worker(self._follow(name), group=f"tasks-live-{name}", exclusive=True)

    async def _follow(self, backend: str) -> None:
        service = self.app.service  # type: ignore[attr-defined]
        monitor = service.task_monitor(backend, self.device_id)
        try:
            async for tasks in monitor:
                self.live[backend] = list(tasks)
                if self.loaded:
                    self._draw_tables()
        except Exception as exc:  # noqa: BLE001 - fall back to the periodic refresh
            self.live.pop(backend, None)
            self._note = f"{clean(backend)}: live command status unavailable ({clean(exc)})"
            self._draw_summary()
        finally:
            aclose = getattr(monitor, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:  # noqa: BLE001
                    pass

    # -- which clouds offer what -----------------------------------------------------------
    def _clouds(self, capability: str) -> list[str]:
        service = self.app.service  # type: ignore[attr-defined]
        if service is None:
            return []
        names = view_backends(self.view) or backend_names(service)
        return [name for name in names if supports(service, name, capability)[0]]

    def _is_command(self, task: Task) -> bool:
        service = self.app.service  # type: ignore[attr-defined]
        return not supports(service, task.backend, "tasks")[0]

    def _show_sections(self) -> None:
        if self.view is None:
            return
        has_tasks = bool(self._clouds("tasks"))
        has_commands = bool(self._clouds("commands"))
        self.query_one("#tasks-section").display = has_tasks or not has_commands
        self.query_one("#commands-section").display = has_commands
        if not has_tasks and has_commands:
            self.query_one("#commands-table", DataTable).focus()

    # -- loading ---------------------------------------------------------------------------
    @work(exclusive=True, group="tasks-load")
    async def reload(self) -> None:
        service = self.app.service  # type: ignore[attr-defined]
        if service is None:
            self._note = "Still connecting to the clouds…"
            self._draw_summary()
            return
        if self.view is None:
            try:
                self.view = await service.device(self.device_id)
            except Exception as exc:  # noqa: BLE001 - shown inline
                self._note = f"{clean(exc)}"
                self._draw_summary()
                return
            self._show_sections()
            self._follow_live_commands()
        try:
            task_view = await service.task_view(self.device_id)
        except Exception as exc:  # noqa: BLE001 - shown inline, the next refresh tries again
            self._note = f"Could not read tasks: {clean(exc)}"
            self._draw_summary()
            return
        now = datetime.now(UTC)
        notes = []
        for source in task_view.sources:
            if source.stale:
                notes.append(f"{clean(source.backend)}: cached {age(source.fetched_at, now)}")
        for backend, error in task_view.errors.items():
            notes.append(f"{clean(backend)}: {clean(error)}")
        self._note = "; ".join(notes)
        self.tasks = list(task_view.tasks)
        self.loaded = True
        self._draw_tables()

    def _draw_tables(self) -> None:
        query = self.query_one(TableFilter).value
        now = datetime.now(UTC)
        task_rows: list[tuple[str, list[str | Text]]] = []
        command_rows: list[tuple[str, list[str | Text]]] = []
        self._by_key = {}
        shown = [task for task in self.tasks if task.backend not in self.live or not self.live[task.backend]]
        shown += [task for tasks in self.live.values() for task in tasks]
        shown.sort(key=lambda t: t.updated or t.created or datetime.min.replace(tzinfo=UTC), reverse=True)
        for task in shown:
            if not matches(query, task_search_text(task)):
                continue
            key = _task_key(task)
            self._by_key[key] = task
            if self._is_command(task):
                command_rows.append((key, command_cells(task, now)))
            else:
                task_rows.append((key, task_cells(task, now)))
        fill_table(self.query_one("#tasks-table", DataTable), task_rows)
        fill_table(self.query_one("#commands-table", DataTable), command_rows)
        self._draw_summary(len(task_rows), len(command_rows))
        self._draw_detail()

    def _draw_summary(self, shown_tasks: int | None = None, shown_commands: int | None = None) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        if shown_tasks is not None:
            text.append(f"{shown_tasks} tasks, {shown_commands} commands")
            query = self.query_one(TableFilter).value.strip()
            if query:
                text.append(f" matching “{clean(query, 30)}”", style="bold")
            text.append(f" · every {self.refresh_interval:g} s")
        if self._note:
            text.append(("  " if shown_tasks is not None else "") + self._note, style="yellow")
        self.query_one("#tasks-summary", Static).update(text)

    # -- filtering -------------------------------------------------------------------------
    def action_filter(self) -> None:
        self.query_one(TableFilter).open()

    @on(Input.Changed, "#tasks-filter")
    def _filter_changed(self) -> None:
        if self.loaded:
            self._draw_tables()

    @on(TableFilter.Closed)
    def _filter_closed(self) -> None:
        self._focused_table().focus()

    # -- the selection ---------------------------------------------------------------------
    def _focused_table(self) -> DataTable[Any]:
        focused = self.focused
        if isinstance(focused, DataTable):
            return focused
        tasks = self.query_one("#tasks-table", DataTable)
        if self.query_one("#tasks-section").display:
            return tasks
        return self.query_one("#commands-table", DataTable)

    def selected_task(self) -> Task | None:
        key = selected_key(self._focused_table())
        return self._by_key.get(key) if key is not None else None

    # -- actions ---------------------------------------------------------------------------
    def action_reload(self) -> None:
        self.reload()

    def action_back(self) -> None:
        self.app.pop_screen()

    def _detail_lines(self, task: Task, limit: int) -> list[str]:
        lines = [f"{clean(task.id, 40)} {clean(task.type)} on {clean(task.backend)}: {clean(task.raw_state)}"]
        if task.detail:
            lines.append(clean(task.detail, limit))
        params = task.raw.get("parameters") if isinstance(task.raw, dict) else None
        if params:
            lines.append(clean(json.dumps(params, default=str), limit))
        return lines

    def _draw_detail(self) -> None:
        task = self.selected_task()
        text = Text("\n".join(self._detail_lines(task, 160)) if task is not None else "")
        self.query_one("#tasks-detail", Static).update(text)

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self._draw_detail()

    def on_descendant_focus(self, _event: events.DescendantFocus) -> None:
        self._draw_detail()

    def action_show_detail(self) -> None:
        task = self.selected_task()
        if task is not None:
            self.app.notify("\n".join(self._detail_lines(task, 500)), title="Task", timeout=10)

    def _refuse_read_only(self) -> bool:
        if getattr(self.app, "read_only", False):
            self.app.notify("Read-only: changes are refused.", severity="warning")
            return True
        return False

    def action_new_task(self) -> None:
        if self._refuse_read_only():
            return
        service = self.app.service  # type: ignore[attr-defined]
        if service is None:
            self.app.notify("Still connecting to the clouds…", severity="warning")
            return
        clouds = self._clouds("tasks")
        if not clouds:
            reasons = {supports(service, name, "tasks")[1] for name in view_backends(self.view)}
            self.app.notify(
                "No task queue here: "
                + ("; ".join(sorted(r for r in reasons if r)) or "no cloud offers tasks"),
                severity="warning",
            )
            return
        choices = [(name, backend_kind(service, name)) for name in clouds]
        model = getattr(getattr(self.view, "device", None), "model", None)

        def chosen(request: TaskRequest | None) -> None:
            if request is not None:
                self._submit_create(request)

        self.app.push_screen(CreateTaskModal(self.device_id, choices, model=model), chosen)

    def _submit_create(self, request: TaskRequest) -> None:
        device = self.device_id

        async def call(writes: Any) -> Any:
            return await writes.create_task(
                device, request.task_type, request.params, backend=request.backend
            )

        self.app.run_worker(
            submit_write(self.app, f"{request.label} on {clean(device)}", call, self.reload),
            group="writes",
        )

    def action_send_command(self) -> None:
        if self._refuse_read_only():
            return
        if not self._clouds("commands"):
            self.app.notify("None of this device's clouds take commands.", severity="warning")
            return
        self.app.push_screen(CommandModal(self.device_id, self.view), lambda _record: self.reload())

    def _task_for_change(self, verb: str) -> Task | None:
        if self._refuse_read_only():
            return None
        task = self.selected_task()
        if task is None:
            self.app.notify(f"Select a task to {verb} first.", severity="warning")
            return None
        if self._is_command(task):
            self.app.notify(
                f"{clean(task.backend)} commands cannot be {verb}ed once sent: the device runs them.",
                severity="warning",
            )
            return None
        return task

    def action_cancel_task(self) -> None:
        task = self._task_for_change("cancel")
        if task is None:
            return
        if task.state.finished:
            self.app.notify(f"Task {clean(task.id, 20)} is already {task.state.value}.", severity="warning")
            return
        self._confirm_change(
            task, "cancel", lambda w: w.cancel_task(task.device, task.id, backend=task.backend)
        )

    def action_delete_task(self) -> None:
        task = self._task_for_change("delete")
        if task is None:
            return
        self._confirm_change(
            task, "delete", lambda w: w.delete_task(task.device, task.id, backend=task.backend)
        )

    def _confirm_change(self, task: Task, verb: str, call: Callable[[Any], Awaitable[Any]]) -> None:
        label = f"{verb} {clean(task.type)} task {clean(task.id, 24)}"

        def answered(yes: bool | None) -> None:
            if yes:
                self.app.run_worker(
                    submit_write(self.app, label.capitalize(), call, self.reload), group="writes"
                )

        self.app.push_screen(
            ConfirmModal(
                f"{verb.capitalize()} this task?",
                f"{clean(task.type)} on {clean(task.device)} ({clean(task.backend)}), now "
                f"{clean(task.raw_state)}.\nQueued in the outbox; sent when {clean(task.backend)} is reachable.",
                yes=verb.capitalize(),
                no="Keep",
            ),
            answered,
        )


# -- fleet-wide queues ---------------------------------------------------------------------------
class FleetTasksScreen(Screen[None]):
    """Each cloud's unfinished tasks (and live MQTT commands) across the fleet."""

    BINDINGS = [
        Binding("slash", "filter", "Filter", id="fleet_tasks_filter"),
        Binding("enter", "open_device", "Open device", id="fleet_tasks_open"),
        Binding("escape", "back", "Back", id="fleet_tasks_back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        #: backend -> its latest list (each cloud's monitor replaces its own list).
        self.lists: dict[str, list[Task]] = {}
        #: backend -> why there is no list (unsupported, or the last error).
        self.absent: dict[str, str] = {}
        self._by_key: dict[str, Task] = {}

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        yield Static(Text(" Fleet task queues (unfinished)", style="bold"), id="fleet-tasks-title")
        yield Static("Asking each cloud…", id="fleet-tasks-summary", classes="summary")
        yield TableFilter(id="fleet-tasks-filter")
        yield DataTable(id="fleet-tasks-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="fleet-tasks-absent", classes="inline-message")
        yield FieldFooter()

    def on_mount(self) -> None:
        self.app.update_bar()  # type: ignore[attr-defined]
        table = self.query_one(DataTable)
        for label, key, width in (
            ("State", "state", 9),
            ("Type", "type", 18),
            ("Device", "device", 14),
            ("Cloud", "cloud", 9),
            ("Updated", "updated", 7),
            ("Try", "attempts", 3),
            ("Id", "id", 10),
            ("Detail", "detail", None),
        ):
            table.add_column(label, key=key, width=width)
        table.focus()
        service = self.app.service  # type: ignore[attr-defined]
        if service is None:
            self.query_one("#fleet-tasks-summary", Static).update("Still connecting to the clouds…")
            return
        for name in backend_names(service):
            has_tasks, why_tasks = supports(service, name, "tasks")
            if has_tasks:
                self.lists[name] = []
                self.run_worker(self._follow(name), group=f"fleet-tasks-{name}", exclusive=True)
            elif supports(service, name, "commands")[0]:
                self.absent[name] = "commands are followed per device (the API has no fleet-wide list)"
            else:
                self.absent[name] = why_tasks
        self._draw()

    async def _follow(self, backend: str) -> None:
        service = self.app.service  # type: ignore[attr-defined]
        monitor = service.task_monitor(backend)
        try:
            async for tasks in monitor:
                self.lists[backend] = list(tasks)
                self.absent.pop(backend, None)
                self._draw()
        except Exception as exc:  # noqa: BLE001 - said why, per cloud
            self.lists.pop(backend, None)
            self.absent[backend] = clean(getattr(exc, "message", None) or exc)
            self._draw()
        finally:
            aclose = getattr(monitor, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:  # noqa: BLE001
                    pass

    def _draw(self) -> None:
        query = self.query_one(TableFilter).value
        now = datetime.now(UTC)
        rows: list[tuple[str, list[str | Text]]] = []
        self._by_key = {}
        every = [task for tasks in self.lists.values() for task in tasks]
        every.sort(key=lambda t: t.updated or t.created or datetime.min.replace(tzinfo=UTC), reverse=True)
        for task in every:
            if not matches(query, task_search_text(task)):
                continue
            key = _task_key(task)
            self._by_key[key] = task
            rows.append((key, task_cells(task, now, with_device=True)))
        fill_table(self.query_one(DataTable), rows)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{len(rows)} unfinished")
        if query.strip():
            text.append(f" matching “{clean(query, 30)}”", style="bold")
        if self.lists:
            text.append(" · from " + ", ".join(clean(name) for name in self.lists), style="dim")
        self.query_one("#fleet-tasks-summary", Static).update(text)
        self.query_one("#fleet-tasks-absent", Static).update(
            "\n".join(f"{clean(name)}: {clean(why)}" for name, why in self.absent.items())
        )

    def action_filter(self) -> None:
        self.query_one(TableFilter).open()

    @on(Input.Changed, "#fleet-tasks-filter")
    def _filter_changed(self) -> None:
        self._draw()

    @on(TableFilter.Closed)
    def _filter_closed(self) -> None:
        self.query_one(DataTable).focus()

    def action_open_device(self) -> None:
        key = selected_key(self.query_one(DataTable))
        task = self._by_key.get(key) if key is not None else None
        if task is not None:
            self.app.open_device(task.device)  # type: ignore[attr-defined]

    def action_back(self) -> None:
        self.app.pop_screen()


# -- creating a task -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TaskRequest:
    """What CreateTaskModal returns: the cloud's own task type and attributes."""

    backend: str
    task_type: str
    params: dict[str, Any]
    #: In words, for the notification: "Device firmware 2.4.1".
    label: str


@dataclass(frozen=True, slots=True)
class TaskKind:
    """One entry of "what to do": its task type, and how its attributes are chosen."""

    label: str
    task_type: str
    #: The catalogue list to choose from (a DeviceHQ connector method), or "" for a typed file id.
    source: str
    #: The attribute the chosen item's id goes into.
    attribute: str
    #: Further steps: "version" (an app version), "configs" (app configs, at least one),
    #: "configs?" (app configs, optional).
    then: tuple[str, ...] = ()


DEVICEHQ_KINDS: tuple[TaskKind, ...] = (
    TaskKind("Device firmware", "SOFTWARE_UPGRADE", "device_firmwares", "firmware_id"),
    TaskKind("Radio firmware", "RADIO_FIRMWARE_UPGRADE", "radio_firmwares", "firmware_id"),
    TaskKind("Device configuration", "CONFIG_UPGRADE", "device_configurations", "config_file_id"),
    TaskKind("Install app", "INSTALL_APP", "apps", "app_id", ("version", "configs?")),
    TaskKind("App configurations", "INSTALL_CONFIGS", "apps", "app_id", ("configs",)),
    TaskKind("Uninstall app", "UNINSTALL_APP", "device_apps", "app_id"),
)

MYSENSOR_KINDS: tuple[TaskKind, ...] = (
    TaskKind("Firmware update", "update_firmware", "", "file_id"),
    TaskKind("Configuration update", "update_configuration", "", "file_id"),
)

KINDS_BY_CLOUD: dict[str, tuple[TaskKind, ...]] = {"devicehq": DEVICEHQ_KINDS, "mysensor": MYSENSOR_KINDS}

#: Catalogue calls wait at most this long (the modal says so and lets the technician go back).
CATALOG_TIMEOUT = 20.0


async def read_catalog(service: Any, backend: str, source: str, *args: Any) -> list[Any]:
    """One of the cloud's own lists (firmwares, configurations, apps, one app's details).

    These are DeviceHQ connector reads outside the Connector interface; this is the one place
    the UI reaches them, bounded by a timeout.
    """
    connector = connector_of(service, backend)
    method = getattr(connector, source, None)
    if method is None:
        raise LookupError(f"{backend} offers no {source.replace('_', ' ')} list")
    async with asyncio.timeout(CATALOG_TIMEOUT):
        result = await method(*args)
    return list(result) if isinstance(result, list | tuple) else [result]


def catalog_label(item: Any) -> str:
    """One line for a firmware, configuration or app: what a technician recognises it by."""
    parts: list[str] = []
    for name in ("name", "version", "model", "sub_type", "radio_module", "platform", "status"):
        value = getattr(item, name, None)
        if value not in (None, "") and clean(value) not in parts:
            parts.append(clean(value, 40))
    description = getattr(item, "description", None)
    if description and len(parts) < 3:
        parts.append(clean(description, 40))
    item_id = clean(getattr(item, "id", ""), 40)
    return f"{' · '.join(parts) or item_id}  [{item_id}]" if parts else item_id


def model_family(model: object) -> str:
    """DeviceHQ's model family: the product name up to its first dash (``MTR-G3`` -> ``MTR``)."""
    return str(model or "").strip().split("-", 1)[0].lower()


def for_model(items: list[Any], model: str | None) -> tuple[list[Any], int]:
    """The items made for ``model``'s family (or for any model), and how many were left out."""
    if not model:
        return items, 0
    wanted = model_family(model)
    kept = [i for i in items if not getattr(i, "model", None) or model_family(i.model) == wanted]
    return kept, len(items) - len(kept)


@dataclass(slots=True)
class _Draft:
    backend: str | None = None
    kind: TaskKind | None = None
    item: Any = None
    version: str | None = None
    config_ids: list[str] = field(default_factory=list)
    file_id: str = ""


class CreateTaskModal(ModalScreen[TaskRequest | None]):
    """Choose the cloud, what to do and from the cloud's own list; returns a TaskRequest.

    One list at a time (it fits 80x24): Enter picks and moves on, ``b`` goes back a step.
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="create_task_cancel"),
        Binding("b", "back_step", "Back a step", id="create_task_back"),
    ]

    def __init__(
        self, device_id: str, backends: Sequence[tuple[str, str]], *, model: str | None = None
    ) -> None:
        super().__init__()
        self.device_id = device_id
        self.backends = list(backends)
        #: The device's model: firmwares and configurations made for another model are left out.
        self.model = model
        self.draft = _Draft()
        #: The current step: cloud, kind, item, version, configs, file, ready.
        self.step = ""
        self._items: list[Any] = []
        self._catalog_cache: dict[tuple[str, str, str], list[Any]] = {}

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal", id="create-task"):
            yield Static(Text(f"New task for {clean(self.device_id)}"), classes="modal-title")
            yield Static("", id="create-task-path")
            yield OptionList(id="create-task-options")
            yield SelectionList[str](id="create-task-configs")
            yield Input(placeholder="file id (digits), then Enter", id="create-task-file")
            yield Static("", id="create-task-hint", classes="inline-message")
            with Horizontal(classes="modal-buttons"):
                yield Button("Cancel [esc]", id="create-task-cancel")
                yield Button("Create", id="create-task-create", variant="primary", disabled=True)

    def on_mount(self) -> None:
        if len(self.backends) == 1:
            self.draft.backend = self.backends[0][0]
            self._go("kind")
        else:
            self._go("cloud")

    # -- steps -----------------------------------------------------------------------------
    def _cloud_kind(self) -> str:
        for name, kind in self.backends:
            if name == self.draft.backend:
                return kind
        return ""

    def _go(self, step: str) -> None:
        self.step = step
        options = self.query_one("#create-task-options", OptionList)
        configs = self.query_one("#create-task-configs", SelectionList)
        file_input = self.query_one("#create-task-file", Input)
        options.display = step in ("cloud", "kind", "item", "version")
        configs.display = step == "configs"
        file_input.display = step == "file"
        self.query_one("#create-task-create", Button).disabled = self._request() is None
        self._hint("")
        if step == "cloud":
            self._offer([Option(f"{clean(n)} ({clean(k)})", id=n) for n, k in self.backends])
        elif step == "kind":
            kinds = KINDS_BY_CLOUD.get(self._cloud_kind(), ())
            if not kinds:
                self._offer([])
                self._hint(f"Tasks on {clean(self._cloud_kind())} clouds cannot be created from here.")
            else:
                self._offer([Option(k.label, id=str(i)) for i, k in enumerate(kinds)])
        elif step == "item":
            self._offer([])
            self._load_items()
        elif step == "version":
            self._offer([])
            self._load_app_details("version")
        elif step == "configs":
            configs.clear_options()
            self._load_app_details("configs")
        elif step == "file":
            file_input.value = self.draft.file_id
            file_input.focus()
        elif step == "ready":
            self.query_one("#create-task-create", Button).focus()
            self._hint("Enter creates it (queued in the outbox); b goes back.")
        self._draw_path()

    def _offer(self, options: list[Option]) -> None:
        option_list = self.query_one("#create-task-options", OptionList)
        option_list.clear_options()
        if options:
            option_list.add_options(options)
            option_list.highlighted = 0
        option_list.focus()

    def _hint(self, text: str, *, error: bool = False) -> None:
        hint = self.query_one("#create-task-hint", Static)
        hint.set_class(error, "error-message")
        hint.update(Text(text))

    def _draw_path(self) -> None:
        d = self.draft
        parts = []
        if d.backend:
            parts.append(f"{clean(d.backend)}")
        if d.kind:
            parts.append(d.kind.label)
        if d.item is not None:
            parts.append(catalog_label(d.item))
        if d.version:
            parts.append(f"version {clean(d.version)}")
        if d.config_ids:
            parts.append(f"configs {', '.join(clean(c) for c in d.config_ids)}")
        prompt = {
            "cloud": "Which cloud?",
            "kind": "What to do?",
            "item": "Choose from the cloud's list:",
            "version": "Which version?",
            "configs": "App configurations (space marks, Tab then Enter on Create):",
            "file": "Type the file id:",
            "ready": "Ready.",
        }.get(self.step, "")
        text = Text(" › ".join(parts) + ("\n" if parts else ""), style="bold")
        text.append(prompt)
        self.query_one("#create-task-path", Static).update(text)

    # -- loading the cloud's lists -----------------------------------------------------------
    async def _catalog(self, source: str, *args: Any) -> list[Any]:
        key = (self.draft.backend or "", source, ":".join(str(a) for a in args))
        if key not in self._catalog_cache:
            service = self.app.service  # type: ignore[attr-defined]
            self._catalog_cache[key] = await read_catalog(service, self.draft.backend or "", source, *args)
        return self._catalog_cache[key]

    @work(exclusive=True, group="task-catalog")
    async def _load_items(self) -> None:
        kind = self.draft.kind
        if kind is None:
            return
        self._hint(f"Loading {kind.label.lower()} choices from {clean(self.draft.backend)}…")
        args: tuple[Any, ...] = (self.device_id,) if kind.source == "device_apps" else ()
        try:
            items = await self._catalog(kind.source, *args)
        except Exception as exc:  # noqa: BLE001 - said inline; b goes back
            self._hint(f"Could not load the list: {clean(exc)} (b goes back)", error=True)
            return
        if self.step != "item":
            return
        items, others = for_model([i for i in items if getattr(i, "id", None)], self.model)
        self._items = items
        if not items:
            self._hint(f"{clean(self.draft.backend)} lists nothing for {kind.label.lower()}. (b goes back)")
            return
        self._hint(
            f"{others} more for other models than {clean(self.model)} are not shown." if others else ""
        )
        self._offer([Option(catalog_label(item), id=str(i)) for i, item in enumerate(items)])

    @work(exclusive=True, group="task-catalog")
    async def _load_app_details(self, step: str) -> None:
        app_id = str(getattr(self.draft.item, "id", "") or "")
        self._hint("Loading the app's versions and configurations…")
        try:
            details = (await self._catalog("app", app_id))[0]
        except Exception as exc:  # noqa: BLE001
            self._hint(f"Could not load the app: {clean(exc)} (b goes back)", error=True)
            return
        if self.step != step:
            return
        self._hint("")
        if step == "version":
            versions = [v for v in getattr(details, "versions", []) if getattr(v, "version", None)]
            self._items = [None, *versions]
            self._offer(
                [Option("latest (the cloud's default)", id="0")]
                + [
                    Option(
                        f"{clean(v.version)}"
                        + (f" · {clean(v.status)}" if getattr(v, "status", None) else ""),
                        id=str(i + 1),
                    )
                    for i, v in enumerate(versions)
                ]
            )
        else:
            configs = [c for c in getattr(details, "app_configs", []) if getattr(c, "id", None)]
            selection = self.query_one("#create-task-configs", SelectionList)
            selection.clear_options()
            for config in configs:
                label = catalog_label(config)
                selection.add_option((label, str(config.id), str(config.id) in self.draft.config_ids))
            if not configs:
                required = self._configs_required()
                self._hint("This app has no configurations." + (" (b goes back)" if required else ""))
                if not required:
                    self._go("ready")
                return
            selection.focus()
            self._sync_create_button()

    # -- picking ---------------------------------------------------------------------------
    @on(OptionList.OptionSelected, "#create-task-options")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        option_id = event.option.id or ""
        d = self.draft
        if self.step == "cloud":
            d.backend = option_id
            d.kind, d.item, d.version, d.config_ids = None, None, None, []
            self._go("kind")
        elif self.step == "kind":
            kinds = KINDS_BY_CLOUD.get(self._cloud_kind(), ())
            d.kind = kinds[int(option_id)]
            d.item, d.version, d.config_ids = None, None, []
            self._go("file" if not d.kind.source else "item")
        elif self.step == "item" and self._items:
            d.item = self._items[int(option_id)]
            d.version, d.config_ids = None, []
            self._go(self._next_after("item"))
        elif self.step == "version" and self._items:
            chosen = self._items[int(option_id)]
            d.version = getattr(chosen, "version", None) if chosen is not None else None
            self._go(self._next_after("version"))

    def _next_after(self, step: str) -> str:
        then = self.draft.kind.then if self.draft.kind else ()
        order = ["item", *(s.rstrip("?") for s in then)]
        index = order.index(step) + 1 if step in order else len(order)
        return order[index] if index < len(order) else "ready"

    def _configs_required(self) -> bool:
        return bool(self.draft.kind and "configs" in self.draft.kind.then)

    @on(SelectionList.SelectedChanged, "#create-task-configs")
    def _configs_changed(self) -> None:
        self.draft.config_ids = list(self.query_one("#create-task-configs", SelectionList).selected)
        self._sync_create_button()
        self._draw_path()

    @on(Input.Changed, "#create-task-file")
    def _file_changed(self, event: Input.Changed) -> None:
        self.draft.file_id = event.value.strip()
        self._sync_create_button()

    @on(Input.Submitted, "#create-task-file")
    def _file_submitted(self) -> None:
        if self._request() is not None:
            self._create()
        else:
            self._hint("A file id is a number, e.g. 4711.", error=True)

    def _sync_create_button(self) -> None:
        self.query_one("#create-task-create", Button).disabled = self._request() is None

    def _request(self) -> TaskRequest | None:
        d = self.draft
        if d.backend is None or d.kind is None:
            return None
        kind = d.kind
        if not kind.source:
            if not d.file_id.isdigit():
                return None
            return TaskRequest(
                d.backend, kind.task_type, {kind.attribute: d.file_id}, f"{kind.label} (file {d.file_id})"
            )
        if d.item is None:
            return None
        if self.step in ("item", "version") and kind.then:
            return None
        item_id = str(getattr(d.item, "id", "") or "")
        params: dict[str, Any] = {kind.attribute: item_id}
        if "version" in kind.then and d.version:
            params["version"] = d.version
        if d.config_ids:
            params["config_ids"] = list(d.config_ids)
        elif self._configs_required():
            return None
        label = f"{kind.label} {catalog_label(d.item).split('  [')[0]}"
        if d.version:
            label += f" {d.version}"
        return TaskRequest(d.backend, kind.task_type, params, label)

    # -- buttons and keys --------------------------------------------------------------------
    @on(Button.Pressed, "#create-task-create")
    def _create_pressed(self) -> None:
        self._create()

    @on(Button.Pressed, "#create-task-cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    def _create(self) -> None:
        request = self._request()
        if request is not None:
            self.dismiss(request)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_back_step(self) -> None:
        d = self.draft
        previous = {
            "kind": "cloud" if len(self.backends) > 1 else None,
            "item": "kind",
            "file": "kind",
            "version": "item",
            "configs": "version" if d.kind and "version" in d.kind.then else "item",
            "ready": None,
        }
        if self.step == "ready":
            then = [s.rstrip("?") for s in (d.kind.then if d.kind else ())]
            target = then[-1] if then else ("file" if d.kind and not d.kind.source else "item")
        else:
            target = previous.get(self.step)
        if target is None:
            return
        if target == "kind":
            d.item, d.version, d.config_ids = None, None, []
        self._go(target)


# -- sending a command ---------------------------------------------------------------------------
def parse_parameters(text: str) -> dict[str, Any]:
    """Command parameters as typed: a JSON object, or ``key=value`` pairs (values read as JSON
    when they parse: ``retries=3`` is a number, ``mode=eco`` a string). Raises ValueError."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith(("{", "[")):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc.msg} at column {exc.colno}") from None
        if not isinstance(value, dict):
            raise ValueError("parameters must be a JSON object")
        return value
    params: dict[str, Any] = {}
    for pair in text.split():
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"“{pair}” is not key=value")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


class CommandModal(ModalScreen[Any]):
    """Send one command (name + parameters) through the outbox; dismisses with the queued record."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="command_cancel")]

    def __init__(self, device_id: str, view: Any = None) -> None:
        super().__init__()
        self.device_id = device_id
        self.view = view

    def _clouds(self) -> list[str]:
        service = self.app.service  # type: ignore[attr-defined]
        if service is None:
            return []
        names = view_backends(self.view) or backend_names(service)
        return [name for name in names if supports(service, name, "commands")[0]]

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal", id="command-modal"):
            yield Static(Text(f"Send a command to {clean(self.device_id)}"), classes="modal-title")
            service = self.app.service  # type: ignore[attr-defined]
            clouds = [(f"{clean(n)} ({backend_kind(service, n)})", n) for n in self._clouds()]
            yield Select[str](clouds, prompt="Cloud", allow_blank=not clouds, id="command-cloud")
            yield Input(placeholder="command name, e.g. reboot", id="command-name")
            yield Input(placeholder='parameters: key=value … or {"json": "object"}', id="command-params")
            yield Static(
                "Queued in the outbox and sent when the cloud is reachable; its status shows in Tasks.",
                id="command-hint",
                classes="inline-message",
            )
            with Horizontal(classes="modal-buttons"):
                yield Button("Cancel [esc]", id="command-cancel")
                yield Button("Send", id="command-send", variant="primary")

    def on_mount(self) -> None:
        clouds = self._clouds()
        self.query_one("#command-cloud", Select).display = len(clouds) > 1
        self.query_one("#command-name", Input).focus()
        if not clouds:
            self._hint("None of this device's clouds take commands.", error=True)
            self.query_one("#command-send", Button).disabled = True

    def _hint(self, text: str, *, error: bool = False) -> None:
        hint = self.query_one("#command-hint", Static)
        hint.set_class(error, "error-message")
        hint.update(Text(text))

    @on(Input.Submitted, "#command-name")
    def _name_done(self) -> None:
        self.query_one("#command-params", Input).focus()

    @on(Input.Submitted, "#command-params")
    @on(Button.Pressed, "#command-send")
    def _send(self) -> None:
        name = self.query_one("#command-name", Input).value.strip()
        if not name:
            self._hint("Type the command's name first.", error=True)
            self.query_one("#command-name", Input).focus()
            return
        try:
            params = parse_parameters(self.query_one("#command-params", Input).value)
        except ValueError as exc:
            self._hint(f"Parameters: {exc}", error=True)
            self.query_one("#command-params", Input).focus()
            return
        select = self.query_one("#command-cloud", Select)
        backend = select.value if isinstance(select.value, str) else None
        if backend is None:
            self._hint("No cloud to send it through.", error=True)
            return
        self._submit(backend, name, params)

    @work(exclusive=True, group="command-send")
    async def _submit(self, backend: str, name: str, params: dict[str, Any]) -> None:
        device = self.device_id
        self.query_one("#command-send", Button).disabled = True
        writes = getattr(self.app.service, "writes", None)  # type: ignore[attr-defined]
        if writes is None:
            self._hint("Not connected to the service yet; try again in a moment.", error=True)
            self.query_one("#command-send", Button).disabled = False
            return
        try:
            record = await writes.send_command(device, name, params, backend=backend)
        except Exception as exc:  # noqa: BLE001 - refused before queuing: said inline
            self._hint(f"Not queued: {clean(exc)}", error=True)
            self.query_one("#command-send", Button).disabled = False
            return
        self.app.run_worker(
            _report_command(self.app, writes, record, f"{name} → {clean(device)}"), group="writes"
        )
        self.dismiss(record)

    @on(Button.Pressed, "#command-cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


async def _report_command(app: App[Any], writes: Any, record: Any, what: str) -> None:
    async def queued(_writes: Any) -> Any:
        return record

    await submit_write(app, what, queued)
