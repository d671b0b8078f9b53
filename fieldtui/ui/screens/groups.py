"""Groups of every cloud that has them, with member counts; Enter lists a group's members,
which can be marked and moved. Creating, renaming and deleting follow what the cloud declares
(:class:`GroupRules`); every change is an outbox action."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from rich.text import Text
from textual import getters, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input, Static

from fieldtui.service.api import ActionRecord, GroupListing, GroupMember, Writes
from fieldtui.ui.app import FieldApp
from fieldtui.ui.backends import offering
from fieldtui.ui.modals.group_name import GroupNameModal
from fieldtui.ui.modals.group_picker import rules_of
from fieldtui.ui.moves import move_devices
from fieldtui.ui.screens.group_rows import GROUP_COLUMNS, MEMBER_COLUMNS, GroupRow, MemberLine
from fieldtui.ui.text import age, clean
from fieldtui.ui.widgets.confirm import ConfirmModal
from fieldtui.ui.widgets.footer import FieldFooter
from fieldtui.ui.widgets.status_bar import StatusBar
from fieldtui.ui.widgets.table import ProjectTable
from fieldtui.ui.widgets.table_filter import TableFilter, matches
from fieldtui.ui.writes import first_outcomes, summarise


class GroupsScreen(Screen[None]):
    """Groups of every cloud that has them; Enter lists a group's members, which can be moved."""

    app = getters.app(FieldApp)

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
        self.members: list[GroupMember] = []
        self.marked: set[str] = set()

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        yield Static(Text(" Groups", style="bold"), id="groups-title")
        yield TableFilter(placeholder="Filter groups: words to match (Esc clears)", id="groups-filter")
        yield Static("Loading groups…", id="groups-summary", classes="summary")
        yield ProjectTable(GROUP_COLUMNS, lambda r: r.key, id="groups-table")
        yield Static("", id="members-title", classes="section-title")
        yield ProjectTable(MEMBER_COLUMNS, lambda m: m.id, id="members-table")
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

    def groups_changed(self) -> None:
        """Moves were queued elsewhere (the picker): counts and members may have changed."""
        self.reload()

    @work(exclusive=True, group="groups-load")
    async def _load(self) -> None:
        service = self.app.service
        summary = self.query_one("#groups-summary", Static)
        if service is None:
            summary.update("Still connecting to the clouds… press F5 to retry.")
            return
        backends = [info.name for info in offering(service, "groups")]
        if not backends:
            summary.update("None of the configured clouds has groups.")
            return
        results = await asyncio.gather(*(service.groups(b) for b in backends), return_exceptions=True)
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
            if current is None:
                self._show_members(False)
            else:
                self._load_members(current)

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
        if not show:
            self.members_of = None
            self.members = []
            self.marked = set()

    @on(ProjectTable.RowSelected, "#groups-table")
    def _group_selected(self) -> None:
        row = self._selected()
        if row is not None:
            self.marked = set()
            self._load_members(row)

    @work(exclusive=True, group="groups-members")
    async def _load_members(self, row: GroupRow) -> None:
        self._show_members(True)
        self.members_of = row
        title = self.query_one("#members-title", Static)
        title.update(f"Members of {clean(row.id)} ({clean(row.backend)}): loading…")
        try:
            if self.app.service is None:
                raise LookupError("not connected to the service yet")
            members = await self.app.service.group_members(row.backend, row.id)
        except Exception as exc:  # noqa: BLE001 - shown inline
            title.update(Text(f"Members of {clean(row.id)}: {clean(exc, 120)}", style="red"))
            self.members = []
            self._refill_members()
            return
        self.members = sorted(members, key=lambda m: m.id)
        self.marked &= {m.id for m in self.members}
        self._refill_members()
        if self.members:
            self.members_table.focus()

    def _member_line(self, member: GroupMember) -> MemberLine:
        known = self.app.index.get(member.id)
        status = member.installation_status.value if member.installation_status is not None else None
        return MemberLine(
            id=member.id,
            marked=member.id in self.marked,
            name=member.name or (known.name if known else ""),
            status=status or (known.installation_status if known else ""),
            online=member.online if member.online is not None else (known.online if known else None),
            last_seen=known.last_seen if known else None,
        )

    def _refill_members(self) -> None:
        self.members_table.fill([self._member_line(m) for m in self.members])
        row = self.members_of
        if row is not None:
            marked = f" · marked {len(self.marked)}" if self.marked else ""
            hint = " · space marks · m moves" if self.members else ""
            self.query_one("#members-title", Static).update(
                f"Members of {clean(row.id)} ({clean(row.backend)}): {len(self.members)}{marked}{hint}"
            )

    @on(ProjectTable.RowSelected, "#members-table")
    def _member_selected(self) -> None:
        line = self.members_table.selected()
        if line is not None:
            self.app.open_device(line.id)

    def _member_cursor(self) -> str | None:
        line = self.members_table.selected()
        return line.id if line is not None else None

    def action_toggle_mark(self) -> None:
        if not self.members_table.has_focus:
            return
        device_id = self._member_cursor()
        if device_id is None:
            return
        self.marked.symmetric_difference_update({device_id})
        table = self.members_table
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
        move_devices(self.app, targets, seen=dict.fromkeys(targets, self.members_of.id))

    # -- create / rename / delete --------------------------------------------------------------
    def _manage_target(self, backend: str | None = None) -> str | None:
        service = self.app.service
        if self.app.read_only:
            self.app.notify("Read-only: groups cannot be changed.", severity="warning")
            return None
        if service is None:
            self.app.notify("Not connected to the service yet.", severity="warning")
            return None
        names = (
            [backend]
            if backend
            else [b.name for b in offering(service, "groups") if self._manageable(b.name)]
        )
        if not names:
            self.app.notify("No configured cloud lets groups be created here.", severity="warning")
            return None
        refusal = rules_of(self.app, names[0]).management_refused
        if refusal is not None:
            self.app.notify(refusal, severity="warning")
            return None
        return names[0]

    def _manageable(self, backend: str) -> bool:
        return rules_of(self.app, backend).management_refused is None

    def action_new_group(self) -> None:
        selected = self._selected()
        backend = self._manage_target(
            selected.backend if selected and self._manageable(selected.backend) else None
        )
        if backend is None:
            return
        existing = [r.id for r in self.rows if r.backend == backend]

        def done(answer: tuple[str, str | None] | None) -> None:
            if answer is not None:
                group, description = answer
                self._submit(f"Create group {group}", lambda w: w.create_group(backend, group, description))

        self.app.push_screen(
            GroupNameModal(
                f"New group on {clean(backend)}", rules=rules_of(self.app, backend), existing=existing
            ),
            done,
        )

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
                rules=rules_of(self.app, row.backend),
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
        reserved = rules_of(self.app, row.backend).reserved
        where = f"become {reserved}" if reserved else "leave the group"
        members = "" if row.member_count is None else f" Its {row.member_count} member(s) {where}."

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

    def _submit(self, what: str, call: Callable[[Writes], Awaitable[ActionRecord]]) -> None:
        self.run_worker(self._submit_and_report(what, call), group="groups-write")

    async def _submit_and_report(self, what: str, call: Callable[[Writes], Awaitable[ActionRecord]]) -> None:
        service = self.app.service
        if service is None:
            self.app.notify("Not connected to the service yet; nothing was queued.", severity="warning")
            return
        try:
            record = await call(service.writes)
        except Exception as exc:  # noqa: BLE001 - refused before queuing: said, never a traceback
            self.app.notify(f"{what}: not queued: {clean(exc)}", severity="error", timeout=10)
            return
        await self.app.refresh_outbox_counts()
        outcomes = await first_outcomes(service.writes, [record])
        if outcomes[0][0] in ("queued", "sending"):
            self.app.track_write(record, what)
        text, severity = summarise(what, outcomes)
        if severity == "error":
            self.app.notify(text, severity="error", timeout=10)
        else:
            self.app.notify(text, severity="information", timeout=6)
        await self.app.refresh_outbox_counts()
        self.reload()

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
            self._show_members(False)
            self.groups_table.focus()
            return
        self.app.pop_screen()
