"""Wire models of the fleet device API (vendor document 004) and their mapping into core types.

Document 004 is an older page of Memfault's Devices API. Each model reads the document's shape
and Memfault's current one (sources in :mod:`fieldtui.connectors.fleet`'s docstring):

- ``hardware_version``: the document's string, or the current ``{"name": "..."}`` object.
- the firmware: the document's ``last_seen_release`` object (or a bare version string), or the
  current ``last_seen_software_version`` (``{"version", "software_type": {"name"}, ...}``).
- ``nickname`` (current) becomes the device's name; ``description``, ``project`` and the rest
  stay in ``raw``.
- ``paging``: the simulator's ``total``/``total_pages``, or Memfault's ``total_count``/
  ``page_count`` (with ``item_count``, the devices on this page).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

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


def _name_of(value: Any) -> Any:
    """Memfault's current ``{"name": "hwrev1"}`` where the document has the string ``"hwrev1"``."""
    if isinstance(value, dict):
        return value.get("name")
    return value


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
    hardware_version: Annotated[SoftStr, BeforeValidator(_name_of)] = None
    last_seen: SoftTime = None
    last_seen_release: Annotated[ReleaseWire | None, _object_or("version"), Soft] = None
    #: Memfault's current name for the last release seen (the document's ``last_seen_release``).
    last_seen_software_version: Annotated[ReleaseWire | None, _object_or("version"), Soft] = None
    cohort: Annotated[CohortWire | None, _object_or("slug"), Soft] = None
    nickname: SoftStr = None

    @property
    def firmware(self) -> str | None:
        for release in (self.last_seen_release, self.last_seen_software_version):
            if release is not None and release.version:
                return release.version
        return None


class PagingWire(WireModel):
    page: SoftInt = None
    per_page: SoftInt = None
    total: SoftInt = None
    total_pages: SoftInt = None
    #: Memfault's spelling of ``total`` and ``total_pages``; ``item_count`` is this page's count.
    total_count: SoftInt = None
    page_count: SoftInt = None
    item_count: SoftInt = None

    @model_validator(mode="after")
    def _either_spelling(self) -> PagingWire:
        # One reading for the readers of ``total``/``total_pages``, whichever server answered.
        if self.total is None:
            self.total = self.total_count
        if self.total_pages is None:
            self.total_pages = self.page_count
        return self


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
        name=wire.nickname,
        model=wire.hardware_version,
        firmware=wire.firmware,
        online=online,
        last_seen=last_seen,
        group=wire.cohort.slug if wire.cohort else None,
        raw=raw,
    )
