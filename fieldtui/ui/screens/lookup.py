"""Home: one input for a serial typed, pasted or scanned; results from the index, then the clouds.

Each keystroke filters the in-memory index at once (capped rows, never the whole fleet);
after a short pause the clouds are asked too, and their answers stream into the index.
A scanner types fast and presses Enter: an exact match then opens the device at once.
"""

from __future__ import annotations

import asyncio

from textual import getters, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from fieldtui.service.api import BackendFinished
from fieldtui.ui.app import FieldApp
from fieldtui.ui.index import DeviceRow, parse_query
from fieldtui.ui.text import age, clean, yes_no
from fieldtui.ui.text import now as ui_now
from fieldtui.ui.widgets.footer import FieldFooter
from fieldtui.ui.widgets.status_bar import StatusBar

MAX_ROWS = 200
REMOTE_DEBOUNCE = 0.35


class LookupScreen(Screen[None]):
    app = getters.app(FieldApp)

    BINDINGS = [
        Binding("slash", "focus_filter", "Filter", id="lookup_filter"),
        Binding("enter", "open_selected", "Open", show=False, id="lookup_open"),
        Binding("space", "toggle_mark", "Mark", id="lookup_mark"),
        Binding("m", "move_marked", "Move marked", id="lookup_move_marked"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._remote_timer: Timer | None = None
        self._shown: list[DeviceRow] = []
        self.marked: set[str] = set()

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        with Vertical(id="lookup"):
            yield Input(
                placeholder="Serial, tuid or name (filters: cloud: group: status: online alerting)",
                id="query",
            )
            yield Static("", id="lookup-summary")
            table: DataTable[str] = DataTable(id="results", cursor_type="row", zebra_stripes=True)
            yield table
        yield FieldFooter()

    def on_mount(self) -> None:
        table = self.query_one("#results", DataTable)
        table.add_column("", key="mark", width=1)
        table.add_column("Device", key="id", width=18)
        table.add_column("Name", key="name", width=16)
        table.add_column("Clouds", key="clouds", width=12)
        table.add_column("Group", key="group", width=12)
        table.add_column("Status", key="status", width=11)
        table.add_column("On", key="online", width=3)
        table.add_column("Seen", key="seen", width=8)
        self.query_one("#query", Input).focus()
        self.refresh_results()

    # -- filtering -----------------------------------------------------------------------
    @on(Input.Changed, "#query")
    def _query_changed(self, event: Input.Changed) -> None:
        self.refresh_results()
        if self._remote_timer is not None:
            self._remote_timer.stop()
        if event.value.strip():
            self._remote_timer = self.set_timer(REMOTE_DEBOUNCE, self._ask_clouds)

    @on(Input.Submitted, "#query")
    def _query_submitted(self, event: Input.Submitted) -> None:
        raw = event.value.strip()
        if not raw:
            return
        query = parse_query(raw)
        row = self.app.index.get(query.text)
        if row is not None:
            self.app.open_device(row.id)
            return
        if len(self._shown) == 1:
            self.app.open_device(self._shown[0].id)
            return
        # Not known locally: ask the clouds now and open the device when one knows it exactly.
        if self._remote_timer is not None:
            self._remote_timer.stop()
        self._ask_clouds(open_exact=True)

    def refresh_results(self) -> None:
        if not self.is_mounted:
            return
        raw = self.query_one("#query", Input).value
        query = parse_query(raw)
        rows, total = self.app.index.search(query, MAX_ROWS)
        self._shown = rows
        table = self.query_one("#results", DataTable)
        if not table.columns:  # the service answered before this screen was mounted
            return
        table.clear()
        now = ui_now()
        for row in rows:
            table.add_row(
                "✓" if row.id in self.marked else "",
                clean(row.id, 18),
                clean(row.name, 16),
                clean(",".join(row.clouds), 12),
                clean(row.group, 12),
                clean(row.installation_status, 11),
                yes_no(row.online, "●", "○"),
                ("~" if row.stale else "") + age(row.last_seen, now).replace(" ago", ""),
                key=row.id,
            )
        summary = self.query_one("#lookup-summary", Static)
        known = len(self.app.index)
        shown = f"{len(rows)} of {total}" if total > len(rows) else f"{total}"
        summary.update(
            f" {shown} match{'es' if total != 1 else ''} · {known} devices known"
            + (" · marked: " + str(len(self.marked)) if self.marked else "")
        )

    # -- the clouds ----------------------------------------------------------------------
    @work(exclusive=True, group="lookup-remote")
    async def _ask_clouds(self, open_exact: bool = False) -> None:
        raw = self.query_one("#query", Input).value.strip()
        query = parse_query(raw)
        if not query.text:
            return
        summary = self.query_one("#lookup-summary", Static)
        # A scanner can type a serial and Enter before the service has started: wait for it
        # rather than drop the scan (bounded; a start failure is already notified).
        for _ in range(300):
            if self.app.service is not None or self.app.service_error:
                break
            summary.update(" connecting to the clouds…")
            await asyncio.sleep(0.1)
        service = self.app.service
        if service is None:
            return
        summary.update(f" asking the clouds for {clean(query.text, 40)}…")
        found_exact = False
        not_asked: list[str] = []
        async for update in service.find(query.text):
            if isinstance(update, BackendFinished):
                if update.error is not None and not update.from_cache:
                    not_asked.append(update.backend)
                continue
            self.app.absorb_find_update(update)
            self.refresh_results()
            if open_exact and not found_exact and update.key == query.text:
                found_exact = True
                # The device screen starts from what was found and asks only the other clouds.
                self.app.open_device(update.key, update.view)
        self.refresh_results()
        if open_exact and not found_exact:
            unasked = f" ({', '.join(not_asked)} could not be asked)" if not_asked else ""
            self.app.notify(
                f"No cloud that answered knows {clean(query.text, 40)} exactly{unasked}; "
                "pick a row or refine.",
                severity="warning",
            )

    # -- actions -------------------------------------------------------------------------
    def action_focus_filter(self) -> None:
        self.query_one("#query", Input).focus()

    def action_open_selected(self) -> None:
        table = self.query_one("#results", DataTable)
        if table.row_count and table.cursor_row is not None and table.cursor_row < len(self._shown):
            self.app.open_device(self._shown[table.cursor_row].id)

    @on(DataTable.RowSelected, "#results")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.app.open_device(event.row_key.value)

    def action_toggle_mark(self) -> None:
        table = self.query_one("#results", DataTable)
        if not table.row_count or table.cursor_row >= len(self._shown):
            return
        device_id = self._shown[table.cursor_row].id
        self.marked.symmetric_difference_update({device_id})
        row = table.cursor_row
        self.refresh_results()
        table.move_cursor(row=min(row + 1, table.row_count - 1))

    def action_move_marked(self) -> None:
        targets = sorted(self.marked)
        if not targets:
            table = self.query_one("#results", DataTable)
            if table.row_count and table.cursor_row < len(self._shown):
                targets = [self._shown[table.cursor_row].id]
        if targets:
            self.app.move_devices(targets)
