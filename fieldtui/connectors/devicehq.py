"""DeviceHQ account API v2 (document 002): gateways, their history and their tasks.

Sessions. The API key buys a session token (``POST /session`` with the key in the
``X-API-KEY`` header only: never in a URL, where proxies and logs would keep it); the token
goes in ``X-AUTH-TOKEN``. An account has ONE open session: creating a new one closes the
previous one, and sessions die after 5 idle minutes. So every connector in this process that
talks to the same URL with the same key shares one token (:class:`_SharedSession`), renewed
under one lock, never concurrently: once before it would idle out, and once when the server
may have dropped it.

Session loss is recognised by behaviour, never by the words of an error. Document 002 answers
"any other error such as not being logged in, using incorrect tokens" with the same HTTP 423
as a refused request, and its words are only "a human-readable error explanation": a server
with other wording must not turn a taken session into failed changes. So:

- a 423 (or 401) on a request made with a token that already worked is a *possible* loss,
  whatever it says: the session is renewed once and the request retried once (safe for
  writes: a refused request changed nothing). If the retry is answered, the session had been
  lost;
- a 423 that repeats on the fresh session is a refusal carrying the server's own words
  (:class:`Rejected`), unless the fresh session itself is gone by then: ``GET /account``
  with its token tells (that route needs a session in every reading of the document, unlike
  ``/test``, whose route list and example contradict each other), and a session taken again
  between renewal and retry is :class:`SessionLost` (transient: the outbox retries it);
- a 423 on a token that has not worked yet (a session just created) is a refusal when the
  same ``GET /account`` shows the session alive, else the session is renewed and the request
  retried as above.

If the session keeps disappearing (another client with the same key keeps taking it) renewal
stops after a few confirmed losses within a minute and an :class:`AuthError` tells the
technician to close the other client, rather than taking the session back again and again.

Search. ``GET /devices?q=`` is the server's own search (document 002: it "will match against
various fields"), used as it is; a group is matched on this side over every device page (groups
are free text on each device, with no route of their own).

Errors. Apart from 404, every failure is HTTP 423 with ``{"errors": [{"detail": ...}]}``; the
words are kept for the technician. The one reading taken from words: a refused task creation
whose words name the documented 25-task cap is :class:`LimitReached` (held, not failed); a
server with other words makes it a plain refusal, which loses nothing. The only source read
besides document 002 is MultiTech's own "Account API" page on multitech.net, which says the
same (one open session per account, API key with manager-level privileges).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from fieldtui.config import DeviceHQBackend
from fieldtui.connectors import _wire_devicehq as wire
from fieldtui.connectors import devicehq_diagnostics as diagnostics
from fieldtui.connectors import devicehq_register
from fieldtui.connectors._http import decode_json, invalid_shape, make_client, route_of, send
from fieldtui.connectors._wire_devicehq import (
    App,
    AppConfig,
    AppVersion,
    CheckIn,
    DeviceConfiguration,
    Firmware,
    InstalledApp,
    LoraInfo,
    LoraNode,
    NetworkUsage,
    SignalSample,
)
from fieldtui.connectors.base import Connector
from fieldtui.core.capabilities import Capabilities, TelemetryMode
from fieldtui.core.errors import (
    AuthError,
    BackendError,
    InvalidResponse,
    LimitReached,
    NotFound,
    Rejected,
    ServerError,
    SessionLost,
    Unsupported,
)
from fieldtui.core.filters import DeviceFilter
from fieldtui.core.models import BackendKind, Device, Group, Task, TelemetrySample

log = logging.getLogger(__name__)

#: Renew the session before it would idle out on the server (it dies after 300 s idle).
SESSION_IDLE_RENEW = 270.0
#: More than this many session losses within LOSS_WINDOW seconds: another client is taking it.
MAX_SESSION_LOSSES = 3
LOSS_WINDOW = 60.0
#: The route that tells whether a session is alive: it needs one, and answers nothing else.
PROBE_PATH = "/account"
#: Backoff between session re-creations after repeated losses (seconds, doubled, capped).
RENEW_BACKOFF = 0.25
RENEW_BACKOFF_CAP = 2.0
#: The document's default page size for GET /devices.
PAGE_SIZE = 500
#: fleet_tasks without a device list scans the account only when it has at most this many
#: devices (one request per device: DeviceHQ has no account-wide task list).
FLEET_TASK_SCAN_LIMIT = 50
#: Concurrent per-device requests in fleet_tasks.
FLEET_TASK_CONCURRENCY = 4
#: The history window a telemetry stream starts with when not told where to start.
TELEMETRY_LOOKBACK = timedelta(hours=24)

_LIMIT_WORDS = re.compile(
    r"command limit|task limit|limit \(25\)|at most 25|too many (?:unfinished |open )?(?:tasks|commands)",
    re.IGNORECASE,
)

_TAKEN_HINT = (
    "only one client per DeviceHQ account can hold a session; close the other program or "
    "script using this account's API key, then retry"
)


class TaskType(StrEnum):
    """The six task types of the task-management extension."""

    INSTALL_APP = "INSTALL_APP"
    UNINSTALL_APP = "UNINSTALL_APP"
    INSTALL_CONFIGS = "INSTALL_CONFIGS"
    CONFIG_UPGRADE = "CONFIG_UPGRADE"
    SOFTWARE_UPGRADE = "SOFTWARE_UPGRADE"
    RADIO_FIRMWARE_UPGRADE = "RADIO_FIRMWARE_UPGRADE"


#: type -> (required attributes, optional attributes)
TASK_ATTRIBUTES: dict[TaskType, tuple[tuple[str, ...], tuple[str, ...]]] = {
    TaskType.INSTALL_APP: (("app_id",), ("version", "config_ids")),
    TaskType.UNINSTALL_APP: (("app_id",), ()),
    TaskType.INSTALL_CONFIGS: (("config_ids",), ("app_id",)),
    TaskType.CONFIG_UPGRADE: (("config_file_id",), ()),
    TaskType.SOFTWARE_UPGRADE: (("firmware_id",), ()),
    TaskType.RADIO_FIRMWARE_UPGRADE: (("firmware_id",), ()),
}

#: Fields PUT /devices/:id may change (document 002, "Update Device").
UPDATABLE_FIELDS = ("description", "group", "location_description")


# -- the process-wide session -----------------------------------------------------------------
@dataclass(eq=False)
class _SharedSession:
    """The one DeviceHQ session of this process for one (url, API key)."""

    token: str | None = None
    #: a request made with ``token`` was answered with something other than 401/423
    worked: bool = False
    #: monotonic time of the last request made with ``token``
    last_used: float = 0.0
    #: how many sessions this process created (tests and diagnostics read it)
    created: int = 0
    _lock: asyncio.Lock | None = None
    _lock_loop: asyncio.AbstractEventLoop | None = None

    def lock(self) -> asyncio.Lock:
        # An asyncio.Lock belongs to one event loop; a process may run several in turn.
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    def fresh(self) -> bool:
        return self.token is not None and time.monotonic() - self.last_used < SESSION_IDLE_RENEW


_SESSIONS: dict[tuple[str, str], _SharedSession] = {}


def shared_session(url: str, api_key: str) -> _SharedSession:
    """The process-wide session for ``url`` and ``api_key`` (the key is kept only as a hash)."""
    key = (url.rstrip("/"), hashlib.sha256(api_key.encode()).hexdigest())
    return _SESSIONS.setdefault(key, _SharedSession())


def forget_sessions() -> None:
    """Drop every shared session (after a key change; tests start from a clean process state)."""
    _SESSIONS.clear()


# -- the connector ------------------------------------------------------------------------------
class DeviceHQConnector(Connector):
    kind: ClassVar[BackendKind] = BackendKind.DEVICEHQ
    capabilities: ClassVar[Capabilities] = Capabilities(
        lookup=True,
        search=True,
        telemetry=TelemetryMode.POLL,
        groups=True,
        tasks=True,
        device_update=True,
        device_lifecycle=True,
    )
    #: ``GET /devices?q=`` is the one filter document 002 gives the listing; a group is matched
    #: on this side, page by page (groups are free text on each device, with no route of their own).
    device_filters: ClassVar[frozenset[str]] = frozenset({"query", "group"})
    search_scope: ClassVar[str | None] = None

    def __init__(
        self,
        name: str,
        config: DeviceHQBackend,
        secret: str | None,
        *,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(name)
        self._config = config
        self._api_key = secret
        self._owns_client = client is None
        self._client = client or make_client(config.url, timeout=config.timeout, ca_bundle=config.ca_bundle)
        self._session = shared_session(config.url, secret or "")
        #: monotonic times the server told this connector its session was gone. Counted per
        #: connector, not per process: a service keeps one connector per backend for its whole
        #: life, and losses another (short-lived) connector saw say nothing about this one.
        self._losses: deque[float] = deque()

    async def aclose(self) -> None:
        # The session stays open: other connectors of this process may share it, and it idles
        # out on the server after 5 minutes anyway.
        if self._owns_client:
            await self._client.aclose()

    # -- session -------------------------------------------------------------------------
    async def _token(self) -> str:
        if self._session.fresh():
            assert self._session.token is not None
            return self._session.token
        async with self._session.lock():
            if not self._session.fresh():
                await self._create_session()
            assert self._session.token is not None
            return self._session.token

    async def _renew(self, stale: str) -> tuple[str, bool]:
        """The session after ``stale`` may have been dropped: a new one, made once for all callers.

        Returns the token and whether this call created it (the caller then learns, from its
        retry, whether the old session had really been lost). When losses were confirmed too
        often lately, the session is not taken back: :meth:`_alive` decides between a refusal
        on a live session (the caller raises the server's words) and an :class:`AuthError`.
        """
        session = self._session
        async with session.lock():
            if session.token is not None and session.token != stale:
                return session.token, False  # another request already renewed it
            losses = self._recent_losses()
            if len(losses) >= MAX_SESSION_LOSSES:
                if session.token == stale and await self._alive(stale):
                    return stale, False
                losses.append(time.monotonic())
                session.token = None
                # Not SessionLost (transient, "degraded"): renewing again would only take the
                # session back from the other client, who takes it back again. The technician
                # must act, so this is an auth error.
                raise AuthError(
                    f"the DeviceHQ session was taken {len(losses)} times within "
                    f"{int(LOSS_WINDOW)} s: another client is using this account's API key",
                    backend=self.name,
                    hint=_TAKEN_HINT,
                )
            session.token = None
            if losses:
                delay = min(RENEW_BACKOFF * 2 ** (len(losses) - 1), RENEW_BACKOFF_CAP)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            log.info("%s: DeviceHQ refused a request; the session may be gone, opening a new one", self.name)
            await self._create_session()
            assert session.token is not None
            return session.token, True

    def _recent_losses(self) -> deque[float]:
        now = time.monotonic()
        while self._losses and now - self._losses[0] > LOSS_WINDOW:
            self._losses.popleft()
        return self._losses

    def _lost(self, token: str) -> None:
        """The server dropped ``token``'s session: count it, and stop using that token."""
        self._losses.append(time.monotonic())
        if self._session.token == token:
            self._session.token = None

    async def _alive(self, token: str) -> bool:
        """Whether ``token``'s session is open: ``GET /account`` with it is answered.

        A 401/423 says it is gone; any other answer (even an error) says the session was
        accepted, or cannot tell, and then the refusal is taken at its word.
        """
        response = await self._send("GET", PROBE_PATH, token, params=None, body=None)
        if _refused(response):
            return False
        self._worked(token)
        return True

    def _worked(self, token: str) -> None:
        if self._session.token == token:
            self._session.worked = True

    async def _create_session(self) -> None:
        """POST /session with the key in X-API-KEY (never ``?api_key=``). Caller holds the lock."""
        if not self._api_key:
            raise AuthError(
                "no DeviceHQ API key is configured",
                backend=self.name,
                hint=f"run `fieldtui login {self.name}` or set the FIELDTUI_SECRET_... variable",
            )
        response = await send(
            self._client, self.name, "POST", "/session", headers={"X-API-KEY": self._api_key}, content=b""
        )
        if response.status_code >= 400:
            detail = _error_detail(response)
            if response.status_code in (401, 403, 423):
                raise AuthError(
                    f"DeviceHQ refused the API key: {detail or f'HTTP {response.status_code}'}",
                    backend=self.name,
                    hint="generate a new account API key on devicehq.com and store it with `fieldtui login`",
                )
            self._raise_for(response)
        body = decode_json(response, self.name)
        token = _session_token(body)
        if token is None:
            raise invalid_shape(response, self.name, "no meta.token in the session response")
        self._session.token = token
        self._session.worked = False
        self._session.last_used = time.monotonic()
        self._session.created += 1

    # -- requests ------------------------------------------------------------------------
    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
    ) -> httpx.Response:
        token = await self._token()
        response = await self._send(method, path, token, params=params, body=body)
        if not _refused(response):
            self._worked(token)
            self._raise_for(response)
            return response
        # Refused (401/423): a lost session or a refusal, told apart by behaviour only.
        session = self._session
        suspect = response.status_code == 401 or session.token != token or session.worked
        if not suspect and await self._alive(token):
            raise self._refusal(response)  # the session it was made with is open: a refusal
        renewed, created = await self._renew(token)
        if renewed == token:  # too many losses lately and the session is alive: a refusal
            raise self._refusal(response)
        response = await self._send(method, path, renewed, params=params, body=body)
        if not _refused(response):
            self._worked(renewed)
            if created:
                self._losses.append(time.monotonic())  # the retry worked: the session had been lost
            self._raise_for(response)
            return response
        if await self._alive(renewed):
            raise self._refusal(response)  # refused again on a fresh, open session: the server means it
        async with session.lock():
            self._lost(renewed)
        raise SessionLost(
            "the DeviceHQ session was taken again right after it was renewed",
            backend=self.name,
            hint=_TAKEN_HINT,
        )

    async def _send(
        self,
        method: str,
        path: str,
        token: str,
        *,
        params: Mapping[str, str | int] | None,
        body: Any,
    ) -> httpx.Response:
        kwargs: dict[str, Any] = {"headers": {"X-AUTH-TOKEN": token}}
        if params:
            kwargs["params"] = dict(params)
        if body is not None:
            kwargs["json"] = body
        response = await send(self._client, self.name, method, path, **kwargs)
        self._session.last_used = time.monotonic()
        return response

    def _raise_for(self, response: httpx.Response) -> None:
        if response.status_code >= 400:
            raise self._refusal(response)

    def _refusal(self, response: httpx.Response) -> BackendError:
        """The core error for a failed response (status >= 400), with the server's own words."""
        status = response.status_code
        route = route_of(response.request.method, response.request.url.path)
        detail = _error_detail(response)
        if status == 404:
            return NotFound(detail or f"not found ({route})", backend=self.name)
        if status == 429 or status >= 500:
            return ServerError(
                f"{detail or 'server error'} (HTTP {status} from {route})",
                backend=self.name,
                status_code=status,
            )
        if status in (401, 403):
            return AuthError(f"DeviceHQ refused the session: {detail or f'HTTP {status}'}", backend=self.name)
        if status == 423 and detail is None:
            return InvalidResponse(
                "HTTP 423 without the documented {errors: [{detail}]} body", backend=self.name, route=route
            )
        words = detail or f"HTTP {status}"
        creating_task = response.request.method == "POST" and route.endswith("/tasks")
        if creating_task and _LIMIT_WORDS.search(words):
            return LimitReached(
                words,
                backend=self.name,
                status_code=status,
                hint="DeviceHQ allows 25 unfinished tasks per account; the task is held until some "
                "finish (cancel or delete unfinished tasks to make room)",
            )
        return Rejected(words, backend=self.name, status_code=status)

    async def _get_json(
        self, path: str, params: Mapping[str, str | int] | None = None
    ) -> tuple[Any, httpx.Response]:
        response = await self._request("GET", path, params=params)
        return decode_json(response, self.name), response

    # -- lookup --------------------------------------------------------------------------
    async def probe(self) -> None:
        """GET /test with the session token: proves the key, the session and the route."""
        body, response = await self._get_json("/test")
        if not isinstance(body, Mapping):
            raise invalid_shape(response, self.name, "GET /test did not answer an object")

    async def get_device(self, device_id: str) -> Device:
        body, response = await self._get_json(_device_path(device_id))
        device = wire.device_from(body, backend=self.name)
        if device is None:
            raise invalid_shape(response, self.name, "no device in data.attributes")
        return device

    async def search(self, query: str, *, limit: int | None = None) -> list[Device]:
        """Devices matching ``q`` (every page followed with skip/limit until meta.total)."""
        devices: list[Device] = []
        async for page in self._device_pages(query, limit=limit):
            devices.extend(page)
        return devices if limit is None else devices[:limit]

    async def list_devices(self, filter: DeviceFilter) -> list[Device]:
        """``GET /devices`` (with ``q`` when a query is given), paged with skip/limit. A group is
        matched on this side: every page is read (document 002 filters only by ``q``)."""
        self._check_filters(filter)
        if filter.group is None:
            return await self.search(filter.query or "", limit=filter.limit)
        found: list[Device] = []
        async for page in self._device_pages(filter.query or ""):
            found += [device for device in page if device.group == filter.group]
            if filter.limit is not None and len(found) >= filter.limit:
                return found[: filter.limit]
        return found

    async def _device_pages(self, query: str, *, limit: int | None = None) -> AsyncIterator[list[Device]]:
        skip = 0
        page_size = PAGE_SIZE if limit is None else max(1, min(PAGE_SIZE, limit))
        seen = 0
        while True:
            params: dict[str, str | int] = {"limit": page_size, "skip": skip}
            if query:
                params["q"] = query
            body, response = await self._get_json("/devices", params)
            items = wire.resources(body)
            if items is None:
                raise invalid_shape(response, self.name, "GET /devices has no data list")
            page = [d for item in items if (d := wire.device_from({"data": item}, backend=self.name))]
            if page:
                yield page
            seen += len(page)
            skip += len(items)
            meta = body.get("meta") if isinstance(body, Mapping) else None
            total = wire._loose_int(meta.get("total")) if isinstance(meta, Mapping) else None
            if not items or (limit is not None and seen >= limit):
                return
            if total is not None and skip >= total:
                return
            if total is None and len(items) < page_size:
                return

    # -- history (typed) -----------------------------------------------------------------
    async def signal_strength(
        self, device_id: str, start: date | None = None, end: date | None = None
    ) -> list[SignalSample]:
        """Cell signal history (the server's field is spelled ``rssii``); default last 10 days."""
        body, response = await self._get_json(_device_path(device_id, "signal_strength"), _dates(start, end))
        samples = wire.signal_samples_from(body)
        if samples is None:
            raise invalid_shape(response, self.name, "no attributes.signal_strength list")
        return samples

    async def check_ins(
        self, device_id: str, start: date | None = None, end: date | None = None
    ) -> list[CheckIn]:
        body, response = await self._get_json(_device_path(device_id, "check_ins"), _dates(start, end))
        check_ins = wire.check_ins_from(body)
        if check_ins is None:
            raise invalid_shape(response, self.name, "no attributes.check_ins list")
        return check_ins

    async def network(
        self,
        device_id: str,
        interface: str = "cell",
        start: date | None = None,
        end: date | None = None,
    ) -> list[NetworkUsage]:
        """Daily rx/tx bytes; ``interface`` is cell, ethernet or wifi."""
        params = {"type": interface, **_dates(start, end)}
        body, response = await self._get_json(_device_path(device_id, "network"), params)
        usages = wire.network_from(body)
        if usages is None:
            raise invalid_shape(response, self.name, "no attributes.network_usages list")
        return usages

    async def lora(self, device_id: str, start: date | None = None, end: date | None = None) -> LoraInfo:
        body, response = await self._get_json(_device_path(device_id, "lora"), _dates(start, end))
        info = wire.lora_from(body)
        if info is None:
            raise invalid_shape(response, self.name, "attributes.lora is not an object")
        return info

    async def uploaded(self, device_id: str, route: str, key: str) -> dict[str, Any]:
        """The last log archive (``logs``, ``log``) or configuration file (``configs``,
        ``config``) the gateway uploaded, with its download link (see devicehq_diagnostics)."""
        body, response = await self._get_json(_device_path(device_id, route))
        found = diagnostics.uploaded_file(body, key)
        if found is None:
            raise invalid_shape(response, self.name, f"attributes.{key} is not an object")
        return found

    @property
    def api_url(self) -> str:
        return self._config.url

    async def get_file(self, path: str) -> httpx.Response:
        """GET a path under the API (a download link) with the session."""
        return await self._request("GET", path)

    async def download(self, device_id: str, kind: str) -> tuple[str, bytes]:
        """The last uploaded ``log`` archive or ``config`` file: (file name, bytes)."""
        return await diagnostics.download_upload(self, device_id, kind)

    async def details(self, device_id: str) -> dict[str, Any]:
        """Gateway diagnostics: network usage, LoRa, the last log and config uploads, apps."""
        return await diagnostics.gateway_details(self, device_id)

    def telemetry(self, device_id: str, *, since: datetime | None = None) -> AsyncIterator[TelemetrySample]:
        """Polls signal strength and check-ins every ``poll_interval`` from the last timestamp.

        Signal samples carry ``rssi`` (and ``fer``); check-ins ``check_in`` plus action, result,
        ssl and duration. Without ``since`` the stream starts 24 hours back.
        """
        return self._poll_telemetry(device_id, since)

    async def _poll_telemetry(self, device_id: str, since: datetime | None) -> AsyncIterator[TelemetrySample]:
        start = since.astimezone(UTC) if since is not None else datetime.now(UTC) - TELEMETRY_LOOKBACK
        last_signal = last_check_in = start
        while True:
            first_day = min(last_signal, last_check_in).date()
            last_day = (datetime.now(UTC) + timedelta(days=1)).date()
            signals, check_ins = await asyncio.gather(
                self.signal_strength(device_id, first_day, last_day),
                self.check_ins(device_id, first_day, last_day),
            )
            fresh: list[TelemetrySample] = []
            for signal in signals:
                if signal.timestamp is not None and signal.timestamp > last_signal:
                    metrics = wire.signal_metrics(signal)
                    if metrics:
                        fresh.append(wire.sample(device_id, self.name, signal.timestamp, metrics))
            for check_in in check_ins:
                if check_in.timestamp is not None and check_in.timestamp > last_check_in:
                    fresh.append(
                        wire.sample(device_id, self.name, check_in.timestamp, wire.check_in_metrics(check_in))
                    )
            last_signal = max([s.timestamp for s in signals if s.timestamp] + [last_signal])
            last_check_in = max([c.timestamp for c in check_ins if c.timestamp] + [last_check_in])
            fresh.sort(key=lambda s: s.timestamp)
            for sample in fresh:
                yield sample
            await asyncio.sleep(self._config.poll_interval)

    # -- writing -------------------------------------------------------------------------
    async def update_device(self, device_id: str, fields: dict[str, Any]) -> Device:
        """PUT description, group and/or location_description.

        Also accepted: ``name`` (DeviceHQ's description is the name a technician sees) and
        ``location`` as ``{"lat": .., "lon": ..}`` or ``[lat, lon]``.
        """
        attributes: dict[str, Any] = {}
        for key, value in fields.items():
            if key in ("description", "name"):
                attributes["description"] = "" if value is None else str(value)
            elif key == "group":
                attributes["group"] = "" if value is None else str(value)
            elif key in ("location_description", "location"):
                attributes["location_description"] = _location_pair(value, self.name)
            else:
                raise Rejected(
                    f"DeviceHQ cannot change '{key}'; only {', '.join(UPDATABLE_FIELDS)} can be changed",
                    backend=self.name,
                )
        if not attributes:
            raise Rejected("nothing to change", backend=self.name)
        response = await self._put_device(device_id, attributes)
        # The change is made once the server answered 2xx: a body we cannot read is no reason
        # to report failure (the outbox would call an applied change failed). Read it back.
        try:
            device = wire.device_from(decode_json(response, self.name), backend=self.name)
        except InvalidResponse:
            device = None
        return device if device is not None else await self.get_device(device_id)

    async def _put_device(self, device_id: str, attributes: dict[str, Any]) -> httpx.Response:
        ref = wire.normalise_device_ref(device_id)
        payload = {"data": {"id": ref, "type": "devices", "attributes": attributes}}
        return await self._request("PUT", _device_path(device_id), body=payload)

    async def create_device(self, device_id: str, fields: dict[str, Any]) -> Device:
        """Register ``device_id`` with its ``uuid`` (see :mod:`devicehq_register`)."""
        body = devicehq_register.register_body(device_id, fields, self.name)
        response = await self._request("POST", "/devices/register", body=body)
        try:
            device = wire.device_from(decode_json(response, self.name), backend=self.name)
        except InvalidResponse:
            device = None
        return device if device is not None else await self.get_device(device_id)

    def check_new_device(self, device_id: str, fields: dict[str, Any]) -> None:
        devicehq_register.register_body(device_id, fields, self.name)

    def created_as_asked(self, device: Device, fields: dict[str, Any]) -> bool:
        return devicehq_register.registered_as_asked(device, fields)

    async def delete_device(self, device_id: str) -> None:
        """DELETE the device and its records (NotFound when it is not there)."""
        await self._request("DELETE", _device_path(device_id))

    async def move_to_group(self, device_id: str, group_id: str) -> None:
        """PUT the ``group`` attribute; the 2xx is the answer (the body is not needed)."""
        await self._put_device(device_id, {"group": group_id})

    # -- groups (free text on each device) -----------------------------------------------
    async def get_group(self, device_id: str) -> str | None:
        return (await self.get_device(device_id)).group

    async def list_groups(self, query: str | None = None) -> list[Group]:
        """Groups with member counts, from every device page (DeviceHQ has no group route).

        Costs one request per 500 devices of the account.
        """
        counts: dict[str, int] = {}
        async for page in self._device_pages(""):
            for device in page:
                if device.group:
                    counts[device.group] = counts.get(device.group, 0) + 1
        needle = (query or "").lower()
        return [
            Group(backend=self.name, id=gid, member_count=count)
            for gid, count in sorted(counts.items())
            if needle in gid.lower()
        ]

    async def group_members(self, group_id: str) -> list[str]:
        members: list[str] = []
        async for page in self._device_pages(""):
            members.extend(device.id for device in page if device.group == group_id)
        return members

    async def create_group(self, group_id: str, description: str | None = None) -> Group:
        raise Unsupported(
            "DeviceHQ groups are free text on each device: move a device to the new name to create it",
            backend=self.name,
        )

    async def rename_group(self, group_id: str, new_group_id: str) -> Group:
        raise Unsupported(
            "DeviceHQ cannot rename a group: move its devices to the new name", backend=self.name
        )

    async def delete_group(self, group_id: str) -> None:
        raise Unsupported("DeviceHQ groups disappear when no device is in them", backend=self.name)

    # -- tasks ---------------------------------------------------------------------------
    async def list_tasks(self, device_id: str) -> list[Task]:
        """The device's tasks, newest first (as the server lists them)."""
        body, response = await self._get_json(_device_path(device_id, "tasks"))
        items = wire.resources(body)
        if items is None:
            raise invalid_shape(response, self.name, "GET tasks has no data list")
        device = _device_label(device_id)
        return [t for item in items if (t := wire.task_from(item, backend=self.name, device=device))]

    async def get_task(self, device_id: str, task_id: str) -> Task:
        body, response = await self._get_json(_device_path(device_id, "tasks", task_id))
        return self._one_task(body, response, device_id)

    async def create_task(self, device_id: str, task_type: str, params: dict[str, Any]) -> Task:
        """POST a task; ``task_type`` is one of :class:`TaskType` with its documented attributes."""
        attributes = task_attributes(task_type, params, backend=self.name)
        payload = {"data": {"type": "tasks", "attributes": attributes}}
        response = await self._request("POST", _device_path(device_id, "tasks"), body=payload)
        return self._one_task(decode_json(response, self.name), response, device_id)

    async def install_app(
        self, device_id: str, app_id: str, *, version: str | None = None, config_ids: Sequence[str] = ()
    ) -> Task:
        params: dict[str, Any] = {"app_id": app_id}
        if version:
            params["version"] = version
        if config_ids:
            params["config_ids"] = list(config_ids)
        return await self.create_task(device_id, TaskType.INSTALL_APP, params)

    async def uninstall_app(self, device_id: str, app_id: str) -> Task:
        return await self.create_task(device_id, TaskType.UNINSTALL_APP, {"app_id": app_id})

    async def install_app_configs(self, device_id: str, config_ids: Sequence[str]) -> Task:
        return await self.create_task(device_id, TaskType.INSTALL_CONFIGS, {"config_ids": list(config_ids)})

    async def apply_configuration(self, device_id: str, config_file_id: str) -> Task:
        return await self.create_task(device_id, TaskType.CONFIG_UPGRADE, {"config_file_id": config_file_id})

    async def upgrade_firmware(self, device_id: str, firmware_id: str) -> Task:
        return await self.create_task(device_id, TaskType.SOFTWARE_UPGRADE, {"firmware_id": firmware_id})

    async def upgrade_radio_firmware(self, device_id: str, firmware_id: str) -> Task:
        return await self.create_task(
            device_id, TaskType.RADIO_FIRMWARE_UPGRADE, {"firmware_id": firmware_id}
        )

    async def cancel_task(self, device_id: str, task_id: str) -> Task:
        response = await self._request("PUT", _device_path(device_id, "tasks", task_id, "cancel"))
        if not response.content.strip():
            return await self.get_task(device_id, task_id)
        return self._one_task(decode_json(response, self.name), response, device_id)

    async def delete_task(self, device_id: str, task_id: str) -> None:
        """DELETE answers 204 No Content."""
        await self._request("DELETE", _device_path(device_id, "tasks", task_id))

    async def fleet_tasks(
        self,
        device_ids: Iterable[str] | None = None,
        *,
        unfinished_only: bool = True,
        max_devices: int = FLEET_TASK_SCAN_LIMIT,
    ) -> list[Task]:
        """Tasks of several devices (unfinished only by default).

        DeviceHQ has no account-wide task route: this costs one request per device. Given
        ``device_ids`` it asks exactly those; without, it scans the account only when it has at
        most ``max_devices`` devices and otherwise raises :class:`Unsupported` rather than
        firing thousands of requests or quietly answering for part of the fleet.
        """
        if device_ids is None:
            first = await self.search("", limit=max_devices + 1)
            if len(first) > max_devices:
                raise Unsupported(
                    f"DeviceHQ has no account-wide task list and this account has more than {max_devices} "
                    "devices: ask for the tasks of the devices at hand",
                    backend=self.name,
                )
            ids = [device.id for device in first]
        else:
            ids = list(dict.fromkeys(device_ids))
        gate = asyncio.Semaphore(FLEET_TASK_CONCURRENCY)

        async def tasks_of(device: str) -> list[Task]:
            async with gate:
                try:
                    return await self.list_tasks(device)
                except NotFound:
                    return []

        results = await asyncio.gather(*(tasks_of(device) for device in ids))
        tasks = [task for group in results for task in group]
        if unfinished_only:
            tasks = [task for task in tasks if not task.state.finished]
        return tasks

    def _one_task(self, body: Any, response: httpx.Response, device_id: str) -> Task:
        item = wire.resource(body)
        task = wire.task_from(item, backend=self.name, device=_device_label(device_id)) if item else None
        if task is None:
            raise invalid_shape(response, self.name, "no task in data")
        return task

    # -- apps, firmwares, configurations ---------------------------------------------------
    async def device_apps(self, device_id: str) -> list[InstalledApp]:
        body, response = await self._get_json(_device_path(device_id, "apps"))
        apps = wire.installed_apps_from(body)
        if apps is None:
            raise invalid_shape(response, self.name, "attributes.apps is not a list")
        return apps

    async def apps(self) -> list[App]:
        return await self._listed("/apps", App)

    async def app(self, app_id: str) -> App:
        """One app with its versions and app_configs."""
        body, response = await self._get_json(f"/apps/{quote(app_id, safe='')}")
        app = wire.app_from(body)
        if app is None:
            raise invalid_shape(response, self.name, "no app in data")
        return app

    async def device_firmwares(self) -> list[Firmware]:
        return await self._listed("/device-firmwares", Firmware)

    async def radio_firmwares(self) -> list[Firmware]:
        return await self._listed("/radio-firmwares", Firmware)

    async def device_configurations(self) -> list[DeviceConfiguration]:
        return await self._listed("/device-configurations", DeviceConfiguration)

    async def _listed(self, path: str, model: type[Any]) -> list[Any]:
        body, response = await self._get_json(path)
        items = wire.listed(body, model)
        if items is None:
            raise invalid_shape(response, self.name, f"GET {path} has no data list")
        return items


# -- module helpers -----------------------------------------------------------------------------
def task_attributes(
    task_type: str, params: Mapping[str, Any], *, backend: str | None = None
) -> dict[str, Any]:
    """The POST attributes for one task, checked against the six documented types."""
    try:
        kind = TaskType(task_type.strip().upper())
    except ValueError:
        allowed = ", ".join(TaskType)
        raise Rejected(
            f"unknown DeviceHQ task type '{task_type}'; allowed: {allowed}", backend=backend
        ) from None
    required, optional = TASK_ATTRIBUTES[kind]
    missing = [name for name in required if params.get(name) in (None, "", [])]
    if missing:
        raise Rejected(f"{kind} needs {', '.join(missing)}", backend=backend)
    unknown = sorted(set(params) - set(required) - set(optional) - {"type"})
    if unknown:
        raise Rejected(f"{kind} takes no {', '.join(unknown)}", backend=backend)
    attributes: dict[str, Any] = {"type": kind.value}
    for name in (*required, *optional):
        if params.get(name) not in (None, ""):
            value = params[name]
            if name == "config_ids":
                value = [value] if isinstance(value, str) else [str(v) for v in value]
            attributes[name] = value
    return attributes


def _device_path(device_id: str, *parts: str) -> str:
    segments = [quote(wire.normalise_device_ref(device_id), safe="")]
    segments.extend(quote(part, safe="") for part in parts)
    return "/devices/" + "/".join(segments)


def _device_label(device_id: str) -> str:
    return wire.normalise_device_ref(device_id)


def _dates(start: date | None, end: date | None) -> dict[str, str | int]:
    """History routes take YYYY-MM-DD dates (server defaults: 10 days ago .. tomorrow)."""
    params: dict[str, str | int] = {}
    if start is not None:
        params["start_date"] = start.strftime("%Y-%m-%d")
    if end is not None:
        params["end_date"] = end.strftime("%Y-%m-%d")
    return params


def _location_pair(value: Any, backend: str) -> list[float]:
    if isinstance(value, Mapping) and "lat" in value and "lon" in value:
        pair: Any = [value["lat"], value["lon"]]
    elif hasattr(value, "lat") and hasattr(value, "lon"):
        pair = [value.lat, value.lon]
    else:
        pair = value
    location = wire.location_from(pair)
    if location is None:
        raise Rejected(f"a location must be [latitude, longitude]; got {value!r}", backend=backend)
    return [location.lat, location.lon]


def _error_detail(response: httpx.Response) -> str | None:
    """The ``errors[].detail`` words of a failed response, None when the body has none."""
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(body, Mapping):
        return None
    errors = body.get("errors")
    if isinstance(errors, list):
        words = [
            str(item.get("detail") or item.get("title"))
            for item in errors
            if isinstance(item, Mapping) and (item.get("detail") or item.get("title"))
        ]
        return "; ".join(words) or None
    if isinstance(errors, str) and errors:
        return errors
    for key in ("detail", "error", "message"):
        if isinstance(body.get(key), str) and body[key]:
            return str(body[key])
    return None


def _refused(response: httpx.Response) -> bool:
    """401 or 423: what a dropped session gets, and (423) also what a refused request gets."""
    return response.status_code in (401, 423)


def _session_token(body: Any) -> str | None:
    if not isinstance(body, Mapping):
        return None
    meta = body.get("meta")
    for holder in (meta, body, body.get("data")):
        if isinstance(holder, Mapping) and isinstance(holder.get("token"), str) and holder["token"]:
            return str(holder["token"])
    return None


__all__ = [
    "App",
    "AppConfig",
    "AppVersion",
    "CheckIn",
    "DeviceConfiguration",
    "DeviceHQConnector",
    "Firmware",
    "InstalledApp",
    "LoraInfo",
    "LoraNode",
    "NetworkUsage",
    "SignalSample",
    "TaskType",
    "forget_sessions",
    "shared_session",
    "task_attributes",
]
