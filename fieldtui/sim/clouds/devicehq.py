"""Simulated MultiTech DeviceHQ account API v2 (document 002), mounted at ``/devicehq/api/v2``.

An independent reading of the vendor document, quirks included:

- one open session per account: a new session closes the previous one, whose token then
  gets 423; sessions expire 5 minutes after the last request;
- every error that is not a 404 is HTTP 423 with ``{"errors": [{"detail": ...}]}``, a wrong
  method and an unknown path under the prefix included: the document's "HTTP Codes" section
  says the API "will always respond with 1 of 3 different http codes" and keeps 404 for "a
  specific resource [...] requested [...] and not found", which a route that does not exist
  is not ("any other error" is 423);
- devices are addressed by serial or by a 32-hex UUID (non-alphanumerics stripped, any case);
- the single-device body carries ``"result": "ok"`` and the session ``token`` at top level;
- the signal history field is spelled ``rssii``;
- at most 25 new, not completed tasks per account.

Gateways check in every 8 to 12 seconds (see :mod:`devicehq_schedule`): check-ins, signal
history and task progress all follow from the clock, and nothing is stored per check-in.
"""

from __future__ import annotations

import json
import re
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Receive, Scope, Send

from fieldtui.sim.clouds.devicehq_account import account_resource, users_resource
from fieldtui.sim.clouds.devicehq_catalog import ObjectIds, build_catalog
from fieldtui.sim.clouds.devicehq_devices import (
    DeviceState,
    apply_update,
    checkin_history,
    config_attributes,
    device_resource,
    installed_apps,
    last_upload,
    log_attributes,
    lora_card,
    network_usage,
    signal_history,
    supports_apps,
    upload_archive,
)
from fieldtui.sim.clouds.devicehq_schedule import CONFIG_EVERY, LOG_EVERY, Schedule
from fieldtui.sim.clouds.devicehq_session import EXPIRED, LOGGED_OUT, SESSION_IDLE, SessionBook
from fieldtui.sim.clouds.devicehq_tasks import (
    FINAL_STATES,
    LIMIT_DETAIL,
    TASK_LIMIT,
    Task,
    build_task,
    failure_for,
)
from fieldtui.sim.clouds.devicehq_wire import (
    ApiResponse,
    DHQError,
    NotFoundError,
    date_window,
    day_start,
    error_response,
    iso_z,
    jsonapi_body,
    normalise_uuid,
    stable_hash,
)
from fieldtui.sim.context import SimContext
from fieldtui.sim.fleet import BACKEND_NAMES, SimDevice

DEFAULT_LIMIT = 500
API_VERSION = "v3.0.2.6"
NETWORK_TYPES = ("cell", "ethernet", "wifi")
_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_FILES_KEPT = 1024

Handler = Callable[[Request], Awaitable[Response]]


async def _json(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise DHQError("Request body is not valid JSON") from exc


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise DHQError(f"{name} must be a non-negative integer, got {raw!r}")
    return int(raw)


class _AnyMethod:
    """An ASGI app around a handler: Starlette gives a plain function route GET only."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._handler(Request(scope, receive))
        await response(scope, receive, send)


class DeviceHQCloud:
    kind: ClassVar[str] = "devicehq"
    prefix: ClassVar[str] = "/devicehq/api/v2"

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self.catalog = build_catalog(ctx.fleet.seed)
        self._ids = ObjectIds(ctx.rng)
        self._devices: dict[str, SimDevice] = dict(ctx.fleet.of(self.kind))
        self._order: list[str] = list(self._devices)
        self._by_uuid: dict[str, str] = {}
        for serial, device in self._devices.items():
            uuid = normalise_uuid(str(device.extra.get("uuid", "")))
            if uuid is not None:
                self._by_uuid[uuid] = serial
        self._states: dict[str, DeviceState] = {}
        self._deleted: set[str] = set()
        self._haystacks: dict[str, str] = {}
        self._sessions = SessionBook()
        self._tasks: dict[str, Task] = {}
        self._tasks_by_device: dict[str, list[Task]] = {}
        self._open: set[str] = set()
        self._files: OrderedDict[str, tuple[str, str, float]] = OrderedDict()

    # ------------------------------------------------------------------ framework interface

    def routes(self) -> list[BaseRoute]:
        routes = self._api_routes()
        # Last, so it only answers what no route matched (a path matched with a wrong method
        # is only a partial match in Starlette, so this full match wins over its plain 405).
        routes.append(Route("/{rest:path}", _AnyMethod(self._no_route_for(routes))))
        return routes

    def _api_routes(self) -> list[BaseRoute]:
        r = self._route
        return [
            r("/session", self._create_session, ["POST", "PUT"], auth=False),
            r("/session", self._delete_session, ["DELETE"]),
            r("/info", self._info, ["GET"], auth=False),
            r("/test", self._test, ["GET"]),
            r("/account", self._get_account, ["GET"]),
            r("/account/users", self._get_users, ["GET"]),
            r("/devices", self._list_devices, ["GET"]),
            r("/devices/register", self._register, ["POST"]),
            r("/devices/{device_id}", self._get_device, ["GET"]),
            r("/devices/{device_id}", self._update_device, ["PUT", "PATCH"]),
            r("/devices/{device_id}", self._delete_device, ["DELETE"]),
            r("/devices/{device_id}/check_ins", self._check_ins, ["GET"]),
            r("/devices/{device_id}/signal_strength", self._signal_strength, ["GET"]),
            r("/devices/{device_id}/network", self._network, ["GET"]),
            r("/devices/{device_id}/lora", self._lora, ["GET"]),
            r("/devices/{device_id}/logs", self._logs, ["GET"]),
            r("/devices/{device_id}/configs", self._configs, ["GET"]),
            r("/devices/{device_id}/apps", self._device_apps, ["GET"]),
            r("/devices/{device_id}/tasks", self._list_tasks, ["GET"]),
            r("/devices/{device_id}/tasks", self._create_task, ["POST"]),
            r("/devices/{device_id}/tasks/{task_id}", self._get_task, ["GET"]),
            r("/devices/{device_id}/tasks/{task_id}", self._delete_task, ["DELETE"]),
            r("/devices/{device_id}/tasks/{task_id}/cancel", self._cancel_task, ["PUT", "PATCH"]),
            r("/apps", self._list_apps, ["GET"]),
            r("/apps/{app_id}", self._get_app, ["GET"]),
            r("/device-firmwares", self._device_firmwares, ["GET"]),
            r("/radio-firmwares", self._radio_firmwares, ["GET"]),
            r("/device-configurations", self._configurations, ["GET"]),
            r("/files/{file_id}", self._get_file, ["GET"], name="devicehq_file"),
        ]

    def expire_credentials(self) -> None:
        self._sessions.close(EXPIRED)

    def inspect(self, device_id: str) -> dict[str, Any] | None:
        serial = self._serial_of(device_id)
        if serial is None:
            return None
        alive = self._alive(serial)
        device, state = self._devices[serial], self._state(serial)
        if alive:
            self._settle(serial)
        return {
            "serial": serial,
            "uuid": device.extra.get("uuid"),
            "deleted": not alive,
            "group": state.group,
            "description": state.description,
            "location": None
            if state.location is None
            else {"lat": state.location[0], "lon": state.location[1]},
            "firmware": state.firmware,
            "radio_firmware": state.radio_firmware,
            "config_id": state.config_id,
            "apps": dict(state.apps),
            "tasks": [
                {
                    "id": t.id,
                    "function": t.function,
                    "state": t.state,
                    "created_at": t.created_at,
                    "checkins_needed": t.checkins_needed,
                    "fails": t.failure is not None,
                }
                for t in self._tasks_by_device.get(serial, [])
            ],
        }

    # ------------------------------------------------------------------ plumbing

    def _route(
        self, path: str, handler: Handler, methods: list[str], *, auth: bool = True, name: str | None = None
    ) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                if auth:
                    self._authenticate(request)
                return await handler(request)
            except DHQError as exc:
                return error_response(exc)

        return Route(path, endpoint, methods=methods, name=name)

    def _no_route_for(self, routes: list[BaseRoute]) -> Handler:
        async def no_route(request: Request) -> Response:
            method = request.method
            path = self.prefix.removeprefix("/devicehq") + "/" + request.path_params["rest"]
            allowed: set[str] = set()
            for route in routes:
                match, _ = route.matches(request.scope)
                if match is Match.PARTIAL and isinstance(route, Route) and route.methods:
                    allowed |= route.methods
            if allowed:
                listed = ", ".join(sorted(allowed - {"HEAD"}))
                detail = f"Method {method} is not supported by {path}: use {listed}"
            else:
                detail = f"No route matches {method} {path}"
            return error_response(DHQError(detail))

        return no_route

    def _now(self) -> float:
        return self.ctx.now()

    def _authenticate(self, request: Request) -> str:
        token = request.headers.get("x-auth-token") or request.query_params.get("token")
        if not token:
            raise DHQError(
                "Not logged in: create a session with POST /api/v2/session and send its token "
                "as header X-AUTH-TOKEN or URL parameter token"
            )
        self._sessions.check(token, self._now())
        return token

    def _serial_of(self, raw: str) -> str | None:
        if raw in self._devices:
            return raw
        uuid = normalise_uuid(raw)
        return None if uuid is None else self._by_uuid.get(uuid)

    def _state(self, serial: str) -> DeviceState:
        state = self._states.get(serial)
        if state is None:
            state = self._states[serial] = DeviceState.initial(self._devices[serial], self.catalog)
        return state

    def _schedule(self, serial: str) -> Schedule | None:
        state = self._state(serial)
        if state.never_checked_in:
            return None
        return Schedule.of(self._devices[serial], self._now(), state.floor)

    def _alive(self, serial: str) -> bool:
        """Not deleted, or deleted and since recreated by checking in again (document 002:
        "If the device subsequently checks in, it will be recreated in the same account")."""
        state = self._state(serial)
        if state.deleted_at is None:
            return True
        if state.never_checked_in or Schedule.of(self._devices[serial], self._now(), state.deleted_at).empty:
            return False
        self._revive(serial)
        return True

    def _revive(self, serial: str) -> None:
        old = self._state(serial)
        state = self._states[serial] = old.recreated()
        state.floor = old.deleted_at
        state.never_checked_in = old.never_checked_in
        self._deleted.discard(serial)
        self._haystacks.pop(serial, None)

    def _device(self, request: Request) -> tuple[SimDevice, DeviceState, str]:
        raw = request.path_params["device_id"]
        serial = self._serial_of(raw)
        if serial is None or not self._alive(serial):
            raise NotFoundError(f"Device {raw} not found")
        self._settle(serial)
        return self._devices[serial], self._state(serial), serial

    def _settle(self, serial: str) -> None:
        tasks = self._tasks_by_device.get(serial)
        if not tasks:
            return
        schedule = self._schedule(serial)
        state = self._state(serial)
        for task in tasks:
            if task.id not in self._open:
                continue
            task.advance(schedule)
            if task.state in FINAL_STATES:
                self._open.discard(task.id)
                task.apply(state)
                self._haystacks.pop(serial, None)

    def _open_task_count(self) -> int:
        for serial in {self._tasks[t].serial for t in self._open}:
            self._settle(serial)
        return len(self._open)

    def _haystack(self, serial: str) -> str:
        hay = self._haystacks.get(serial)
        if hay is None:
            device = self._devices[serial]
            state = self._states.get(serial)
            fields = [
                serial,
                device.model or "",
                str(device.extra.get("provider") or ""),
                str(device.extra.get("uuid") or ""),
            ]
            if state is None:
                fields += [device.name, device.group or "", device.firmware]
            else:
                fields += [state.description, state.group, state.firmware]
            hay = self._haystacks[serial] = "\x00".join(fields).lower()
        return hay

    def _single(self, serial: str, token: str) -> dict[str, Any]:
        device, state = self._devices[serial], self._state(serial)
        resource = device_resource(
            device, state, self._schedule(serial), self.catalog, self._now(), single=True
        )
        return {"result": "ok", "token": token, "data": resource}

    def _file_link(self, request: Request, serial: str, kind: str, k: int, ts: float) -> str:
        file_id = f"{int(ts) & 0xFFFFFFFF:08x}{stable_hash(serial, kind, k):016x}"
        self._files[file_id] = (serial, kind, ts)
        self._files.move_to_end(file_id)
        while len(self._files) > _FILES_KEPT:
            self._files.popitem(last=False)
        return str(request.url_for("devicehq_file", file_id=file_id))

    def _window(self, request: Request) -> tuple[float, float]:
        start, end = date_window(dict(request.query_params), self._now())
        return day_start(start), day_start(end)

    @staticmethod
    def _token(request: Request) -> str:
        return request.headers.get("x-auth-token") or request.query_params.get("token") or ""

    # ------------------------------------------------------------------ session, info, account

    async def _create_session(self, request: Request) -> Response:
        key = request.headers.get("x-api-key") or request.query_params.get("api_key")
        if not key:
            body = await _json(request)
            if isinstance(body, dict) and isinstance(body.get("api_key"), str):
                key = body["api_key"]
        if not key:
            raise DHQError(
                'API key required: send header X-API-KEY, URL parameter api_key or body {"api_key": ...}'
            )
        if not secrets.compare_digest(key.encode(), self.ctx.credentials.devicehq_api_key.encode()):
            raise DHQError("Invalid API key")
        now = self._now()
        token = self._sessions.open(now)
        return ApiResponse(
            {"meta": {"token": token, "expires": iso_z(now + SESSION_IDLE), "jsonapi": {"version": "1.0"}}}
        )

    async def _delete_session(self, request: Request) -> Response:
        self._sessions.close(LOGGED_OUT)
        return ApiResponse({"meta": {"message": "OK"}})

    async def _info(self, request: Request) -> Response:
        return ApiResponse(
            {"meta": {"version": API_VERSION, "url": str(request.url)}, "jsonapi": {"version": "1.0"}}
        )

    async def _test(self, request: Request) -> Response:
        # Document 002 contradicts itself: the route list says /test needs a session and /info
        # does not; the examples say the opposite of both. The route list is the normative part
        # and agrees with itself (/test "useful for testing if client is establishing session"),
        # so the examples read as the two descriptions swapped: /test requires the token.
        return ApiResponse({"meta": {"message": "OK", "timestamp": iso_z(self._now())}})

    async def _get_account(self, request: Request) -> Response:
        return ApiResponse({"data": account_resource()})

    async def _get_users(self, request: Request) -> Response:
        return ApiResponse({"data": users_resource()})

    # ------------------------------------------------------------------ devices

    async def _list_devices(self, request: Request) -> Response:
        limit = _int_param(request, "limit", DEFAULT_LIMIT)
        skip = _int_param(request, "skip", 0)
        q = request.query_params.get("q", "").strip().lower()
        for serial in list(self._deleted):
            self._alive(serial)
        serials = self._order
        if self._deleted:
            serials = [s for s in serials if s not in self._deleted]
        if q:
            serials = [s for s in serials if q in self._haystack(s)]
        now = self._now()
        data = []
        for serial in serials[skip : skip + limit]:
            self._settle(serial)
            data.append(
                device_resource(
                    self._devices[serial],
                    self._state(serial),
                    self._schedule(serial),
                    self.catalog,
                    now,
                    single=False,
                )
            )
        return ApiResponse({"data": data, "meta": {"skip": skip, "limit": limit, "total": len(serials)}})

    async def _get_device(self, request: Request) -> Response:
        _, _, serial = self._device(request)
        return ApiResponse(self._single(serial, self._token(request)))

    async def _update_device(self, request: Request) -> Response:
        device, state, serial = self._device(request)
        data = jsonapi_body(await _json(request))
        if data.get("type", "devices") != "devices":
            raise DHQError(f"data.type must be 'devices', got {data.get('type')!r}")
        if "id" in data and self._serial_of(str(data["id"])) != serial:
            raise DHQError(f"data.id {data['id']!r} does not match device {serial}")
        apply_update(data.get("attributes", {}), state)
        self._haystacks.pop(serial, None)
        return ApiResponse(self._single(device.id, self._token(request)))

    async def _delete_device(self, request: Request) -> Response:
        _, state, serial = self._device(request)
        for task in self._tasks_by_device.pop(serial, []):
            self._tasks.pop(task.id, None)
            self._open.discard(task.id)
        state.deleted_at = self._now()
        self._deleted.add(serial)
        self._haystacks.pop(serial, None)
        return ApiResponse(
            {"result": "ok", "token": self._token(request), "meta": {"message": f"Device {serial} removed"}}
        )

    async def _register(self, request: Request) -> Response:
        body = await _json(request)
        if isinstance(body, dict) and isinstance(body.get("data"), dict):
            body = body["data"].get("attributes", body["data"])
        if not isinstance(body, dict):
            raise DHQError('Expected {"serial": ..., "uuid": ...}')
        serial_raw, uuid_raw = body.get("serial"), body.get("uuid")
        if (
            isinstance(serial_raw, bool)
            or not isinstance(serial_raw, str | int)
            or not _SERIAL.fullmatch(str(serial_raw))
        ):
            raise DHQError("serial is required: the serial # of the device (letters, digits and dashes)")
        uuid = normalise_uuid(uuid_raw) if isinstance(uuid_raw, str) else None
        if uuid is None:
            raise DHQError("uuid is required and must contain exactly 32 hexadecimal characters")
        serial = str(serial_raw)
        owner = self._by_uuid.get(uuid)
        if serial in self._devices:
            if owner != serial:
                raise DHQError(f"UUID does not match device {serial}")
            if not self._alive(serial):
                self._revive(serial)
        else:
            if owner is not None:
                raise DHQError(f"UUID is already registered to device {owner}")
            now = self._now()
            device = SimDevice(
                id=serial,
                kind=self.kind,
                backend=BACKEND_NAMES[self.kind],
                name="",
                model=None,
                firmware="",
                online=False,
                last_seen=now,
                battery=None,
                rssi=None,
                lat=None,
                lon=None,
                group=None,
                installation_status=None,
                alerting=False,
                created=now,
                extra={"uuid": uuid, "provider": None},
            )
            self._devices[serial] = device
            self._order.append(serial)
            self._by_uuid[uuid] = serial
            self._states[serial] = DeviceState.initial(device, self.catalog, registered=True)
        resource = device_resource(
            self._devices[serial],
            self._state(serial),
            self._schedule(serial),
            self.catalog,
            self._now(),
            single=False,
        )
        return ApiResponse({"data": resource})

    # ------------------------------------------------------------------ history

    async def _check_ins(self, request: Request) -> Response:
        device, state, serial = self._device(request)
        start, end = self._window(request)
        return ApiResponse(checkin_history(device, state, self._schedule(serial), start, end))

    async def _signal_strength(self, request: Request) -> Response:
        device, state, serial = self._device(request)
        start, end = self._window(request)
        return ApiResponse(signal_history(device, state, self._schedule(serial), start, end))

    async def _network(self, request: Request) -> Response:
        device, state, serial = self._device(request)
        kind = request.query_params.get("type", "cell")
        if kind not in NETWORK_TYPES:
            raise DHQError(f"Invalid type {kind!r}: expected cell, ethernet or wifi")
        start, end = self._window(request)
        return ApiResponse(
            network_usage(device, state, self._schedule(serial), start, end, kind, self._now())
        )

    async def _lora(self, request: Request) -> Response:
        device, state, serial = self._device(request)
        self._window(request)
        return ApiResponse(lora_card(device, state, self._schedule(serial)))

    async def _logs(self, request: Request) -> Response:
        device, _, serial = self._device(request)
        start, end = self._window(request)
        schedule = self._schedule(serial)
        k = last_upload(schedule, start, end, LOG_EVERY)
        body: dict[str, Any] = {"id": device.id, "type": "devices", "attributes": {"log": None}}
        if schedule is not None and k is not None:
            body["attributes"] = log_attributes(device, schedule, k)
            body["links"] = {"self": self._file_link(request, serial, "log", k, schedule.time(k))}
        return ApiResponse(body)

    async def _configs(self, request: Request) -> Response:
        device, state, serial = self._device(request)
        start, end = self._window(request)
        schedule = self._schedule(serial)
        k = last_upload(schedule, start, end, CONFIG_EVERY) if supports_apps(device.model) else None
        body: dict[str, Any] = {"id": device.id, "type": "devices", "attributes": {"config": None}}
        if schedule is not None and k is not None:
            body["attributes"] = config_attributes(device, state, self.catalog, k)
            body["links"] = {"self": self._file_link(request, serial, "config", k, schedule.time(k))}
        return ApiResponse(body)

    async def _get_file(self, request: Request) -> Response:
        entry = self._files.get(request.path_params["file_id"])
        if entry is None:
            raise NotFoundError(f"File {request.path_params['file_id']} not found")
        serial, kind, when = entry
        return Response(
            upload_archive(serial, kind, when),
            media_type="application/gzip",
            headers={"Content-Disposition": f'attachment; filename="{serial}-{kind}.tar.gz"'},
        )

    # ------------------------------------------------------------------ tasks and apps

    def _task(self, request: Request, serial: str) -> Task:
        task_id = request.path_params["task_id"]
        task = self._tasks.get(task_id)
        if task is None or task.serial != serial:
            raise NotFoundError(f"Task {task_id} not found for device {serial}")
        return task

    async def _list_tasks(self, request: Request) -> Response:
        _, _, serial = self._device(request)
        tasks = self._tasks_by_device.get(serial, [])
        return ApiResponse({"data": [t.resource() for t in reversed(tasks)]})

    async def _create_task(self, request: Request) -> Response:
        device, state, serial = self._device(request)
        data = jsonapi_body(await _json(request))
        if data.get("type", "tasks") != "tasks":
            raise DHQError(f"data.type must be 'tasks', got {data.get('type')!r}")
        now = self._now()
        function, attributes, effect = build_task(
            data.get("attributes", {}), device, state, self.catalog, now
        )
        if self._open_task_count() >= TASK_LIMIT:
            raise DHQError(LIMIT_DETAIL)
        rng = self.ctx.rng
        task = Task(
            self._ids.next(now),
            serial,
            function,
            now,
            attributes,
            effect,
            checkins_needed=rng.randint(1, 3),
            failure=failure_for(rng.random(), rng.randrange(3)),
        )
        self._tasks[task.id] = task
        self._tasks_by_device.setdefault(serial, []).append(task)
        self._open.add(task.id)
        return ApiResponse({"data": task.resource()})

    async def _get_task(self, request: Request) -> Response:
        _, _, serial = self._device(request)
        return ApiResponse({"data": self._task(request, serial).resource(detail=True)})

    async def _cancel_task(self, request: Request) -> Response:
        _, _, serial = self._device(request)
        task = self._task(request, serial)
        if task.state in ("completed", "failed"):
            raise DHQError(f"Task {task.id} is already {task.state} and cannot be cancelled")
        task.state = "cancelled"
        self._open.discard(task.id)
        return ApiResponse({"data": task.resource()})

    async def _delete_task(self, request: Request) -> Response:
        _, _, serial = self._device(request)
        task = self._task(request, serial)
        self._tasks.pop(task.id)
        self._open.discard(task.id)
        self._tasks_by_device[serial].remove(task)
        return Response(status_code=204)

    async def _device_apps(self, request: Request) -> Response:
        device, state, _ = self._device(request)
        return ApiResponse({"data": installed_apps(device, state, self.catalog)})

    async def _list_apps(self, request: Request) -> Response:
        return ApiResponse({"data": [app.summary() for app in self.catalog.apps.values()]})

    async def _get_app(self, request: Request) -> Response:
        app = self.catalog.apps.get(request.path_params["app_id"])
        if app is None:
            raise NotFoundError(f"App {request.path_params['app_id']} not found")
        return ApiResponse({"data": app.detail()})

    async def _device_firmwares(self, request: Request) -> Response:
        return ApiResponse({"data": [fw.resource() for fw in self.catalog.device_firmwares.values()]})

    async def _radio_firmwares(self, request: Request) -> Response:
        return ApiResponse({"data": [fw.resource() for fw in self.catalog.radio_firmwares.values()]})

    async def _configurations(self, request: Request) -> Response:
        return ApiResponse({"data": [c.resource() for c in self.catalog.configurations.values()]})
