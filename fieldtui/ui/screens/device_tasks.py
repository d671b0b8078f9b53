"""One device's tasks (cloud task queues) and commands (things, MQTT), each followed live.

The commands view joins what the cloud reports (pending, in progress, done, the device's
error) with what is still in the outbox (queued, sending, refused), so a command is in sight
from the moment it is typed. Clouds that push command status (MQTT) are followed as it
happens; the others are asked again every few seconds.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Awaitable, Callable

from rich.text import Text
from textual import events, getters, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Input, Static

from fieldtui.core.errors import Unsupported
from fieldtui.core.models import Task
from fieldtui.service.api import ActionEvent, ActionRecord, ActionState, ActionType, DeviceView, Writes
from fieldtui.ui.app import FieldApp
from fieldtui.ui.backends import device_clouds, reasons, view_backends
from fieldtui.ui.modals.command import FOLLOW_HERE, CommandModal
from fieldtui.ui.modals.create_task import CreateTaskModal, TaskRequest
from fieldtui.ui.screens.presence import screen_gone
from fieldtui.ui.screens.task_rows import (
    COMMAND_COLUMNS,
    TASK_COLUMNS,
    CommandLine,
    command_lines,
    newest_first,
    task_key,
    task_search_text,
)
from fieldtui.ui.text import age, clean, cloud_error
from fieldtui.ui.text import now as ui_now
from fieldtui.ui.waiting import CONNECTING
from fieldtui.ui.widgets.confirm import ConfirmModal
from fieldtui.ui.widgets.footer import FieldFooter
from fieldtui.ui.widgets.status_bar import StatusBar
from fieldtui.ui.widgets.table import ProjectTable
from fieldtui.ui.widgets.table_filter import TableFilter, matches
from fieldtui.ui.writes import submit_write

#: Seconds between refreshes of the tables.
REFRESH_INTERVAL = 5.0


class DeviceTasksScreen(Screen[None]):
    """The device's tasks and commands, refreshed live; ``n`` creates a task, ``x`` sends a command."""

    app = getters.app(FieldApp)

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
        self, device_id: str, view: DeviceView | None = None, *, refresh_interval: float = REFRESH_INTERVAL
    ) -> None:
        super().__init__()
        self.device_id = device_id
        self.view = view
        self.refresh_interval = refresh_interval
        self.tasks: list[Task] = []
        #: backend -> its commands as pushed live (MQTT), shown instead of the polled ones.
        self.live: dict[str, list[Task]] = {}
        #: The device's commands in the outbox (queued, sending, refused; sent until the cloud lists them).
        self.records: dict[str, ActionRecord] = {}
        #: How many listings a sent command has been in sight for (see ``reload``).
        self._sent_listings: dict[str, int] = {}
        self.loaded = False
        self._note = "Loading tasks from the clouds…"

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        yield Static(Text(f" {clean(self.device_id)} · tasks and commands", style="bold"), id="tasks-title")
        yield Static("", id="tasks-summary", classes="summary")
        yield TableFilter(id="tasks-filter")
        with Vertical(id="tasks-section", classes="table-section"):
            yield Static("Tasks", classes="section-title")
            yield ProjectTable(TASK_COLUMNS, task_key, id="tasks-table")
        with Vertical(id="commands-section", classes="table-section"):
            yield Static("Commands", classes="section-title")
            yield ProjectTable(COMMAND_COLUMNS, lambda line: line.key, id="commands-table")
        yield Static("", id="tasks-detail")
        yield FieldFooter()

    @property
    def task_table(self) -> ProjectTable[Task]:
        table: ProjectTable[Task] = self.query_one("#tasks-table", ProjectTable)
        return table

    @property
    def command_table(self) -> ProjectTable[CommandLine]:
        table: ProjectTable[CommandLine] = self.query_one("#commands-table", ProjectTable)
        return table

    def on_mount(self) -> None:
        self.app.update_bar()
        self._show_sections()
        self._draw_summary()
        self.task_table.focus()
        self.set_interval(self.refresh_interval, self.reload)
        self.reload()
        self._follow_live_commands()

    # -- which clouds offer what -----------------------------------------------------------
    def _clouds(self, capability: str) -> list[str]:
        service = self.app.service
        if service is None:
            return []
        return [info.name for info in device_clouds(service, self.view, capability)]

    def _is_command(self, task: Task) -> bool:
        service = self.app.service
        info = service.backend(task.backend) if service is not None else None
        return info is None or info.why_not("tasks") is not None

    def _show_sections(self) -> None:
        if self.view is None:
            return
        has_tasks = bool(self._clouds("tasks"))
        has_commands = bool(self._clouds("commands"))
        self.query_one("#tasks-section").display = has_tasks or not has_commands
        self.query_one("#commands-section").display = has_commands
        if not has_tasks and has_commands:
            self.command_table.focus()
        self.refresh_bindings()

    # -- following commands live ----------------------------------------------------------
    def _follow_live_commands(self) -> None:
        if self.app.service is None or self.view is None:
            return
        for name in self._clouds("commands"):
            if name not in self.live:
                self.live[name] = []
                self.run_worker(self._follow(name), group=f"tasks-live-{name}", exclusive=True)

    async def _follow(self, backend: str) -> None:
        service = self.app.service
        if service is None:
            return
        monitor = service.task_monitor(backend, self.device_id)
        try:
            async for tasks in monitor:
                self.live[backend] = list(tasks)
                if self.loaded:
                    self._draw_tables()
        except Unsupported:
            self.live.pop(backend, None)  # the cloud pushes nothing: the periodic refresh follows it
        except Exception as exc:  # noqa: BLE001 - fall back to the periodic refresh
            self.live.pop(backend, None)
            self._note = f"{clean(backend)}: live command status unavailable ({clean(exc)})"
            self._draw_summary()
        finally:
            if isinstance(monitor, AsyncGenerator):
                await monitor.aclose()

    def outbox_changed(self, event: ActionEvent) -> None:
        """The app passes every outbox change on: this device's commands show it at once."""
        record = event.record
        if record.action.device != self.device_id:
            return
        if record.action.type is ActionType.SEND_COMMAND:
            self.records[record.id] = record
            if self.loaded:
                self._draw_tables()
        if record.state is ActionState.DONE:
            self.reload()

    # -- loading ---------------------------------------------------------------------------
    @work(exclusive=True, group="tasks-load")
    async def reload(self) -> None:
        service = self.app.service
        if service is None:
            self._note = CONNECTING
            self._draw_summary()
            return
        if self.view is None:
            try:
                self.view = await service.device(self.device_id)
            except Exception as exc:  # noqa: BLE001 - shown inline
                if screen_gone(self):
                    return
                self._note = clean(exc)
                self._draw_summary()
                return
            if screen_gone(self):
                return
            self._show_sections()
            self._follow_live_commands()
        # Sent before this listing is asked for: the listing holds it if the cloud lists it.
        sent_before = {key for key, r in self.records.items() if r.state is ActionState.DONE}
        try:
            task_view = await service.task_view(self.device_id)
        except Exception as exc:  # noqa: BLE001 - shown inline, the next refresh tries again
            if screen_gone(self):
                return
            self._note = f"Could not read tasks: {clean(exc)}"
            self._draw_summary()
            return
        try:
            pending = await service.outbox.pending_for(self.device_id)
        except Exception:  # noqa: BLE001 - the cloud's lists are still true without the overlay
            pending = []
        if screen_gone(self):
            return
        # A sent command two listings do not hold (under the id it was sent with) is left to
        # the cloud's list: the outbox's "sent" is not kept for ever.
        self.records = {
            key: r
            for key, r in self.records.items()
            if r.state is ActionState.DONE and self._sent_listings.get(key, 0) < 2
        }
        for key in sent_before & self.records.keys():
            self._sent_listings[key] = self._sent_listings.get(key, 0) + 1
        self.records.update({r.id: r for r in pending})
        now = ui_now()
        notes = [f"{clean(s.backend)}: cached {age(s.fetched_at, now)}" for s in task_view.sources if s.stale]
        notes += [cloud_error(backend, error) for backend, error in task_view.errors.items()]
        self._note = "; ".join(notes)
        self.tasks = list(task_view.tasks)
        self.loaded = True
        self._draw_tables()

    def _draw_tables(self) -> None:
        query = self.query_one(TableFilter).value
        polled = [t for t in self.tasks if not self.live.get(t.backend)]
        every = newest_first(polled + [t for tasks in self.live.values() for t in tasks])
        tasks = [t for t in every if not self._is_command(t) and matches(query, task_search_text(t))]
        commands = [
            line
            for line in command_lines([t for t in every if self._is_command(t)], self.records.values())
            if matches(query, line.search_text())
        ]
        self.task_table.fill(tasks)
        self.command_table.fill(commands)
        self._draw_summary(len(tasks), len(commands))
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
    def _focused_table(self) -> ProjectTable[Task] | ProjectTable[CommandLine]:
        if self.focused is self.command_table or not self.query_one("#tasks-section").display:
            return self.command_table
        return self.task_table

    def selected_task(self) -> Task | None:
        """The task (or the cloud's copy of a command) under the cursor of the focused table."""
        table = self._focused_table()
        if table is self.task_table:
            return self.task_table.selected()
        line = self.command_table.selected()
        return line.task if line is not None else None

    def _detail_lines(self, limit: int) -> list[str]:
        table = self._focused_table()
        line = self.command_table.selected() if table is self.command_table else None
        if line is not None and line.task is None:
            return [f"{clean(line.name)} on {clean(line.backend)}: {line.status}", clean(line.message, limit)]
        task = self.selected_task()
        if task is None:
            return []
        lines = [f"{clean(task.id, 40)} {clean(task.type)} on {clean(task.backend)}: {clean(task.raw_state)}"]
        if task.detail:
            lines.append(clean(task.detail, limit))
        params = task.raw.get("parameters") if isinstance(task.raw, dict) else None
        if params:
            lines.append(clean(json.dumps(params, default=str), limit))
        return lines

    def _draw_detail(self) -> None:
        self.query_one("#tasks-detail", Static).update(Text("\n".join(self._detail_lines(160))))

    @on(ProjectTable.RowHighlighted)
    def _highlighted(self) -> None:
        self._draw_detail()

    def on_descendant_focus(self, _event: events.DescendantFocus) -> None:
        self._draw_detail()

    def action_show_detail(self) -> None:
        lines = self._detail_lines(500)
        if lines:
            self.app.notify("\n".join(lines), title="Task", timeout=10)

    # -- actions ---------------------------------------------------------------------------
    def action_reload(self) -> None:
        self.reload()

    def action_back(self) -> None:
        self.app.pop_screen()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys for what this device's clouds take, and none that change in read-only mode."""
        if action in ("new_task", "send_command", "cancel_task", "delete_task") and self.app.read_only:
            return False
        if self.view is None or self.app.service is None:
            return True
        if action == "send_command":
            return bool(self._clouds("commands"))
        if action in ("new_task", "cancel_task", "delete_task"):
            return bool(self._clouds("tasks"))
        return True

    def _refuse_read_only(self) -> bool:
        if self.app.read_only:
            self.app.notify("Read-only: changes are refused.", severity="warning")
            return True
        return False

    def action_new_task(self) -> None:
        if self._refuse_read_only():
            return
        service = self.app.service
        if service is None:
            self.app.notify(CONNECTING, severity="warning")
            return
        clouds = device_clouds(service, self.view, "tasks")
        if not clouds:
            why = reasons(service, "tasks", view_backends(self.view))
            self.app.notify(
                "No task queue here: " + ("; ".join(why) or "no cloud offers tasks"), severity="warning"
            )
            return
        model = self.view.device.model if self.view is not None else None

        def chosen(request: TaskRequest | None) -> None:
            if request is not None:
                self._submit_create(request)

        self.app.push_screen(CreateTaskModal(self.device_id, clouds, model=model), chosen)

    def _submit_create(self, request: TaskRequest) -> None:
        device = self.device_id

        async def call(writes: Writes) -> ActionRecord:
            return await writes.create_task(
                device, request.task_type, request.params, backend=request.backend
            )

        self.app.run_worker(
            submit_write(self.app, f"{request.label} on {clean(device)}", call, self.reload), group="writes"
        )

    def action_send_command(self) -> None:
        if self._refuse_read_only():
            return
        if not self._clouds("commands"):
            self.app.notify("None of this device's clouds take commands.", severity="warning")
            return
        self.app.push_screen(CommandModal(self.device_id, self.view, follow=FOLLOW_HERE), self._command_sent)

    def _command_sent(self, _record: ActionRecord | None) -> None:
        self.reload()

    def _task_for_change(self, verb: str) -> Task | None:
        if self._refuse_read_only():
            return None
        if self._focused_table() is self.command_table and self.command_table.selected() is not None:
            line = self.command_table.selected()
            assert line is not None
            self.app.notify(
                f"{clean(line.backend)} commands cannot be {verb}ed once sent: the device runs them."
                + (" A queued one can be dropped in the outbox (^O)." if line.task is None else ""),
                severity="warning",
            )
            return None
        task = self.selected_task()
        if task is None:
            self.app.notify(f"Select a task to {verb} first.", severity="warning")
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

    def _confirm_change(
        self, task: Task, verb: str, call: Callable[[Writes], Awaitable[ActionRecord]]
    ) -> None:
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
