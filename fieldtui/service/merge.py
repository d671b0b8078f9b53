"""One device as several clouds know it, merged into one view (pure functions, no I/O).

The same physical device can live in two clouds under the same id (a DeviceHQ gateway that is
also a things gateway, an MQTT device also registered in the fleet API). The technician sees one
entry whose headline values follow a fixed rule per field (:data:`FIELD_RULES`), never the order
in which the clouds answered: fresh copies before cached ones, then the clouds in the field's
order of authority, then the configured order. Each cloud's own copy is kept (``copies``), and
where clouds disagree on a field the view says so (:meth:`DeviceView.disagreements`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel

from fieldtui.core.models import BackendKind, Device

_DEVICE_REPORTED = (
    BackendKind.MQTT,
    BackendKind.DEVICEHQ,
    BackendKind.THINGS,
    BackendKind.FLEET,
    BackendKind.MYSENSOR,
)
_SITE_RECORD = (
    BackendKind.THINGS,
    BackendKind.DEVICEHQ,
    BackendKind.FLEET,
    BackendKind.MYSENSOR,
    BackendKind.MQTT,
)

#: Field -> the clouds in the order their value is taken for the headline (first non-null wins,
#: fresh copies before cached ones, the configured order among clouds of one kind). What the
#: device reports about itself (firmware, battery, signal) comes first from the cloud nearest to
#: the device; what a technician records about the site (name, group, location, installation
#: status) first from the installation cloud (things), then the device-management ones.
FIELD_RULES: dict[str, tuple[BackendKind, ...]] = {
    "name": _SITE_RECORD,
    "model": (
        BackendKind.DEVICEHQ,
        BackendKind.FLEET,
        BackendKind.THINGS,
        BackendKind.MYSENSOR,
        BackendKind.MQTT,
    ),
    "firmware": _DEVICE_REPORTED,
    "battery": _DEVICE_REPORTED,
    "rssi": _DEVICE_REPORTED,
    "location": _SITE_RECORD,
    "group": _SITE_RECORD,
    "installation_status": _SITE_RECORD,
    "status": (
        BackendKind.MYSENSOR,
        BackendKind.DEVICEHQ,
        BackendKind.THINGS,
        BackendKind.FLEET,
        BackendKind.MQTT,
    ),
}
#: Which copy names the merged device's ``backend``/``kind`` (and orders ``sources``).
PRIMARY_RULE = _SITE_RECORD
#: Fields compared across clouds for :meth:`DeviceView.disagreements`.
COMPARED_FIELDS = ("name", "model", "firmware", "online", "group", "installation_status", "status")


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
class PendingChange:
    """A change the technician made that the cloud does not show yet (an open outbox action)."""

    action_id: str
    #: The device field it changes ("installation_status", "group"), None for tasks, commands...
    field: str | None
    #: The value it sets, in words ("installed", "roof").
    value: str
    #: "queued", "sending", "failed" or "conflict".
    state: str
    #: The cloud's words for a failure or conflict, why it waits for a queued one.
    reason: str | None
    #: The action in words: "move D1 to group roof".
    description: str

    def words(self) -> str:
        """``queued``, ``failed: <the cloud's words>``, ``conflict: ...``."""
        if self.state in ("failed", "conflict") and self.reason:
            return f"{self.state}: {self.reason}"
        return self.state


@dataclass(frozen=True, slots=True)
class DeviceView:
    """Everything known about one device across clouds."""

    device: Device
    sources: tuple[Source, ...]
    #: Each backend's own copy, by backend name (the UI's per-cloud detail).
    copies: dict[str, Device] = field(default_factory=dict)
    #: Backends that could not be asked, with the user-readable reason.
    errors: dict[str, str] = field(default_factory=dict)
    #: Open outbox actions on this device, oldest first.
    pending: tuple[PendingChange, ...] = ()

    def pending_for(self, name: str) -> PendingChange | None:
        """The latest open change of field ``name`` (None when nothing is pending on it)."""
        found = [p for p in self.pending if p.field == name]
        return found[-1] if found else None

    @property
    def stale(self) -> bool:
        """True when every source is a cached copy."""
        return all(source.stale for source in self.sources)

    def disagreements(self) -> dict[str, dict[str, Any]]:
        """Field -> {backend: value} for the fields on which two fresh-or-cached copies differ
        (clouds without a value for the field are left out)."""
        found: dict[str, dict[str, Any]] = {}
        for name in COMPARED_FIELDS:
            values = {
                backend: _plain(getattr(copy, name))
                for backend, copy in self.copies.items()
                if getattr(copy, name) is not None
            }
            if len({repr(v) for v in values.values()}) > 1:
                found[name] = values
        return found

    def as_json(self) -> dict[str, Any]:
        """The ``status --json`` document.

        ``device`` and ``sources`` are the contract scripts rely on; ``clouds`` adds each cloud's
        own copy (its fields, without the raw payload) and ``differs`` the fields on which the
        clouds disagree, with each cloud's value (the headline value is in ``device``).
        """
        return {
            "device": self.device.model_dump(mode="json"),
            "sources": [source.as_json() for source in self.sources],
            "clouds": {
                backend: copy.model_dump(mode="json", exclude={"raw"})
                for backend, copy in self.copies.items()
            },
            "differs": self.disagreements(),
            "pending": [
                {
                    "action": p.action_id,
                    "field": p.field,
                    "value": p.value,
                    "state": p.state,
                    "reason": p.reason,
                    "description": p.description,
                }
                for p in self.pending
            ],
        }


def iso(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix (the JSON contract's timestamp form)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


def order_copies(
    copies: Iterable[SourcedDevice], rule: Sequence[BackendKind] = PRIMARY_RULE
) -> list[SourcedDevice]:
    """Copies in ``rule``'s preference order: fresh before cached, then by the kind's place in
    ``rule`` (stable for ties, so the configured order breaks them). Never by answer timing."""

    def rank(copy: SourcedDevice) -> tuple[bool, int]:
        kind = copy.device.kind
        return (copy.source.stale, rule.index(kind) if kind in rule else len(rule))

    return sorted(copies, key=rank)


def merge_devices(copies: Sequence[SourcedDevice]) -> DeviceView:
    """Merge every backend's copy of one device id into a single view.

    - ``backend``/``kind`` are the copy first in :data:`PRIMARY_RULE`; ``raw`` maps backend
      name to its payload.
    - each field of :data:`FIELD_RULES`: the first non-null value in that field's order.
    - ``last_seen``: the most recent of all; ``online``: true when any fresh copy says so
      (one cloud hearing from the device is enough), else the preferred non-null value.
    - ``alerts``: the union, in preference order, without duplicates.
    """
    if not copies:
        raise ValueError("merge_devices needs at least one copy")
    ordered = order_copies(copies)
    primary = ordered[0].device
    values: dict[str, Any] = {}
    for name, rule in FIELD_RULES.items():
        values[name] = next(
            (
                getattr(c.device, name)
                for c in order_copies(ordered, rule)
                if getattr(c.device, name) is not None
            ),
            None,
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
