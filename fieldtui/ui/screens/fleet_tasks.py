"""Each cloud's unfinished tasks across the fleet, followed live; a cloud without a fleet-wide
list says why (commands are followed per device)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from rich.text import Text
from textual import getters, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input, Static

from fieldtui.core.errors import FieldtuiError
from fieldtui.core.models import Task
from fieldtui.ui.app import FieldApp
from fieldtui.ui.screens.task_rows import FLEET_TASK_COLUMNS, newest_first, task_key, task_search_text
from fieldtui.ui.text import clean
from fieldtui.ui.waiting import CONNECTING
from fieldtui.ui.widgets.footer import FieldFooter
from fieldtui.ui.widgets.status_bar import StatusBar
from fieldtui.ui.widgets.table import ProjectTable
from fieldtui.ui.widgets.table_filter import TableFilter, matches

#: Why a cloud that takes commands has no row here.
COMMANDS_PER_DEVICE = "commands are followed per device (the API has no fleet-wide list)"


class FleetTasksScreen(Screen[None]):
    """Each cloud's unfinished tasks across the fleet; Enter opens the task's device."""

    app = getters.app(FieldApp)

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

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        yield Static(Text(" Fleet task queues (unfinished)", style="bold"), id="fleet-tasks-title")
        yield Static("Asking each cloud…", id="fleet-tasks-summary", classes="summary")
        yield TableFilter(id="fleet-tasks-filter")
        yield ProjectTable(FLEET_TASK_COLUMNS, task_key, id="fleet-tasks-table")
        yield Static("", id="fleet-tasks-absent", classes="inline-message")
        yield FieldFooter()

    @property
    def table(self) -> ProjectTable[Task]:
        table: ProjectTable[Task] = self.query_one("#fleet-tasks-table", ProjectTable)
        return table

    def on_mount(self) -> None:
        self.app.update_bar()
        self.table.focus()
        self.service_arrived()

    def service_arrived(self) -> None:
        service = self.app.service
        if service is None:
            self.query_one("#fleet-tasks-summary", Static).update(CONNECTING)
            return
        if self.lists or self.absent:
            return  # already following
        for info in service.backends():
            why_tasks = info.why_not("tasks")
            if why_tasks is None:
                self.lists[info.name] = []
                self.run_worker(self._follow(info.name), group=f"fleet-tasks-{info.name}", exclusive=True)
            elif info.why_not("commands") is None:
                self.absent[info.name] = COMMANDS_PER_DEVICE
            else:
                self.absent[info.name] = why_tasks
        self._draw()

    async def _follow(self, backend: str) -> None:
        service = self.app.service
        if service is None:
            return
        monitor = service.task_monitor(backend)
        try:
            async for tasks in monitor:
                self.lists[backend] = list(tasks)
                self.absent.pop(backend, None)
                self._draw()
        except Exception as exc:  # noqa: BLE001 - said why, per cloud
            self.lists.pop(backend, None)
            self.absent[backend] = clean(exc.message if isinstance(exc, FieldtuiError) else exc)
            self._draw()
        finally:
            if isinstance(monitor, AsyncGenerator):
                await monitor.aclose()

    def _draw(self) -> None:
        query = self.query_one(TableFilter).value
        every = newest_first(task for tasks in self.lists.values() for task in tasks)
        shown = [task for task in every if matches(query, task_search_text(task))]
        self.table.fill(shown)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{len(shown)} unfinished")
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
        self.table.focus()

    def action_open_device(self) -> None:
        task = self.table.selected()
        if task is not None:
            self.app.open_device(task.device)

    def action_back(self) -> None:
        self.app.pop_screen()
