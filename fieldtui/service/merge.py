"""One device as several clouds know it, merged into one view (pure functions, no I/O).

The same physical device can live in two clouds under the same id (a DeviceHQ gateway that is
also a things gateway, an MQTT device also registered in the fleet API). The technician sees one
entry: values merged field by field, preferring fresh copies over cached ones and, among those,
the copy that saw the device most recently; ``sources`` says which clouds contributed and how old
each copy is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fieldtui.core.models import BackendKind, Device

#: Fields merged by "first non-null in preference order".
_SCALAR_FIELDS = (
    "name",
    "model",
    "firmware",
    "battery",
    "rssi",
    "location",
    "group",
    "installation_status",
    "status",
)


@dataclass(frozen=True, slots=True)
class Source:
    """One cloud's contribution to a merged device (the ``sources`` entries of ``status --json``)."""

    backend: str
    kind: BackendKind
    fetched_at: datetime
    #: True when the copy came from the read cache because the backend could not be asked.
    stale: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "kind": self.kind.value,
            "fetched_at": iso(self.fetched_at),
            "stale": self.stale,
        }


@dataclass(frozen=True, slots=True)
class SourcedDevice:
    """One backend's copy of a device with where and when it came from."""

    device: Device
    source: Source


@dataclass(frozen=True, slots=True)
class DeviceView:
    """Everything known about one device across clouds."""

    device: Device
    sources: tuple[Source, ...]
    #: Each backend's own copy, by backend name (the UI's per-cloud detail).
    copies: dict[str, Device] = field(default_factory=dict)
    #: Backends that could not be asked, with the user-readable reason.
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def stale(self) -> bool:
        """True when every source is a cached copy."""
        return all(source.stale for source in self.sources)

    def as_json(self) -> dict[str, Any]:
        """The ``status --json`` document: ``{"device": {...}, "sources": [...]}``."""
        return {
            "device": self.device.model_dump(mode="json"),
            "sources": [source.as_json() for source in self.sources],
        }


def iso(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix (the JSON contract's timestamp form)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _preference(copy: SourcedDevice) -> tuple[bool, float, float]:
    last_seen = copy.device.last_seen.timestamp() if copy.device.last_seen else float("-inf")
    # Fresh before stale, then the copy that heard from the device most recently, then the newest fetch.
    return (copy.source.stale, -last_seen, -copy.source.fetched_at.timestamp())


def order_copies(copies: Iterable[SourcedDevice]) -> list[SourcedDevice]:
    """Copies in merge preference order (stable for ties, so config order breaks them)."""
    return sorted(copies, key=_preference)


def merge_devices(copies: Sequence[SourcedDevice]) -> DeviceView:
    """Merge every backend's copy of one device id into a single view.

    - ``backend``/``kind`` are the preferred copy's; ``raw`` maps backend name to its payload.
    - scalar fields: the first non-null value in preference order.
    - ``last_seen``: the most recent of all; ``online``: true when any fresh copy says so
      (one cloud hearing from the device is enough), else the preferred non-null value.
    - ``alerts``: the union, in preference order, without duplicates.
    """
    if not copies:
        raise ValueError("merge_devices needs at least one copy")
    ordered = order_copies(copies)
    primary = ordered[0].device
    values: dict[str, Any] = {}
    for name in _SCALAR_FIELDS:
        values[name] = next(
            (getattr(c.device, name) for c in ordered if getattr(c.device, name) is not None), None
        )
    seen = [c.device.last_seen for c in ordered if c.device.last_seen is not None]
    values["last_seen"] = max(seen) if seen else None
    if any(c.device.online is True and not c.source.stale for c in ordered):
        values["online"] = True
    else:
        values["online"] = next((c.device.online for c in ordered if c.device.online is not None), None)
    alerts: dict[str, None] = {}
    for c in ordered:
        alerts.update(dict.fromkeys(c.device.alerts))
    merged = primary.model_copy(
        update={
            **values,
            "alerts": tuple(alerts),
            "raw": {c.source.backend: c.device.raw for c in ordered},
        }
    )
    return DeviceView(
        device=merged,
        sources=tuple(c.source for c in ordered),
        copies={c.source.backend: c.device for c in ordered},
    )


def group_by_id(copies: Iterable[SourcedDevice]) -> dict[str, list[SourcedDevice]]:
    """Copies grouped by device id, in first-seen order."""
    groups: dict[str, list[SourcedDevice]] = {}
    for copy in copies:
        groups.setdefault(copy.device.id, []).append(copy)
    return groups
