"""Wire models of the things API (vendor document 001) and their mapping into core types.

Each model reads the document's shape and the one Haltian's own public apps depend on (sources
in :mod:`fieldtui.connectors.things`'s docstring): a group's members as the document-less list
of ``{"group_id", "tuid"}`` entries (the simulator's reading) or bare tuids, or as Haltian's
``{"group_id", "tuids": [...]}`` object; extra fields (``group_id`` in an installation answer,
command parameters such as ``mode``) are kept, never refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from fieldtui.connectors._wire_lenient import SoftFloat, SoftInt, SoftStr, SoftTime, WireModel, as_utc
from fieldtui.core.models import (
    Command,
    Group,
    InstallationRecord,
    InstallationStatus,
    Location,
    MetricValue,
    TaskState,
    TelemetrySample,
)

#: Message fields that describe the message itself, not a measurement.
_MESSAGE_META_PREFIX = "tsm"
_MESSAGE_META_KEYS = frozenset({"deploymentGroupId"})


class TokenWire(WireModel):
    token: str = Field(min_length=1)


class LocationWire(WireModel):
    # Documented as strings, sent as numbers: both are read.
    lat: SoftFloat = None
    lon: SoftFloat = None


class ThingWire(WireModel):
    battery_level: SoftFloat = None
    timestamp: SoftTime = None
    location: LocationWire | None = None
    gateway_tuid: SoftStr = None
    version: SoftStr = None

    @property
    def position(self) -> Location | None:
        if self.location is None or self.location.lat is None or self.location.lon is None:
            return None
        return Location(lat=self.location.lat, lon=self.location.lon)


class AlertSpanWire(WireModel):
    # ``from`` is a Python keyword: read by alias.
    start: SoftTime = Field(default=None, alias="from")
    end: SoftTime = Field(default=None, alias="to")


class ThingAlertWire(WireModel):
    tuid: SoftStr = None
    alert_type: str = "alert"
    alerts: list[AlertSpanWire] = Field(default_factory=list)


class AlertingWire(WireModel):
    alerting_tuids: list[str] = Field(default_factory=list)


class AlertCountWire(WireModel):
    alert_count: int


class InstallationWire(WireModel):
    tuid: SoftStr = None
    installation_status: str
    timestamp: datetime
    responsible: SoftStr = None


class GroupOfThingWire(WireModel):
    group_id: str
    tuid: SoftStr = None


class GroupMembersWire(WireModel):
    """Haltian's apps read ``GET /groups/{id}/things`` as ``{"group_id", "tuids": [...]}``."""

    group_id: SoftStr = None
    tuids: list[str] = Field(default_factory=list)


def member_tuids(data: Any) -> list[str] | None:
    """A group's tuids from either reading of ``GET /groups/{id}/things``; None when neither fits.

    A list holds bare tuids or ``{"tuid": ...}`` objects (the simulator); an object holds
    ``tuids`` (Haltian's installer apps)."""
    if isinstance(data, Mapping):
        if not isinstance(data.get("tuids"), list):
            return None
        try:
            wire = GroupMembersWire.model_validate(data)
        except ValueError:
            return None
        return [str(tuid) for tuid in wire.tuids]
    if not isinstance(data, list):
        return None
    members: list[str] = []
    for item in data:
        if isinstance(item, str | int) and not isinstance(item, bool):
            members.append(str(item))
        elif isinstance(item, Mapping) and isinstance(item.get("tuid"), str):
            members.append(item["tuid"])
        else:
            return None
    return members


class GroupWire(WireModel):
    group_id: str
    group_description: SoftStr = None
    thing_count: SoftInt = None
    member_count: SoftInt = None
    things_count: SoftInt = None


class RenamedWire(WireModel):
    group_id: str
    old: SoftStr = None
    renamed: bool = True


class DeletedWire(WireModel):
    group_id: SoftStr = None
    deleted: bool = True


class CommandBodyWire(WireModel):
    tsmId: int  # noqa: N815 - the vendor's spelling
    tsmEv: SoftInt = None  # noqa: N815
    tsmTs: SoftTime = None  # noqa: N815
    tsmDstTuid: SoftStr = None  # noqa: N815


class CommandRecordWire(WireModel):
    tuid: SoftStr = None
    timestamp: SoftTime = None
    responsible: SoftStr = None
    command: CommandBodyWire


class SentCommandsWire(WireModel):
    responsible: SoftStr = None
    commands: list[CommandBodyWire] = Field(default_factory=list)


class InstallationSetWire(WireModel):
    tuid: SoftStr = None
    installation_status: SoftStr = None


def installation_status(value: str | None) -> InstallationStatus | None:
    if value is None:
        return None
    try:
        return InstallationStatus(value.strip().lower())
    except ValueError:
        return None


def to_record(wire: InstallationWire, backend: str, device_id: str) -> InstallationRecord | None:
    status = installation_status(wire.installation_status)
    if status is None:
        return None
    return InstallationRecord(
        device=wire.tuid or device_id,
        backend=backend,
        status=status,
        timestamp=wire.timestamp,
        responsible=wire.responsible,
    )


def active_alert_types(alerts: list[ThingAlertWire], now: datetime, window_seconds: float) -> list[str]:
    """Alert types with a span still open: no end, or an end within ``window_seconds`` of now.

    The API has no "active" flag per thing; an active alert's ``to`` is the server's "now".
    """
    active: list[str] = []
    for alert in alerts:
        for span in alert.alerts:
            end = as_utc(span.end)
            if end is None or (now - end).total_seconds() <= window_seconds:
                if alert.alert_type not in active:
                    active.append(alert.alert_type)
                break
    return active


def to_group(wire: GroupWire, backend: str) -> Group:
    count = next((c for c in (wire.thing_count, wire.member_count, wire.things_count) if c is not None), None)
    return Group(
        backend=backend, id=wire.group_id, description=wire.group_description or None, member_count=count
    )


def _holdable(value: int | float) -> bool:
    """A number a float can hold: ``1e999`` arrives from ``json.loads`` as infinity and a
    400-digit integer as an int no chart, sum or ``float()`` can take."""
    if isinstance(value, float):
        return math.isfinite(value)
    try:
        float(value)
    except OverflowError:
        return False
    return True


def metrics_of(message: Mapping[str, Any]) -> dict[str, MetricValue]:
    """The dynamic attributes of a message: numbers, strings and booleans only.

    A number no float can hold is skipped (as an unreadable measurement), like MQTT's.
    """
    metrics: dict[str, MetricValue] = {}
    for key, value in message.items():
        if key.startswith(_MESSAGE_META_PREFIX) or key in _MESSAGE_META_KEYS:
            continue
        if isinstance(value, bool | str) or (isinstance(value, int | float) and _holdable(value)):
            metrics[key] = value
    return metrics


def _seconds(value: int | float) -> int | None:
    """Whole unix seconds, or None when no date can carry them (infinite, NaN, past year 9999)."""
    if not _holdable(value):
        return None
    try:
        whole = int(value)
        datetime.fromtimestamp(whole, UTC)
    except (OverflowError, ValueError, OSError):
        return None
    return whole


def message_time(message: Mapping[str, Any]) -> int | None:
    """``tsmTs`` as whole unix seconds (numbers or numeric strings), None when unreadable.

    A message whose time is unreadable is skipped by its readers, never an error that a
    telemetry poll would meet again on every retry.
    """
    value = message.get("tsmTs")
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _seconds(value)
    if isinstance(value, str):
        try:
            return _seconds(float(value.strip()))
        except ValueError:
            return None
    return None


def to_sample(message: Mapping[str, Any], backend: str, device_id: str, ts: int) -> TelemetrySample:
    return TelemetrySample(
        device=device_id,
        backend=backend,
        timestamp=datetime.fromtimestamp(ts, UTC),
        metrics=metrics_of(message),
    )


def to_command(
    body: CommandBodyWire,
    raw: Mapping[str, Any],
    backend: str,
    device_id: str,
    *,
    responsible: str | None,
    sent: datetime | None,
) -> Command:
    """A sent command. The API reports no delivery status: a listed command has been sent."""
    timestamp = as_utc(body.tsmTs or sent)
    stamp = int(timestamp.timestamp()) if timestamp is not None else 0
    transaction = raw.get("transactionId")
    ident = f"{body.tsmId}:{body.tsmEv}:{stamp}" + (f":{transaction}" if transaction is not None else "")
    parameters = {key: value for key, value in raw.items() if key not in ("tsmId", "tsmTs", "tsmDstTuid")}
    return Command(
        backend=backend,
        device=body.tsmDstTuid or device_id,
        id=ident,
        name=str(body.tsmId),
        status="sent",
        state=TaskState.DONE,
        timestamp=timestamp,
        message=f"sent by {responsible}" if responsible else None,
        parameters=parameters,
    )
