"""The things connector (vendor document 001): thing info, alerts, messages, commands,
installation status and deployment groups.

Authentication is a client token from ``POST /auth/client-token`` (``client_id`` from the
config, ``client_secret`` the stored secret). A token lives 15 minutes: it is renewed shortly
before it expires and once when a request is refused with 401, behind one lock, so concurrent
requests share one renewal. Telemetry is polled from the thing's messages.

Readings taken outside the document (document 001 is Haltian's Thingsee Open Services API;
Haltian's public installer apps show what they depend on):

- Sources: github.com/haltian/ThingseeInstaller, thingsee_installer/lib/thingsee_network_apis.dart
  (2021), and github.com/haltian/Thingsee-Toolbox, lib/constants/installer_constants.dart,
  lib/logic/*_backend.dart and lib/protocol/*.g.dart (its JSON models).
- Paths and auth are the document's: ``auth/client-token`` with ``client_id``/``client_secret``
  answering ``{"data": {"token"}}``, then ``Authorization: Bearer <token>`` on ``things/{tuid}``,
  ``things/{tuid}/installations[?limit=1]``, ``things/{tuid}/group``, ``things/{tuid}/messages``,
  ``things/{tuid}/commands[?limit=N]``, ``groups/``, ``groups/{id}``, ``groups/{id}/rename``,
  ``groups/{id}/things``; every answer is wrapped in ``data``.
- A group's members: both apps read ``GET /groups/{id}/things`` as ``{"data": {"group_id",
  "tuids": [...]}}`` (the document shows no body); read beside the simulator's list of
  ``{"group_id", "tuid"}`` (``_wire_things.member_tuids``).
- Groups: ``GET /groups/`` is a list of ``{"group_id", "group_description"}`` with no member
  count (the count stays unknown); a delete answers ``{"group_id", "deleted"}``.
- Thing info: ``battery_level`` and ``timestamp`` as integers, ``gateway_tuid``, ``version``;
  the Toolbox reads no ``location``, so a thing without one is normal.
- Installation status: ``?limit=1`` takes ``data[0]`` as the current status (newest first); the
  Toolbox's model of an installation entry also carries ``group_id``.
- Commands: the Toolbox posts an array of ``{"tsmId", "tsmEv", "tsmDstTuid", ...parameters}``
  and reads the answer's ``data.commands``; a listing entry is ``{"tuid", "timestamp",
  "responsible", "command"}`` as documented (``limit=0`` asks for all). Haltian's command
  spec (https://support.haltian.com/knowledgebase/thingsee-message-commands,
  https://developer.haltian.io/thingsee-iot/apis/message-profiles/message-commands) calls
  ``tsmDstTuid`` the target and required, so the client sends it too (the path's tuid).
- Errors: the Toolbox reads ``{"statusCode", "error", "message"}``; ``message`` is shown.
- ``transactionId``: Haltian's command spec (the two pages above) says it is allocated by the
  client and returned by the sensor when it has handled the command (its response message,
  ``tsmEv`` 31 for a configuration, 36 for a command). Neither installer app sends or reads
  it. The client sends it and matches it where the command listing echoes it (document 001's
  sample); a listing without it leaves the already-sent check (service/sync.py) without a
  match after a lost answer, so such a command would be sent again rather than lost.
- Search and listing: document 001 has neither, and a thing carries no name (neither do the
  installer apps' thing models). A search asks for the exact tuid, then lists every group's
  members (``groups/``, ``groups/{id}/things``, ``unassigned`` included) and matches tuids on
  this side; a status filter reads each member's ``installations?limit=1``. Both are bounded by
  a time budget and say how far they got (``_things_listing``).
- Message times: ``tsmTs`` may carry milliseconds as a decimal
  (https://developer.haltian.io/thingsee-iot/apis/message-profiles/message-header); whole
  seconds are read. The base URL is per deployment,
  ``https://{apiId}.execute-api.{region}.amazonaws.com/prod/v1/``
  (https://developer.haltian.io/thingsee-iot/apis/open-service-api), the configured ``url``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import httpx

from fieldtui.config import ThingsBackend
from fieldtui.connectors._http import (
    decode_json,
    default_error_text,
    invalid_shape,
    make_client,
    raise_for_status,
    segment,
    send,
)
from fieldtui.connectors._things_listing import SCAN_SECONDS, Members, ThingsLister
from fieldtui.connectors._wire_lenient import envelope, parse
from fieldtui.connectors._wire_things import (
    AlertCountWire,
    AlertingWire,
    CommandRecordWire,
    DeletedWire,
    GroupOfThingWire,
    GroupWire,
    InstallationSetWire,
    InstallationWire,
    RenamedWire,
    SentCommandsWire,
    ThingAlertWire,
    ThingWire,
    TokenWire,
    active_alert_types,
    member_tuids,
    message_time,
    to_command,
    to_group,
    to_record,
    to_sample,
)
from fieldtui.connectors.base import Connector
from fieldtui.connectors.search import SearchPage
from fieldtui.core.alerts import AlertingDevice, CloudAlerts
from fieldtui.core.capabilities import Capabilities, TelemetryMode
from fieldtui.core.errors import AuthError, BackendError, NotFound, Rejected
from fieldtui.core.filters import DeviceFilter
from fieldtui.core.models import (
    BackendKind,
    Command,
    Device,
    Group,
    InstallationRecord,
    InstallationStatus,
    TelemetrySample,
)

#: Document 001: "Token expires in 15 mins".
TOKEN_LIFETIME = 15 * 60.0
#: Renew this long before expiry, so a request never leaves with a token about to die.
TOKEN_RENEW_MARGIN = 60.0
#: A thing whose last event is older than this is shown offline.
ONLINE_WINDOW = 15 * 60.0
#: An alert whose span ended this recently is still active (its ``to`` is the server's now).
ALERT_ACTIVE_WINDOW = 5 * 60.0
#: Document 001: the only message ids that may be sent as commands.
ALLOWED_COMMAND_IDS: tuple[int, ...] = (1500, 1501, 12200, 13200)
UNASSIGNED = "unassigned"
#: Messages per request when polling; a full page means more may wait, fetched at once.
MESSAGE_PAGE = 100
#: Pages fetched in one poll at most: a thing sending more than this between two polls loses
#: its oldest excess messages rather than stalling the stream.
MAX_PAGES_PER_POLL = 20
#: Seconds a complete scan of every group's members is reused by the next search or listing.
MEMBERS_TTL = 60.0
#: Seconds a listing asked for as a whole (``list_devices``) may spend; a search spends less.
LIST_SECONDS = 10.0
#: Things read at once when a listing or the alerting list reads each one.
LIST_CONCURRENCY = 8
#: The alerting list's things whose alert types are read (the rest are listed by tuid only).
ALERTING_READ_CAP = 200

T = TypeVar("T")


def _valid_group_id(group_id: str, backend: str, *, allow_unassigned: bool = False) -> str:
    """Document 001's rule for group ids, checked before anything is sent."""
    if not group_id:
        raise Rejected("a group id is required", backend=backend)
    if any(ch.isspace() for ch in group_id):
        raise Rejected(f"group id {group_id!r} must not contain whitespace", backend=backend)
    if group_id == UNASSIGNED and not allow_unassigned:
        raise Rejected(
            f'group id must not be "{UNASSIGNED}": that is the implicit group of things without one',
            backend=backend,
        )
    return group_id


def _message_id(name: str, backend: str) -> int:
    allowed = ", ".join(str(i) for i in ALLOWED_COMMAND_IDS)
    try:
        message_id = int(name.strip())
    except ValueError:
        message_id = -1
    if message_id not in ALLOWED_COMMAND_IDS:
        raise Rejected(
            f"message id {name!r} cannot be sent as a command; allowed message ids are {allowed}",
            backend=backend,
        )
    return message_id


class ThingsConnector(Connector):
    kind = BackendKind.THINGS
    capabilities = Capabilities(
        lookup=True,
        search=True,
        telemetry=TelemetryMode.POLL,
        installation_status=True,
        groups=True,
        tasks=False,
        commands=True,
        alerts=True,
    )
    #: Document 001 lists things only as a deployment group's members: a query (tuids) and an
    #: installation status are matched here, over the members of every group (``_things_listing``).
    device_filters: ClassVar[frozenset[str]] = frozenset({"query", "group", "installation_status"})
    search_scope: ClassVar[str | None] = "tuids only (no names)"

    def __init__(
        self,
        name: str,
        config: ThingsBackend,
        secret: str | None,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name)
        self._config = config
        self._secret = secret
        self._base = config.url
        self._owns_client = client is None
        self._client = client or make_client(config.url, timeout=config.timeout, ca_bundle=config.ca_bundle)
        self._clock = clock
        self._token: str | None = None
        self._token_renew_at = 0.0
        self._token_lock = asyncio.Lock()
        #: The last complete scan of every group's members, and when it was taken.
        self._members_memo: tuple[float, Members] | None = None

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # -- the client token ------------------------------------------------------------------
    def _fresh_token(self) -> str | None:
        if self._token is not None and self._clock() < self._token_renew_at:
            return self._token
        return None

    async def _access_token(self) -> str:
        token = self._fresh_token()
        if token is not None:
            return token
        async with self._token_lock:
            # Whoever held the lock before us may have renewed it already.
            return self._fresh_token() or await self._request_token()

    async def _renew_refused(self, refused: str) -> str:
        """A request was refused with ``refused``: renew once, unless someone already did."""
        async with self._token_lock:
            if self._token is not None and self._token != refused:
                return self._token
            self._token = None
            return await self._request_token()

    async def _request_token(self) -> str:
        if not self._secret:
            raise AuthError(
                "no client secret configured",
                backend=self.name,
                hint=f"set it with `fieldtui login {self.name}` or the FIELDTUI_SECRET_* variable",
            )
        issued = self._clock()
        response = await send(
            self._client,
            self.name,
            "POST",
            self._base + "/auth/client-token",
            json={"client_id": self._config.client_id, "client_secret": self._secret},
            timeout=self._config.timeout,
        )
        if response.status_code in (400, 401, 403):
            # Wrong or malformed credentials: no retry will help until the secret is fixed.
            words = default_error_text(response) or f"HTTP {response.status_code}"
            raise AuthError(
                f"client token refused: {words}",
                backend=self.name,
                hint=f"check client_id {self._config.client_id!r} and the secret (`fieldtui login {self.name}`)",
            )
        raise_for_status(response, self.name)
        body = decode_json(response, self.name)
        wire = parse(TokenWire, envelope(body, response, self.name), response, self.name)
        self._token = wire.token
        self._token_renew_at = issued + TOKEN_LIFETIME - TOKEN_RENEW_MARGIN
        return wire.token

    # -- plumbing --------------------------------------------------------------------------
    def _thing_path(self, tuid: str, *rest: str) -> str:
        """``/things/{tuid}/...`` with the tuid as one quoted segment (ids are data, not paths)."""
        return "/".join(("/things", segment(tuid, self.name), *rest))

    def _group_path(self, group_id: str, *rest: str) -> str:
        return "/".join(("/groups", segment(group_id, self.name), *rest))

    async def _send(
        self, token: str, method: str, path: str, params: dict[str, Any] | None, body: Any
    ) -> httpx.Response:
        return await send(
            self._client,
            self.name,
            method,
            self._base + path,
            params=params,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=self._config.timeout,
        )

    async def _call(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> tuple[httpx.Response, Any]:
        """One authenticated request; returns the response and its ``data``."""
        token = await self._access_token()
        response = await self._send(token, method, path, params, body)
        if response.status_code == 401:
            token = await self._renew_refused(token)
            response = await self._send(token, method, path, params, body)
        raise_for_status(response, self.name)
        decoded = decode_json(response, self.name)
        return response, envelope(decoded, response, self.name)

    def _items(self, response: httpx.Response, data: Any, what: str) -> list[Any]:
        if not isinstance(data, list):
            raise invalid_shape(response, self.name, f"expected a list of {what}")
        return data

    # -- reading ---------------------------------------------------------------------------
    async def probe(self) -> None:
        response, data = await self._call("GET", "/things/alerts/count")
        parse(AlertCountWire, data, response, self.name)

    async def get_device(self, device_id: str) -> Device:
        tuid = device_id.strip()
        info, history, group, alerts = await asyncio.gather(
            self._call("GET", self._thing_path(tuid)),
            self._history_payload(tuid),
            self._group_payload(tuid),
            self._alerts_payload(tuid),
            return_exceptions=True,
        )
        if isinstance(info, BaseException):
            raise info
        # The thing exists; a side route that does not know it just leaves that field empty.
        history_value = _value_or(history, [])
        group_value = _value_or(group, None)
        alerts_value = _value_or(alerts, ([], []))
        response, data = info
        if not isinstance(data, Mapping):
            raise invalid_shape(response, self.name, "expected a thing object in 'data'")
        thing = parse(ThingWire, data, response, self.name)
        last_seen = thing.timestamp
        online = None
        if last_seen is not None:
            online = (datetime.now(UTC) - last_seen).total_seconds() <= ONLINE_WINDOW
        latest, latest_raw = history_value[0] if history_value else (None, None)
        raw: dict[str, Any] = {
            "thing": dict(data),
            "group": group_value[1] if group_value else None,
            "installation": latest_raw,
            "alerts": alerts_value[1],
        }
        return Device(
            id=tuid,
            backend=self.name,
            kind=BackendKind.THINGS,
            firmware=thing.version,
            online=online,
            last_seen=last_seen,
            battery=thing.battery_level,
            location=thing.position,
            group=group_value[0] if group_value else None,
            installation_status=latest.status if latest else None,
            alerts=tuple(alerts_value[0]),
            raw=raw,
        )

    async def _alerts_payload(self, tuid: str) -> tuple[list[str], list[Any]]:
        response, data = await self._call("GET", self._thing_path(tuid, "alerts"))
        items = self._items(response, data, "alerts")
        wires = [parse(ThingAlertWire, item, response, self.name) for item in items]
        return active_alert_types(wires, datetime.now(UTC), ALERT_ACTIVE_WINDOW), items

    async def alerts(self, device_id: str) -> list[str]:
        """The alert types active on the thing now (its alert history is in ``raw``)."""
        active, _ = await self._alerts_payload(device_id.strip())
        return active

    def _lister(self) -> ThingsLister:
        return ThingsLister(
            list_groups=self.list_groups,
            group_members=self.group_members,
            get_device=self.get_device,
            current_status=self.current_status,
        )

    async def _members(self, lister: ThingsLister, deadline: float, group: str | None) -> Members:
        """Every group's members (remembered for ``MEMBERS_TTL`` seconds when the scan was
        complete: a technician typing asks again at each pause, and the tuids rarely change),
        or one group's (always asked)."""
        if group is not None:
            return await lister.members(deadline, group)
        memo = self._members_memo
        if memo is not None and self._clock() - memo[0] < MEMBERS_TTL:
            return memo[1]
        members = await lister.members(deadline)
        if members.partial is None:
            self._members_memo = (self._clock(), members)
        return members

    async def current_status(self, device_id: str) -> InstallationStatus | None:
        """The thing's current installation status (``installations?limit=1``), None if unset."""
        history = await self._history_payload(device_id.strip(), 1)
        return history[0][0].status if history else None

    async def list_devices(self, filter: DeviceFilter) -> list[Device]:
        """Things listed as groups' members (one group's, or every group's), each read in full.

        The API lists nothing else (module ``_things_listing``): a query matches tuids and an
        installation status is read thing by thing, both on this side, within
        ``LIST_SECONDS``. At most ``filter.limit`` things."""
        found: list[Device] = []
        async for page in self.list_pages(filter, budget=LIST_SECONDS):
            found += page.devices
        return found

    async def list_pages(
        self, filter: DeviceFilter, *, budget: float | None = None
    ) -> AsyncGenerator[SearchPage, None]:
        """:meth:`list_devices` page by page; the last page says when it stopped short."""
        self._check_filters(filter)
        started = time.monotonic()
        spend = SCAN_SECONDS if budget is None else max(0.0, budget)
        deadline = started + spend
        # Listing and status reads take two thirds at most: the matches are then read in full.
        finding = started + spend * 2 / 3
        lister = self._lister()
        members = await self._members(lister, finding, filter.group)
        needle = (filter.query or "").strip().lower()
        tuids = [tuid for tuid in members.groups if needle in tuid.lower()]
        partial = members.partial
        if filter.installation_status is not None:
            total = len(tuids)
            tuids, read = await lister.with_status(tuids, filter.installation_status, finding)
            if read < total:
                partial = f"read the status of {read} of {total} things before the time ran out"
        if filter.limit is not None:
            tuids = tuids[: filter.limit]
        handed = 0
        async for devices in lister.read(tuids, deadline):
            handed += len(devices)
            yield SearchPage(devices)
        if handed < len(tuids) and partial is None:
            partial = f"read {handed} of the {len(tuids)} things found before the time ran out"
        if partial is not None:
            yield SearchPage(partial=f"partial: the things API has no listing; {partial}")

    async def search(self, query: str, *, limit: int | None = None) -> list[Device]:
        """Things whose tuid holds ``query`` (see :meth:`search_pages`)."""
        found: list[Device] = []
        async for page in self.search_pages(query, limit=limit):
            found += page.devices
        return found

    async def search_pages(
        self, query: str, *, limit: int | None = None, budget: float | None = None
    ) -> AsyncGenerator[SearchPage, None]:
        """The exact tuid first; else every group's members whose tuid holds ``query`` (ignoring
        case), read in full as they are found. Things carry no names to search."""
        needle = query.strip()
        if not needle or limit == 0:
            return
        if not needle.isalnum():
            return  # a tuid is letters and digits: "Lab 132" or "dev-18" cannot be part of one
        try:
            yield SearchPage([await self.get_device(needle)])
            return
        except (NotFound, Rejected):
            pass
        async for page in self.list_pages(DeviceFilter(query=needle, limit=limit), budget=budget):
            yield page

    async def alerting(self) -> CloudAlerts:
        """``GET /things/alerts`` and ``/things/alerts/count``, then each alerting thing's
        active alert types (a few at a time, at most :data:`ALERTING_READ_CAP` of them)."""
        tuids, count = await asyncio.gather(self.alerting_devices(), self.alert_count())
        gate = asyncio.Semaphore(LIST_CONCURRENCY)

        async def one(tuid: str) -> AlertingDevice | None:
            async with gate:
                try:
                    return AlertingDevice(
                        backend=self.name, device=tuid, alerts=tuple(await self.alerts(tuid))
                    )
                except BackendError:
                    return None

        read = await asyncio.gather(*(one(tuid) for tuid in tuids[:ALERTING_READ_CAP]))
        devices = [
            d if d is not None else AlertingDevice(backend=self.name, device=tuid)
            for tuid, d in zip(tuids, read, strict=False)
        ]
        devices += [AlertingDevice(backend=self.name, device=tuid) for tuid in tuids[ALERTING_READ_CAP:]]
        unread = sum(1 for d in read if d is None) + max(0, len(tuids) - ALERTING_READ_CAP)
        return CloudAlerts(backend=self.name, devices=tuple(devices), count=count, unread=unread)

    async def alerting_devices(self) -> list[str]:
        """Every tuid with an active alert (``GET /things/alerts``)."""
        response, data = await self._call("GET", "/things/alerts")
        return parse(AlertingWire, data, response, self.name).alerting_tuids

    async def alert_count(self) -> int:
        response, data = await self._call("GET", "/things/alerts/count")
        return parse(AlertCountWire, data, response, self.name).alert_count

    async def installation_history(
        self, device_id: str, *, limit: int | None = None
    ) -> list[InstallationRecord]:
        """Newest first. Entries with a status outside the documented five are left out."""
        return [record for record, _ in await self._history_payload(device_id.strip(), limit)]

    async def _history_payload(
        self, tuid: str, limit: int | None = None
    ) -> list[tuple[InstallationRecord, dict[str, Any]]]:
        params = {"limit": limit} if limit is not None else None
        response, data = await self._call("GET", self._thing_path(tuid, "installations"), params=params)
        entries: list[tuple[InstallationRecord, dict[str, Any]]] = []
        for item in self._items(response, data, "installation entries"):
            record = to_record(parse(InstallationWire, item, response, self.name), self.name, tuid)
            if record is not None:
                entries.append((record, dict(item)))
        # The document states no order: sort rather than trust the server's.
        entries.sort(key=lambda entry: entry[0].timestamp, reverse=True)
        return entries

    async def _group_payload(self, tuid: str) -> tuple[str, dict[str, Any]]:
        response, data = await self._call("GET", self._thing_path(tuid, "group"))
        wire = parse(GroupOfThingWire, data, response, self.name)
        return wire.group_id, dict(data)

    async def get_group(self, device_id: str) -> str | None:
        """The thing's deployment group (``unassigned`` when it has none)."""
        group_id, _ = await self._group_payload(device_id.strip())
        return group_id

    async def list_groups(self, query: str | None = None) -> list[Group]:
        params = {"q": query} if query else None
        response, data = await self._call("GET", "/groups/", params=params)
        return [
            to_group(parse(GroupWire, item, response, self.name), self.name)
            for item in self._items(response, data, "groups")
        ]

    async def group_members(self, group_id: str) -> list[str]:
        response, data = await self._call("GET", self._group_path(group_id, "things"))
        members = member_tuids(data)
        if members is None:
            raise invalid_shape(
                response, self.name, "expected tuids, objects with 'tuid', or an object with 'tuids'"
            )
        return members

    async def messages(
        self,
        device_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = MESSAGE_PAGE,
    ) -> list[TelemetrySample]:
        """The thing's messages in [since, until] as samples, newest first, at most ``limit``."""
        tuid = device_id.strip()
        raw = await self._message_page(tuid, _unix(since), _unix(until), limit)
        samples = [(ts, msg) for msg in raw if (ts := message_time(msg)) is not None]
        samples.sort(key=lambda pair: pair[0], reverse=True)
        return [to_sample(msg, self.name, tuid, ts) for ts, msg in samples]

    async def _message_page(
        self, tuid: str, since: int | None, until: int | None, limit: int
    ) -> list[Mapping[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if since is not None:
            params["from"] = since
        if until is not None:
            params["to"] = until
        response, data = await self._call("GET", self._thing_path(tuid, "messages"), params=params)
        items = self._items(response, data, "messages")
        if not all(isinstance(item, Mapping) for item in items):
            raise invalid_shape(response, self.name, "expected message objects")
        return items

    async def _messages_since(self, tuid: str, cursor: int | None) -> list[tuple[int, Mapping[str, Any]]]:
        """Every message from ``cursor`` (inclusive) to now, oldest first, paging back as needed."""
        found: list[tuple[int, Mapping[str, Any]]] = []
        upper: int | None = None
        for _ in range(MAX_PAGES_PER_POLL):
            page = await self._message_page(tuid, cursor, upper, MESSAGE_PAGE)
            stamped = [(ts, msg) for msg in page if (ts := message_time(msg)) is not None]
            found.extend(stamped)
            if len(page) < MESSAGE_PAGE or cursor is None or not stamped:
                break
            oldest = min(ts for ts, _ in stamped)
            if upper is not None and oldest >= upper:
                break  # more than a page at one second: the rest is dropped, not looped on
            upper = oldest
        found.sort(key=lambda pair: pair[0])
        return found

    async def telemetry(
        self, device_id: str, *, since: datetime | None = None
    ) -> AsyncIterator[TelemetrySample]:
        """Poll the thing's messages every ``poll_interval`` seconds, oldest sample first.

        Without ``since`` the stream starts with the latest page of messages. Polls ask from the
        last message's ``tsmTs`` (the API's ``from`` is inclusive), and messages already yielded
        at that second are recognised and skipped, so nothing repeats and nothing is lost.
        """
        tuid = device_id.strip()
        cursor = _unix(since)
        seen_at_cursor: set[str] = set()
        while True:
            for ts, message in await self._messages_since(tuid, cursor):
                if cursor is not None and ts < cursor:
                    continue
                key = _message_key(message)
                if ts == cursor and key in seen_at_cursor:
                    continue
                if cursor is None or ts > cursor:
                    cursor, seen_at_cursor = ts, set()
                seen_at_cursor.add(key)
                yield to_sample(message, self.name, tuid, ts)
            await asyncio.sleep(self._config.poll_interval)

    async def list_commands(self, device_id: str) -> list[Command]:
        """Commands sent to the thing, oldest first (the API lists only the allowed ids)."""
        tuid = device_id.strip()
        response, data = await self._call("GET", self._thing_path(tuid, "commands"))
        commands = []
        for item in self._items(response, data, "commands"):
            wire = parse(CommandRecordWire, item, response, self.name)
            raw_command = item["command"] if isinstance(item.get("command"), Mapping) else {}
            commands.append(
                to_command(
                    wire.command,
                    raw_command,
                    self.name,
                    tuid,
                    responsible=wire.responsible,
                    sent=wire.timestamp,
                )
            )
        return commands

    # -- writing ---------------------------------------------------------------------------
    #: Document 001: a command carries a client-allocated ``transactionId`` that the thing echoes.
    echoes_command_correlation: ClassVar[bool] = True

    async def send_command(
        self, device_id: str, name: str, params: dict[str, Any], *, correlation: int | None = None
    ) -> Command:
        """``name`` is the message id (1500, 1501, 12200 or 13200); ``params`` holds ``tsmEv``
        and the message's own attributes. Anything else is refused before a request is made.

        ``correlation`` is sent as the command's ``transactionId`` (document 001's sample body
        carries one): the command list echoes it, so a check after a lost answer finds exactly
        this command, not another one with the same message id."""
        message_id = _message_id(name, self.name)
        event = params.get("tsmEv")
        if isinstance(event, bool) or not isinstance(event, int | str) or not str(event).strip().isdigit():
            raise Rejected("a command needs an event id (tsmEv, a number)", backend=self.name)
        tuid = device_id.strip()
        # ``tsmDstTuid`` as Haltian's command spec and Toolbox send it (the path's thing, never
        # one named in ``params``).
        command = {**params, "tsmId": message_id, "tsmEv": int(event), "tsmDstTuid": tuid}
        if correlation is not None:
            command["transactionId"] = correlation
        # Document 001: the body is an array of commands.
        response, data = await self._call("POST", self._thing_path(tuid, "commands"), body=[command])
        sent = parse(SentCommandsWire, data, response, self.name)
        if not sent.commands:
            raise invalid_shape(response, self.name, "no command in the answer")
        raw_commands = data.get("commands") if isinstance(data, Mapping) else None
        raw = raw_commands[0] if isinstance(raw_commands, list) and raw_commands else command
        return to_command(sent.commands[0], raw, self.name, tuid, responsible=sent.responsible, sent=None)

    def command_correlation(self, command: Command) -> int | None:
        """The ``transactionId`` the listed command carries (a number, possibly sent as text)."""
        value = command.parameters.get("transactionId")
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
        return None

    async def set_installation_status(self, device_id: str, status: InstallationStatus) -> None:
        tuid = device_id.strip()
        response, data = await self._call(
            "POST",
            self._thing_path(tuid, "installations"),
            body={"installation_status": InstallationStatus(status).value},
        )
        answer = parse(InstallationSetWire, data, response, self.name)
        if answer.installation_status is not None and answer.installation_status != status.value:
            raise Rejected(
                f"the server kept installation status {answer.installation_status!r}", backend=self.name
            )

    async def move_to_group(self, device_id: str, group_id: str) -> None:
        """Moving to ``unassigned`` takes the thing out of its group."""
        gid = _valid_group_id(group_id, self.name, allow_unassigned=True)
        tuid = device_id.strip()
        response, data = await self._call("POST", self._thing_path(tuid, "group"), body={"group_id": gid})
        parse(GroupOfThingWire, data, response, self.name)

    async def create_group(self, group_id: str, description: str | None = None) -> Group:
        gid = _valid_group_id(group_id, self.name)
        body: dict[str, Any] = {"group_id": gid}
        if description is not None:
            body["group_description"] = description
        response, data = await self._call("POST", "/groups", body=body)
        wire = parse(GroupWire, data, response, self.name)
        return Group(
            backend=self.name, id=wire.group_id, description=wire.group_description or None, member_count=0
        )

    async def rename_group(self, group_id: str, new_group_id: str) -> Group:
        old = _valid_group_id(group_id, self.name)
        new = _valid_group_id(new_group_id, self.name)
        response, data = await self._call("POST", self._group_path(old, "rename"), body={"group_id": new})
        wire = parse(RenamedWire, data, response, self.name)
        if not wire.renamed:
            raise Rejected(f"the server did not rename group {old!r} to {new!r}", backend=self.name)
        return Group(backend=self.name, id=wire.group_id)

    async def delete_group(self, group_id: str) -> None:
        gid = _valid_group_id(group_id, self.name)
        response, data = await self._call("DELETE", self._group_path(gid))
        if not parse(DeletedWire, data, response, self.name).deleted:
            raise Rejected(f"the server did not delete group {gid!r}", backend=self.name)


def _value_or(result: T | BaseException, default: T) -> T:
    """A side route's value; NotFound means "nothing there"; other failures are raised."""
    if isinstance(result, NotFound):
        return default
    if isinstance(result, BaseException):
        raise result
    return result


def _unix(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def _message_key(message: Mapping[str, Any]) -> str:
    """Identity of a message within one second (there is no message id beyond tsmId/tsmEv)."""
    return repr(sorted((str(k), repr(v)) for k, v in message.items()))


__all__ = ["ALLOWED_COMMAND_IDS", "ThingsConnector"]
