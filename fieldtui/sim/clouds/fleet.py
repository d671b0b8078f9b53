"""The fleet device API (vendor document 004), for project ``demo``.

The document names fields, filters and operations but no paths or envelopes; this reading
settles them (relative to ``/fleet/api/v0/projects/demo``):

- ``GET /devices``: filters ``release``, ``owner_ref``, ``hardware_version`` (repeat a key for
  OR: ``release=1.2.3&release=1.2.4``; different keys AND), ``last_seen_since`` /
  ``last_seen_until`` (ISO 8601 with an offset; a device never seen matches neither), ``sort``
  one of ``last_seen``, ``created_date``, ``updated_date``, ``device_serial``, ``id`` (``-`` for
  descending; ``deployed_date``, the document's own example, sorts by ``created_date``); default
  sort ``id``. Paging: ``page`` (from 1), ``per_page`` (default 20, at most 100). Answer
  ``{"data": [...], "paging": {"page", "per_page", "total", "total_pages"}}``; a page past the
  end is empty, not an error.
- ``POST /devices`` with ``device_serial``, ``owner_ref``, ``hardware_version`` (non-empty
  strings) creates: 201 ``{"data": device}``; missing or bad fields 422; an existing serial 409.
- ``GET``/``PATCH``/``DELETE /devices/{device_serial}``: PATCH takes ``owner_ref``,
  ``hardware_version`` and ``cohort`` (a cohort slug, or ``{"slug": ...}``; ``null`` removes it);
  ``device_serial`` cannot change. DELETE answers 204.
- ``GET /devices/{serial}/attributes``: ``{"data": [{"string_key", "data_type", "value",
  "updated_date"}]}``. ``PATCH`` takes a list of ``{"string_key", "value"}`` (or ``{"data":
  [...]}``), sets each (``data_type`` follows the value: string, int, float, boolean) and answers
  the whole list; a ``null`` value removes the attribute.
- Errors: ``{"error": {"code": N, "message": "..."}}``; 401 without ``Authorization: Bearer
  <token>`` (a static token: ``expire_credentials`` revokes it until reset), 404 unknown device,
  400 bad query parameter.
- Timestamps: ``2019-01-19T05:01:13.000000+00:00`` (microseconds, explicit offset). An online
  device's ``last_seen`` keeps moving with the clock.
"""

from __future__ import annotations

import functools
import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from fieldtui.sim.clouds._http import NotJson, bearer_token, json_body
from fieldtui.sim.context import SimContext
from fieldtui.sim.fleet import SimDevice

COHORTS: dict[str, tuple[int, str]] = {
    "beta": (1, "Beta Channel"),
    "stable": (2, "Stable"),
    "canary": (3, "Canary"),
}
SORT_KEYS = ("last_seen", "created_date", "updated_date", "device_serial", "id")
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
_REQUIRED = ("device_serial", "owner_ref", "hardware_version")
_SITES = ("plant", "depot", "tower", "campus", "harbour")
#: Listings kept for paging (distinct filter and sort combinations).
_MAX_LISTINGS = 32


def stamp(t: float) -> str:
    """``2019-01-19T05:01:13.000000+00:00`` (``isoformat`` writes exactly this, much faster than
    ``strftime``: a listing page stamps 300 times)."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")


@functools.lru_cache(maxsize=256)
def _release_fields(version: str) -> tuple[int, str]:
    parts = [int(p) if p.isdigit() else 0 for p in version.split(".")]
    release_id = sum(p * 100 ** (2 - i) for i, p in enumerate(parts[:3])) or 1
    return release_id, hashlib.sha1(version.encode()).hexdigest()


def _release(version: str) -> dict[str, Any]:
    release_id, revision = _release_fields(version)
    return {"id": release_id, "version": version, "revision": revision}


def _data_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "string"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": status, "message": message}}, status_code=status)


@dataclass(slots=True)
class _Device:
    id: int
    serial: str
    owner_ref: str
    hardware_version: str
    created: float
    updated: float
    cohort: str | None
    release: str | None
    #: Seconds between last_seen and now for an online device (it keeps reporting); None: fixed.
    seen_lag: float | None
    seen_at: float | None
    attributes: dict[str, tuple[Any, float]] | None = field(default=None)  # key -> (value, updated)

    def last_seen(self, now: float) -> float | None:
        return now - self.seen_lag if self.seen_lag is not None else self.seen_at

    def payload(self, now: float) -> dict[str, Any]:
        seen = self.last_seen(now)
        cohort = None
        if self.cohort is not None:
            cohort_id, name = COHORTS[self.cohort]
            cohort = {"id": cohort_id, "name": name, "slug": self.cohort}
        return {
            "id": self.id,
            "created_date": stamp(self.created),
            "updated_date": stamp(self.updated),
            "device_serial": self.serial,
            "owner_ref": self.owner_ref,
            "hardware_version": self.hardware_version,
            "last_seen": stamp(seen) if seen is not None else None,
            "last_seen_release": _release(self.release) if self.release else None,
            "cohort": cohort,
        }


def _parse_time(value: str) -> float | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


class FleetCloud:
    kind: ClassVar[str] = "fleet"
    prefix: ClassVar[str] = "/fleet/api/v0/projects/demo"

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        started = ctx.fleet.started
        self._devices: dict[str, _Device] = {}
        for sim in ctx.fleet.of("fleet").values():
            self._devices[sim.id] = self._from_sim(sim, started)
        self._next_id = max((d.id for d in self._devices.values()), default=0) + 1
        self._revoked = False
        #: Filtered and sorted listings by query, for the listings that do not move with the
        #: clock: paging through 27,500 devices must not filter and sort them again per page.
        #: Emptied by every change to the device set or to a device.
        self._listings: dict[tuple[Any, ...], list[_Device]] = {}

    @staticmethod
    def _from_sim(sim: SimDevice, started: float) -> _Device:
        return _Device(
            id=int(sim.extra.get("numeric_id", 0)),
            serial=sim.id,
            owner_ref=str(sim.extra.get("owner_ref", "")),
            hardware_version=sim.model or "hwrev1",
            created=sim.created,
            updated=sim.created,
            cohort=sim.group if sim.group in COHORTS else None,
            release=sim.firmware,
            seen_lag=started - sim.last_seen if sim.online else None,
            seen_at=sim.last_seen,
        )

    # -- the Cloud interface --------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return [
            Route("/devices", self._list, methods=["GET"]),
            Route("/devices", self._create, methods=["POST"]),
            Route("/devices/{serial}", self._get, methods=["GET"]),
            Route("/devices/{serial}", self._patch, methods=["PATCH"]),
            Route("/devices/{serial}", self._delete, methods=["DELETE"]),
            Route("/devices/{serial}/attributes", self._get_attributes, methods=["GET"]),
            Route("/devices/{serial}/attributes", self._patch_attributes, methods=["PATCH"]),
        ]

    def expire_credentials(self) -> None:
        self._revoked = True

    def inspect(self, device_id: str) -> dict[str, Any] | None:
        device = self._devices.get(device_id)
        if device is None:
            return None
        return {
            "device": device.payload(self.ctx.now()),
            "attributes": self._attribute_list(device),
            "revoked": self._revoked,
        }

    # -- helpers --------------------------------------------------------------------------
    def _refused(self, request: Request) -> Response | None:
        if self._revoked or bearer_token(request) != self.ctx.credentials.fleet_token:
            return _error(401, "Unauthorized: a valid bearer token is required")
        return None

    def _attributes(self, device: _Device) -> dict[str, tuple[Any, float]]:
        """The device's attributes, seeded from its serial on first use (cheap at any fleet size)."""
        if device.attributes is None:
            rng = random.Random(f"{self.ctx.fleet.seed}:{device.serial}")
            device.attributes = {
                "site": (f"{rng.choice(_SITES)}-{rng.randint(1, 40):02d}", device.created),
                "battery_replaced": (rng.random() < 0.3, device.created),
                "boot_count": (rng.randint(1, 900), device.created),
            }
        return device.attributes

    def _attribute_list(self, device: _Device) -> list[dict[str, Any]]:
        return [
            {
                "string_key": key,
                "data_type": _data_type(value),
                "value": value,
                "updated_date": stamp(updated),
            }
            for key, (value, updated) in sorted(self._attributes(device).items())
        ]

    def _lookup(self, request: Request) -> _Device | Response:
        serial = request.path_params["serial"]
        device = self._devices.get(serial)
        if device is None:
            return _error(404, f"Device {serial!r} not found")
        return device

    # -- routes ---------------------------------------------------------------------------
    async def _list(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        params = request.query_params
        try:
            page = int(params.get("page", "1"))
            per_page = int(params.get("per_page", str(DEFAULT_PER_PAGE)))
        except ValueError:
            return _error(400, "page and per_page must be integers")
        if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
            return _error(400, f"page must be at least 1 and per_page between 1 and {MAX_PER_PAGE}")
        bounds: dict[str, float] = {}
        for key in ("last_seen_since", "last_seen_until"):
            if key in params:
                parsed = _parse_time(params[key])
                if parsed is None:
                    return _error(
                        400, f"{key} must be an ISO 8601 date-time, e.g. 2019-01-19T05:01:13.000000+00:00"
                    )
                bounds[key] = parsed
        sort = params.get("sort", "id")
        descending = sort.startswith("-")
        sort_key = sort.lstrip("-")
        if sort_key == "deployed_date":
            sort_key = "created_date"
        if sort_key not in SORT_KEYS:
            return _error(
                400, f"unknown sort key {sort!r}; allowed: {', '.join(SORT_KEYS)} (- for descending)"
            )
        releases = frozenset(params.getlist("release"))
        owners = frozenset(params.getlist("owner_ref"))
        hardware = frozenset(params.getlist("hardware_version"))
        now = self.ctx.now()
        since = bounds.get("last_seen_since")
        until = bounds.get("last_seen_until")
        # An online device's last_seen moves with the clock: only listings that neither filter
        # nor sort on it can be kept between requests.
        steady = since is None and until is None and sort_key != "last_seen"
        listing_key = (sort_key, descending, releases, owners, hardware)
        listing = self._listings.get(listing_key) if steady else None
        if listing is None:
            matches: list[tuple[_Device, float | None]] = []
            for device in self._devices.values():
                if releases and device.release not in releases:
                    continue
                if owners and device.owner_ref not in owners:
                    continue
                if hardware and device.hardware_version not in hardware:
                    continue
                seen = device.last_seen(now)
                if (since is not None or until is not None) and seen is None:
                    continue
                if since is not None and seen is not None and seen <= since:
                    continue
                if until is not None and seen is not None and seen >= until:
                    continue
                matches.append((device, seen))
            matches.sort(key=_sort_function(sort_key), reverse=descending)
            listing = [device for device, _ in matches]
            if steady:
                if len(self._listings) >= _MAX_LISTINGS:
                    self._listings.clear()
                self._listings[listing_key] = listing
        total = len(listing)
        start = (page - 1) * per_page
        return JSONResponse(
            {
                "data": [device.payload(now) for device in listing[start : start + per_page]],
                "paging": {
                    "page": page,
                    "per_page": per_page,
                    "total": total,
                    "total_pages": -(-total // per_page),
                },
            }
        )

    async def _create(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        body = await json_body(request)
        if not isinstance(body, dict):
            return _error(
                422, "the body must be a JSON object with device_serial, owner_ref, hardware_version"
            )
        problems = [
            f"{key} is required (a non-empty string)" for key in _REQUIRED if not _nonempty(body.get(key))
        ]
        unknown = sorted(set(body) - set(_REQUIRED))
        problems += [f"unknown field {key!r}" for key in unknown]
        if problems:
            return _error(422, "; ".join(problems))
        serial = body["device_serial"]
        if serial in self._devices:
            return _error(409, f"Device {serial!r} already exists")
        now = self.ctx.now()
        device = _Device(
            id=self._next_id,
            serial=serial,
            owner_ref=body["owner_ref"],
            hardware_version=body["hardware_version"],
            created=now,
            updated=now,
            cohort=None,
            release=None,
            seen_lag=None,
            seen_at=None,
        )
        self._next_id += 1
        self._devices[serial] = device
        self._listings.clear()
        return JSONResponse({"data": device.payload(now)}, status_code=201)

    async def _get(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        found = self._lookup(request)
        if isinstance(found, Response):
            return found
        return JSONResponse({"data": found.payload(self.ctx.now())})

    async def _patch(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        found = self._lookup(request)
        if isinstance(found, Response):
            return found
        body = await json_body(request)
        if not isinstance(body, dict) or not body:
            return _error(422, "the body must be a JSON object with owner_ref, hardware_version or cohort")
        problems: list[str] = []
        for key in sorted(set(body) - {"owner_ref", "hardware_version", "cohort", "device_serial"}):
            problems.append(f"unknown or read-only field {key!r}")
        if "device_serial" in body and body["device_serial"] != found.serial:
            problems.append("device_serial cannot be changed")
        for key in ("owner_ref", "hardware_version"):
            if key in body and not _nonempty(body[key]):
                problems.append(f"{key} must be a non-empty string")
        cohort = body.get("cohort", found.cohort)
        if isinstance(cohort, dict):
            cohort = cohort.get("slug")
        if "cohort" in body and cohort is not None and cohort not in COHORTS:
            problems.append(f"unknown cohort {cohort!r}; allowed: {', '.join(COHORTS)}")
        if problems:
            return _error(422, "; ".join(problems))
        found.owner_ref = body.get("owner_ref", found.owner_ref)
        found.hardware_version = body.get("hardware_version", found.hardware_version)
        found.cohort = cohort
        now = self.ctx.now()
        found.updated = now
        self._listings.clear()
        return JSONResponse({"data": found.payload(now)})

    async def _delete(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        found = self._lookup(request)
        if isinstance(found, Response):
            return found
        del self._devices[found.serial]
        self._listings.clear()
        return Response(status_code=204)

    async def _get_attributes(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        found = self._lookup(request)
        if isinstance(found, Response):
            return found
        return JSONResponse({"data": self._attribute_list(found)})

    async def _patch_attributes(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        found = self._lookup(request)
        if isinstance(found, Response):
            return found
        body = await json_body(request)
        items = body.get("data") if isinstance(body, dict) else body
        if isinstance(body, NotJson) or not isinstance(items, list) or not items:
            return _error(422, 'the body must be a non-empty list of {"string_key": ..., "value": ...}')
        problems: list[str] = []
        for n, item in enumerate(items):
            if not isinstance(item, dict) or not _nonempty(item.get("string_key")) or "value" not in item:
                problems.append(f"item {n} needs a non-empty string_key and a value")
            elif not (item["value"] is None or isinstance(item["value"], str | int | float | bool)):
                problems.append(f"item {n}: value must be a string, number, boolean or null")
        if problems:
            return _error(422, "; ".join(problems))
        attributes = self._attributes(found)
        now = self.ctx.now()
        for item in items:
            if item["value"] is None:
                attributes.pop(item["string_key"], None)
            else:
                attributes[item["string_key"]] = (item["value"], now)
        return JSONResponse({"data": self._attribute_list(found)})


def _nonempty(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _sort_function(key: str) -> Any:
    """A sort key over (device, last_seen); devices never seen sort as the oldest."""
    if key == "last_seen":
        return lambda pair: pair[1] if pair[1] is not None else float("-inf")
    if key == "created_date":
        return lambda pair: (pair[0].created, pair[0].id)
    if key == "updated_date":
        return lambda pair: (pair[0].updated, pair[0].id)
    if key == "device_serial":
        return lambda pair: pair[0].serial
    return lambda pair: pair[0].id
