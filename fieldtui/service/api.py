"""The port: everything a face (the app, a CLI command) may ask of the service, as Protocols.

The faces import this module and nothing else from ``fieldtui.service``: no connector, store,
sync engine, config or secret reaches a screen. The session (:mod:`fieldtui.service.session`)
is the one implementation over the real clouds, opened by one composition root
(:func:`fieldtui.service.session.open_service`); tests of screens use an in-memory one.

The value types named here are the service's own (device views, task views, outbox records,
connectivity states); they are re-exported so a face needs no other import.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from fieldtui.core.actions import ActionState, ActionType
from fieldtui.core.alerts import AlertingDevice
from fieldtui.core.capabilities import Capabilities
from fieldtui.core.catalogue import CatalogueItem, CommandKind, GroupRules, TaskKind
from fieldtui.core.filters import DeviceFilter
from fieldtui.core.models import (
    BackendKind,
    Device,
    Group,
    HistoryEntry,
    InstallationStatus,
    StreamEvent,
    Task,
    TelemetrySample,
)
from fieldtui.service.connectivity import BackendState, BackendStatus, ConnectivityChange
from fieldtui.service.fleet import BackendFinished, FindMatch, FindResult, TaskView
from fieldtui.service.merge import DeviceView, PendingChange, Source
from fieldtui.service.overlay import heard
from fieldtui.service.store import ActionRecord, DamagedRow, Loss, Salvage, StorageFault, StoreError
from fieldtui.service.sync import ActionEvent, SyncSummary
from fieldtui.service.writes import WriteOutcome

TelemetryItem = TelemetrySample | StreamEvent
Unsubscribe = Callable[[], None]


class SyncMode(StrEnum):
    """How a session sends what is queued."""

    #: The app: the sync engine runs for the whole session and wakes when a cloud comes back.
    BACKGROUND = "background"
    #: ``set-status``, ``move`` and the other writing commands: one bounded attempt, then close.
    ONCE = "once"
    #: Reads: nothing is sent.
    NONE = "none"
    #: ``outbox sync``: nothing runs by itself; ``outbox.drain()`` sends what it can, bounded.
    DRAIN = "drain"


@dataclass(frozen=True, slots=True)
class BackendInfo:
    """One configured cloud as a face sees it: its name, kind and what it declares."""

    name: str
    kind: BackendKind
    capabilities: Capabilities
    #: The cloud's task kinds (what "create task" offers), in the order to show them.
    task_kinds: tuple[TaskKind, ...] = ()
    #: The commands the cloud accepts (what "send command" offers); empty: free text only.
    command_kinds: tuple[CommandKind, ...] = ()
    #: How the cloud names groups (None when it has no groups).
    group_rules: GroupRules | None = None
    #: Why it cannot be used now (its connector cannot be built: no secret...), else None.
    unusable: str | None = None

    def why_not(self, capability: str) -> str | None:
        """None when the cloud offers ``capability``, else the reason in words."""
        if self.unusable is not None:
            return self.unusable
        return self.capabilities.why_not(capability, self.kind.value)


@dataclass(frozen=True, slots=True)
class GroupListing:
    """A cloud's groups: fresh, or from the cache (``fetched_at`` set) with why."""

    backend: str
    groups: list[Group]
    #: When the cached copy was fetched; None for a fresh answer.
    fetched_at: datetime | None = None
    #: Why the list is cached or empty (the cloud's error, "offline"), else None.
    error: str | None = None


@dataclass(frozen=True, slots=True)
class GroupMember:
    """One member of a group, with what a technician checks before moving it."""

    id: str
    name: str | None = None
    installation_status: InstallationStatus | None = None
    online: bool | None = None
    battery: float | None = None


@dataclass(frozen=True, slots=True)
class DeviceListing:
    """Devices from the clouds' own listings, with the clouds that failed or could not filter."""

    devices: list[Device]
    #: Backend -> why it could not be read (its error, "offline").
    errors: dict[str, str] = field(default_factory=dict)
    #: Backend -> why it was not asked (no listing, or it cannot apply a filter given).
    skipped: dict[str, str] = field(default_factory=dict)
    #: Backend -> why its answer is partial (a cloud that lists and matches on this side
    #: stopped at its time budget or cap).
    partial: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CloudDetails:
    """What one cloud holds about a device beyond its Device fields, by section, as plain JSON
    values (MQTT, document 003: ``config``, ``licenses``, ``space_info``, ``firmware`` and the
    ``next_command`` waiting). Read on demand: none of it is cached."""

    backend: str
    device: str
    sections: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DownloadedFile:
    """A file a cloud keeps for a device (a gateway's last log archive or config upload)."""

    backend: str
    device: str
    #: The server's file name (a plain name, no directory), else ``DEVICE-KIND.tar.gz``.
    name: str
    content: bytes


@dataclass(frozen=True, slots=True)
class DiagnosticsView:
    """Every cloud's details of one device (gateway diagnostics, MQTT config and licences,
    fleet attributes, a sensor's task queue), with the clouds that failed or keep nothing more."""

    device: str
    #: One per cloud that answered, in the order of the device's clouds.
    details: list[CloudDetails]
    #: Backend -> why it could not be read now (``<what happened> (<what to do>)``).
    errors: dict[str, str] = field(default_factory=dict)
    #: Backend -> why it has nothing to show (a cloud that keeps nothing more, offline).
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AlertsView:
    """What is alerting now across clouds."""

    devices: list[AlertingDevice]
    #: Backend -> the count the cloud itself gives (only clouds that give one).
    counts: dict[str, int] = field(default_factory=dict)
    #: Backend -> how many known devices were read for their alerts (clouds with no alerting list).
    checked: dict[str, int] = field(default_factory=dict)
    #: Backend -> why it could not be read, or what was left unread.
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HistoryView:
    """A device's timeline across clouds, newest first, with the clouds that could not be read."""

    device: str
    entries: list[HistoryEntry]
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    queued: int = 0
    sending: int = 0
    failed: int = 0
    conflict: int = 0
    damaged: int = 0
    done: int = 0
    cancelled: int = 0
    #: When a sync last finished (background or asked for), None before the first.
    last_sync: datetime | None = None
    #: Why the last background sync could not send (None when it went through).
    last_sync_error: str | None = None

    @property
    def pending(self) -> int:
        return self.queued + self.sending


class Reads(Protocol):
    """What a face may read: never raises for one cloud's failure when others answered."""

    @property
    def offline(self) -> bool: ...

    def backends(self) -> Sequence[BackendInfo]: ...

    def backend(self, name: str) -> BackendInfo | None: ...

    def find(
        self,
        query: str,
        *,
        limit: int | None = None,
        cloud: str | None = None,
        group: str | None = None,
        status: InstallationStatus | None = None,
    ) -> AsyncIterator[FindResult]:
        """Devices matching ``query`` in every cloud (``cloud``: that one only, its own listing
        when the query is empty), or in the listings of the clouds that keep ``group`` and
        ``status``; each cloud ends with a :class:`BackendFinished`."""
        ...

    async def device(self, device_id: str) -> DeviceView: ...

    def device_updates(self, device_id: str, *, start: DeviceView | None = None) -> AsyncIterator[DeviceView]:
        """The view as it grows: ``start`` (what a lookup found; its clouds are not asked
        again) or the cache first, then one view per cloud's answer; the last is complete."""
        ...

    def known_devices(self) -> AsyncIterator[DeviceView]: ...

    async def history(self, device_id: str) -> HistoryView: ...

    def telemetry(self, device_id: str) -> AsyncIterator[TelemetryItem]: ...

    async def task_view(self, device_id: str) -> TaskView: ...

    def task_monitor(self, backend: str, device_id: str | None = None) -> AsyncIterator[list[Task]]: ...

    async def groups(self, backend: str) -> GroupListing: ...

    async def group_members(self, backend: str, group: str) -> list[GroupMember]: ...

    async def catalogue(self, backend: str, source: str, *args: str) -> list[CatalogueItem]: ...

    async def list_devices(self, filter: DeviceFilter, *, backend: str | None = None) -> DeviceListing:
        """The clouds' own listings (``backend``: that one only; a filter it cannot apply is an
        Unsupported error then, and a reason in ``skipped`` otherwise)."""
        ...

    async def alerts(self) -> AlertsView:
        """What is alerting now: each cloud's own alerting list, else its known devices' alerts."""
        ...

    async def cloud_details(self, device_id: str, backend: str) -> CloudDetails:
        """What ``backend`` holds about the device beyond its record (Unsupported for a cloud
        that keeps nothing more; a BackendError when it cannot be read now)."""
        ...

    async def request_config(self, device_id: str, backend: str) -> CloudDetails:
        """Ask the device itself for its configuration (MQTT's ``.../config`` request): the
        section ``config`` holds its answer (Unsupported elsewhere; a BackendError when the
        device does not answer)."""
        ...

    async def download(self, device_id: str, backend: str, kind: str) -> DownloadedFile:
        """The device's last uploaded ``kind`` file (``log``, ``config``) from ``backend``,
        through its session (Unsupported for a cloud that keeps no files; NotFound when none
        was uploaded)."""
        ...

    async def diagnostics(self, device_id: str, *, backend: str | None = None) -> DiagnosticsView:
        """``cloud_details`` of every cloud that holds the device (``backend``: that one only);
        DeviceNotFound when none does."""
        ...


class Writes(Protocol):
    """Every change, outbox first: each returns the queued record; ``first_outcome`` waits a
    bounded while for its first attempt."""

    @property
    def read_only(self) -> bool: ...

    async def set_installation_status(
        self,
        device: str,
        status: InstallationStatus | str,
        *,
        backend: str | None = None,
        precondition: dict[str, Any] | None = None,
    ) -> ActionRecord: ...

    async def move_to_group(
        self,
        device: str,
        group: str,
        *,
        backend: str | None = None,
        precondition: dict[str, Any] | None = None,
    ) -> ActionRecord: ...

    async def create_task(
        self, device: str, task_type: str, params: dict[str, Any] | None = None, *, backend: str | None = None
    ) -> ActionRecord: ...

    async def cancel_task(self, device: str, task_id: str, *, backend: str | None = None) -> ActionRecord: ...

    async def delete_task(self, device: str, task_id: str, *, backend: str | None = None) -> ActionRecord: ...

    async def send_command(
        self, device: str, name: str, params: dict[str, Any] | None = None, *, backend: str | None = None
    ) -> ActionRecord: ...

    async def update_device(
        self,
        device: str,
        fields: dict[str, Any],
        *,
        backend: str | None = None,
        precondition: dict[str, Any] | None = None,
    ) -> ActionRecord:
        """Edit the device's record (``{"fields": {...}}`` as seen: a changed one is a conflict)."""
        ...

    async def create_device(self, backend: str, device: str, fields: dict[str, Any]) -> ActionRecord:
        """Create (fleet) or register (DeviceHQ) a device record on ``backend``."""
        ...

    async def delete_device(self, backend: str, device: str) -> ActionRecord:
        """Remove a device record from ``backend`` (done when it is gone)."""
        ...

    async def set_cloud_setting(
        self, device: str, prop: str, value: Any, *, backend: str | None = None
    ) -> ActionRecord:
        """Set one MQTT cloud setting (document 003 "Set Cloud Settings")."""
        ...

    async def create_group(
        self, backend: str, group: str, description: str | None = None
    ) -> ActionRecord: ...

    async def rename_group(self, backend: str, group: str, new_group: str) -> ActionRecord: ...

    async def delete_group(self, backend: str, group: str) -> ActionRecord: ...

    async def first_outcome(self, record: ActionRecord, timeout: float = 10.0) -> WriteOutcome: ...


class Outbox(Protocol):
    """The outbox as a face sees it: counts, records, their events, and what a technician may do."""

    async def counts(self) -> OutboxCounts: ...

    async def list_actions(self) -> list[ActionRecord]: ...

    async def pending_for(self, device_id: str) -> list[ActionRecord]: ...

    async def retry(self, action_id: str) -> ActionRecord: ...

    async def drop(self, action_id: str) -> ActionRecord: ...

    async def resolve_conflict(self, action_id: str, *, apply: bool) -> ActionRecord: ...

    async def sync_now(self) -> str: ...

    def on_change(self, callback: Callable[[ActionEvent], None]) -> Unsubscribe: ...

    async def action(self, action_id: str) -> ActionRecord:
        """The one action whose id starts with ``action_id`` (a StoreError says why not)."""
        ...

    async def list_recent(self, finished: int = 20) -> list[ActionRecord]:
        """Every open action and the last ``finished`` finished ones, in queue order."""
        ...

    async def damaged(self) -> list[DamagedRow]:
        """Rows that could not be read, set aside and never sent."""
        ...

    async def lost_actions(self) -> list[Loss]:
        """Actions the outbox knows it lost (a damaged write-ahead log after a crash)."""
        ...

    async def drain(self, timeout: float | None = None) -> SyncSummary:
        """``outbox sync``: every queued action made due now and sent until nothing is left,
        only what cannot be sent in this run is left, or ``timeout`` passes. Only in a session
        opened with ``SyncMode.DRAIN`` (where an engine runs, ``sync_now`` is the way)."""
        ...

    async def check_applied(self, action_id: str) -> bool | None:
        """Whether the action took effect on its cloud, asked of the cloud when its last
        attempt got no answer (True when done; False when never sent or refused); None when the
        cloud cannot tell now (unreachable, offline, no check for it)."""
        ...


class Connectivity(Protocol):
    """Each cloud's state, and its changes."""

    def snapshot(self) -> dict[str, BackendStatus]: ...

    def on_change(self, callback: Callable[[ConnectivityChange], None]) -> Unsubscribe: ...

    async def probe_now(self, backend: str) -> BackendState: ...


class FieldService(Reads, Protocol):
    """The whole port: reads, and the writes, outbox and connectivity beside them."""

    @property
    def writes(self) -> Writes: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def connectivity(self) -> Connectivity: ...

    async def set_offline(self, offline: bool) -> None:
        """Go offline (nothing sent, reads from the cache, every change queued) or back online
        (every cloud asked again, the outbox sent) without leaving the app."""
        ...

    async def aclose(self) -> None: ...


__all__ = [
    "ActionEvent",
    "ActionRecord",
    "ActionState",
    "ActionType",
    "AlertingDevice",
    "AlertsView",
    "BackendFinished",
    "BackendInfo",
    "BackendState",
    "BackendStatus",
    "CatalogueItem",
    "CloudDetails",
    "CommandKind",
    "Connectivity",
    "ConnectivityChange",
    "DamagedRow",
    "Device",
    "DeviceFilter",
    "DeviceListing",
    "DeviceView",
    "DiagnosticsView",
    "DownloadedFile",
    "FieldService",
    "FindMatch",
    "FindResult",
    "Group",
    "GroupListing",
    "GroupMember",
    "GroupRules",
    "HistoryEntry",
    "HistoryView",
    "Loss",
    "Outbox",
    "OutboxCounts",
    "PendingChange",
    "Reads",
    "Salvage",
    "Source",
    "StorageFault",
    "StoreError",
    "SyncMode",
    "SyncSummary",
    "TaskKind",
    "TaskView",
    "TelemetryItem",
    "Unsubscribe",
    "WriteOutcome",
    "Writes",
    "heard",
]
