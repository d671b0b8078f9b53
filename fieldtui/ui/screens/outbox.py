"""The outbox: every queued change with its state, age, attempts and the server's last words.

The technician syncs now (``s``), retries (``r``) or drops (``d``) an action, and settles a
conflict: apply anyway (``a``) or discard (``x``). The table follows the sync engine's events
(redrawn at most four times a second) and refreshes its ages every few seconds.
"""

from __future__ import annotations

from rich.text import Text
from textual import getters, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from fieldtui.service.api import ActionEvent, ActionRecord, ActionState, Outbox
from fieldtui.ui.app import FieldApp
from fieldtui.ui.outbox_words import OPEN, dependents, describe, what_changes, why_waiting
from fieldtui.ui.screens.presence import screen_gone
from fieldtui.ui.text import age, clean
from fieldtui.ui.text import now as ui_now
from fieldtui.ui.widgets.confirm import ConfirmModal
from fieldtui.ui.widgets.footer import FieldFooter
from fieldtui.ui.widgets.status_bar import StatusBar
from fieldtui.ui.widgets.table import fill_table, selected_key
from fieldtui.ui.widgets.table_filter import TableFilter, matches

#: Most actions listed (open ones always; the newest finished ones fill the rest).
MAX_ROWS = 1000
#: Seconds between redraws driven by outbox events, and between refreshes of the ages.
EVENT_REDRAW = 0.25
AGE_REFRESH = 5.0

STATE_STYLE: dict[str, str] = {
    ActionState.QUEUED.value: "yellow",
    ActionState.SENDING.value: "bold cyan",
    ActionState.DONE.value: "green",
    ActionState.FAILED.value: "bold red",
    ActionState.CONFLICT.value: "bold magenta",
    ActionState.CANCELLED.value: "grey50",
}


def _state(record: ActionRecord) -> str:
    return record.state.value


_describe = describe


def _ordered(records: list[ActionRecord]) -> list[ActionRecord]:
    """Open actions in queue order first (what happens next), then the newest finished ones."""
    open_ = [r for r in records if r.state in OPEN]
    finished = [r for r in records if r.state not in OPEN]
    finished.sort(key=lambda r: r.updated_at, reverse=True)
    return (open_ + finished)[:MAX_ROWS]


class OutboxScreen(Screen[None]):
    app = getters.app(FieldApp)

    BINDINGS = [
        Binding("s", "sync", "Sync now", id="outbox_sync"),
        Binding("r", "retry", "Retry", id="outbox_retry"),
        Binding("d", "drop", "Drop", id="outbox_drop"),
        Binding("a", "apply_anyway", "Apply anyway", id="outbox_apply"),
        Binding("x", "discard", "Discard", id="outbox_discard"),
        Binding("slash", "filter", "Filter", id="outbox_filter"),
        Binding("escape", "back", "Back", id="outbox_back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.records: list[ActionRecord] = []
        self.loaded = False
        self._by_id: dict[str, ActionRecord] = {}
        self._dirty = False
        self._access: Outbox | None = None

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        yield Static(Text(" Outbox: changes waiting to reach the clouds", style="bold"), id="outbox-title")
        yield Static("Reading the outbox…", id="outbox-summary", classes="summary")
        yield TableFilter(id="outbox-filter")
        yield DataTable(id="outbox-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="outbox-detail")
        yield FieldFooter()

    def on_mount(self) -> None:
        self.app.update_bar()
        table = self.query_one(DataTable)
        for label, key, width in (
            ("State", "state", 9),
            ("Age", "age", 4),
            ("Try", "attempts", 3),
            ("Device", "device", 17),
            ("Action", "action", 20),
            ("Cloud", "cloud", 7),
            ("Error", "error", None),
        ):
            table.add_column(label, key=key, width=width)
        table.focus()
        service = self.app.service
        if service is None:
            self.query_one("#outbox-summary", Static).update("Not connected to the service yet.")
            return
        self._access = service.outbox
        self.set_interval(EVENT_REDRAW, self._reload_if_dirty)
        self.set_interval(AGE_REFRESH, self.reload)
        self.reload()

    # -- loading ---------------------------------------------------------------------------
    @work(exclusive=True, group="outbox-load")
    async def reload(self) -> None:
        if self._access is None:
            return
        self._dirty = False
        try:
            records = await self._access.list_actions()
        except Exception as exc:  # noqa: BLE001 - shown inline; the next refresh tries again
            if screen_gone(self):
                return
            self.query_one("#outbox-summary", Static).update(
                Text(f"Cannot read the outbox: {clean(exc)}", style="red")
            )
            return
        if screen_gone(self):
            return  # left while the outbox was read
        self.records = _ordered(records)
        self.loaded = True
        self._draw()

    def outbox_changed(self, event: ActionEvent) -> None:
        """The engine moved an action: redraw on the next tick (bursts coalesce)."""
        self._dirty = True

    def _reload_if_dirty(self) -> None:
        if self._dirty:
            self.reload()

    # -- drawing ---------------------------------------------------------------------------
    def _draw(self) -> None:
        query = self.query_one(TableFilter).value
        now = ui_now()
        rows: list[tuple[str, list[str | Text]]] = []
        self._by_id = {}
        counts: dict[str, int] = {}
        for record in self.records:
            state = _state(record)
            counts[state] = counts.get(state, 0) + 1
            action = record.action
            described = _describe(record)
            cells_text = [
                state,
                action.device or "",
                described,
                action.backend or "",
                record.last_error or "",
                record.id,
            ]
            if not matches(query, cells_text):
                continue
            self._by_id[record.id] = record
            rows.append(
                (
                    record.id,
                    [
                        Text(state, style=STATE_STYLE.get(state, ""), no_wrap=True),
                        age(action.created_at, now).removesuffix(" ago"),
                        str(record.attempts),
                        clean(action.device or "—", 17),
                        clean(what_changes(record), 80),
                        clean(action.backend or "—", 20),
                        Text(clean(record.last_error or "", 200), style="red" if state == "failed" else ""),
                    ],
                )
            )
        fill_table(self.query_one(DataTable), rows)
        text = Text(no_wrap=True, overflow="ellipsis")
        order = [s.value for s in ActionState]
        shown = [f"{counts[s]} {s}" for s in order if counts.get(s)]
        text.append(" · ".join(shown) or "Empty: every change has reached its cloud.")
        if query.strip():
            text.append(f" · {len(rows)} matching “{clean(query, 30)}”", style="bold")
        self.query_one("#outbox-summary", Static).update(text)
        self._draw_detail()

    def _draw_detail(self) -> None:
        record = self.selected()
        text = Text(no_wrap=False)
        if record is not None:
            state = _state(record)
            text.append(f"{clean(record.id[:8])} {clean(_describe(record))}", style="bold")
            if record.last_error:
                text.append(
                    f"\n{clean(record.last_error, 300)}", style="red" if state == "failed" else "yellow"
                )
            if state == "conflict":
                text.append("\na: apply anyway · x: discard", style="bold magenta")
            backend = record.action.backend
            waiting = why_waiting(record, self.records, self.app.bar.backends.get(backend or ""))
            if waiting is not None:
                text.append(f"\n{clean(waiting, 300)}", style="yellow" if "Held" in waiting else "dim")
        self.query_one("#outbox-detail", Static).update(text)
        self.refresh_bindings()

    @on(DataTable.RowHighlighted, "#outbox-table")
    def _highlighted(self) -> None:
        self._draw_detail()

    def selected(self) -> ActionRecord | None:
        key = selected_key(self.query_one(DataTable))
        return self._by_id.get(key) if key is not None else None

    # -- filtering -------------------------------------------------------------------------
    def action_filter(self) -> None:
        self.query_one(TableFilter).open()

    @on(Input.Changed, "#outbox-filter")
    def _filter_changed(self) -> None:
        if self.loaded:
            self._draw()

    @on(TableFilter.Closed)
    def _filter_closed(self) -> None:
        self.query_one(DataTable).focus()

    # -- actions ---------------------------------------------------------------------------
    #: The states each key acts on (the footer offers a key only for a row it can act on).
    ACTS_ON = {
        "retry": ("failed", "conflict", "queued"),
        "drop": ("queued", "failed", "conflict"),
        "apply_anyway": ("conflict",),
        "discard": ("conflict",),
    }

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Read-only hides every change; a key shows only for a row it can act on."""
        if action in ("sync", *self.ACTS_ON) and self.app.read_only:
            return False
        if action == "sync" and self.app.offline:
            return False
        states = self.ACTS_ON.get(action)
        if states is not None and self.is_mounted:
            record = self.selected()
            return record is not None and _state(record) in states
        return True

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_sync(self) -> None:
        if self._refuse_read_only():
            return
        if self._access is None:
            self.app.notify("Not connected to the service yet.", severity="warning")
            return
        if self.app.offline:
            self.app.notify("Offline mode: nothing is sent. Type :online to send again.", severity="warning")
            return
        self._sync()

    @work(exclusive=True, group="outbox-sync")
    async def _sync(self) -> None:
        assert self._access is not None
        self.app.notify("Syncing…", timeout=2)
        try:
            summary = await self._access.sync_now()
        except Exception as exc:  # noqa: BLE001
            self.app.notify(f"Sync failed: {clean(exc)}", severity="error")
            return
        self.app.bar.last_sync = ui_now()
        await self._after_change()
        self.app.notify(f"Sync: {clean(summary)}")

    async def _after_change(self) -> None:
        await self.app.refresh_outbox_counts()
        self.reload()

    def _refuse_read_only(self) -> bool:
        if self.app.read_only:
            self.app.notify("Read-only: the outbox can be read, not changed.", severity="warning")
            return True
        return False

    def _chosen(self, states: tuple[str, ...], verb: str, done: str) -> ActionRecord | None:
        if self._refuse_read_only():
            return None
        record = self.selected()
        if record is None:
            self.app.notify(f"Select an action to {verb} first.", severity="warning")
            return None
        state = _state(record)
        if state not in states:
            self.app.notify(
                f"Only {' or '.join(states)} actions can be {done}; this one is {state}.",
                severity="warning",
            )
            return None
        return record

    def action_retry(self) -> None:
        record = self._chosen(("failed", "conflict", "queued"), "retry", "retried")
        if record is not None:
            self._change(record, "retry")

    def action_drop(self) -> None:
        record = self._chosen(("queued", "failed", "conflict"), "drop", "dropped")
        if record is None:
            return
        self._confirm(record, "Drop this change?", "Drop", "drop")

    def action_apply_anyway(self) -> None:
        record = self._chosen(("conflict",), "apply", "applied anyway")
        if record is not None:
            self._confirm(record, "Apply anyway?", "Apply", "apply")

    def action_discard(self) -> None:
        record = self._chosen(("conflict",), "discard", "discarded")
        if record is not None:
            self._confirm(record, "Discard this change?", "Discard", "discard")

    def _confirm(self, record: ActionRecord, title: str, yes: str, change: str) -> None:
        consequence = {
            "drop": "It will never be sent.",
            "discard": "The device keeps what it has now; this change is not sent.",
            "apply": "It is sent as it is, over what the device holds now.",
        }[change]
        body = f"{clean(_describe(record))}\n{clean(record.last_error or '')}\n{consequence}".replace(
            "\n\n", "\n"
        )
        relying = dependents(record, self.records) if change in ("drop", "discard") else []
        if relying:
            listed = "; ".join(clean(_describe(r), 60) for r in relying[:3])
            more = f" and {len(relying) - 3} more" if len(relying) > 3 else ""
            body += f"\nWarning: {len(relying)} later change(s) rely on it: {listed}{more}."

        def answered(yes_: bool | None) -> None:
            if yes_:
                self._change(record, change)

        self.app.push_screen(ConfirmModal(title, body, yes=yes, no="Keep"), answered)

    @work(group="outbox-change")
    async def _change(self, record: ActionRecord, change: str) -> None:
        assert self._access is not None
        try:
            match change:
                case "retry":
                    await self._access.retry(record.id)
                case "drop":
                    await self._access.drop(record.id)
                case _:
                    await self._access.resolve_conflict(record.id, apply=change == "apply")
        except Exception as exc:  # noqa: BLE001 - the store's refusal, in its words
            self.app.notify(f"{change.capitalize()}: {clean(exc)}", severity="error")
            return
        done = {
            "retry": "queued again",
            "drop": "dropped",
            "apply": "queued to apply anyway",
            "discard": "discarded",
        }
        self.app.notify(f"{clean(_describe(record))}: {done[change]}")
        await self._after_change()
