"""Wire models of the fleet device API (vendor document 004) and their mapping into core types."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from fieldtui.connectors._wire_lenient import Soft, SoftInt, SoftStr, SoftTime, WireModel, as_utc
from fieldtui.core.models import BackendKind, Device

#: A device whose ``last_seen`` is older than this is shown offline.
ONLINE_WINDOW_SECONDS = 15 * 60.0


def _object_or(key: str) -> Any:
    """Accept a bare string where the document has an object (``"1.2.3"`` for a release)."""

    def wrap(value: Any) -> Any:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return {key: str(value)}
        return value

    return BeforeValidator(wrap)


class ReleaseWire(WireModel):
    id: SoftStr = None
    version: SoftStr = None
    revision: SoftStr = None


class CohortWire(WireModel):
    id: SoftStr = None
    name: SoftStr = None
    slug: SoftStr = None


class FleetDeviceWire(WireModel):
    id: SoftStr = None
    created_date: SoftTime = None
    updated_date: SoftTime = None
    device_serial: str = Field(min_length=1)
    owner_ref: SoftStr = None
    hardware_version: SoftStr = None
    last_seen: SoftTime = None
    last_seen_release: Annotated[ReleaseWire | None, _object_or("version"), Soft] = None
    cohort: Annotated[CohortWire | None, _object_or("slug"), Soft] = None


class PagingWire(WireModel):
    page: SoftInt = None
    per_page: SoftInt = None
    total: SoftInt = None
    total_pages: SoftInt = None


class AttributeWire(WireModel):
    string_key: str = Field(min_length=1)
    data_type: SoftStr = None
    value: Any = None
    updated_date: SoftTime = None


def to_device(
    wire: FleetDeviceWire, raw: dict[str, Any], backend: str, now: datetime | None = None
) -> Device:
    last_seen = as_utc(wire.last_seen)
    online = False
    if last_seen is not None:
        age = ((now or datetime.now(UTC)) - last_seen).total_seconds()
        online = age <= ONLINE_WINDOW_SECONDS
    return Device(
        id=wire.device_serial,
        backend=backend,
        kind=BackendKind.FLEET,
        model=wire.hardware_version,
        firmware=wire.last_seen_release.version if wire.last_seen_release else None,
        online=online,
        last_seen=last_seen,
        group=wire.cohort.slug if wire.cohort else None,
        raw=raw,
    )
