"""Home: one input for a serial typed, pasted or scanned; results from the index, then the clouds.

Each keystroke filters the in-memory index at once (capped rows, never the whole fleet);
after a short pause the clouds are asked too, and their answers stream into the index.
A scanner types fast and presses Enter: an exact match then opens the device at once.
"""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual import events, getters, on, work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from fieldtui.core.models import InstallationStatus
from fieldtui.service.api import BackendFinished
from fieldtui.ui.app import FieldApp
from fieldtui.ui.index import DeviceRow, filter_problems, parse_query
from fieldtui.ui.screens.presence import screen_gone
from fieldtui.ui.text import age, clean, clean_middle, yes_no
from fieldtui.ui.text import now as ui_now
from fieldtui.ui.widgets.footer import FieldFooter
from fieldtui.ui.widgets.status_bar import StatusBar

MAX_ROWS = 200
REMOTE_DEBOUNCE = 0.35
#: (label, key, width): 62 cells of text + 2 of padding per column + the scrollbar = 80.
COLUMNS = (
    ("", "mark", 1),
    ("Device", "id", 17),
    ("Name", "name", 9),
    ("Clouds", "clouds", 8),
    ("Group", "group", 8),
    ("Status", "status", 11),
    ("On", "online", 2),
    ("Seen", "seen", 5),
)
WIDTH = {key: width for _, key, width in COLUMNS}


def cloud_notes(finished: list[BackendFinished]) -> list[str]:
    """What the clouds' answers leave out, in words: the clouds that could not be asked (with
    why), answers cut short, and for each cloud that found nothing what it looks at."""
    notes: list[str] = []
    down = [f for f in finished if f.error is not None]
    if down:
        cached = " (cached rows shown)" if any(f.from_cache for f in down) else ""
        why = [f"{f.backend}: {(f.error or '').removeprefix(f'{f.backend}: ')}" for f in down]
        notes.append("not asked: " + "; ".join(why) + cached)
    notes += [f"{f.backend}: {f.partial.removeprefix('partial: ')}" for f in finished if f.partial]
    empty = [f"{f.backend}: {f.note}" for f in finished if f.note and not f.count and f.error is None]
    if empty:
        notes.append("nothing in " + ", ".join(empty))
    return notes


class QueryInput(Input):
    """The lookup box. It gives up "?" (help: no serial holds one) so that key reaches its
    binding. A ":" typed while it is empty opens the command line (a filter's colon comes after
    a word): decided here, in typing order, so a fast burst (``status:installed`` pasted by
    tmux or a scanner) is never judged by a value its first letters have not reached yet."""

    def check_consume_key(self, key: str, character: str | None) -> bool:
        if character == "?":
            return False
        return super().check_consume_key(key, character)

    async def _on_key(self, event: events.Key) -> None:
        if event.character == ":" and not self.value.strip():
            event.stop()
            event.prevent_default()
            await self.run_action("screen.command_line")
            return
        await super()._on_key(event)


class LookupScreen(Screen[None]):
    app = getters.app(FieldApp)

    DEFAULT_CSS = """
    #lookup-clouds {
        height: auto;
        max-height: 2;
        color: $warning;
        padding: 0 1;
    }
    """

    BINDINGS = [
        Binding("slash", "focus_filter", "Filter", id="lookup_filter"),
        Binding("enter", "open_selected", "Open", show=False, id="lookup_open"),
        Binding("space", "toggle_mark", "Mark", id="lookup_mark"),
        # Down from the box reaches the list (the box is one line; the list keeps its own Down).
        Binding("down", "focus_results", "List", show=False, id="lookup_list"),
        Binding("m", "move_marked", "Move marked", id="lookup_move_marked"),
        # Priority over the query box, which lets "?" through (QueryInput); the box opens the
        # command line itself on a ":" typed while it is empty.
        Binding("question_mark", "app.help", "Help", show=False, priority=True, id="lookup_help"),
        Binding("colon", "command_line", "Cmd", show=False, id="lookup_command_line"),
    ]

    HELP = """
Type, paste or scan a serial, tuid or name; Enter opens the best match (a scanner's exact
serial opens at once). Filters go after the words or alone: `cloud:NAME`, `group:NAME`
(quote a name with spaces: `group:"Plant room"`), `status:installed`, `online`, `offline`,
`alerting`. `:` in an empty box opens the command line. Names are found where a cloud keeps
them (DeviceHQ's own search, MQTT names the broker retains, fleet nicknames); things and
sensors carry none: type a tuid (or part of one) or a sensor's whole serial. The line under
the count says which clouds could not be asked and what a cloud that found nothing looks at.
"""

    def __init__(self) -> None:
        super().__init__()
        self._remote_timer: Timer | None = None
        self._shown: list[DeviceRow] = []
        self._shown_before: list[DeviceRow] = []
        self.marked: set[str] = set()
        #: The query being asked for with "open it when found exactly" (Enter on it).
        self._exact: str | None = None
        #: What the last ask of the clouds could not do: clouds not asked, partial answers, and
        #: what a cloud that found nothing looks at (things: tuids only).
        self._cloud_notes: list[str] = []

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        with Vertical(id="lookup"):
            yield QueryInput(
                placeholder="Serial, tuid or name (filters: cloud: group: status: online alerting)",
                id="query",
            )
            yield Static("", id="lookup-summary")
            yield Static("", id="lookup-clouds")
            yield Static(self._samples_text(), id="lookup-samples")
            table: DataTable[str] = DataTable(id="results", cursor_type="row", zebra_stripes=True)
            yield table
        yield FieldFooter()

    def _samples_text(self) -> Text:
        text = Text()
        samples = self.app.samples
        if samples:
            text.append(" Try one of these (type or paste it, then Enter):\n", style="bold")
            for device_id, what in samples:
                text.append(f"   {clean(device_id, 24):<24} ", style="bold")
                text.append(f"{clean(what, 48)}\n", style="dim")
        text.rstrip()
        return text

    def on_mount(self) -> None:
        table = self.query_one("#results", DataTable)
        # Eight columns fit 80 cells with their padding and the scrollbar: the On and Seen
        # columns stay in sight, "uninstalled" and "183d" whole.
        for label, key, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        self.query_one("#query", Input).focus()
        self.refresh_results()
        self.call_after_refresh(self._take_early_keys)

    def _take_early_keys(self) -> None:
        """Keys typed before this screen was up (a scan at launch) are typed into the box."""
        typed = self.app.keys_ready()
        if not typed:
            return
        *submitted, rest = typed.split("\n")
        box = self.query_one("#query", Input)
        for line in submitted:
            box.value = line
            self._submit(line)
        if rest or not submitted:
            box.value = rest
        box.cursor_position = len(box.value)

    # -- filtering -----------------------------------------------------------------------
    @on(Input.Changed, "#query")
    def _query_changed(self, event: Input.Changed) -> None:
        self.refresh_results()
        if self._remote_timer is not None:
            self._remote_timer.stop()
        # A value set with its Enter already taken (a scan at launch) is being asked for
        # exactly: a plain ask would replace that one and open nothing.
        if event.value.strip() and event.value.strip() != self._exact:
            self._remote_timer = self.set_timer(REMOTE_DEBOUNCE, self._ask_clouds)

    @on(Input.Submitted, "#query")
    def _query_submitted(self, event: Input.Submitted) -> None:
        self._submit(event.value)

    def _submit(self, value: str) -> None:
        raw = value.strip()
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
        self._exact = raw
        self._ask_clouds(open_exact=True, raw=raw)

    def refresh_results(self) -> None:
        if not self.is_mounted:
            return
        raw = self.query_one("#query", Input).value
        query = parse_query(raw)
        rows, total = self.app.index.search(query, MAX_ROWS)
        self._shown_before, self._shown = self._shown, rows
        table = self.query_one("#results", DataTable)
        if not table.columns:  # the service answered before this screen was mounted
            return
        # The clouds answer while the technician moves and marks: the cursor stays on its device.
        current = (
            self._shown_before[table.cursor_row].id if table.cursor_row < len(self._shown_before) else None
        )
        table.clear()
        now = ui_now()
        for row in rows:
            table.add_row(
                "✓" if row.id in self.marked else "",
                clean(row.id, WIDTH["id"]),
                clean_middle(row.name, WIDTH["name"]),
                clean(",".join(row.clouds), WIDTH["clouds"]),
                clean_middle(row.group, WIDTH["group"]),
                clean(row.installation_status, WIDTH["status"]),
                yes_no(row.online, "●", "○"),
                ("~" if row.stale else "") + age(row.last_seen, now).replace(" ago", ""),
                key=row.id,
            )
        if current is not None:
            for index, row in enumerate(rows):
                if row.id == current:
                    table.move_cursor(row=index, animate=False)
                    break
        self.query_one("#lookup-samples", Static).display = bool(self.app.samples) and not raw.strip()
        summary = self.query_one("#lookup-summary", Static)
        known = len(self.app.index)
        shown = f"{len(rows)} of {total}" if total > len(rows) else f"{total}"
        problems = filter_problems(query, self._cloud_names())
        notes = self.query_one("#lookup-clouds", Static)
        shown_notes = [] if problems or query.is_empty else self._cloud_notes
        notes.update(clean(" · ".join(shown_notes), 300))
        notes.display = bool(shown_notes)
        if problems:
            summary.update(" " + clean("; ".join(problems), 300))
            return
        summary.update(
            f" {shown} match{'es' if total != 1 else ''} · {known} devices known"
            + (" · marked: " + str(len(self.marked)) if self.marked else "")
        )

    def _cloud_names(self) -> list[str]:
        service = self.app.service
        if service is not None:
            return [info.name for info in service.backends()]
        return list(self.app.bar.backends)

    # -- the clouds ----------------------------------------------------------------------
    @work(exclusive=True, group="lookup-remote")
    async def _ask_clouds(self, open_exact: bool = False, raw: str | None = None) -> None:
        if raw is None:
            raw = self.query_one("#query", Input).value.strip()
        query = parse_query(raw)
        filtered = query.cloud is not None or query.group is not None or query.status is not None
        if not query.text and not filtered:
            return
        if filter_problems(query, self._cloud_names()):
            return  # the summary already names the unknown cloud or status
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
        what = clean(query.text, 40) or clean(raw, 40)
        summary.update(f" asking the clouds for {what}…")
        self._cloud_notes = []
        found_exact = False
        finished: list[BackendFinished] = []
        status = InstallationStatus(query.status) if query.status is not None else None
        async for update in service.find(query.text, cloud=query.cloud, group=query.group, status=status):
            if screen_gone(self):
                return  # the app is closing
            if isinstance(update, BackendFinished):
                finished.append(update)
                self._cloud_notes = cloud_notes(finished)
                continue
            self.app.absorb_find_update(update)
            self.refresh_results()
            if open_exact and not found_exact and update.key == query.text:
                found_exact = True
                # The device screen starts from what was found and asks only the other clouds.
                self.app.open_device(update.key, update.view)
        if screen_gone(self):
            return
        self.refresh_results()
        if open_exact and not found_exact and query.text:
            not_asked = [f.backend for f in finished if f.error is not None]
            answered = [f.backend for f in finished if f.error is None]
            if answered:
                text = f"No cloud that answered ({', '.join(answered)}) knows {what} exactly"
            else:
                text = f"No cloud could be asked for {what}"
            unasked = f"; not asked: {', '.join(not_asked)} (unreachable)" if not_asked else ""
            self.app.notify(f"{text}{unasked}. Pick a row or refine.", severity="warning")

    # -- actions -------------------------------------------------------------------------
    def on_screen_resume(self) -> None:
        """Back from a device: the old query is selected, so the next scan replaces it."""
        box = self.query_one("#query", Input)
        if box.value and self.focused is box:
            box.select_all()

    def action_command_line(self) -> None:
        box = self.query_one("#query", Input)
        if self.focused is box and box.value.strip():
            raise SkipAction()  # a ":" inside a query is a filter's colon
        self.app.action_command_line()

    def action_focus_filter(self) -> None:
        self.query_one("#query", Input).focus()

    def action_focus_results(self) -> None:
        table = self.query_one("#results", DataTable)
        if table.row_count:
            table.focus()

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
