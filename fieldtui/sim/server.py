"""The simulator's HTTP side: every cloud mounted at its prefix, injected faults, admin routes.

:class:`SimServer` is the ASGI app uvicorn serves. It sits *outside* Starlette on purpose: to
drop a connection without any HTTP response it needs uvicorn's own ``send`` (whose
``__self__.transport`` is the client's socket), which Starlette's middleware stack would wrap.

Admin routes (``/_sim/...``) are never subject to faults and never logged as mutations.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import importlib
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Message, Receive, Scope, Send

from fieldtui.sim.clouds.base import Cloud
from fieldtui.sim.context import SimContext
from fieldtui.sim.faults import MAX_LATENCY, FaultTable, resolve_backend
from fieldtui.sim.fleet import BACKEND_NAMES, generate_fleet
from fieldtui.sim.mutations import Mutation, MutationLog

#: Where each REST cloud is mounted (the config's ``url`` is the base URL plus this).
PREFIXES: dict[str, str] = {
    "mysensor": "/mysensor/api",
    "things": "/things/prod/v1",
    "devicehq": "/devicehq/api/v2",
    "fleet": "/fleet/api/v0/projects/demo",
}

#: The cloud classes, by module and class name. A module that is not there yet is skipped.
CLOUD_CLASSES: tuple[tuple[str, str], ...] = (
    ("fieldtui.sim.clouds.mysensor", "MySensorCloud"),
    ("fieldtui.sim.clouds.things", "ThingsCloud"),
    ("fieldtui.sim.clouds.devicehq", "DeviceHQCloud"),
    ("fieldtui.sim.clouds.fleet", "FleetCloud"),
)

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: From this many devices on, the fleet's objects are moved out of the cyclic collector's reach
#: once built (see :meth:`SimServer.rebuild`).
FREEZE_FLEET_SIZE = 5_000

#: What a load balancer in front of a struggling cloud answers: HTML, not the vendor's JSON.
_503_BODY = b"<html><body><h1>503 Service Unavailable</h1>No server is available to handle this request.</body></html>"


class BrokerControl(Protocol):
    @property
    def protocol(self) -> str | None: ...

    async def start(self) -> str: ...
    async def stop(self) -> None: ...
    async def restart(self) -> str | None: ...


class DeviceInspection(Protocol):
    """What the MQTT devices show of one device (``MqttDevices.inspect``): None when unknown."""

    def inspect(self, device_id: str) -> dict[str, Any] | None: ...


def load_cloud_classes() -> list[Any]:
    """The cloud classes that exist in this tree (a missing module is skipped, a broken one raises)."""
    classes: list[Any] = []
    for module_name, class_name in CLOUD_CLASSES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        classes.append(getattr(module, class_name))
    return classes


def _malform(body: bytes) -> bytes:
    """Break a JSON body the way the vendor documents do: a trailing comma before the last bracket."""
    stripped = body.rstrip()
    if stripped[-1:] in (b"}", b"]"):
        return stripped[:-1] + b"," + stripped[-1:]
    return stripped[: len(stripped) // 2] + b"{"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class SimServer:
    """The ASGI app: routes a request to its cloud, applies that backend's faults, logs mutations."""

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self.faults = FaultTable(ctx.fleet.seed)
        self.mutations = MutationLog()
        self.broker: BrokerControl | None = None
        #: The simulated MQTT devices (set by the runner with the broker): ``/_sim/inspect/live/ID``.
        self.mqtt_devices: DeviceInspection | None = None
        #: Extra facts for ``GET /_sim/info`` (URLs, MQTT port), filled in by the runner.
        self.info: dict[str, Any] = {}
        self.clock_offset = 0.0
        ctx.clock = self._clock
        self.clouds: dict[str, Cloud] = {}
        self._by_prefix: list[tuple[str, str]] = []  # (prefix, backend name)
        self._app: Starlette = Starlette()
        self.rebuild()

    def _clock(self) -> float:
        return time.time() + self.clock_offset

    # -- building -------------------------------------------------------------------------
    def rebuild(self) -> None:
        """Build every cloud afresh from the context's fleet, and the routes to them."""
        clouds: dict[str, Cloud] = {}
        routes: list[BaseRoute] = list(self._admin_routes())
        for cls in load_cloud_classes():
            cloud: Cloud = cls(self.ctx)
            if cloud.prefix != PREFIXES[cloud.kind]:
                raise RuntimeError(
                    f"{cls.__name__}.prefix is {cloud.prefix!r}, expected {PREFIXES[cloud.kind]!r}"
                )
            clouds[cloud.kind] = cloud
            routes.append(Mount(cloud.prefix, routes=cloud.routes()))
        self.clouds = clouds
        self._by_prefix = [(PREFIXES[kind] + "/", BACKEND_NAMES[kind]) for kind in clouds]
        self._app = Starlette(routes=routes)
        if self.ctx.fleet.size >= FREEZE_FLEET_SIZE:
            # A big fleet is millions of long-lived objects: every full collection walked them
            # all (~180 ms at 100,000 devices, every few list requests, stalling every cloud).
            # Frozen, they are never scanned again; what is built afterwards is collected as usual.
            gc.collect()
            gc.freeze()

    def reset(self) -> None:
        """Back to the start: the same fleet, fresh clouds, no faults, an empty log, real time."""
        fleet = self.ctx.fleet
        # Regenerated, not reused: a cloud may have changed the device objects it was given.
        self.ctx.fleet = generate_fleet(fleet.seed, fleet.size, now=fleet.started)
        self.ctx.rng = random.Random(fleet.seed)
        self.clock_offset = 0.0
        self.faults.clear()
        self.mutations.clear()
        self.rebuild()

    def cloud_for(self, backend: str) -> Cloud | None:
        """The cloud serving a backend name or kind."""
        name = resolve_backend(backend)
        for kind, cloud in self.clouds.items():
            if BACKEND_NAMES[kind] == name:
                return cloud
        return None

    # -- ASGI -----------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path: str = scope["path"]
        backend = next((name for prefix, name in self._by_prefix if path.startswith(prefix)), None)
        if backend is None:
            await self._app(scope, receive, send)
            return
        faults = self.faults.get(backend)
        lost = late = False
        if faults.active:
            if faults.unreachable or self.faults.roll(faults.drop_rate):
                await _drop_connection(send)
                return
            if faults.latency:
                await asyncio.sleep(faults.latency)
            if self.faults.roll(faults.error_rate):
                await _send_503(send)
                return
            if scope["method"] not in _READ_METHODS:
                lost = self.faults.roll(faults.answer_lost)
                late = not lost and self.faults.roll(faults.lands_late)
            if faults.malformed:
                send = _malforming(send)
            if faults.reworded:
                send = _rewording(send)
        if lost or late:
            # Applied (and logged, if the cloud accepted it), but the answer never reaches the client.
            await self._logged(backend, scope, receive, _swallow)
            if late:
                await _hold_until_gone(receive)
            await _drop_connection(send)
            return
        if scope["method"] in _READ_METHODS:
            await self._app(scope, receive, send)
        else:
            await self._logged(backend, scope, receive, send)

    async def _logged(self, backend: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a mutating request and log it if the cloud accepted it (a 2xx)."""
        chunks: list[bytes] = []
        status = 0

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self._app(scope, recording_receive, recording_send)
        if 200 <= status < 300:
            raw = b"".join(chunks)
            body: Any = None
            if raw.strip():
                try:
                    body = json.loads(raw)
                except (ValueError, UnicodeDecodeError):
                    body = raw.decode("utf-8", "replace")
            self.mutations.record(
                Mutation(
                    time=self.ctx.now(),
                    backend=backend,
                    method=scope["method"],
                    path=scope["path"],
                    query=scope.get("query_string", b"").decode("latin-1"),
                    body=body,
                    status=status,
                )
            )

    # -- admin routes ---------------------------------------------------------------------
    def _admin_routes(self) -> list[BaseRoute]:
        return [
            Route("/_sim/info", self._info, methods=["GET"]),
            Route("/_sim/fleet", self._fleet, methods=["GET"]),
            Route("/_sim/faults", self._faults_get, methods=["GET"]),
            Route("/_sim/faults", self._faults_clear, methods=["DELETE"]),
            Route("/_sim/faults/{backend}", self._faults_put, methods=["PUT"]),
            Route("/_sim/expire-credentials", self._expire, methods=["POST"]),
            Route("/_sim/broker/{action}", self._broker, methods=["POST"]),
            Route("/_sim/reset", self._reset, methods=["POST"]),
            Route("/_sim/mutations", self._mutations, methods=["GET"]),
            Route("/_sim/inspect/{backend}/{device_id}", self._inspect, methods=["GET"]),
            Route("/_sim/clock", self._clock_get, methods=["GET"]),
            Route("/_sim/clock", self._clock_advance, methods=["POST"]),
        ]

    async def _info(self, request: Request) -> Response:
        fleet = self.ctx.fleet
        return JSONResponse(
            {
                "seed": fleet.seed,
                "fleet_size": fleet.size,
                "devices": len(fleet.devices),
                "clouds": sorted(self.clouds),
                **self.info,
            }
        )

    async def _fleet(self, request: Request) -> Response:
        kind = request.query_params.get("kind")
        backend = request.query_params.get("backend")
        devices = self.ctx.fleet.devices
        rows = [
            d.summary()
            for d in devices
            if (kind is None or d.kind == kind) and (backend is None or d.backend == backend)
        ]
        return JSONResponse(rows)

    async def _faults_get(self, request: Request) -> Response:
        return JSONResponse(self.faults.snapshot())

    async def _faults_clear(self, request: Request) -> Response:
        self.faults.clear()
        return JSONResponse(self.faults.snapshot())

    async def _faults_put(self, request: Request) -> Response:
        try:
            changes = await request.json()
        except ValueError:
            return _error(400, "the body must be a JSON object of fault keys")
        if not isinstance(changes, dict):
            return _error(400, "the body must be a JSON object of fault keys")
        try:
            updated = self.faults.update(request.path_params["backend"], changes)
        except ValueError as exc:
            return _error(400, str(exc))
        return JSONResponse(updated.as_dict())

    async def _expire(self, request: Request) -> Response:
        backend = request.query_params.get("backend")
        if backend is None:
            targets = list(self.clouds.values())
        else:
            try:
                cloud = self.cloud_for(backend)
            except ValueError as exc:
                return _error(400, str(exc))
            if cloud is None:
                return _error(404, f"no simulated cloud serves {backend!r}")
            targets = [cloud]
        for cloud in targets:
            cloud.expire_credentials()
        return JSONResponse({"expired": sorted(BACKEND_NAMES[c.kind] for c in targets)})

    async def _broker(self, request: Request) -> Response:
        action = request.path_params["action"]
        if action not in ("start", "stop", "restart"):
            return _error(404, f"unknown broker action {action!r}; allowed: start, stop, restart")
        if self.broker is None:
            return _error(503, "this simulator runs no MQTT broker")
        if action == "stop":
            await self.broker.stop()
        elif action == "start":
            await self.broker.start()
        else:
            await self.broker.restart()
        running = action != "stop"
        return JSONResponse({"broker": "running" if running else "stopped", "protocol": self.broker.protocol})

    async def _reset(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"reset": True})

    async def _mutations(self, request: Request) -> Response:
        backend = request.query_params.get("backend")
        if backend is not None:
            try:
                backend = resolve_backend(backend)
            except ValueError as exc:
                return _error(400, str(exc))
        return JSONResponse([m.as_dict() for m in self.mutations.entries(backend)])

    async def _inspect(self, request: Request) -> Response:
        backend = request.path_params["backend"]
        try:
            cloud = self.cloud_for(backend)
        except ValueError as exc:
            return _error(400, str(exc))
        inspected: Cloud | DeviceInspection | None = cloud
        if cloud is None and resolve_backend(backend) == BACKEND_NAMES["mqtt"]:
            # The MQTT devices are no HTTP cloud: what each took is shown here all the same.
            inspected = self.mqtt_devices
        if inspected is None:
            return _error(404, f"no simulated cloud serves {backend!r}")
        state = inspected.inspect(request.path_params["device_id"])
        if state is None:
            return _error(404, f"{backend} does not know device {request.path_params['device_id']!r}")
        return JSONResponse(state)

    async def _clock_get(self, request: Request) -> Response:
        return JSONResponse({"now": self.ctx.now(), "offset": self.clock_offset})

    async def _clock_advance(self, request: Request) -> Response:
        """Move the simulated clock forward (``{"advance": SECONDS}``): expiry and progress without sleeping."""
        try:
            body = await request.json()
            seconds = float(body["advance"])
        except (ValueError, TypeError, KeyError):
            return _error(400, 'the body must be {"advance": SECONDS}')
        if seconds < 0:
            return _error(400, "the clock only moves forward")
        self.clock_offset += seconds
        return JSONResponse({"now": self.ctx.now(), "offset": self.clock_offset})


async def _drop_connection(send: Send) -> None:
    """Close the client's socket without a byte of response: the client sees a connection error."""
    transport: asyncio.Transport | None = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        # Not under uvicorn (an in-process ASGI transport): the nearest thing is an exception,
        # which such transports surface to the client as an error rather than as a response.
        raise ConnectionAbortedError("simulated unreachable backend")
    transport.abort()
    # Let connection_lost run so the server marks the cycle disconnected and sends no 500.
    for _ in range(3):
        await asyncio.sleep(0)


async def _swallow(message: Message) -> None:
    """A ``send`` that delivers nothing: the answer the cloud made is lost on its way back."""


async def _hold_until_gone(receive: Receive) -> None:
    """Wait until the client gives up on its request (closes the connection), at most MAX_LATENCY."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(MAX_LATENCY):
            while (await receive())["type"] != "http.disconnect":
                pass


async def _send_503(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"text/html"),
                (b"content-length", str(len(_503_BODY)).encode()),
                (b"retry-after", b"1"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _503_BODY, "more_body": False})


def _malforming(send: Send) -> Callable[[Message], Awaitable[None]]:
    """Wrap ``send`` so a 2xx body arrives as broken JSON (with a Content-Length to match)."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def wrapped(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            if 200 <= message["status"] < 300:
                start = message
                return
            await send(message)
            return
        if start is None or message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(chunks)
        if body:
            body = _malform(body)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return wrapped


#: What every string of an error answer becomes under the ``reworded`` fault (plus a reference
#: that keeps different answers apart): words no client has been written against.
REWORDED = "Anfrage nicht verarbeitet"


def _reword(value: Any) -> Any:
    if isinstance(value, str):
        ref = hashlib.blake2b(value.encode(), digest_size=4).hexdigest()
        return f"{REWORDED} (ref {ref})"
    if isinstance(value, list):
        return [_reword(item) for item in value]
    if isinstance(value, dict):
        return {key: _reword(item) for key, item in value.items()}
    return value


def _rewording(send: Send) -> Callable[[Message], Awaitable[None]]:
    """Wrap ``send`` so an error answer's JSON keeps its shape with every string reworded."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def wrapped(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            if message["status"] >= 400:
                start = message
                return
            await send(message)
            return
        if start is None or message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(chunks)
        try:
            body = json.dumps(_reword(json.loads(body))).encode()
        except (ValueError, UnicodeDecodeError):
            pass  # not JSON (a plain-text or HTML error page): left as it is
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return wrapped
