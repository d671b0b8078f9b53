"""The sensor manufacturer's REST API (vendor document 000), a Laravel application.

What this reading of the document settles where the document is silent:

- Every route wants ``Authorization: Bearer <token>``; otherwise 401 ``{"message":
  "Unauthenticated."}``. The token is a static API token: ``expire_credentials`` revokes it
  until the simulator is reset.
- Unknown ids answer 404 ``{"message": "No query results for model [App\\Models\\Sensor] ID"}``
  (Laravel's model-not-found text). Validation errors answer 422 ``{"message": ..., "errors":
  {field: [...]}}``.
- ``serial`` and ``sensor_serial`` are JSON numbers. Timestamps are ``YYYY-MM-DD HH:MM:SS``, UTC.
- Task states: 0 ``Pending``, 1 ``In progress``, 2 ``Completed``, 3 ``Failed``; ``attempt_count``
  grows while a task runs. A created task waits 2 s, runs 6 s, then ends (its outcome fixed by
  the seed and its id). A completed firmware or configuration task changes the sensor's
  ``current_firmware`` / ``current_configuration``.
- Sensor ``task_count`` counts every task, ``next_task`` is the id of the oldest unfinished task
  (or null), ``task_queue`` is ``Empty``, ``Queued`` (only pending ones) or ``Processing``.
- ``GET /tasks?sensor_serial=`` is newest first, 10 a page (``per_page`` up to 100); an unknown
  sensor gives an empty page, as a Laravel ``where`` would; ``from``/``to`` are null on an empty
  page. The list spells the firmware type ``update_firwmare`` (the document does); single tasks
  spell it ``update_firmware``.
- ``PUT /tasks`` creates (201, the task); there is no idempotency: the same body twice makes two.
- ``DELETE /tasks/{id}`` answers 204; a task in progress cannot be deleted (422).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from fieldtui.sim.clouds._http import bearer_token, json_body
from fieldtui.sim.context import SimContext
from fieldtui.sim.fleet import SimDevice

TASK_TYPES = ("update_firmware", "update_configuration")
STATUS_NAMES = {0: "Pending", 1: "In progress", 2: "Completed", 3: "Failed"}
SENSOR_STATUS_NAMES = {1: "Idle", 2: "Busy", 3: "Error"}

#: Seeded task ids are TASK_ID_BASE + sensor index * _SLOTS + n, so ``GET /tasks/{id}`` finds the
#: sensor without building every sensor's history at start (100,000-device fleets start fast).
TASK_ID_BASE = 16_000_000
_SLOTS = 64
_MAX_SEEDED = 30

#: How long a task created through the API waits and runs (seconds of the simulator's clock).
NEW_TASK_PENDING_S = 2.0
NEW_TASK_RUNNING_S = 6.0


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(slots=True)
class _Task:
    id: int
    serial: str
    type: str
    file_id: int
    created: float
    pending_s: float
    running_s: float
    succeeds: bool
    attempts: int  # attempts it takes in the end (the maximum when it fails)

    def state(self, now: float) -> tuple[int, int, float]:
        """(status_id, attempt_count, updated time) at ``now``."""
        elapsed = now - self.created
        if elapsed < self.pending_s:
            return 0, 0, self.created
        started = self.created + self.pending_s
        if elapsed < self.pending_s + self.running_s:
            step = self.running_s / self.attempts
            attempt = min(self.attempts, 1 + int((now - started) / step))
            return 1, attempt, started + (attempt - 1) * step
        return (2 if self.succeeds else 3), self.attempts, started + self.running_s

    def payload(self, now: float, *, list_spelling: bool = False) -> dict[str, Any]:
        status_id, attempts, updated = self.state(now)
        kind = "update_firwmare" if list_spelling and self.type == "update_firmware" else self.type
        return {
            "id": self.id,
            "sensor_serial": int(self.serial),
            "type": kind,
            "status_id": status_id,
            "attempt_count": attempts,
            "created_at": _stamp(self.created),
            "updated_at": _stamp(updated),
            "file_id": self.file_id,
            "status_name": STATUS_NAMES[status_id],
        }


def _not_found(model: str, ident: str) -> JSONResponse:
    return JSONResponse(
        {"message": f"No query results for model [App\\Models\\{model}] {ident}"}, status_code=404
    )


def _as_int(value: Any) -> int | None:
    """Laravel's ``integer`` rule: an int, or a string of digits; never a bool or a float."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _validation_error(errors: dict[str, list[str]]) -> JSONResponse:
    messages = [m for field_errors in errors.values() for m in field_errors]
    message = messages[0]
    if len(messages) > 1:
        more = len(messages) - 1
        message += f" (and {more} more error{'s' if more > 1 else ''})"
    return JSONResponse({"message": message, "errors": errors}, status_code=422)


class MySensorCloud:
    kind: ClassVar[str] = "mysensor"
    prefix: ClassVar[str] = "/mysensor/api"

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self._devices: dict[str, SimDevice] = ctx.fleet.of("mysensor")
        self._serials: list[str] = list(self._devices)
        self._index: dict[str, int] = {serial: i for i, serial in enumerate(self._serials)}
        self._tasks: dict[int, _Task] = {}
        self._by_sensor: dict[str, list[int]] = {}  # only sensors whose history was built
        self._next_id = TASK_ID_BASE + len(self._serials) * _SLOTS + 1
        self._revoked = False

    # -- the Cloud interface --------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return [
            Route("/sensors/{id}", self._get_sensor, methods=["GET"]),
            Route("/tasks", self._list_tasks, methods=["GET"]),
            Route("/tasks", self._create_task, methods=["PUT"]),
            Route("/tasks/{id}", self._get_task, methods=["GET"]),
            Route("/tasks/{id}", self._delete_task, methods=["DELETE"]),
        ]

    def expire_credentials(self) -> None:
        self._revoked = True

    def inspect(self, device_id: str) -> dict[str, Any] | None:
        serial = self._serial(device_id)
        if serial is None:
            return None
        now = self.ctx.now()
        return {
            "sensor": self._sensor_payload(serial, now),
            "tasks": [self._tasks[i].payload(now) for i in self._task_ids(serial)],
            "revoked": self._revoked,
        }

    # -- state ----------------------------------------------------------------------------
    def _serial(self, raw: str) -> str | None:
        """The known serial for a path or query value (numbers compare as numbers: ``007`` is 7)."""
        value = _as_int(raw)
        if value is None:
            return None
        serial = str(value)
        return serial if serial in self._devices else None

    def _task_ids(self, serial: str) -> list[int]:
        """The sensor's task ids, oldest first, building its seeded history on first use."""
        ids = self._by_sensor.get(serial)
        if ids is None:
            ids = self._seed_history(serial)
            self._by_sensor[serial] = ids
        return ids

    def _seed_history(self, serial: str) -> list[int]:
        index = self._index[serial]
        device = self._devices[serial]
        fleet = self.ctx.fleet
        rng = random.Random(fleet.seed * 1_000_003 + index)
        count = rng.randint(11, _MAX_SEEDED) if rng.random() < 0.15 else rng.randint(0, 6)
        times = sorted(rng.uniform(device.created, fleet.started - 3_600) for _ in range(count))
        ids: list[int] = []
        for n, created in enumerate(times):
            task_id = TASK_ID_BASE + index * _SLOTS + n
            recent = n == count - 1 and rng.random() < 0.2
            if recent:  # a task still queued or running when the simulator starts
                created = fleet.started - rng.uniform(0, 30)
            succeeds = rng.random() < 0.85
            self._tasks[task_id] = _Task(
                id=task_id,
                serial=serial,
                type=rng.choice(TASK_TYPES),
                file_id=rng.randint(1_500_000, 1_999_999),
                created=created,
                pending_s=rng.uniform(20, 60) if recent else rng.uniform(60, 600),
                running_s=rng.uniform(120, 600) if recent else rng.uniform(300, 3_600),
                succeeds=succeeds,
                attempts=rng.randint(1, 3) if succeeds else 3,
            )
            ids.append(task_id)
        return ids

    def _task(self, raw: str) -> _Task | None:
        task_id = _as_int(raw)
        if task_id is None:
            return None
        if (
            task_id not in self._tasks
            and TASK_ID_BASE <= task_id < TASK_ID_BASE + len(self._serials) * _SLOTS
        ):
            self._task_ids(self._serials[(task_id - TASK_ID_BASE) // _SLOTS])
        return self._tasks.get(task_id)

    def _sensor_payload(self, serial: str, now: float) -> dict[str, Any]:
        device = self._devices[serial]
        status_id = int(device.extra.get("status_id", 1))
        firmware = device.firmware
        configuration = str(device.extra.get("configuration", ""))
        updated = device.created
        next_task: int | None = None
        pending = running = 0
        for task in (self._tasks[i] for i in self._task_ids(serial)):
            task_status, _, task_updated = task.state(now)
            updated = max(updated, task_updated)
            if task_status in (0, 1):
                pending += task_status == 0
                running += task_status == 1
                next_task = task.id if next_task is None else next_task
            elif task_status == 2 and task.id > TASK_ID_BASE + len(self._serials) * _SLOTS:
                # Only tasks made through the API change the sensor: the seeded history is
                # already reflected in the fleet's firmware and configuration.
                if task.type == "update_firmware":
                    firmware = (
                        f"FW:{datetime.fromtimestamp(task_updated, UTC):%d-%m-%Y}:{task.file_id % 100:02d}"
                    )
                else:
                    configuration = f"G1_{serial}_{datetime.fromtimestamp(task_updated, UTC).isoformat()}.cfg"
        if running and status_id != 3:
            status_id = 2
        return {
            "serial": int(serial),
            "status_id": status_id,
            "current_configuration": configuration,
            "current_firmware": firmware,
            "created_at": _stamp(device.created),
            "updated_at": _stamp(updated),
            "status_name": SENSOR_STATUS_NAMES[status_id],
            "next_task": next_task,
            "task_count": len(self._task_ids(serial)),
            "activity_status": "Online" if device.online else "Offline",
            "task_queue": "Processing" if running else ("Queued" if pending else "Empty"),
        }

    # -- routes ---------------------------------------------------------------------------
    def _refused(self, request: Request) -> Response | None:
        token = bearer_token(request)
        if self._revoked or token != self.ctx.credentials.mysensor_token:
            return JSONResponse({"message": "Unauthenticated."}, status_code=401)
        return None

    async def _get_sensor(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        raw = request.path_params["id"]
        serial = self._serial(raw)
        if serial is None:
            return _not_found("Sensor", raw)
        return JSONResponse(self._sensor_payload(serial, self.ctx.now()))

    async def _get_task(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        raw = request.path_params["id"]
        task = self._task(raw)
        if task is None:
            return _not_found("Task", raw)
        return JSONResponse(task.payload(self.ctx.now()))

    async def _list_tasks(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        params = request.query_params
        raw_serial = params.get("sensor_serial")
        if raw_serial is None or not raw_serial.strip():
            return _validation_error({"sensor_serial": ["The sensor serial field is required."]})
        if _as_int(raw_serial) is None:
            return _validation_error({"sensor_serial": ["The sensor serial field must be an integer."]})
        per_page = _as_int(params.get("per_page", "10"))
        per_page = 10 if per_page is None or per_page < 1 else min(per_page, 100)
        page = _as_int(params.get("page", "1"))
        page = 1 if page is None or page < 1 else page
        serial = self._serial(raw_serial)
        ids = list(reversed(self._task_ids(serial))) if serial is not None else []
        total = len(ids)
        offset = (page - 1) * per_page
        now = self.ctx.now()
        data = [self._tasks[i].payload(now, list_spelling=True) for i in ids[offset : offset + per_page]]
        return JSONResponse(
            {
                "current_page": page,
                "from": offset + 1 if data else None,
                "to": offset + len(data) if data else None,
                "total": total,
                "first_page": 1,
                "last_page": max(1, math.ceil(total / per_page)),
                "per_page": per_page,
                "data": data,
            }
        )

    async def _create_task(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        body = await json_body(request)
        fields: dict[str, Any] = body if isinstance(body, dict) else {}
        errors: dict[str, list[str]] = {}
        serial: str | None = None
        raw_serial = fields.get("sensor_serial")
        if raw_serial is None or raw_serial == "":
            errors["sensor_serial"] = ["The sensor serial field is required."]
        elif _as_int(raw_serial) is None:
            errors["sensor_serial"] = ["The sensor serial field must be an integer."]
        else:
            serial = self._serial(str(raw_serial))
            if serial is None:
                errors["sensor_serial"] = ["The selected sensor serial is invalid."]
        file_id = _as_int(fields.get("file_id"))
        if fields.get("file_id") is None or fields.get("file_id") == "":
            errors["file_id"] = ["The file id field is required."]
        elif file_id is None:
            errors["file_id"] = ["The file id field must be an integer."]
        task_type = fields.get("type")
        if task_type is None or task_type == "":
            errors["type"] = ["The type field is required."]
        elif task_type not in TASK_TYPES:
            errors["type"] = ["The selected type is invalid."]
        if errors or serial is None or file_id is None or not isinstance(task_type, str):
            return _validation_error(errors)
        task_id = self._next_id
        self._next_id += 1
        succeeds = random.Random(self.ctx.fleet.seed * 7_919 + task_id).random() < 0.9
        task = _Task(
            id=task_id,
            serial=serial,
            type=task_type,
            file_id=file_id,
            created=self.ctx.now(),
            pending_s=NEW_TASK_PENDING_S,
            running_s=NEW_TASK_RUNNING_S,
            succeeds=succeeds,
            attempts=1 if succeeds else 3,
        )
        self._task_ids(serial).append(task_id)
        self._tasks[task_id] = task
        return JSONResponse(task.payload(task.created), status_code=201)

    async def _delete_task(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        raw = request.path_params["id"]
        task = self._task(raw)
        if task is None:
            return _not_found("Task", raw)
        if task.state(self.ctx.now())[0] == 1:
            return JSONResponse({"message": "A task in progress cannot be deleted."}, status_code=422)
        del self._tasks[task.id]
        self._by_sensor[task.serial].remove(task.id)
        return Response(status_code=204)
