"""Domain models shared by every layer. Connectors map vendor payloads into these once."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class BackendKind(StrEnum):
    MYSENSOR = "mysensor"
    THINGS = "things"
    DEVICEHQ = "devicehq"
    MQTT = "mqtt"
    FLEET = "fleet"


class InstallationStatus(StrEnum):
    NEW = "new"
    INSTALLED = "installed"
    UNINSTALLED = "uninstalled"
    QUARANTINE = "quarantine"
    RETIRED = "retired"


class TaskState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED)


def utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime (naive values are taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class _Model(BaseModel):
    # Schemas are built on first use: a quick command pays only for the models it touches.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Location(_Model):
    lat: float
    lon: float


class Device(_Model):
    """One device as one backend knows it (or, after merging, as several do)."""

    id: str
    backend: str
    kind: BackendKind
    name: str | None = None
    model: str | None = None
    firmware: str | None = None
    online: bool | None = None
    last_seen: datetime | None = None
    battery: float | None = None
    rssi: float | None = None
    location: Location | None = None
    group: str | None = None
    installation_status: InstallationStatus | None = None
    alerts: tuple[str, ...] = ()
    status: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)

    @field_validator("last_seen")
    @classmethod
    def _last_seen_utc(cls, value: datetime | None) -> datetime | None:
        return utc(value) if value is not None else None


MetricValue = float | int | str | bool


class TelemetrySample(_Model):
    device: str
    backend: str
    timestamp: datetime
    metrics: dict[str, MetricValue]

    @field_validator("timestamp")
    @classmethod
    def _timestamp_utc(cls, value: datetime) -> datetime:
        return utc(value)


class StreamEventKind(StrEnum):
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    ERROR = "error"


class StreamEvent(_Model):
    """A telemetry stream's own news (connected, reconnecting after a loss), not a sample."""

    device: str
    backend: str
    kind: StreamEventKind
    message: str
    timestamp: datetime


class Task(_Model):
    backend: str
    device: str
    id: str
    type: str
    state: TaskState
    raw_state: str
    attempts: int | None = None
    created: datetime | None = None
    updated: datetime | None = None
    detail: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)


class Group(_Model):
    backend: str
    id: str
    description: str | None = None
    member_count: int | None = None


class InstallationRecord(_Model):
    device: str
    backend: str
    status: InstallationStatus
    timestamp: datetime
    responsible: str | None = None


class Command(_Model):
    """A command sent to a device (001 message commands, 003 MQTT commands) and its status."""

    backend: str
    device: str
    id: str
    name: str
    status: str
    state: TaskState
    timestamp: datetime | None = None
    message: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)


class HistoryKind(StrEnum):
    INSTALLATION = "installation"
    CHECKIN = "check-in"
    TASK = "task"
    COMMAND = "command"


class HistoryEntry(_Model):
    """One event in a device's timeline: an installation status change, a check-in, a task or
    a command with its state, from one cloud (or from fieldtui's own record of MQTT commands)."""

    device: str
    backend: str
    kind: HistoryKind
    timestamp: datetime | None
    #: What happened, in words: "installed", "SOFTWARE_UPGRADE", "reboot".
    summary: str
    #: Who did it, when the cloud says (things' installation ``responsible``).
    who: str | None = None
    #: A task's or command's state ("done", "failed: low battery"); None for plain events.
    state: str | None = None
    detail: str | None = None
    #: The task's or command's own id (None for plain events).
    ref: str | None = None

    @field_validator("timestamp")
    @classmethod
    def _timestamp_utc(cls, value: datetime | None) -> datetime | None:
        return utc(value) if value is not None else None
