"""An in-memory index of the devices the app knows, filtered on every keystroke.

Pure Python with no Textual: the lookup screen shows at most ``limit`` of the matches, so a
100,000-device fleet costs one linear scan over precomputed lower-case keys per keystroke
(about 10 ms here), never a 100,000-row table.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from fieldtui.core.models import InstallationStatus

FILTER_KEYS = ("cloud", "group", "status", "online", "alerting")

#: Cloud tuples, shared by every row with the same clouds (a fleet has a handful of them).
_CLOUDS: dict[tuple[str, ...], tuple[str, ...]] = {}


def _shared_clouds(clouds: tuple[str, ...]) -> tuple[str, ...]:
    clouds = tuple(sys.intern(c) for c in clouds)
    return _CLOUDS.setdefault(clouds, clouds)


#: The last fetch time seen (the next row is usually from the same batch).
_last_fetched: list[float | None] = [None]


def _epoch(value: datetime | float | None) -> float | None:
    if value is None or isinstance(value, float):
        return value
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def _when(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


class DeviceRow:
    """One device as the lookup shows it: kept small, a 100,000-device fleet holds 100,000 rows.

    Slots and no per-row objects beyond the id, the name and their lower-case search key: times
    are epoch floats (``last_seen`` and ``fetched_at`` give datetimes back), the clouds tuple and
    the group and status words are shared between rows.
    """

    __slots__ = (
        "alerting",
        "clouds",
        "fetched_ts",
        "group",
        "id",
        "installation_status",
        "key",
        "name",
        "online",
        "seen_at",
        "stale",
    )

    id: str
    name: str
    key: str
    clouds: tuple[str, ...]
    group: str
    installation_status: str
    online: bool | None
    alerting: bool
    stale: bool
    #: Epoch seconds (UTC), or None when unknown.
    seen_at: float | None
    fetched_ts: float | None

    def __init__(
        self,
        id: str,
        name: str = "",
        clouds: tuple[str, ...] = (),
        group: str = "",
        installation_status: str = "",
        online: bool | None = None,
        alerting: bool = False,
        last_seen: datetime | float | None = None,
        fetched_at: datetime | float | None = None,
        stale: bool = False,
    ) -> None:
        self.id = id
        self.name = name
        self.key = f"{id}\x00{name}".lower()
        self.clouds = _shared_clouds(clouds)
        self.group = sys.intern(group)
        self.installation_status = sys.intern(installation_status)
        self.online = online
        self.alerting = alerting
        self.stale = stale
        self.seen_at = _epoch(last_seen)
        fetched = _epoch(fetched_at)
        # Rows come in batches fetched at one time: they share that float.
        if fetched is not None and fetched == _last_fetched[0]:
            fetched = _last_fetched[0]
        _last_fetched[0] = fetched
        self.fetched_ts = fetched

    @property
    def last_seen(self) -> datetime | None:
        return _when(self.seen_at)

    @property
    def fetched_at(self) -> datetime | None:
        return _when(self.fetched_ts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DeviceRow):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"DeviceRow(id={self.id!r}, name={self.name!r}, clouds={self.clouds!r}, group={self.group!r},"
            f" installation_status={self.installation_status!r}, online={self.online!r},"
            f" alerting={self.alerting!r}, last_seen={self.last_seen!r}, stale={self.stale!r})"
        )


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


#: A word, a quoted phrase, or ``key:value`` with a quoted value (``group:"Plant room"``).
_TOKEN = re.compile(
    r"""(?P<key>[A-Za-z]+):(?P<q>["'])(?P<quoted>.*?)(?P=q)"""
    r"""|(?P<q2>["'])(?P<phrase>.*?)(?P=q2)"""
    r"""|(?P<word>\S+)"""
)


def _tokens(raw: str) -> list[tuple[str, bool]]:
    """Words of ``raw`` and whether each was quoted (an unclosed quote is an ordinary word)."""
    out: list[tuple[str, bool]] = []
    for match in _TOKEN.finditer(raw):
        if match.group("key") is not None:
            out.append((f"{match.group('key')}:{match.group('quoted')}", True))
        elif match.group("q2") is not None:
            out.append((match.group("phrase"), True))
        else:
            out.append((match.group("word"), False))
    return out


def parse_query(raw: str) -> Query:
    """``"74162 cloud:things status:installed online alerting"`` -> a Query.

    Words with a known ``key:`` prefix (or the bare words online/offline/alerting) filter;
    the rest is the text matched against id and name. A scanned serial is a single word.
    A value with spaces is quoted: ``group:"Plant room"``.
    """
    text: list[str] = []
    values: dict[str, object] = {}
    for word, quoted in _tokens(raw):
        lowered = word.lower()
        if not quoted and lowered in ("online", "offline"):
            values["online"] = lowered == "online"
            continue
        if not quoted and lowered == "alerting":
            values["alerting"] = True
            continue
        key, sep, value = word.partition(":")
        if sep and key.lower() in ("cloud", "group", "status") and value:
            values[key.lower()] = value
            continue
        if word:
            text.append(word)
    return Query(text=" ".join(text), **values)  # type: ignore[arg-type]


STATUSES = tuple(status.value for status in InstallationStatus)


def filter_problems(query: Query, clouds: Iterable[str]) -> list[str]:
    """Why a filter can match nothing: a cloud that is not configured, a status word that is
    not one (``status:installd``), each with the values that are valid."""
    problems: list[str] = []
    names = list(clouds)
    if query.cloud is not None and names and query.cloud not in names:
        near = difflib.get_close_matches(query.cloud, names, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        problems.append(f"no cloud {query.cloud!r}{hint}; clouds: {', '.join(names)}")
    if query.status is not None and query.status not in STATUSES:
        near = difflib.get_close_matches(query.status, STATUSES, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        problems.append(f"no status {query.status!r}{hint}; statuses: {', '.join(STATUSES)}")
    return problems


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
