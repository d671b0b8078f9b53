"""Groups: each group-capable cloud's groups with member counts, their members, and moves.

Moving devices (from the lookup screen's marks, a device, or a group's member list) opens the
:class:`GroupPickerModal`: type to search, or type a new id to create the group. Every change
(create, rename, delete, each device's move) is an outbox action; a move carries the group the
technician saw as its precondition, so a device moved by someone else meanwhile becomes a
conflict rather than a silent overwrite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Input, OptionList, Static
from textual.widgets.option_list import Option

from fieldtui.ui.text import age, clean, yes_no
from fieldtui.ui.widgets.confirm import ConfirmModal
from fieldtui.ui.widgets.footer import FieldFooter
from fieldtui.ui.widgets.status_bar import StatusBar
from fieldtui.ui.widgets.table_filter import TableFilter, matches

#: The implicit group of things without one (document 001): it cannot be created, renamed or deleted.
UNASSIGNED = "unassigned"
#: Clouds whose groups exist only as free text on each device: nothing to create, rename or delete.
NO_GROUP_MANAGEMENT = {
    "devicehq": "DeviceHQ groups are free text on each device: moving a device to a new name creates it",
}
#: Seconds a move's first attempt is awaited before the technician is told "queued".
OUTCOME_WAIT = 8.0


# -- rules ------------------------------------------------------------------------------------
def group_id_problem(group_id: str, existing: Iterable[str] = ()) -> str | None:
    """Why ``group_id`` cannot name a new group, in words a technician can act on (None: fine)."""
    if not group_id:
        return "Type a group id first."
    if any(ch.isspace() for ch in group_id):
        suggestion = "-".join(group_id.split())
        return f"Group ids cannot contain spaces: the cloud refuses them. Try {suggestion!r}."
    if group_id == UNASSIGNED:
        return (
            f'"{UNASSIGNED}" is reserved: it is where things without a group are. '
            "Pick another id (to take devices out of their group, choose unassigned from the list)."
        )
    if group_id in set(existing):
        return f"{group_id!r} already exists: pick it from the list instead."
    return None


# -- the service, as these screens use it -------------------------------------------------------
def connector_of(service: Any, backend: str) -> Any | None:
    """The connector of ``backend`` (``service.connectors``, else ``service.connector()``)."""
    connectors = getattr(service, "connectors", None)
    try:
        if connectors is not None:
            return connectors[backend]
        return service.connector(backend)
    except Exception:  # noqa: BLE001 - a connector that cannot be built offers nothing
        return None


def backend_names(service: Any) -> list[str]:
    connectors = getattr(service, "connectors", None)
    return list(connectors) if connectors is not None else list(getattr(service, "backends", []))


def kind_of(service: Any, backend: str) -> str:
    kind = getattr(connector_of(service, backend), "kind", None)
    return str(getattr(kind, "value", kind or "?"))


def group_backends(service: Any) -> list[str]:
    """Backends whose cloud has groups, in config order."""
    names = []
    for name in backend_names(service):
        connector = connector_of(service, name)
        if connector is not None and connector.capabilities.groups:
            names.append(name)
    return names


def management_refused(service: Any, backend: str) -> str | None:
    """Why groups cannot be created, renamed or deleted on ``backend`` (None: they can)."""
    return NO_GROUP_MANAGEMENT.get(kind_of(service, backend))


async def fetch_groups(service: Any, backend: str) -> tuple[list[Any], datetime | None, str | None]:
    """(groups, fetched_at when cached, note) of one backend; the cache when it cannot be asked."""
    groups_of = getattr(service, "groups", None)
    if groups_of is not None:
        return await groups_of(backend)
    connector = connector_of(service, backend)
    return list(await connector.list_groups()), None, None


async def fetch_members(service: Any, backend: str, group: str) -> list[str]:
    members_of = getattr(service, "group_members", None)
    if members_of is not None:
        return list(await members_of(backend, group))
    return list(await connector_of(service, backend).group_members(group))


def _writes(app: App[Any]) -> Any | None:
    return getattr(getattr(app, "service", None), "writes", None)


def _outcome_words(outcome: Any) -> tuple[str, str]:
    """(status, reason) of a WriteOutcome (or a bare record)."""
    status = getattr(outcome, "status", None)
    if status is None:
        state = getattr(outcome, "state", None)
        return str(getattr(state, "value", state) or "queued"), str(getattr(outcome, "last_error", "") or "")
    return str(status), str(getattr(outcome, "reason", "") or "")


async def _first_outcomes(writes: Any, records: list[Any], timeout: float) -> list[tuple[str, str]]:
    first = getattr(writes, "first_outcome", None)
    if first is None:
        return [("queued", "") for _ in records]

    async def one(record: Any) -> tuple[str, str]:
        try:
            return _outcome_words(await first(record, timeout=timeout))
        except Exception as exc:  # noqa: BLE001 - queued; only the wait failed
            return "queued", clean(exc)

    return list(await asyncio.gather(*(one(r) for r in records)))


def summarise(what: str, outcomes: list[tuple[str, str]]) -> tuple[str, str]:
    """One line for a batch: ``Move 3 to roof: 2 synced, 1 queued (offline)``, and a severity."""
    counts: dict[str, int] = {}
    reasons: dict[str, str] = {}
    for status, reason in outcomes:
        counts[status] = counts.get(status, 0) + 1
        if reason and status != "synced":
            reasons.setdefault(status, reason)
    parts = []
    for status in ("synced", "queued", "sending", "conflict", "failed", "cancelled"):
        if counts.get(status):
            reason = reasons.get(status)
            parts.append(f"{counts[status]} {status}" + (f" ({clean(reason, 120)})" if reason else ""))
    severity = "error" if counts.get("failed") or counts.get("conflict") else "information"
    return f"{what}: " + (", ".join(parts) or "nothing to do"), severity


# -- the group picker -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GroupChoice:
    backend: str
    group: str
    #: True when the group does not exist yet and the technician asked to create it.
    create: bool = False
    description: str | None = None


class GroupPickerModal(ModalScreen[GroupChoice | None]):
    """Type to search one cloud's groups; Enter picks the highlighted one, or creates the typed id."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="group_picker_cancel"),
        Binding("down", "to_list", "List", show=False, id="group_picker_list"),
    ]

    def __init__(self, backend: str, device_ids: list[str], current: str | None = None) -> None:
        super().__init__()
        self.backend = backend
        self.device_ids = device_ids
        self.current = current
        self.groups: list[Any] = []
        self.loaded = False

    def compose(self) -> ComposeResult:
        count = len(self.device_ids)
        what = clean(self.device_ids[0], 40) if count == 1 else f"{count} devices"
        with Vertical(classes="modal", id="group-picker"):
            yield Static(f"Move {what} to a group on {clean(self.backend)}", classes="modal-title")
            if self.current:
                yield Static(f"Now in: {clean(self.current)}", classes="summary")
            yield Input(placeholder="Search, or type a new group id", id="group-search")
            yield OptionList(id="group-options")
            yield Static("", id="group-picker-message", classes="inline-message")
            yield Static("Enter picks · ↓ list · Esc cancels", classes="summary")

    def on_mount(self) -> None:
        self.query_one("#group-search", Input).focus()
        self.query_one("#group-picker-message", Static).update("Loading groups…")
        self._load()

    @work(exclusive=True, group="group-picker-load")
    async def _load(self) -> None:
        service = getattr(self.app, "service", None)
        message = self.query_one("#group-picker-message", Static)
        try:
            groups, fetched_at, note = await fetch_groups(service, self.backend)
        except Exception as exc:  # noqa: BLE001 - typing an existing id still works
            groups, fetched_at, note = [], None, clean(exc)
        self.groups = sorted(groups, key=lambda g: g.id)
        self.loaded = True
        if fetched_at is not None:
            message.update(f"Cached list from {age(fetched_at)}" + (f" ({clean(note, 80)})" if note else ""))
        elif note:
            message.update(f"Groups unavailable: {clean(note, 120)}. Type the group id.")
        else:
            message.update("")
        self._refilter()

    @on(Input.Changed, "#group-search")
    def _search_changed(self, event: Input.Changed) -> None:
        self._refilter()

    def _typed(self) -> str:
        return self.query_one("#group-search", Input).value.strip()

    def _refilter(self) -> None:
        typed = self._typed()
        needle = typed.lower()
        options = self.query_one("#group-options", OptionList)
        options.clear_options()
        shown: list[Option] = []
        ids = {g.id for g in self.groups}
        if typed and typed not in ids and typed != UNASSIGNED:
            verb = (
                "Create"
                if kind_of(getattr(self.app, "service", None), self.backend) not in NO_GROUP_MANAGEMENT
                else "New"
            )
            shown.append(
                Option(Text(f"+ {verb} group {clean(typed, 40)}", style="bold"), id="create:" + typed)
            )
        for group in self.groups:
            description = group.description or ""
            if needle and needle not in group.id.lower() and needle not in description.lower():
                continue
            members = "" if group.member_count is None else f"{group.member_count:>4}"
            mark = "●" if group.id == self.current else " "
            # One line per group whatever the modal's width: OptionList wraps long prompts.
            label = Text(no_wrap=True, overflow="ellipsis")
            label.append(f"{mark} {clean(group.id, 26):<26} ")
            label.append(members, style="bold")
            label.append(f"  {clean(description, 26)}", style="dim")
            shown.append(Option(label, id="group:" + group.id))
        if kind_of(getattr(self.app, "service", None), self.backend) == "things" and (
            not needle or needle in UNASSIGNED
        ):
            shown.append(
                Option(Text("  unassigned (take out of its group)", style="italic"), id="group:" + UNASSIGNED)
            )
        options.add_options(shown)
        if shown:
            options.highlighted = 0

    @on(Input.Submitted, "#group-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        options = self.query_one("#group-options", OptionList)
        option = options.highlighted_option
        if option is None:
            typed = self._typed()
            if typed:
                self._choose("create:" + typed)
            else:
                self._say("Type a group id, or pick one from the list.")
            return
        self._choose(option.id or "")

    @on(OptionList.OptionSelected, "#group-options")
    def _option_selected(self, event: OptionList.OptionSelected) -> None:
        self._choose(event.option.id or "")

    def _say(self, words: str) -> None:
        self.query_one("#group-picker-message", Static).update(Text(words, style="bold"))

    def _choose(self, option_id: str) -> None:
        kind, _, group = option_id.partition(":")
        if kind == "create":
            problem = group_id_problem(group, (g.id for g in self.groups))
            if problem is not None:
                self._say(problem)
                return
            self.dismiss(GroupChoice(self.backend, group, create=True))
            return
        if group == self.current and len(self.device_ids) == 1:
            self._say(f"Already in {group}: pick another group, or Esc.")
            return
        self.dismiss(GroupChoice(self.backend, group))

    def action_to_list(self) -> None:
        self.query_one("#group-options", OptionList).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)


# -- moving devices ---------------------------------------------------------------------------
def _device_backend(app: App[Any], device_id: str, capable: list[str]) -> tuple[str | None, str | None]:
    """(backend, refusal): the group-capable cloud that holds ``device_id``, or why there is none."""
    row = app.index.get(device_id)  # type: ignore[attr-defined]
    service = getattr(app, "service", None)
    if row is None or not row.clouds:
        if len(capable) == 1:
            return capable[0], None
        return None, "not looked up yet: open it first so the app knows its cloud"
    for cloud in row.clouds:
        if cloud in capable:
            return cloud, None
    kinds = ", ".join(dict.fromkeys(kind_of(service, c) for c in row.clouds))
    return None, f"its cloud ({kinds}) has no groups"


def move_devices(app: App[Any], device_ids: list[str], seen: Mapping[str, str | None] | None = None) -> None:
    """Ask for a group, then queue one move per device (precondition: the group each was seen in).

    ``seen`` maps device id to the group the technician saw it in (a group's member list);
    otherwise the app's index says (what the lookup screen and the device screen showed).
    """
    if not device_ids:
        app.notify("No device to move: mark some with space, or highlight one.", severity="warning")
        return
    if getattr(app, "read_only", False):
        app.notify("Read-only: devices cannot be moved.", severity="warning")
        return
    service = getattr(app, "service", None)
    if service is None or _writes(app) is None:
        app.notify("Not connected to the service yet; try again in a moment.", severity="warning")
        return
    capable = group_backends(service)
    if not capable:
        app.notify("None of the configured clouds has groups.", severity="warning")
        return
    by_backend: dict[str, list[str]] = {}
    refused: list[str] = []
    for device_id in device_ids:
        backend, why = _device_backend(app, device_id, capable)
        if backend is None:
            refused.append(f"{clean(device_id, 30)}: {why}")
        else:
            by_backend.setdefault(backend, []).append(device_id)
    if refused:
        app.notify(
            "Not moved: " + "; ".join(refused[:5]) + (" …" if len(refused) > 5 else ""), severity="warning"
        )
    seen_groups: dict[str, str | None] = {}
    for ids in by_backend.values():
        for device_id in ids:
            if seen is not None and device_id in seen:
                seen_groups[device_id] = seen[device_id]
            else:
                row = app.index.get(device_id)  # type: ignore[attr-defined]
                seen_groups[device_id] = (row.group or None) if row is not None else None
    _pick_next(app, list(by_backend.items()), seen_groups)


def _pick_next(app: App[Any], pending: list[tuple[str, list[str]]], seen: dict[str, str | None]) -> None:
    """One picker per cloud, one after the other."""
    if not pending:
        return
    (backend, ids), rest = pending[0], pending[1:]
    currents = {seen.get(i) for i in ids}
    current = next(iter(currents)) if len(currents) == 1 else None

    def chosen(choice: GroupChoice | None) -> None:
        if choice is not None:
            app.run_worker(queue_moves(app, choice, ids, seen), group="group-moves")
        _pick_next(app, rest, seen)

    app.push_screen(GroupPickerModal(backend, ids, current), chosen)


async def queue_moves(
    app: App[Any], choice: GroupChoice, device_ids: list[str], seen: Mapping[str, str | None]
) -> list[tuple[str, str]]:
    """Queue the (optional) group creation and one move per device; tell how the first attempts went."""
    writes = _writes(app)
    if writes is None:
        app.notify("Not connected to the service yet; nothing was queued.", severity="warning")
        return []
    service = getattr(app, "service", None)
    if choice.create and management_refused(service, choice.backend) is None:
        try:
            created = await writes.create_group(choice.backend, choice.group, choice.description)
        except Exception as exc:  # noqa: BLE001 - refused before queuing: said, nothing moved
            app.notify(f"Group {clean(choice.group)} not created: {clean(exc)}", severity="error", timeout=10)
            return []
        # Online, the group must exist before the moves reach the cloud: wait for its first attempt.
        ((status, reason),) = await _first_outcomes(writes, [created], OUTCOME_WAIT)
        if status in ("failed", "conflict"):
            app.notify(
                f"Group {clean(choice.group)} not created: {clean(reason)}", severity="error", timeout=10
            )
            return [(status, reason)]
    records: list[Any] = []
    outcomes: list[tuple[str, str]] = []
    for device_id in device_ids:
        before = seen.get(device_id)
        if before == choice.group:
            outcomes.append(("synced", ""))
            continue
        try:
            record = await writes.move_to_group(
                device_id, choice.group, backend=choice.backend, precondition={"group": before}
            )
        except Exception as exc:  # noqa: BLE001 - refused before queuing: said per device
            outcomes.append(("failed", f"{device_id}: {clean(exc)}"))
            continue
        records.append(record)
    refresh = getattr(app, "refresh_outbox_counts", None)
    if refresh is not None:
        await refresh()
    outcomes += await _first_outcomes(writes, records, OUTCOME_WAIT)
    count = len(device_ids)
    what = (
        f"Move {clean(device_ids[0], 30) if count == 1 else f'{count} devices'} to {clean(choice.group, 40)}"
    )
    text, severity = summarise(what, outcomes)
    app.notify(text, severity=severity, timeout=10 if severity == "error" else 6)  # type: ignore[arg-type]
    if refresh is not None:
        await refresh()
    for screen in app.screen_stack:
        if isinstance(screen, GroupsScreen):
            screen.reload()
    return outcomes


# -- create / rename ---------------------------------------------------------------------------
class GroupNameModal(ModalScreen[tuple[str, str | None] | None]):
    """A new group's id (and description), or a group's new id; checked before anything is queued."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="group_name_cancel")]

    def __init__(
        self, title: str, *, existing: Iterable[str], initial: str = "", describe: bool = True
    ) -> None:
        super().__init__()
        self._title = title
        self._existing = set(existing)
        self._initial = initial
        self._describe = describe

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal", id="group-name"):
            yield Static(self._title, classes="modal-title")
            yield Input(
                value=self._initial, placeholder="group id: no spaces, not 'unassigned'", id="group-id"
            )
            if self._describe:
                yield Input(placeholder="description (optional)", id="group-description")
            yield Static("", id="group-name-message", classes="inline-message")
            with Horizontal(classes="modal-buttons"):
                yield Button("Cancel [esc]", id="cancel")
                yield Button("OK [enter]", id="ok", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#group-id", Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "group-id" and self._describe:
            self.query_one("#group-description", Input).focus()
            return
        self._finish()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._finish()
        else:
            self.dismiss(None)

    def _finish(self) -> None:
        group = self.query_one("#group-id", Input).value.strip()
        problem = group_id_problem(group, self._existing)
        if problem is not None:
            self.query_one("#group-name-message", Static).update(Text(problem, style="bold"))
            self.query_one("#group-id", Input).focus()
            return
        description = None
        if self._describe:
            description = self.query_one("#group-description", Input).value.strip() or None
        self.dismiss((group, description))

    def action_cancel(self) -> None:
        self.dismiss(None)


# -- the groups screen -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GroupRow:
    backend: str
    id: str
    member_count: int | None
    description: str


class GroupsScreen(Screen[None]):
    """Groups of every cloud that has them; Enter lists a group's members, which can be moved."""

    BINDINGS = [
        Binding("slash", "filter", "Filter", id="groups_filter"),
        Binding("n", "new_group", "New", id="groups_new"),
        Binding("r", "rename_group", "Rename", id="groups_rename"),
        Binding("d", "delete_group", "Delete", id="groups_delete"),
        Binding("space", "toggle_mark", "Mark", id="groups_mark"),
        Binding("m", "move_members", "Move", id="groups_move"),
        Binding("f5", "reload", "Reload", id="groups_reload"),
        Binding("escape", "back", "Back", id="groups_back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[GroupRow] = []
        self.shown: list[GroupRow] = []
        self.notes: dict[str, str] = {}
        self.members_of: GroupRow | None = None
        self.members: list[str] = []
        self.marked: set[str] = set()

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        yield Static(Text(" Groups", style="bold"), id="groups-title")
        yield TableFilter(placeholder="Filter groups: words to match (Esc clears)", id="groups-filter")
        yield Static("Loading groups…", id="groups-summary", classes="summary")
        yield DataTable(id="groups-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="members-title", classes="section-title")
        yield DataTable(id="members-table", cursor_type="row", zebra_stripes=True)
        yield FieldFooter()

    def on_mount(self) -> None:
        self.app.update_bar()  # type: ignore[attr-defined]
        groups = self.query_one("#groups-table", DataTable)
        groups.add_column("Cloud", key="cloud", width=10)
        groups.add_column("Group", key="group", width=28)
        groups.add_column("Members", key="members", width=7)
        groups.add_column("Description", key="description", width=40)
        members = self.query_one("#members-table", DataTable)
        members.add_column("", key="mark", width=1)
        members.add_column("Device", key="id", width=18)
        members.add_column("Name", key="name", width=16)
        members.add_column("Status", key="status", width=11)
        members.add_column("On", key="online", width=3)
        members.add_column("Seen", key="seen", width=8)
        self._show_members(False)
        groups.focus()
        self.reload()

    # -- loading -----------------------------------------------------------------------------
    def reload(self) -> None:
        self._load()

    @work(exclusive=True, group="groups-load")
    async def _load(self) -> None:
        service = getattr(self.app, "service", None)
        summary = self.query_one("#groups-summary", Static)
        if service is None:
            summary.update("Still connecting to the clouds… press F5 to retry.")
            return
        backends = group_backends(service)
        if not backends:
            summary.update("None of the configured clouds has groups.")
            return
        results = await asyncio.gather(*(fetch_groups(service, b) for b in backends), return_exceptions=True)
        rows: list[GroupRow] = []
        self.notes = {}
        for backend, result in zip(backends, results, strict=True):
            if isinstance(result, BaseException):
                self.notes[backend] = f"unavailable: {clean(result, 100)}"
                continue
            groups, fetched_at, note = result
            if fetched_at is not None:
                self.notes[backend] = f"cached {age(fetched_at)}" + (f" ({clean(note, 60)})" if note else "")
            elif note:
                self.notes[backend] = clean(note, 100)
            rows += [
                GroupRow(backend, g.id, g.member_count, g.description or "")
                for g in sorted(groups, key=lambda g: g.id)
            ]
        self.rows = rows
        self._refill()
        if self.members_of is not None:
            current = next(
                (r for r in rows if (r.backend, r.id) == (self.members_of.backend, self.members_of.id)), None
            )
            if current is None:
                self._show_members(False)
            else:
                self._load_members(current)

    def _refill(self) -> None:
        table = self.query_one("#groups-table", DataTable)
        query = self.query_one("#groups-filter", TableFilter).value
        cursor = table.cursor_row
        table.clear()
        self.shown = [r for r in self.rows if matches(query, (r.backend, r.id, r.description))]
        for row in self.shown:
            table.add_row(
                clean(row.backend, 10),
                clean(row.id, 28),
                "" if row.member_count is None else str(row.member_count),
                clean(row.description, 60),
                key=f"{row.backend}\x00{row.id}",
            )
        if self.shown:
            table.move_cursor(row=min(cursor, len(self.shown) - 1))
        total = len(self.rows)
        text = f" {len(self.shown)} of {total} groups" if query else f" {total} groups"
        text += " · " + " · ".join(f"{clean(b)}: {n}" for b, n in self.notes.items()) if self.notes else ""
        text += " · Enter: members · n new · r rename · d delete"
        self.query_one("#groups-summary", Static).update(text)

    def _selected(self) -> GroupRow | None:
        table = self.query_one("#groups-table", DataTable)
        if not self.shown or table.cursor_row is None or table.cursor_row >= len(self.shown):
            return None
        return self.shown[table.cursor_row]

    # -- members -----------------------------------------------------------------------------
    def _show_members(self, show: bool) -> None:
        self.query_one("#members-title", Static).display = show
        self.query_one("#members-table", DataTable).display = show
        if not show:
            self.members_of = None
            self.members = []
            self.marked = set()

    @on(DataTable.RowSelected, "#groups-table")
    def _group_selected(self, event: DataTable.RowSelected) -> None:
        row = self._selected()
        if row is not None:
            self.marked = set()
            self._load_members(row)

    @work(exclusive=True, group="groups-members")
    async def _load_members(self, row: GroupRow) -> None:
        self.members_of = row
        self._show_members(True)
        self.members_of = row
        title = self.query_one("#members-title", Static)
        title.update(f"Members of {clean(row.id)} ({clean(row.backend)}): loading…")
        try:
            members = await fetch_members(getattr(self.app, "service", None), row.backend, row.id)
        except Exception as exc:  # noqa: BLE001 - shown inline
            title.update(Text(f"Members of {clean(row.id)}: {clean(exc, 120)}", style="red"))
            self.members = []
            self._refill_members()
            return
        self.members = sorted(members)
        self.marked &= set(self.members)
        self._refill_members()
        table = self.query_one("#members-table", DataTable)
        if self.members:
            table.focus()

    def _refill_members(self) -> None:
        row = self.members_of
        table = self.query_one("#members-table", DataTable)
        cursor = table.cursor_row
        table.clear()
        index = self.app.index  # type: ignore[attr-defined]
        for device_id in self.members:
            known = index.get(device_id)
            table.add_row(
                "✓" if device_id in self.marked else "",
                clean(device_id, 18),
                clean(known.name if known else "", 16),
                clean(known.installation_status if known else "", 11),
                yes_no(known.online if known else None, "●", "○"),
                age(known.last_seen).replace(" ago", "") if known else "",
                key=device_id,
            )
        if self.members:
            table.move_cursor(row=min(cursor, len(self.members) - 1))
        if row is not None:
            marked = f" · marked {len(self.marked)}" if self.marked else ""
            hint = " · space marks · m moves" if self.members else ""
            self.query_one("#members-title", Static).update(
                f"Members of {clean(row.id)} ({clean(row.backend)}): {len(self.members)}{marked}{hint}"
            )

    @on(DataTable.RowSelected, "#members-table")
    def _member_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.app.open_device(event.row_key.value)  # type: ignore[attr-defined]

    def _member_cursor(self) -> str | None:
        table = self.query_one("#members-table", DataTable)
        if not self.members or table.cursor_row is None or table.cursor_row >= len(self.members):
            return None
        return self.members[table.cursor_row]

    def action_toggle_mark(self) -> None:
        if not self.query_one("#members-table", DataTable).has_focus:
            return
        device_id = self._member_cursor()
        if device_id is None:
            return
        self.marked.symmetric_difference_update({device_id})
        table = self.query_one("#members-table", DataTable)
        row = table.cursor_row
        self._refill_members()
        table.move_cursor(row=min(row + 1, len(self.members) - 1))

    def action_move_members(self) -> None:
        if self.members_of is None:
            self.app.notify("Press Enter on a group to list its members, then m moves them.")
            return
        targets = sorted(self.marked) or ([c] if (c := self._member_cursor()) else [])
        if not targets:
            self.app.notify("This group has no members to move.", severity="warning")
            return
        group = self.members_of.id
        move_devices(self.app, targets, seen=dict.fromkeys(targets, group))

    # -- create / rename / delete --------------------------------------------------------------
    def _manage_target(self, backend: str | None = None) -> str | None:
        service = getattr(self.app, "service", None)
        if getattr(self.app, "read_only", False):
            self.app.notify("Read-only: groups cannot be changed.", severity="warning")
            return None
        if service is None:
            self.app.notify("Not connected to the service yet.", severity="warning")
            return None
        names = (
            [backend]
            if backend
            else [b for b in group_backends(service) if management_refused(service, b) is None]
        )
        if not names:
            self.app.notify("No configured cloud lets groups be created here.", severity="warning")
            return None
        refusal = management_refused(service, names[0])
        if refusal is not None:
            self.app.notify(refusal, severity="warning")
            return None
        return names[0]

    def action_new_group(self) -> None:
        selected = self._selected()
        service = getattr(self.app, "service", None)
        prefer = (
            selected.backend if selected and management_refused(service, selected.backend) is None else None
        )
        backend = self._manage_target(prefer)
        if backend is None:
            return
        existing = [r.id for r in self.rows if r.backend == backend]

        def done(answer: tuple[str, str | None] | None) -> None:
            if answer is not None:
                group, description = answer
                self._submit(f"Create group {group}", lambda w: w.create_group(backend, group, description))

        self.app.push_screen(GroupNameModal(f"New group on {clean(backend)}", existing=existing), done)

    def action_rename_group(self) -> None:
        row = self._selected()
        if row is None:
            self.app.notify("Highlight a group to rename.")
            return
        if self._manage_target(row.backend) is None:
            return
        existing = [r.id for r in self.rows if r.backend == row.backend]

        def done(answer: tuple[str, str | None] | None) -> None:
            if answer is not None:
                new, _ = answer
                self._submit(f"Rename {row.id} to {new}", lambda w: w.rename_group(row.backend, row.id, new))

        self.app.push_screen(
            GroupNameModal(
                f"Rename {clean(row.id)} on {clean(row.backend)}",
                existing=existing,
                initial=row.id,
                describe=False,
            ),
            done,
        )

    def action_delete_group(self) -> None:
        row = self._selected()
        if row is None:
            self.app.notify("Highlight a group to delete.")
            return
        if self._manage_target(row.backend) is None:
            return
        members = "" if row.member_count is None else f" Its {row.member_count} member(s) become unassigned."

        def done(answer: bool | None) -> None:
            if answer:
                self._submit(f"Delete group {row.id}", lambda w: w.delete_group(row.backend, row.id))

        self.app.push_screen(
            ConfirmModal(
                f"Delete group {clean(row.id)} on {clean(row.backend)}?",
                f"The group is removed from the cloud.{members}",
                yes="Delete",
            ),
            done,
        )

    def _submit(self, what: str, call: Any) -> None:
        self.run_worker(self._submit_and_report(what, call), group="groups-write")

    async def _submit_and_report(self, what: str, call: Any) -> None:
        writes = _writes(self.app)
        if writes is None:
            self.app.notify("Not connected to the service yet; nothing was queued.", severity="warning")
            return
        try:
            record = await call(writes)
        except Exception as exc:  # noqa: BLE001 - refused before queuing: said, never a traceback
            self.app.notify(f"{what}: not queued: {clean(exc)}", severity="error", timeout=10)
            return
        await self.app.refresh_outbox_counts()  # type: ignore[attr-defined]
        outcomes = await _first_outcomes(writes, [record], OUTCOME_WAIT)
        text, severity = summarise(what, outcomes)
        self.app.notify(text, severity=severity, timeout=10 if severity == "error" else 6)  # type: ignore[arg-type]
        await self.app.refresh_outbox_counts()  # type: ignore[attr-defined]
        self.reload()

    # -- navigation --------------------------------------------------------------------------
    def action_filter(self) -> None:
        self.query_one("#groups-filter", TableFilter).open()

    @on(Input.Changed, "#groups-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._refill()

    @on(TableFilter.Closed)
    def _filter_closed(self, event: TableFilter.Closed) -> None:
        self.query_one("#groups-table", DataTable).focus()

    def action_reload(self) -> None:
        self.reload()

    def action_back(self) -> None:
        if self.members_of is not None and self.query_one("#members-table", DataTable).has_focus:
            self._show_members(False)
            self.query_one("#groups-table", DataTable).focus()
            return
        self.app.pop_screen()
