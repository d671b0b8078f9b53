"""How groups and their members show in the groups screen's tables (columns as data), and
how a member's pending change (a move or a status queued from the app) reads on its row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.text import Text

from fieldtui.service.api import ActionRecord, ActionState, ActionType
from fieldtui.ui.text import clean, yes_no
from fieldtui.ui.widgets.table import Column

#: The action types a member's row shows as its change.
MEMBER_CHANGES = (ActionType.MOVE_TO_GROUP, ActionType.SET_INSTALLATION_STATUS)
#: A change's state as a technician reads it on the row (the outbox says "done").
STATE_WORDS = {
    ActionState.QUEUED: "queued",
    ActionState.SENDING: "sending",
    ActionState.DONE: "synced",
    ActionState.FAILED: "failed",
    ActionState.CONFLICT: "conflict",
    ActionState.CANCELLED: "dropped",
}
STATE_STYLES = {
    ActionState.QUEUED: "yellow",
    ActionState.SENDING: "yellow",
    ActionState.DONE: "green",
    ActionState.FAILED: "bold red",
    ActionState.CONFLICT: "bold red",
    ActionState.CANCELLED: "dim",
}
#: Cells of the Change column at 80 columns (the Name column gives up the rest).
CHANGE_WIDTH = 18


@dataclass(frozen=True, slots=True)
class GroupRow:
    backend: str
    id: str
    member_count: int | None
    description: str

    @property
    def key(self) -> str:
        return f"{self.backend}\x00{self.id}"


@dataclass(frozen=True, slots=True)
class MemberChange:
    """The last move or status change of a member queued through the outbox, and where it is."""

    kind: ActionType
    #: The group it moves to, or the status it is given.
    target: str
    state: ActionState
    reason: str
    #: The outbox's order of the action and when its state last moved: which of two reports
    #: of a member's change is the newer (an event heard, or the outbox read a moment earlier).
    seq: int = 0
    updated_at: datetime | None = None

    @classmethod
    def of(cls, record: ActionRecord) -> MemberChange:
        action = record.action
        key = "group" if action.type is ActionType.MOVE_TO_GROUP else "status"
        return cls(
            action.type,
            str(action.params.get(key, "")),
            record.state,
            record.last_error or "",
            record.seq,
            record.updated_at,
        )

    def newer_than(self, other: MemberChange) -> bool:
        """True when this report is not older than ``other`` (a later action, or the same
        action's later state): a list read before an event arrived never overrides it."""
        if self.seq != other.seq:
            return self.seq > other.seq
        if self.updated_at is None or other.updated_at is None:
            return False
        return self.updated_at >= other.updated_at

    @property
    def words(self) -> str:
        """``queued→roof``, ``synced→retired``: the state, then the group or status it gives
        (packed: at 80 columns the state and most of a group's id fit the cell)."""
        return f"{STATE_WORDS[self.state]}→{self.target}"

    @property
    def detail(self) -> str:
        """The whole change in words, with the cloud's reason when it did not go through."""
        what = f"move to {self.target}" if self.kind is ActionType.MOVE_TO_GROUP else f"status {self.target}"
        reason = f": {self.reason}" if self.reason and self.state is not ActionState.DONE else ""
        return f"{what}: {STATE_WORDS[self.state]}{reason}"

    def cell(self) -> Text:
        return Text(clean(self.words, CHANGE_WIDTH), style=STATE_STYLES[self.state])


@dataclass(frozen=True, slots=True)
class MemberLine:
    """A member as listed: what the cloud's cache says, else what the app's index knows, and
    the change queued for it from the app (if any)."""

    id: str
    marked: bool
    name: str
    status: str
    online: bool | None
    battery: float | None
    change: MemberChange | None = None
    #: Moved out of the group by a change that synced: kept in sight until the list is left.
    left: bool = False


def _change_cell(member: MemberLine) -> Text | str:
    return member.change.cell() if member.change is not None else ""


GROUP_COLUMNS: list[Column[GroupRow]] = [
    Column("cloud", "Cloud", 10, lambda r: clean(r.backend, 10)),
    Column("group", "Group", 28, lambda r: clean(r.id, 28)),
    Column("members", "Members", 7, lambda r: "" if r.member_count is None else str(r.member_count)),
    Column("description", "Description", 40, lambda r: clean(r.description, 60)),
]
#: 62 cells of text + 2 of padding per column + the scrollbar = 80: the Change column in sight.
MEMBER_COLUMNS: list[Column[MemberLine]] = [
    Column("mark", "", 1, lambda m: "✓" if m.marked else ""),
    Column("id", "Device", 17, lambda m: clean(m.id, 17)),
    Column("name", "Name", 9, lambda m: clean(m.name, 9)),
    Column("status", "Status", 11, lambda m: clean(m.status, 11)),
    Column("online", "On", 2, lambda m: yes_no(m.online, "●", "○")),
    Column("battery", "Bat", 4, lambda m: "" if m.battery is None else f"{m.battery:.0f}%"),
    Column("change", "Change", CHANGE_WIDTH, _change_cell),
]
