"""The mysensor connector (vendor document 000): sensors by serial and their tasks.

Authentication is a static API token sent as ``Authorization: Bearer <secret>``. The API has
no search, no sensor listing, no sensor names and no cross-sensor task list: a sensor is looked
up by its exact serial (a search or a listing with a query asks for that serial), and tasks
are listed per sensor (Laravel pages followed to ``last_page``). Tasks are created with
``PUT /tasks`` (not POST) and removed with ``DELETE /tasks/{id}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from fieldtui.config import MySensorBackend
from fieldtui.connectors._bearer import BearerRestConnector
from fieldtui.connectors._http import (
    body_as_text,
    invalid_shape,
    segment,
    short_text,
)
from fieldtui.connectors._wire_lenient import parse
from fieldtui.connectors._wire_mysensor import (
    SensorWire,
    TaskPageWire,
    TaskWire,
    sensor_details,
    to_device,
    to_task,
)
from fieldtui.core.capabilities import Capabilities
from fieldtui.core.errors import NotFound, Rejected, Unsupported
from fieldtui.core.filters import DeviceFilter
from fieldtui.core.models import BackendKind, Device, Task

#: A runaway ``last_page`` must not keep us paging forever.
MAX_TASK_PAGES = 500


def _laravel_error_text(response: httpx.Response) -> str | None:
    """Laravel's ``{"message": ..., "errors": {"field": ["..."]}}``, else the common shapes."""
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return body_as_text(response)
    if not isinstance(body, Mapping):
        return None
    words: list[str] = []
    errors = body.get("errors")
    if isinstance(errors, Mapping):
        # Laravel's field errors hold every problem; its "message" repeats only the first.
        for problems in errors.values():
            items = problems if isinstance(problems, list) else [problems]
            words.extend(str(item) for item in items)
    elif isinstance(errors, list):
        words.extend(
            str(item.get("detail", item)) if isinstance(item, Mapping) else str(item) for item in errors
        )
    if not words:
        for key in ("message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                words.append(value.strip())
                break
    return short_text("; ".join(words[:10]))


def _serial_value(device_id: str) -> int | str:
    """Serials are numbers in the API's JSON; keep anything else as the technician typed it."""
    stripped = device_id.strip()
    return int(stripped) if stripped.isdigit() else stripped


class MySensorConnector(BearerRestConnector):
    kind = BackendKind.MYSENSOR
    capabilities = Capabilities(lookup=True, search=False, tasks=True)
    #: No listing and no names (document 000 has only ``GET /sensors/{serial}``): a query is
    #: answered by asking for that exact serial.
    device_filters = frozenset({"query"})
    search_scope = "exact serials only (no names)"

    def __init__(
        self,
        name: str,
        config: MySensorBackend,
        secret: str | None,
        *,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(name, config, secret, client=client, error_text=_laravel_error_text)

    @staticmethod
    def _unwrap(body: Any, key: str) -> Any:
        # Some deployments wrap single resources as {"data": {...}}; the document does not.
        if isinstance(body, Mapping) and key not in body and isinstance(body.get("data"), Mapping):
            return body["data"]
        return body

    def _task(self, response: httpx.Response, body: Any, device_id: str) -> Task:
        body = self._unwrap(body, "id")
        if not isinstance(body, Mapping):
            raise invalid_shape(response, self.name, "expected a task object")
        return to_task(parse(TaskWire, body, response, self.name), dict(body), self.name, device_id)

    # -- reading ---------------------------------------------------------------------------
    async def probe(self) -> None:
        # No cheap listing exists: asking for an unknown serial proves the token is accepted.
        try:
            await self._call("GET", "/sensors/0")
        except (NotFound, Rejected):
            return

    async def get_device(self, device_id: str) -> Device:
        response, body = await self._call("GET", f"/sensors/{segment(device_id.strip(), self.name)}")
        body = self._unwrap(body, "serial")
        if not isinstance(body, Mapping):
            raise invalid_shape(response, self.name, "expected a sensor object")
        return to_device(parse(SensorWire, body, response, self.name), dict(body), self.name)

    async def details(self, device_id: str) -> dict[str, Any]:
        """The sensor's task queue summary and current configuration (``GET /sensors/{serial}``)."""
        response, body = await self._call("GET", f"/sensors/{segment(device_id.strip(), self.name)}")
        body = self._unwrap(body, "serial")
        if not isinstance(body, Mapping):
            raise invalid_shape(response, self.name, "expected a sensor object")
        return sensor_details(parse(SensorWire, body, response, self.name))

    async def search(self, query: str, *, limit: int | None = None) -> list[Device]:
        """Exact serial lookup only: the API has no search (``capabilities.search`` is False)."""
        serial = query.strip()
        if not serial.isdigit() or limit == 0:
            return []
        try:
            return [await self.get_device(serial)]
        except NotFound:
            return []

    async def list_devices(self, filter: DeviceFilter) -> list[Device]:
        """Only the exact serial of a query: the API lists nothing (document 000)."""
        self._check_filters(filter)
        if not filter.query:
            raise Unsupported(
                "the mysensor API has no device listing: give an exact serial", backend=self.name
            )
        return await self.search(filter.query, limit=filter.limit)

    alerts_on_devices = True

    def device_alerts(self, device: Device) -> tuple[str, ...]:
        """A sensor whose ``status_name`` reports an error is alerting (document 000 names the
        field; the words are the cloud's own)."""
        status = (device.status or "").strip()
        return (f"status {status}",) if "error" in status.lower() else device.alerts

    async def list_tasks(self, device_id: str) -> list[Task]:
        serial = device_id.strip()
        tasks: dict[str, Task] = {}
        page, last_page = 1, 1
        while page <= last_page and page <= MAX_TASK_PAGES:
            response, body = await self._call("GET", "/tasks", params={"sensor_serial": serial, "page": page})
            wire = parse(TaskPageWire, body, response, self.name)
            raw_items = body.get("data", []) if isinstance(body, Mapping) else []
            for item, raw in zip(wire.data, raw_items, strict=False):
                # Rows shift between pages while tasks are added: keep each task once.
                tasks.setdefault(item.id, to_task(item, dict(raw), self.name, serial))
            last_page = wire.last_page
            page = max(page, wire.current_page) + 1
        return list(tasks.values())

    async def get_task(self, device_id: str, task_id: str) -> Task:
        response, body = await self._call("GET", f"/tasks/{segment(task_id.strip(), self.name)}")
        task = self._task(response, body, device_id.strip())
        if task.device != device_id.strip():
            raise NotFound(f"task {task_id} does not belong to sensor {device_id}", backend=self.name)
        return task

    async def fleet_tasks(self) -> list[Task]:
        raise Unsupported("the mysensor API lists tasks per sensor only", backend=self.name)

    # -- writing ---------------------------------------------------------------------------
    async def create_task(self, device_id: str, task_type: str, params: dict[str, Any]) -> Task:
        """``PUT /tasks`` with ``sensor_serial``, ``file_id`` and ``type`` (document 000)."""
        file_id = params.get("file_id")
        if file_id is None or (isinstance(file_id, str) and not file_id.strip()):
            raise Rejected(
                "a mysensor task needs a file_id (the firmware or configuration file)", backend=self.name
            )
        if not task_type.strip():
            raise Rejected(
                "a mysensor task needs a type (update_firmware, update_configuration)", backend=self.name
            )
        file_value: Any = int(file_id) if isinstance(file_id, str) and file_id.strip().isdigit() else file_id
        payload = {
            "sensor_serial": _serial_value(device_id),
            "file_id": file_value,
            "type": task_type.strip(),
        }
        response, body = await self._call("PUT", "/tasks", body=payload)
        return self._task(response, body, device_id.strip())

    async def cancel_task(self, device_id: str, task_id: str) -> Task:
        raise Unsupported("the mysensor API cannot cancel a task; delete it instead", backend=self.name)

    async def delete_task(self, device_id: str, task_id: str) -> None:
        await self._call("DELETE", f"/tasks/{segment(task_id.strip(), self.name)}")
