"""How groups and their members show in the groups screen's tables (columns as data)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fieldtui.ui.text import age, clean, yes_no
from fieldtui.ui.widgets.table import Column


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
class MemberLine:
    """A member as listed: what the cloud's cache says, else what the app's index knows."""

    id: str
    marked: bool
    name: str
    status: str
    online: bool | None
    last_seen: datetime | None


GROUP_COLUMNS: list[Column[GroupRow]] = [
    Column("cloud", "Cloud", 10, lambda r: clean(r.backend, 10)),
    Column("group", "Group", 28, lambda r: clean(r.id, 28)),
    Column("members", "Members", 7, lambda r: "" if r.member_count is None else str(r.member_count)),
    Column("description", "Description", 40, lambda r: clean(r.description, 60)),
]
MEMBER_COLUMNS: list[Column[MemberLine]] = [
    Column("mark", "", 1, lambda m: "✓" if m.marked else ""),
    Column("id", "Device", 18, lambda m: clean(m.id, 18)),
    Column("name", "Name", 16, lambda m: clean(m.name, 16)),
    Column("status", "Status", 11, lambda m: clean(m.status, 11)),
    Column("online", "On", 3, lambda m: yes_no(m.online, "●", "○")),
    Column("seen", "Seen", 8, lambda m: age(m.last_seen).replace(" ago", "") if m.last_seen else ""),
]
