"""An in-memory index of the devices the app knows, filtered on every keystroke.

Pure Python with no Textual: the lookup screen shows at most ``limit`` of the matches, so a
100,000-device fleet costs one linear scan over precomputed lower-case keys per keystroke
(about 10 ms here), never a 100,000-row table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

FILTER_KEYS = ("cloud", "group", "status", "online", "alerting")


@dataclass(slots=True)
class DeviceRow:
    id: str
    name: str = ""
    clouds: tuple[str, ...] = ()
    group: str = ""
    installation_status: str = ""
    online: bool | None = None
    alerting: bool = False
    last_seen: datetime | None = None
    fetched_at: datetime | None = None
    stale: bool = False
    key: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        self.key = f"{self.id}\x00{self.name}".lower()


@dataclass(frozen=True, slots=True)
class Query:
    text: str = ""
    cloud: str | None = None
    group: str | None = None
    status: str | None = None
    online: bool | None = None
    alerting: bool | None = None

    @property
    def is_empty(self) -> bool:
        return not self.text and all(
            v is None for v in (self.cloud, self.group, self.status, self.online, self.alerting)
        )


def parse_query(raw: str) -> Query:
    """``"74162 cloud:things status:installed online alerting"`` -> a Query.

    Words with a known ``key:`` prefix (or the bare words online/offline/alerting) filter;
    the rest is the text matched against id and name. A scanned serial is a single word.
    """
    text: list[str] = []
    values: dict[str, object] = {}
    for word in raw.split():
        lowered = word.lower()
        if lowered in ("online", "offline"):
            values["online"] = lowered == "online"
            continue
        if lowered == "alerting":
            values["alerting"] = True
            continue
        key, sep, value = word.partition(":")
        if sep and key.lower() in ("cloud", "group", "status") and value:
            values[key.lower()] = value
            continue
        text.append(word)
    return Query(text=" ".join(text), **values)  # type: ignore[arg-type]


class DeviceIndex:
    def __init__(self) -> None:
        self._rows: dict[str, DeviceRow] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, device_id: str) -> DeviceRow | None:
        return self._rows.get(device_id)

    def upsert(self, row: DeviceRow) -> None:
        self._rows[row.id] = row

    def upsert_many(self, rows: Iterable[DeviceRow]) -> None:
        for row in rows:
            self._rows[row.id] = row

    def search(self, query: Query, limit: int = 200) -> tuple[list[DeviceRow], int]:
        """The best ``limit`` matches (exact id, then prefix, then substring) and the total count."""
        needle = query.text.lower()
        exact: list[DeviceRow] = []
        prefix: list[DeviceRow] = []
        rest: list[DeviceRow] = []
        total = 0
        for row in self._rows.values():
            if needle and needle not in row.key:
                continue
            if query.cloud is not None and query.cloud not in row.clouds:
                continue
            if query.group is not None and row.group != query.group:
                continue
            if query.status is not None and row.installation_status != query.status:
                continue
            if query.online is not None and row.online is not query.online:
                continue
            if query.alerting is not None and row.alerting is not query.alerting:
                continue
            total += 1
            if needle and row.id.lower() == needle:
                exact.append(row)
            elif needle and row.key.startswith(needle):
                if len(prefix) < limit:
                    prefix.append(row)
            elif len(rest) < limit:
                rest.append(row)
        # Clouds answer in any order: sort what is shown so the same query shows the same rows.
        prefix.sort(key=_by_id)
        rest.sort(key=_by_id)
        return (exact + prefix + rest)[:limit], total


def _by_id(row: DeviceRow) -> str:
    return row.id
