"""What a technician may ask a cloud's own device listing for, in one typed value.

Each connector applies the filters its cloud understands and refuses the others by name
(:meth:`DeviceFilter.given` lists what was asked), so a filter is never silently dropped.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, field_validator

from fieldtui.core.models import Device, InstallationStatus, utc

#: The filter names, as :meth:`DeviceFilter.given` reports them (and the CLI spells them).
FILTER_NAMES = (
    "query",
    "group",
    "release",
    "owner",
    "hardware_version",
    "last_seen_since",
    "last_seen_until",
    "sort",
    "installation_status",
)


class DeviceFilter(BaseModel):
    """A listing's filters. A repeated filter (``release``...) matches any of its values."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Free text the cloud searches by (DeviceHQ's ``q``).
    query: str | None = None
    #: A group whose members are listed (a things deployment group).
    group: str | None = None
    release: tuple[str, ...] = ()
    owner: tuple[str, ...] = ()
    hardware_version: tuple[str, ...] = ()
    last_seen_since: datetime | None = None
    last_seen_until: datetime | None = None
    #: A sort key, ``-`` first for descending (``-last_seen``).
    sort: str | None = None
    #: Only devices with this installation status (things).
    installation_status: InstallationStatus | None = None
    #: At most this many devices (None: every page).
    limit: int | None = 100

    @field_validator("last_seen_since", "last_seen_until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return utc(value) if value is not None else None

    def given(self) -> list[str]:
        """The names of the filters set, in :data:`FILTER_NAMES` order."""
        return [name for name in FILTER_NAMES if getattr(self, name) not in (None, ())]

    def beyond(self, understood: frozenset[str]) -> list[str]:
        """The filters set that are not in ``understood``."""
        return [name for name in self.given() if name not in understood]


def text_matches(device: Device, text: str | None) -> bool:
    """True when ``text`` (ignoring case) is part of the device's id or name, or is empty.

    The one rule for a match on this side, for clouds whose listing cannot search and for what
    a cloud listed by group or status (the read cache and the lookup's index use the same)."""
    needle = (text or "").strip().lower()
    return not needle or needle in device.id.lower() or needle in (device.name or "").lower()


def device_matches(device: Device, filter: DeviceFilter) -> bool:
    """True when ``device`` passes the query, group and installation status of ``filter``."""
    if not text_matches(device, filter.query):
        return False
    if filter.group is not None and device.group != filter.group:
        return False
    return filter.installation_status is None or device.installation_status == filter.installation_status
