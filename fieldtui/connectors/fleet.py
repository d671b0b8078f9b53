"""The fleet connector (vendor document 004): devices by serial, filters, CRUD and attributes.

Authentication is a static token sent as ``Authorization: Bearer <secret>`` (or HTTP Basic, see
below). The document names fields, filters and operations but no paths or envelopes; this
follows the simulator's reading (relative to the configured URL): ``/devices`` (list, create),
``/devices/{serial}`` (get, patch, delete), ``/devices/{serial}/attributes`` (get, patch);
single resources come as ``{"data": {...}}``, lists as ``{"data": [...], "paging": {...}}``
with ``page``/``per_page``. List filters repeat a key (``release=1.2.3&release=1.2.4``).

Readings taken outside the document (document 004 is an older page of Memfault's Devices API,
still published as https://docs.memfault.com/api/devices):

- Paths: Memfault serves the same routes under
  ``https://api.memfault.com/api/v0/organizations/{org}/projects/{project}`` (``/devices``,
  ``/devices/{device_serial}``, ``/devices/{device_serial}/attributes``), so that prefix is the
  configured ``url`` and no path changes. Sources: Memfault's tutorial "Adding a Device to a
  Cohort - API" (repo rksawyer/memfault-docs, a copy of Memfault's docs site) and Nordic's
  Memfault integration, NordicSemiconductor/asset-tracker-cloud-memfault-aws-js,
  lambda/updateMemfaultDeviceInfo.ts.
- Auth: an organization auth token as ``Authorization: Bearer <token>``
  (https://docs.memfault.com/api, https://docs.memfault.com/docs/platform/organization-auth-tokens);
  older pages and Nordic's client send it as HTTP Basic with an empty user name
  (https://docs.memfault.com/docs/ci/authentication: ``curl -u ":$TOKEN"``; the .ts file above),
  and a user's API key goes as Basic ``email:key``. ``auth = "basic"`` (with ``username``, the
  email, or empty for a token) selects Basic; ``bearer`` stays the default.
- The device body today (Nordic's features/UpdateHardwareRevision.feature, 2022):
  ``hardware_version`` is an object ``{"name": ...}``, the release seen is
  ``last_seen_software_version`` (``version``, ``software_type``), and ``nickname``,
  ``description``, ``project`` are added; the 2019 tutorial's body adds ``cohort.count_devices``,
  ``latest_install``, ``latest_trace`` and sends ``owner_ref: ""`` and ``last_seen: null``. Both
  are read (``_wire_fleet``); PATCH may answer 202 with the device, and a POST of an existing
  serial 409 (tutorial).
- Paging: ``{"item_count", "page", "page_count", "per_page", "total_count"}`` (Nordic's feature
  files, a ``?page=1&per_page=5000`` listing); read beside the simulator's ``total``/``total_pages``.
- Errors: ``{"error": {"code", "http_code", "message", "type"}}`` (same feature file); the
  message is what a technician reads.
- Not found in public material: the current list filters and sort keys (the document's are
  sent as they are), and the attribute bodies (the simulator's reading is kept).

The API has no search (it lists: this connector matches on its side). A search asks for the
exact serial (``GET /devices/{serial}``) and the exact owner (``owner_ref=`` filter) at once;
only when neither matches does it list devices and match serials, owners and nicknames (the
current body's name; document 004 has none) by substring on this side, a few pages in flight at a time, each
page's matches handed on as it arrives, stopping within a time budget and a device cap (and
then saying how much of the fleet it looked at).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from fieldtui.config import FleetBackend
from fieldtui.connectors._bearer import BearerRestConnector
from fieldtui.connectors._http import invalid_shape, segment
from fieldtui.connectors._wire_fleet import AttributeWire, FleetDeviceWire, PagingWire, to_device
from fieldtui.connectors._wire_lenient import envelope, parse
from fieldtui.connectors.search import SearchPage
from fieldtui.core.capabilities import Capabilities
from fieldtui.core.errors import NotFound, Rejected
from fieldtui.core.filters import DeviceFilter
from fieldtui.core.models import BackendKind, Device

#: Devices per page asked for (the simulator's maximum).
PAGE_SIZE = 100
#: A list never follows more pages than this (a server whose paging never ends).
MAX_PAGES = 1000
#: A search that no filter can answer looks at most at this many devices...
SEARCH_SCAN_CAP = 50_000
#: ...for at most this many seconds (unless the caller gives its own budget).
SEARCH_SCAN_SECONDS = 3.0
#: List pages in flight at once during such a scan.
SEARCH_SCAN_WINDOW = 4
#: A query that can be sent as a path segment as it is (anything else is only matched as text).
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.:-]+")
#: The fields ``PATCH /devices/{serial}`` accepts (document 004's request schema and cohort).
UPDATABLE_FIELDS = frozenset({"owner_ref", "hardware_version", "cohort"})
#: What document 004's "Create a device" takes beside the serial, all required.
CREATE_FIELDS = ("owner_ref", "hardware_version")
#: A device update's field ``attributes.KEY`` sets the device attribute KEY.
ATTRIBUTE_PREFIX = "attributes."


def _iso(value: datetime) -> str:
    """Document 004's timestamp form: microseconds and an explicit offset."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _discard(task: asyncio.Future[Any]) -> None:
    """Cancel ``task``; if it already failed, take its exception (nobody will ask for it)."""
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()


def _as_list(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _mentions(*values: Any, needle: str) -> bool:
    """True when the lower-cased ``needle`` is part of one of ``values`` (serial, owner, nickname)."""
    return any(needle in str(value).lower() for value in values if value)


class FleetConnector(BearerRestConnector):
    kind = BackendKind.FLEET
    capabilities = Capabilities(lookup=True, search=True, device_update=True, device_lifecycle=True)
    device_filters = frozenset(
        {"query", "release", "owner", "hardware_version", "last_seen_since", "last_seen_until", "sort"}
    )
    search_scope = "serials, owners, nicknames"

    def __init__(
        self,
        name: str,
        config: FleetBackend,
        secret: str | None,
        *,
        client: httpx.AsyncClient | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        super().__init__(name, config, secret, client=client)
        self._config_fleet = config
        self._page_size = page_size

    def _headers(self) -> dict[str, str]:
        if self._config_fleet.auth == "bearer":
            return super()._headers()
        # Memfault's Basic: ``email:api-key`` for a user, ``:token`` for an organization token.
        pair = f"{self._config_fleet.username}:{self._secret or ''}"
        if not self._secret:
            super()._headers()  # the same clear "no API token configured" refusal
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii")}

    def _device_path(self, device_id: str, *rest: str) -> str:
        """``/devices/{serial}/...`` with the serial as one quoted segment (ids are data, not paths)."""
        return "/".join(("/devices", segment(device_id.strip(), self.name), *rest))

    def _device(self, response: httpx.Response, body: Any) -> Device:
        data = envelope(body, response, self.name)
        if not isinstance(data, Mapping):
            raise invalid_shape(response, self.name, "expected a device object in 'data'")
        return to_device(parse(FleetDeviceWire, data, response, self.name), dict(data), self.name)

    def _attributes(self, response: httpx.Response, body: Any) -> dict[str, Any]:
        data = envelope(body, response, self.name)
        if not isinstance(data, list):
            raise invalid_shape(response, self.name, "expected a list of attributes in 'data'")
        wires = [parse(AttributeWire, item, response, self.name) for item in data]
        return {wire.string_key: wire.value for wire in wires}

    # -- reading ---------------------------------------------------------------------------
    async def probe(self) -> None:
        await self._call("GET", "/devices", params={"page": 1, "per_page": 1})

    async def get_device(self, device_id: str) -> Device:
        response, body = await self._call("GET", self._device_path(device_id))
        return self._device(response, body)

    async def list_devices(
        self,
        filter: DeviceFilter | None = None,
        *,
        release: str | Sequence[str] | None = None,
        owner_ref: str | Sequence[str] | None = None,
        hardware_version: str | Sequence[str] | None = None,
        last_seen_since: datetime | None = None,
        last_seen_until: datetime | None = None,
        sort: str | None = None,
        limit: int | None = None,
    ) -> list[Device]:
        """Devices matching every filter given (a list filter matches any of its values), all
        pages followed, at most ``limit``. ``sort`` is a key such as ``-last_seen``. A
        :class:`DeviceFilter` gives them all at once (``owner`` is document 004's ``owner_ref``)."""
        if filter is not None:
            self._check_filters(filter)
            needle = (filter.query or "").strip().lower()
            if needle and filter.given() == ["query"]:
                return await self.search(filter.query or "", limit=filter.limit)
            listed = await self.list_devices(
                release=filter.release or None,
                owner_ref=filter.owner or None,
                hardware_version=filter.hardware_version or None,
                last_seen_since=filter.last_seen_since,
                last_seen_until=filter.last_seen_until,
                sort=filter.sort,
                limit=None if needle else filter.limit,
            )
            if needle:
                # The API has no search: the query is matched here, as a search would.
                listed = [d for d in listed if _mentions(d.id, d.raw.get("owner_ref"), d.name, needle=needle)]
            return listed if filter.limit is None else listed[: filter.limit]
        params: dict[str, Any] = {"per_page": self._page_size}
        for key, value in (
            ("release", release),
            ("owner_ref", owner_ref),
            ("hardware_version", hardware_version),
        ):
            values = _as_list(value)
            if values is not None:
                params[key] = values
        if last_seen_since is not None:
            params["last_seen_since"] = _iso(last_seen_since)
        if last_seen_until is not None:
            params["last_seen_until"] = _iso(last_seen_until)
        if sort:
            params["sort"] = sort
        devices: dict[str, Device] = {}
        page = 1
        while page <= MAX_PAGES and (limit is None or len(devices) < limit):
            response, body = await self._call("GET", "/devices", params={**params, "page": page})
            data = envelope(body, response, self.name)
            if not isinstance(data, list):
                raise invalid_shape(response, self.name, "expected a list of devices in 'data'")
            for item in data:
                device = to_device(parse(FleetDeviceWire, item, response, self.name), dict(item), self.name)
                # Devices shift between pages while the list changes: keep each once.
                devices.setdefault(device.id, device)
            paging = (
                PagingWire.model_validate(body.get("paging") or {}) if isinstance(body, Mapping) else None
            )
            last = paging.total_pages if paging is not None else None
            if (
                not data
                or (last is not None and page >= last)
                or (last is None and len(data) < self._page_size)
            ):
                break
            page += 1
        found = _in_promised_order(list(devices.values()), sort)
        return found if limit is None else found[:limit]

    async def list_pages(
        self, filter: DeviceFilter, *, budget: float | None = None
    ) -> AsyncGenerator[SearchPage, None]:
        """A query alone is a search (listed and matched here, within ``budget``, saying when
        it stopped short); any other filter is the server's listing."""
        self._check_filters(filter)
        if filter.query and filter.given() == ["query"]:
            async for page in self.search_pages(filter.query, limit=filter.limit, budget=budget):
                yield page
            return
        yield SearchPage(await self.list_devices(filter))

    async def search(self, query: str, *, limit: int | None = None) -> list[Device]:
        """Devices whose serial or owner_ref matches ``query`` (see :meth:`search_pages`)."""
        found: list[Device] = []
        async with contextlib.aclosing(self.search_pages(query, limit=limit)) as pages:
            async for page in pages:
                found += page.devices
        return found if limit is None else found[:limit]

    async def search_pages(
        self, query: str, *, limit: int | None = None, budget: float | None = None
    ) -> AsyncGenerator[SearchPage, None]:
        """Devices whose serial or owner_ref matches ``query``, as they are found.

        An exact serial and an exact owner_ref are asked of the server first (together). When
        neither matches, devices are listed and matched by substring, ignoring case, for at most
        ``budget`` seconds (:data:`SEARCH_SCAN_SECONDS` when None) and :data:`SEARCH_SCAN_CAP`
        devices; stopping short of the end is said on the last page (``partial``).
        """
        needle = query.strip()
        if not needle or limit == 0:
            return
        started = time.monotonic()
        exact = await self._exact_matches(needle, limit)
        if exact:
            yield SearchPage(exact if limit is None else exact[:limit])
            return
        budget = SEARCH_SCAN_SECONDS if budget is None else max(0.0, budget)
        async for page in self._scan(needle.lower(), limit, started, budget):
            yield page

    async def _exact_matches(self, needle: str, limit: int | None) -> list[Device]:
        async def by_serial() -> list[Device]:
            if not _PLAIN_ID.fullmatch(needle) or needle in (".", ".."):
                return []
            try:
                return [await self.get_device(needle)]
            except (NotFound, Rejected):
                return []

        serial = asyncio.ensure_future(by_serial())
        owner = asyncio.ensure_future(self.list_devices(owner_ref=[needle], limit=limit))
        try:
            found = {device.id: device for device in await serial}
            for device in await owner:
                found.setdefault(device.id, device)
        finally:
            for task in (serial, owner):
                _discard(task)
        return list(found.values())

    async def _list_page(self, page: int) -> tuple[httpx.Response, list[Any], PagingWire | None]:
        response, body = await self._call(
            "GET", "/devices", params={"per_page": self._page_size, "page": page}
        )
        data = envelope(body, response, self.name)
        if not isinstance(data, list):
            raise invalid_shape(response, self.name, "expected a list of devices in 'data'")
        raw_paging = body.get("paging") if isinstance(body, Mapping) else None
        # Paging it cannot read leaves the scan to stop at the first short page.
        paging = PagingWire.model_validate(raw_paging) if isinstance(raw_paging, Mapping) else None
        return response, data, paging

    async def _scan(
        self, lowered: str, limit: int | None, started: float, budget: float
    ) -> AsyncIterator[SearchPage]:
        """List pages (a window of them in flight, taken in order) and keep the matching devices."""
        deadline = started + budget
        seen: set[str] = set()
        matched = scanned = 0
        total: int | None = None
        last_page: int | None = None
        next_page = 1
        in_flight: list[tuple[int, asyncio.Task[tuple[httpx.Response, list[Any], PagingWire | None]]]] = []
        max_pages = min(MAX_PAGES, -(-SEARCH_SCAN_CAP // self._page_size))
        stopped: str | None = None
        try:
            while True:
                # Until the first page says how many there are, ask for one page at a time.
                window = SEARCH_SCAN_WINDOW if last_page is not None else 1
                end = max_pages if last_page is None else min(max_pages, last_page)
                while len(in_flight) < window and next_page <= end:
                    in_flight.append((next_page, asyncio.ensure_future(self._list_page(next_page))))
                    next_page += 1
                if not in_flight:
                    if last_page is None or last_page > max_pages:
                        stopped = f"the scan cap of {SEARCH_SCAN_CAP:,} devices reached"
                    break
                page, task = in_flight.pop(0)
                done, _ = await asyncio.wait({task}, timeout=max(0.0, deadline - time.monotonic()))
                if not done:
                    _discard(task)
                    stopped = f"the {budget:g} s search budget spent"
                    break
                response, items, paging = task.result()
                if paging is not None and paging.total_pages is not None:
                    last_page = paging.total_pages
                    total = paging.total if paging.total is not None else total
                elif len(items) < self._page_size:
                    last_page = page
                scanned += len(items)
                found = self._matching(response, items, lowered, seen)
                if limit is not None:
                    found = found[: limit - matched]
                matched += len(found)
                if found:
                    yield SearchPage(found)
                if not items or (limit is not None and matched >= limit):
                    break
        finally:
            for _, pending in in_flight:
                _discard(pending)
        if stopped is not None:
            of = f" of {total:,}" if total is not None else ""
            yield SearchPage(
                partial=f"partial: the fleet API cannot search; looked at {scanned:,}{of} devices ({stopped})"
            )

    def _matching(
        self, response: httpx.Response, items: list[Any], lowered: str, seen: set[str]
    ) -> list[Device]:
        """The devices of one page whose serial or owner contains ``lowered`` (each once)."""
        found: list[Device] = []
        for item in items:
            if not isinstance(item, Mapping):
                raise invalid_shape(response, self.name, "expected device objects in 'data'")
            serial = str(item.get("device_serial") or "")
            # Only matches are parsed: the rest of the fleet costs a substring test each.
            if serial in seen or not _mentions(
                serial, item.get("owner_ref"), item.get("nickname"), needle=lowered
            ):
                continue
            device = to_device(parse(FleetDeviceWire, item, response, self.name), dict(item), self.name)
            # Devices shift between pages while the list changes: keep each once.
            if device.id not in seen:
                seen.add(device.id)
                found.append(device)
        return found

    async def get_attributes(self, device_id: str) -> dict[str, Any]:
        """The device's attributes, key to value."""
        response, body = await self._call("GET", self._device_path(device_id, "attributes"))
        return self._attributes(response, body)

    async def details(self, device_id: str) -> dict[str, Any]:
        """The device's attributes (``GET /devices/{serial}/attributes``), key to value."""
        return {"attributes": await self.get_attributes(device_id)}

    # -- writing ---------------------------------------------------------------------------
    async def create_device(self, device_id: str, fields: dict[str, Any]) -> Device:
        """``POST /devices`` with ``device_serial`` (``device_id``), ``owner_ref`` and
        ``hardware_version`` (document 004's required fields); nothing else is sent."""
        response, answer = await self._call("POST", "/devices", body=self._create_body(device_id, fields))
        return self._device(response, answer)

    def check_new_device(self, device_id: str, fields: dict[str, Any]) -> None:
        self._create_body(device_id, fields)

    def _create_body(self, device_id: str, fields: Mapping[str, Any]) -> dict[str, str]:
        unknown = sorted(set(fields) - set(CREATE_FIELDS))
        if unknown:
            raise Rejected(
                f"a new device takes only {', '.join(CREATE_FIELDS)}, not {', '.join(unknown)}",
                backend=self.name,
            )
        body = {"device_serial": device_id, **{key: str(fields.get(key) or "") for key in CREATE_FIELDS}}
        missing = [key for key, value in body.items() if not value.strip()]
        if missing:
            raise Rejected(f"a device needs {', '.join(missing)}", backend=self.name)
        return body

    def created_as_asked(self, device: Device, fields: dict[str, Any]) -> bool:
        """A device found after a create whose answer was lost is ours when its owner and
        hardware version are the ones asked for (a serial someone else made is not)."""
        shown = device.raw
        for key in CREATE_FIELDS:
            value = shown.get(key)
            if isinstance(value, Mapping):  # Memfault today: hardware_version {"name": ...}
                value = value.get("name")
            if key in fields and value is not None and str(value) != str(fields[key]):
                return False
        return True

    async def update_device(self, device_id: str, fields: dict[str, Any]) -> Device:
        """``fields``: ``owner_ref``, ``hardware_version`` and/or ``cohort`` (a slug, or None),
        and ``attributes.KEY`` for a device attribute (None removes it), sent to
        ``PATCH /devices/{serial}/attributes`` (setting a value twice does no harm)."""
        attributes = {
            k.removeprefix(ATTRIBUTE_PREFIX): v for k, v in fields.items() if k.startswith(ATTRIBUTE_PREFIX)
        }
        record = {k: v for k, v in fields.items() if not k.startswith(ATTRIBUTE_PREFIX)}
        unknown = sorted(set(record) - UPDATABLE_FIELDS)
        if unknown or "" in attributes:
            allowed = ", ".join([*sorted(UPDATABLE_FIELDS), f"{ATTRIBUTE_PREFIX}KEY"])
            bad = ", ".join(unknown) or ATTRIBUTE_PREFIX
            raise Rejected(f"cannot change {bad}; allowed: {allowed}", backend=self.name)
        if not record and not attributes:
            raise Rejected("nothing to change", backend=self.name)
        if attributes:
            await self.update_attributes(device_id, attributes)
        if not record:
            return await self.get_device(device_id)
        response, body = await self._call("PATCH", self._device_path(device_id), body=record)
        return self._device(response, body)

    async def delete_device(self, device_id: str) -> None:
        await self._call("DELETE", self._device_path(device_id))

    async def update_attributes(self, device_id: str, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """Set each attribute (None removes it); returns every attribute after the change."""
        if not attributes:
            raise Rejected("no attributes to change", backend=self.name)
        items = [{"string_key": key, "value": value} for key, value in attributes.items()]
        response, body = await self._call("PATCH", self._device_path(device_id, "attributes"), body=items)
        return self._attributes(response, body)


def _in_promised_order(devices: list[Device], sort: str | None) -> list[Device]:
    """Pages of a live list are read one after another: a device seen again between two pages
    moves up while a later page is read, so the pages joined are not quite in the order asked
    for. Sorted again here (stably, by the one documented key), they are."""
    if sort not in ("last_seen", "-last_seen"):
        return devices
    newest_first = sort == "-last_seen"
    seen = [d for d in devices if d.last_seen is not None]
    never = [d for d in devices if d.last_seen is None]
    seen.sort(key=lambda d: d.last_seen or datetime.min, reverse=newest_first)
    return seen + never
