"""Groups of every cloud that has them, with member counts; Enter lists a group's members,
which can be marked, then moved to another group or given an installation status on the
group's own cloud, each row following its change. Creating, renaming and deleting
(:mod:`group_admin`) follow what the cloud declares (:class:`GroupRules`); every change is an
outbox action."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from rich.text import Text
from textual import getters, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input, Static

from fieldtui.service.api import (
    ActionEvent,
    ActionState,
    ActionType,
    GroupListing,
    GroupMember,
)
from fieldtui.ui.app import FieldApp
from fieldtui.ui.backends import offering
from fieldtui.ui.member_changes import open_changes, queue_statuses
from fieldtui.ui.moves import move_devices
from fieldtui.ui.screens.group_admin import delete_group, new_group, rename_group
from fieldtui.ui.screens.group_rows import (
    GROUP_COLUMNS,
    MEMBER_CHANGES,
    MEMBER_COLUMNS,
    STATE_STYLES,
    GroupRow,
    MemberChange,
    MemberLine,
)
from fieldtui.ui.screens.presence import screen_gone
from fieldtui.ui.screens.status import StatusModal
from fieldtui.ui.text import age, clean
from fieldtui.ui.waiting import CONNECTING
from fieldtui.ui.widgets.footer import FieldFooter
from fieldtui.ui.widgets.status_bar import StatusBar
from fieldtui.ui.widgets.table import ProjectTable
from fieldtui.ui.widgets.table_filter import TableFilter, matches

#: Keys for the groups list (hidden while the members have the focus).
GROUP_KEYS = ("new_group", "rename_group", "delete_group")
#: Keys for marking members (shown while the members have the focus).
MEMBER_KEYS = ("toggle_mark", "mark_all")
#: Keys that change the marked (or highlighted) members.
CHANGE_KEYS = ("move_members", "set_status")
#: A synced change is followed by one read of the group after this many seconds.
RELOAD_AFTER_SYNC = 0.5


class GroupsScreen(Screen[None]):
    """Groups of every cloud that has them; Enter lists a group's members, which can be marked
    and moved to another group or given an installation status."""

    HELP = """
Enter on a group lists its members. In the members: space marks one (and moves down), `a`
marks all (again: none), `u` clears the marks; `m` moves the marked members (or the
highlighted one) to another group of the same cloud, `s` gives them an installation status
where that cloud keeps one. Each device's change goes to the outbox; its row's Change column
follows it (queued, synced, failed, conflict) and the line under the list says why.
Escape goes back to the groups.
"""

    app = getters.app(FieldApp)

    # The members' keys first: at 80 columns the footer keeps them (and help, quit) whole and
    # leaves out what does not fit from the end (help lists every key).
    BINDINGS = [
        Binding("space", "toggle_mark", "Mark", id="groups_mark"),
        Binding("a", "mark_all", "All", id="groups_mark_all"),
        Binding("u", "clear_marks", "Unmark", id="groups_clear_marks"),
        Binding("m", "move_members", "Move", id="groups_move"),
        Binding("s", "set_status", "Status", id="groups_status"),
        Binding("slash", "filter", "Filter", id="groups_filter"),
        Binding("n", "new_group", "New", id="groups_new"),
        Binding("r", "rename_group", "Rename", id="groups_rename"),
        Binding("d", "delete_group", "Delete", id="groups_delete"),
        Binding("f5", "reload", "Reload", id="groups_reload"),
        Binding("escape", "back", "Back", id="groups_back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[GroupRow] = []
        self.shown: list[GroupRow] = []
        self.notes: dict[str, str] = {}
        self.members_of: GroupRow | None = None
        self.members: list[GroupMember] = []
        self.marked: set[str] = set()
        #: Device id -> its move or status change queued through the outbox (each row's overlay).
        self.changes: dict[str, MemberChange] = {}
        #: Members changed from this screen (moved, given a status), as they were listed.
        self.sent: dict[str, GroupMember] = {}
        #: Members that moved out by a change made here: kept in sight, saying where they went.
        self.left: dict[str, GroupMember] = {}
        self._reload_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        yield Static(Text(" Groups", style="bold"), id="groups-title")
        yield TableFilter(placeholder="Filter groups: words to match (Esc clears)", id="groups-filter")
        yield Static("Loading groups…", id="groups-summary", classes="summary")
        yield ProjectTable(GROUP_COLUMNS, lambda r: r.key, id="groups-table")
        yield Static("", id="members-title", classes="section-title")
        yield ProjectTable(MEMBER_COLUMNS, lambda m: m.id, id="members-table")
        yield Static("", id="member-detail", classes="summary")
        yield FieldFooter()

    @property
    def groups_table(self) -> ProjectTable[GroupRow]:
        table: ProjectTable[GroupRow] = self.query_one("#groups-table", ProjectTable)
        return table

    @property
    def members_table(self) -> ProjectTable[MemberLine]:
        table: ProjectTable[MemberLine] = self.query_one("#members-table", ProjectTable)
        return table

    def on_mount(self) -> None:
        self.app.update_bar()
        self._show_members(False)
        self.groups_table.focus()
        self.reload()

    # -- loading -----------------------------------------------------------------------------
    def reload(self) -> None:
        self._load()

    def service_arrived(self) -> None:
        self.reload()

    def groups_changed(self) -> None:
        """Moves were queued elsewhere (the picker): counts and members may have changed."""
        self.reload()

    @work(exclusive=True, group="groups-load")
    async def _load(self) -> None:
        service = self.app.service
        summary = self.query_one("#groups-summary", Static)
        if service is None:
            summary.update(CONNECTING)
            return
        backends = [info.name for info in offering(service, "groups")]
        if not backends:
            summary.update("None of the configured clouds has groups.")
            return
        results = await asyncio.gather(*(service.groups(b) for b in backends), return_exceptions=True)
        if screen_gone(self):
            return  # left (Escape, the app closing) while the clouds answered
        rows: list[GroupRow] = []
        self.notes = {}
        for backend, result in zip(backends, results, strict=True):
            if not isinstance(result, GroupListing):
                self.notes[backend] = f"unavailable: {clean(result, 100)}"
                continue
            if result.fetched_at is not None:
                note = f" ({clean(result.error, 60)})" if result.error else ""
                self.notes[backend] = f"cached {age(result.fetched_at)}{note}"
            elif result.error:
                self.notes[backend] = clean(result.error, 100)
            rows += [
                GroupRow(backend, g.id, g.member_count, g.description or "")
                for g in sorted(result.groups, key=lambda g: g.id)
            ]
        self.rows = rows
        self._refill()
        if self.members_of is not None:
            current = next((r for r in rows if r.key == self.members_of.key), None)
            if current is not None:
                self._load_members(current)
            elif self.sent:
                # Emptied by the changes made here (a cloud whose groups exist while a device
                # names them): its rows stay, saying where each member went.
                self._load_members(replace(self.members_of, member_count=0))
            else:
                self._show_members(False)
                self.groups_table.focus()

    def _refill(self) -> None:
        query = self.query_one("#groups-filter", TableFilter).value
        self.shown = [r for r in self.rows if matches(query, (r.backend, r.id, r.description))]
        self.groups_table.fill(self.shown)
        total = len(self.rows)
        text = f" {len(self.shown)} of {total} groups" if query else f" {total} groups"
        text += " · " + " · ".join(f"{clean(b)}: {n}" for b, n in self.notes.items()) if self.notes else ""
        text += " · Enter: members · n new · r rename · d delete"
        self.query_one("#groups-summary", Static).update(text)

    def _selected(self) -> GroupRow | None:
        return self.groups_table.selected()

    # -- members -----------------------------------------------------------------------------
    def _show_members(self, show: bool) -> None:
        self.query_one("#members-title", Static).display = show
        self.members_table.display = show
        self.query_one("#member-detail", Static).display = False
        if not show:
            self.members_of = None
            self.members = []
            self.marked = set()
            self.changes = {}
            self.sent = {}
            self.left = {}
        self.refresh_bindings()

    @on(ProjectTable.RowSelected, "#groups-table")
    def _group_selected(self) -> None:
        row = self._selected()
        if row is not None:
            if self.members_of is None or row.key != self.members_of.key:
                self.members = []
                self.marked = set()
                self.changes = {}
                self.sent = {}
                self.left = {}
            self._load_members(row)

    @work(exclusive=True, group="groups-members")
    async def _load_members(self, row: GroupRow) -> None:
        self._show_members(True)
        self.members_of = row
        title = self.query_one("#members-title", Static)
        if not self.members:
            title.update(f"Members of {clean(row.id)} ({clean(row.backend)}): loading…")
        service = self.app.service
        try:
            if service is None:
                raise LookupError("not connected to the service yet")
            members = await service.group_members(row.backend, row.id)
        except Exception as exc:  # noqa: BLE001 - shown inline
            if screen_gone(self) or self._left_members_of(row):
                return
            self.members = []
            self._keep_moved_out()
            self._refill_members()
            title.update(Text(f"Members of {clean(row.id)}: {clean(exc, 120)}", style="red"))
            return
        try:
            records = await service.outbox.list_actions()
        except Exception:  # noqa: BLE001 - the cloud's list is still true without the overlay
            records = []
        if screen_gone(self) or self._left_members_of(row):
            return
        ids = {m.id for m in members}
        # What this screen heard of (a change that synced) stays; the outbox adds what is open.
        queued = open_changes(records, ids, row.backend)
        heard = {d: c for d, c in self.changes.items() if d in ids or d in self.sent}
        # The outbox was read while events kept coming: what was heard since is not undone.
        fresher = {d: c for d, c in queued.items() if d not in heard or not heard[d].newer_than(c)}
        self.changes = heard | fresher
        was_empty = not self.members
        self.members = sorted(members, key=lambda m: m.id)
        self.marked &= ids
        self._keep_moved_out()
        self._refill_members()
        if self.members and was_empty:
            self.members_table.focus()

    def _left_members_of(self, row: GroupRow) -> bool:
        """The technician left ``row``'s members (Escape) or opened another group while they
        loaded: the answer is for a list no longer shown, and must not reopen it or take the focus."""
        return self.members_of is None or self.members_of.key != row.key

    def _keep_moved_out(self) -> None:
        """A member moved out by a change made here stays in sight, saying where it went."""
        ids = {m.id for m in self.members}
        for device, member in self.sent.items():
            change = self.changes.get(device)
            if device not in ids and change is not None and change.kind is ActionType.MOVE_TO_GROUP:
                self.left[device] = member
        self.left = {d: m for d, m in self.left.items() if d not in ids}

    def _member_line(self, member: GroupMember, left: bool = False) -> MemberLine:
        known = self.app.index.get(member.id)
        status = member.installation_status.value if member.installation_status is not None else None
        return MemberLine(
            id=member.id,
            marked=member.id in self.marked,
            name=member.name or (known.name if known else ""),
            status=status or (known.installation_status if known else ""),
            online=member.online if member.online is not None else (known.online if known else None),
            battery=member.battery,
            change=self.changes.get(member.id),
            left=left,
        )

    def _refill_members(self) -> None:
        # A member that moved out keeps its place: the rows a technician marked stay where they were.
        lines = [self._member_line(m) for m in self.members]
        lines += [self._member_line(m, left=True) for m in self.left.values()]
        lines.sort(key=lambda line: line.id)
        self.members_table.fill(lines)
        row = self.members_of
        if row is not None:
            text = Text(no_wrap=True, overflow="ellipsis")
            text.append(f"Members of {clean(row.id)} ({clean(row.backend)}): {len(self.members)}")
            if self.marked:
                text.append(f" · {len(self.marked)} marked", style="bold")
            if self.left:
                text.append(f" · {len(self.left)} moved out")
            self.query_one("#members-title", Static).update(text)
        self._draw_detail()
        self.refresh_bindings()

    def _draw_detail(self) -> None:
        """The highlighted member's change in words (a failure's reason cannot fit its cell)."""
        detail = self.query_one("#member-detail", Static)
        line = self.members_table.selected() if self.members_table.display else None
        change = line.change if line is not None else None
        detail.display = change is not None
        if line is not None and change is not None:
            text = Text(no_wrap=True, overflow="ellipsis")
            text.append(f" {clean(line.id, 30)}: ")
            text.append(clean(change.detail, 200), style=STATE_STYLES[change.state])
            detail.update(text)

    @on(ProjectTable.RowHighlighted, "#members-table")
    def _member_highlighted(self) -> None:
        self._draw_detail()
        self.refresh_bindings()

    def outbox_changed(self, event: ActionEvent) -> None:
        """A member's move or status change moved on (queued, synced, failed): its row says so
        at once; once the cloud has taken it, the group is read again."""
        record = event.record
        row = self.members_of
        device = record.action.device
        if row is None or device is None or record.action.type not in MEMBER_CHANGES:
            return
        if record.action.backend not in (row.backend, None):
            return
        if device not in {m.id for m in self.members} and device not in self.sent:
            return
        self.changes[device] = MemberChange.of(record)
        self._keep_moved_out()
        self._refill_members()
        if record.state is ActionState.DONE:
            self._reload_soon()

    def _reload_soon(self) -> None:
        """Several changes that synced together read the group (and the counts) once."""
        if self._reload_timer is not None:
            self._reload_timer.stop()
        self._reload_timer = self.set_timer(RELOAD_AFTER_SYNC, self.reload)

    @on(ProjectTable.RowSelected, "#members-table")
    def _member_selected(self) -> None:
        line = self.members_table.selected()
        if line is not None:
            self.app.open_device(line.id)

    def _targets(self) -> list[str]:
        """The marked members, else the highlighted one (a member that moved out is no target)."""
        if self.marked:
            return sorted(self.marked)
        line = self.members_table.selected() if self.members_table.display else None
        return [line.id] if line is not None and not line.left else []

    def _members_focused(self) -> bool:
        return self.members_of is not None and self.members_table.display and self.members_table.has_focus

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer offers what the focused list can do now: a group's keys on the groups,
        marking on the members, Move and Status once something is marked or highlighted (Status
        only where the group's cloud keeps one), nothing that changes in read-only mode."""
        if action in GROUP_KEYS:
            return not self._members_focused()
        if action in MEMBER_KEYS:
            return self._members_focused() and bool(self.members)
        if action == "clear_marks":
            return bool(self.marked)
        if action in CHANGE_KEYS:
            if self.app.read_only or not self._members_focused() or not self._targets():
                return False
            if action == "set_status":
                return self._status_refusal() is None
        return True

    def _status_refusal(self) -> str | None:
        service = self.app.service
        row = self.members_of
        if service is None or row is None:
            return "not connected to the service yet"
        info = service.backend(row.backend)
        if info is None:
            return f"{clean(row.backend)} is not configured"
        return info.why_not("installation_status")

    def action_toggle_mark(self) -> None:
        if not self._members_focused():
            return
        line = self.members_table.selected()
        if line is None or line.left:
            return
        self.marked.symmetric_difference_update({line.id})
        table = self.members_table
        row = table.cursor_row
        self._refill_members()
        table.move_cursor(row=min(row + 1, table.row_count - 1))

    def action_mark_all(self) -> None:
        """Every member marked (or, when all already are, none)."""
        every = {m.id for m in self.members}
        self.marked = set() if every and self.marked >= every else every
        self._refill_members()

    def action_clear_marks(self) -> None:
        self.marked = set()
        self._refill_members()

    def action_move_members(self) -> None:
        row = self.members_of
        if row is None:
            self.app.notify("Press Enter on a group to list its members, then mark them and press m.")
            return
        targets = self._targets()
        if not targets:
            self.app.notify("This group has no members to move.", severity="warning")
            return
        self._remember(targets)
        move_devices(self.app, targets, seen=dict.fromkeys(targets, row.id), backend=row.backend)

    def _remember(self, targets: list[str]) -> None:
        """The members about to be changed: their rows follow the change even after they left."""
        listed = {m.id: m for m in self.members}
        self.sent.update({d: listed[d] for d in targets if d in listed})
        self.marked = set()
        self._refill_members()

    def action_set_status(self) -> None:
        row = self.members_of
        targets = self._targets()
        if row is None or not targets:
            self.app.notify("List a group's members and mark them first.", severity="warning")
            return
        if self.app.read_only:
            self.app.notify("Read-only: installation status cannot be changed.", severity="warning")
            return
        refusal = self._status_refusal()
        if refusal is not None:
            self.app.notify(f"Not in {clean(row.id)}: {clean(refusal)}.", severity="warning")
            return
        lines = {line.id: line for line in self.members_table.objects}
        seen = {d: (lines[d].status or None) if d in lines else None for d in targets}
        statuses = set(seen.values())
        current = next(iter(statuses)) if len(statuses) == 1 else None
        backend = row.backend

        def chosen(status: str | None) -> None:
            if status:
                self._remember(targets)
                self.run_worker(
                    queue_statuses(self.app, backend, status, targets, seen), group="groups-write"
                )

        label = targets[0] if len(targets) == 1 else f"{len(targets)} devices"
        self.app.push_screen(StatusModal(label, current), chosen)

    # -- create / rename / delete --------------------------------------------------------------
    def action_new_group(self) -> None:
        new_group(self.app, self.rows, self._selected(), self.reload)

    def action_rename_group(self) -> None:
        rename_group(self.app, self.rows, self._selected(), self.reload)

    def action_delete_group(self) -> None:
        delete_group(self.app, self._selected(), self.reload)

    # -- navigation --------------------------------------------------------------------------
    def action_filter(self) -> None:
        self.query_one("#groups-filter", TableFilter).open()

    @on(Input.Changed, "#groups-filter")
    def _filter_changed(self) -> None:
        self._refill()

    @on(TableFilter.Closed)
    def _filter_closed(self) -> None:
        self.groups_table.focus()

    def action_reload(self) -> None:
        self.reload()

    def action_back(self) -> None:
        if self.members_of is not None and self.members_table.has_focus:
            self.workers.cancel_group(self, "groups-members")
            self._show_members(False)
            self.groups_table.focus()
            return
        self.app.pop_screen()
