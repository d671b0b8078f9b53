"""Wire models of the mysensor API (vendor document 000) and their mapping into core types."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from fieldtui.connectors._wire_lenient import SoftInt, SoftStr, SoftTime, WireModel, as_utc
from fieldtui.core.models import BackendKind, Device, Task, TaskState

#: The list example of document 000 spells the type ``update_firwmare``; servers send it so.
_TYPE_SPELLINGS = {"update_firwmare": "update_firmware"}

#: ``status_name`` words (lower-cased) to the normalised task state.
_STATE_BY_NAME: dict[str, TaskState] = {
    "pending": TaskState.QUEUED,
    "queued": TaskState.QUEUED,
    "new": TaskState.QUEUED,
    "scheduled": TaskState.QUEUED,
    "waiting": TaskState.QUEUED,
    "created": TaskState.QUEUED,
    "running": TaskState.RUNNING,
    "in progress": TaskState.RUNNING,
    "in_progress": TaskState.RUNNING,
    "processing": TaskState.RUNNING,
    "started": TaskState.RUNNING,
    "sending": TaskState.RUNNING,
    "sent": TaskState.RUNNING,
    "completed": TaskState.DONE,
    "complete": TaskState.DONE,
    "done": TaskState.DONE,
    "finished": TaskState.DONE,
    "success": TaskState.DONE,
    "successful": TaskState.DONE,
    "failed": TaskState.FAILED,
    "failure": TaskState.FAILED,
    "error": TaskState.FAILED,
    "cancelled": TaskState.CANCELLED,
    "canceled": TaskState.CANCELLED,
    "aborted": TaskState.CANCELLED,
}

#: ``status_id`` alone (no readable name). Document 000 pairs 2 with "Completed"; the rest is
#: the simulator's reading (0 Pending, 1 In progress, 3 Failed). Used only without a name.
_STATE_BY_ID: dict[int, TaskState] = {
    0: TaskState.QUEUED,
    1: TaskState.RUNNING,
    2: TaskState.DONE,
    3: TaskState.FAILED,
}


class SensorWire(WireModel):
    serial: str
    status_id: SoftInt = None
    current_configuration: SoftStr = None
    current_firmware: SoftStr = None
    created_at: SoftTime = None
    updated_at: SoftTime = None
    status_name: SoftStr = None
    task_count: SoftInt = None
    activity_status: SoftStr = None
    task_queue: SoftStr = None
    next_task: SoftStr = None


class TaskWire(WireModel):
    id: str
    sensor_serial: SoftStr = None
    type: str = "unknown"
    status_id: SoftInt = None
    attempt_count: SoftInt = None
    created_at: SoftTime = None
    updated_at: SoftTime = None
    file_id: SoftStr = None
    status_name: SoftStr = None

    @field_validator("type", mode="before")
    @classmethod
    def _known_spelling(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _TYPE_SPELLINGS.get(value.strip(), value.strip())
        return value


class TaskPageWire(WireModel):
    """A Laravel page: ``current_page``, ``last_page``, ``per_page``, ``total``, ``data``."""

    current_page: int = 1
    last_page: int = 1
    per_page: SoftInt = None
    total: SoftInt = None
    data: list[TaskWire] = Field(default_factory=list)


def task_state(status_name: str | None, status_id: int | None) -> TaskState:
    """The normalised state; an unknown word is taken as still queued (never as finished)."""
    if status_name:
        known = _STATE_BY_NAME.get(status_name.strip().lower())
        if known is not None:
            return known
    if status_id is not None and status_id in _STATE_BY_ID and not status_name:
        return _STATE_BY_ID[status_id]
    return TaskState.QUEUED


def to_device(wire: SensorWire, raw: dict[str, Any], backend: str) -> Device:
    activity = wire.activity_status
    return Device(
        id=wire.serial,
        backend=backend,
        kind=BackendKind.MYSENSOR,
        firmware=wire.current_firmware,
        online=None if activity is None else activity.strip().lower() == "online",
        status=wire.status_name,
        raw=raw,
    )


def sensor_details(wire: SensorWire) -> dict[str, Any]:
    """What the sensor's record says beyond the Device fields (document 000): its task queue
    (``task_queue`` Empty/Queued/Processing, ``next_task`` the oldest unfinished task's id,
    ``task_count`` every task) and its current configuration file and firmware."""
    return {
        "task_queue": {"state": wire.task_queue, "next_task": wire.next_task, "task_count": wire.task_count},
        "configuration": {
            "current_configuration": wire.current_configuration,
            "current_firmware": wire.current_firmware,
            "status": wire.status_name,
            "activity": wire.activity_status,
            "updated_at": wire.updated_at.isoformat() if wire.updated_at else None,
        },
    }


def to_task(wire: TaskWire, raw: dict[str, Any], backend: str, device_id: str) -> Task:
    raw_state = wire.status_name or (str(wire.status_id) if wire.status_id is not None else "unknown")
    return Task(
        backend=backend,
        device=wire.sensor_serial or device_id,
        id=wire.id,
        type=wire.type,
        state=task_state(wire.status_name, wire.status_id),
        raw_state=raw_state,
        attempts=wire.attempt_count,
        created=as_utc(wire.created_at),
        updated=as_utc(wire.updated_at),
        detail=f"file {wire.file_id}" if wire.file_id else None,
        raw=raw,
    )
