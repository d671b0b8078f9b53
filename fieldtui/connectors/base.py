"""The one interface every cloud connector implements.

A connector speaks one vendor API for one configured backend. It maps vendor payloads into
``fieldtui.core`` types once, and vendor failures into the ``fieldtui.core.errors`` hierarchy.
Operations a backend does not offer raise :class:`Unsupported` (its ``capabilities`` say so
up front, so callers rarely get that far).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime
from types import TracebackType
from typing import Any, ClassVar, Self

from fieldtui.connectors.search import SearchPage
from fieldtui.core.alerts import CloudAlerts
from fieldtui.core.capabilities import Capabilities
from fieldtui.core.errors import Unsupported
from fieldtui.core.filters import DeviceFilter
from fieldtui.core.models import (
    BackendKind,
    Command,
    Device,
    Group,
    InstallationRecord,
    InstallationStatus,
    Task,
    TelemetrySample,
)


class Connector(ABC):
    kind: ClassVar[BackendKind]
    capabilities: ClassVar[Capabilities]

    def __init__(self, name: str) -> None:
        #: The backend's configured name (the config table name), used in every Device/Task.
        self.name = name

    # -- lifecycle -----------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @abstractmethod
    async def aclose(self) -> None:
        """Close what this connector opened (not an injected client)."""

    @abstractmethod
    async def probe(self) -> None:
        """Cheapest authenticated round trip: raises a BackendError when not usable."""

    # -- reading -------------------------------------------------------------------------
    @abstractmethod
    async def get_device(self, device_id: str) -> Device:
        """One device by the backend's own id; raises NotFound."""

    async def search(self, query: str, *, limit: int | None = None) -> list[Device]:
        """Devices matching ``query`` (all pages followed, up to ``limit``)."""
        raise self._unsupported("search")

    #: The :class:`DeviceFilter` fields this cloud's own listing applies (empty: no listing).
    device_filters: ClassVar[frozenset[str]] = frozenset()

    #: What a search of this cloud looks at, in a technician's words, said when it finds
    #: nothing (None: a search of the cloud's own, nothing to explain).
    search_scope: ClassVar[str | None] = "exact ids only"

    async def list_devices(self, filter: DeviceFilter) -> list[Device]:
        """The cloud's own device listing with ``filter`` applied (at most ``filter.limit``)."""
        raise Unsupported(f"the {self.kind.value} API has no device listing", backend=self.name)

    async def list_pages(
        self, filter: DeviceFilter, *, budget: float | None = None
    ) -> AsyncGenerator[SearchPage, None]:
        """:meth:`list_devices` page by page. A cloud that lists and matches on this side within
        a time ``budget`` (seconds; its own bound when None) says on the last page when it
        stopped short (``partial``); the others answer in one page."""
        yield SearchPage(await self.list_devices(filter))

    def _check_filters(self, filter: DeviceFilter) -> None:
        """Refuse, by name, a filter this cloud's listing cannot apply (never drop it silently)."""
        beyond = filter.beyond(self.device_filters)
        if not self.device_filters:
            raise Unsupported(f"the {self.kind.value} API has no device listing", backend=self.name)
        if beyond:
            takes = ", ".join(sorted(self.device_filters))
            raise Unsupported(
                f"the {self.kind.value} listing cannot filter by {', '.join(beyond)} (it takes {takes})",
                backend=self.name,
            )

    async def alerting(self) -> CloudAlerts | None:
        """The cloud's own list of what is alerting now; None when it keeps none (its devices'
        alerts are then read one by one, from the devices fieldtui knows)."""
        return None

    #: True when this cloud's devices carry alerts of their own (read device by device, from
    #: the devices fieldtui knows, when the cloud keeps no alerting list).
    alerts_on_devices: ClassVar[bool] = False

    def device_alerts(self, device: Device) -> tuple[str, ...]:
        """The alerts a device of this cloud shows (its ``alerts``, set by the connector)."""
        return device.alerts

    async def list_tasks(self, device_id: str) -> list[Task]:
        raise self._unsupported("tasks")

    async def fleet_tasks(self) -> list[Task]:
        """Unfinished tasks across the backend, where the API allows asking."""
        raise self._unsupported("tasks")

    async def get_task(self, device_id: str, task_id: str) -> Task:
        for task in await self.list_tasks(device_id):
            if task.id == task_id:
                return task
        from fieldtui.core.errors import NotFound

        raise NotFound(f"task {task_id} not found on device {device_id}", backend=self.name)

    async def installation_history(self, device_id: str) -> list[InstallationRecord]:
        """Newest first."""
        raise self._unsupported("installation_status")

    async def alerts(self, device_id: str) -> list[str]:
        raise self._unsupported("alerts")

    async def list_groups(self, query: str | None = None) -> list[Group]:
        raise self._unsupported("groups")

    async def group_members(self, group_id: str) -> list[str]:
        raise self._unsupported("groups")

    async def get_group(self, device_id: str) -> str | None:
        raise self._unsupported("groups")

    async def list_commands(self, device_id: str) -> list[Command]:
        raise self._unsupported("commands")

    async def details(self, device_id: str) -> dict[str, Any]:
        """What the cloud holds about the device beyond its Device fields, by section (plain
        JSON values; MQTT: its configuration, licences, space info and firmware)."""
        from fieldtui.core.errors import Unsupported

        raise Unsupported(f"the {self.kind.value} API keeps no more about a device", backend=self.name)

    async def download(self, device_id: str, kind: str) -> tuple[str, bytes]:
        """The device's last uploaded ``kind`` file (DeviceHQ: ``log``, ``config``): its name
        and bytes; clouds that keep no files say so."""
        from fieldtui.core.errors import Unsupported

        raise Unsupported(f"the {self.kind.value} API keeps no files of a device", backend=self.name)

    async def request_config(self, device_id: str) -> dict[str, Any]:
        """Ask the device itself for its configuration and return its answer (MQTT's
        ``.../config`` request); clouds that cannot ask a device say so."""
        from fieldtui.core.errors import Unsupported

        raise Unsupported(
            f"the {self.kind.value} API cannot ask a device for its configuration", backend=self.name
        )

    def telemetry(self, device_id: str, *, since: datetime | None = None) -> AsyncIterator[TelemetrySample]:
        """Samples as they arrive (push) or as polled; reconnect/backoff is the service's job.

        The iterator raises a BackendError when the stream breaks.
        """
        raise self._unsupported("telemetry")

    # -- writing (called only by the outbox sync engine) -----------------------------------
    async def set_installation_status(self, device_id: str, status: InstallationStatus) -> None:
        raise self._unsupported("installation_status")

    async def move_to_group(self, device_id: str, group_id: str) -> None:
        raise self._unsupported("groups")

    async def create_group(self, group_id: str, description: str | None = None) -> Group:
        raise self._unsupported("groups")

    async def rename_group(self, group_id: str, new_group_id: str) -> Group:
        raise self._unsupported("groups")

    async def delete_group(self, group_id: str) -> None:
        raise self._unsupported("groups")

    async def create_task(self, device_id: str, task_type: str, params: dict[str, Any]) -> Task:
        """``task_type`` is the vendor's own (``update_firmware``, ``SOFTWARE_UPGRADE``, ...)."""
        raise self._unsupported("tasks")

    async def cancel_task(self, device_id: str, task_id: str) -> Task:
        raise self._unsupported("tasks")

    async def delete_task(self, device_id: str, task_id: str) -> None:
        raise self._unsupported("tasks")

    async def update_device(self, device_id: str, fields: dict[str, Any]) -> Device:
        raise self._unsupported("device_update")

    async def create_device(self, device_id: str, fields: dict[str, Any]) -> Device:
        """Create (or register) the device record ``device_id`` with the cloud's own ``fields``."""
        raise self._unsupported("device_lifecycle")

    async def delete_device(self, device_id: str) -> None:
        """Remove the device record (NotFound when it is not there)."""
        raise self._unsupported("device_lifecycle")

    def check_new_device(self, device_id: str, fields: dict[str, Any]) -> None:
        """Rejected when ``create_device`` would refuse these fields without asking the cloud
        (a missing or malformed field): said before the create is queued."""
        raise self._unsupported("device_lifecycle")

    def created_as_asked(self, device: Device, fields: dict[str, Any]) -> bool:
        """Is ``device`` (found after a create whose answer was lost) the one that create asked
        for? By default any record with the id is."""
        return True

    async def set_cloud_setting(self, device_id: str, prop: str, value: Any) -> None:
        raise self._unsupported("cloud_settings")

    async def cloud_settings(self, device_id: str) -> dict[str, Any] | None:
        """The cloud settings the device reports (None: it reports none to compare with)."""
        raise self._unsupported("cloud_settings")

    async def send_command(
        self, device_id: str, name: str, params: dict[str, Any], *, correlation: int | None = None
    ) -> Command:
        """``correlation``: a number the outbox allocated once for this command (the same on every
        retry). A cloud that echoes it (``echoes_command_correlation``) lets a check after a lost
        answer tell this command from any other (see ``command_correlation``)."""
        raise self._unsupported("commands")

    #: True when ``send_command``'s ``correlation`` comes back on the listed command.
    echoes_command_correlation: ClassVar[bool] = False

    def command_correlation(self, command: Command) -> int | None:
        """The outbox's correlation a listed command carries back (None: none, or not echoed)."""
        return None

    # -- helpers -------------------------------------------------------------------------
    def _unsupported(self, capability: str) -> Unsupported:
        reason = self.capabilities.why_not(capability, self.kind.value) or (
            f"the {self.kind.value} API does not offer this"
        )
        return Unsupported(reason, backend=self.name)
