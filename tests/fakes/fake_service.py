"""An in-memory :class:`~fieldtui.service.api.FieldService` for tests of screens and commands.

Fast and deterministic: no network, no threads, no real clock (``now`` is injectable; by default
it stands at :data:`~fakes.fleet_data.FIXED_NOW`). It holds the five clouds of the simulator's
config with their real capabilities and declarations, a small fleet with every case a screen
shows (:class:`~fakes.fleet_data.Ids`), a read cache, an outbox, and connectivity. The test is
the cloud: it decides when queued writes apply (``apply_pending``), fail or conflict, pushes
telemetry samples and task changes, and sets each cloud's state.

The views are built by the service's own pure functions (``merge_devices``, the pending overlay),
so what a screen shows over the fake is what it shows over the real session. The contract tests
in ``tests/service/test_port_contract.py`` check both against the same behaviours.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from fakes.fake_connectivity import FakeConnectivity
from fakes.fake_details import sections_for
from fakes.fake_outbox import FakeOutbox
from fakes.fleet_data import FIXED_NOW, FleetData, Ids, backend_infos, sample_fleet
from fieldtui.connectors.history import task_entry
from fieldtui.core.actions import ActionType
from fieldtui.core.errors import (
    ConfigError,
    ConnectionError_,
    DeviceNotFound,
    NoBackendReachable,
    NotFound,
    Rejected,
    TimeoutError_,
    Unsupported,
)
from fieldtui.core.filters import device_matches
from fieldtui.core.ids import valid_id
from fieldtui.core.models import (
    BackendKind,
    Device,
    HistoryEntry,
    HistoryKind,
    InstallationStatus,
    MetricValue,
    Task,
    TelemetrySample,
)
from fieldtui.service.api import (
    AlertingDevice,
    AlertsView,
    BackendFinished,
    BackendInfo,
    CatalogueItem,
    CloudDetails,
    DeviceFilter,
    DeviceListing,
    DeviceView,
    DiagnosticsView,
    DownloadedFile,
    FieldService,
    FindMatch,
    FindResult,
    GroupListing,
    GroupMember,
    HistoryView,
    Source,
    TaskView,
    TelemetryItem,
)
from fieldtui.service.diagnostics import gather_diagnostics
from fieldtui.service.merge import SourcedDevice, merge_devices
from fieldtui.service.overlay import pending_changes

#: The filters each kind's listing applies (as the real connectors declare them).
LISTING_FILTERS: dict[BackendKind, frozenset[str]] = {
    BackendKind.FLEET: frozenset(
        {"query", "release", "owner", "hardware_version", "last_seen_since", "last_seen_until", "sort"}
    ),
    BackendKind.DEVICEHQ: frozenset({"query", "group"}),
    BackendKind.THINGS: frozenset({"query", "group", "installation_status"}),
    BackendKind.MQTT: frozenset({"query"}),
    #: Only a query (its exact serial): without one, no listing.
    BackendKind.MYSENSOR: frozenset({"query"}),
}
#: How long before ``now`` the fake's read cache was filled (an earlier session's reads).
CACHE_AGE = timedelta(hours=1)
_END = None


class FakeService:
    """The port in memory. ``cached``: the read cache starts with every device (as an earlier
    session left it); ``auto_apply``: ``first_outcome`` applies the write (a cloud that takes
    everything at once); ``online``: every cloud starts online (else unknown until probed)."""

    def __init__(
        self,
        *,
        now: Callable[[], datetime] | None = None,
        data: FleetData | None = None,
        offline: bool = False,
        read_only: bool = False,
        auto_apply: bool = False,
        cached: bool = True,
        online: bool = True,
    ) -> None:
        self.now: Callable[[], datetime] = now or (lambda: FIXED_NOW)
        self.cloud = data if data is not None else sample_fleet(self.now())
        self._infos = {info.name: info for info in backend_infos()}
        self._offline = offline
        self._connectivity = FakeConnectivity(self._infos, self.now, online=online)
        self._outbox = FakeOutbox(
            self.cloud,
            self._infos,
            self._connectivity,
            self.now,
            read_only=read_only,
            offline=offline,
            auto_apply=auto_apply,
        )
        self._outbox.applied = self._write_through
        #: The read cache: device id -> backend -> (copy, fetched at).
        self.cache: dict[str, dict[str, tuple[Device, datetime]]] = {}
        if cached:
            for by_backend in self.cloud.copies.values():
                self._remember(list(by_backend.values()), self.now() - CACHE_AGE)
        self._streams: dict[str, list[asyncio.Queue[TelemetryItem | None]]] = {}
        self._backlog: dict[str, list[TelemetryItem | None]] = {}
        self._task_watchers: list[tuple[str, str | None, asyncio.Queue[None]]] = []
        self.closed = False

    # -- the port's parts -----------------------------------------------------------------
    @property
    def offline(self) -> bool:
        return self._offline

    async def set_offline(self, offline: bool) -> None:
        """As the session: offline reads come from the cache and changes stay queued."""
        self._offline = offline
        self._outbox._offline = offline

    @property
    def writes(self) -> FakeOutbox:
        return self._outbox

    @property
    def outbox(self) -> FakeOutbox:
        return self._outbox

    @property
    def connectivity(self) -> FakeConnectivity:
        return self._connectivity

    async def aclose(self) -> None:
        self.closed = True
        for device in list(self._streams):
            self.end_telemetry(device)

    # -- backends -------------------------------------------------------------------------
    def backends(self) -> Sequence[BackendInfo]:
        return list(self._infos.values())

    def backend(self, name: str) -> BackendInfo | None:
        return self._infos.get(name)

    # -- find -----------------------------------------------------------------------------
    async def find(
        self,
        query: str,
        *,
        limit: int | None = None,
        cloud: str | None = None,
        group: str | None = None,
        status: InstallationStatus | None = None,
    ) -> AsyncIterator[FindResult]:
        """Each cloud in config order: its matches (search clouds by id or name, the others by
        exact id), then its :class:`BackendFinished`; an unreachable cloud answers from the cache.
        ``cloud`` asks that cloud only (an empty query lists it); ``group`` and ``status`` ask
        the clouds that keep groups and installation statuses, matched by the same text rule."""
        query = query.strip()
        limit = limit or 500
        listing = cloud is not None or group is not None or status is not None
        wanted = DeviceFilter(query=query or None, group=group, installation_status=status, limit=limit)
        seen: dict[str, dict[str, SourcedDevice]] = {}
        for name, info in self._infos.items():
            if cloud is not None and name != cloud:
                continue
            if (group is not None and not info.capabilities.groups) or (
                status is not None and not info.capabilities.installation_status
            ):
                continue

            def hit(device: Device, search: bool) -> bool:
                if listing and (group is not None or status is not None or not query):
                    return device_matches(device, wanted)
                return _matches(query, device, search=search)

            error: str | None = None
            from_cache = False
            if self._offline or not self._connectivity.reachable(name):
                copies = [c for c in self._cached_copies(name) if hit(c.device, True)]
                error = None if self._offline else self._why_down(name)
                from_cache = True
            else:
                fetched = self.now()
                devices = [
                    by[name]
                    for by in self.cloud.copies.values()
                    if name in by and hit(by[name], info.capabilities.search)
                ][:limit]
                self._remember(devices, fetched)
                copies = [SourcedDevice(d, Source(name, d.kind, fetched)) for d in devices]
            copies = copies[:limit]
            for copy in copies:
                by_backend = seen.setdefault(copy.device.id, {})
                new = not by_backend
                by_backend[name] = copy
                yield FindMatch(key=copy.device.id, view=merge_devices(list(by_backend.values())), new=new)
            empty_group = group is not None and not copies and error is None
            yield BackendFinished(
                backend=name,
                count=len(copies),
                elapsed=0.0,
                error=error,
                from_cache=from_cache,
                note=f"no group {group!r} with a device in it" if empty_group else None,
            )

    # -- one device ------------------------------------------------------------------------
    async def device(self, device_id: str) -> DeviceView:
        last: DeviceView | None = None
        async for view in self.device_updates(device_id):
            last = view
        assert last is not None
        return last

    async def device_updates(
        self, device_id: str, *, start: DeviceView | None = None
    ) -> AsyncIterator[DeviceView]:
        """``start`` (its fresh clouds not asked again) or the cached view first, then one view per
        cloud that answers, in config order; the last is complete. Unreachable clouds are in
        ``errors``, with their cached copy."""
        device_id = valid_id(device_id)
        cached = self._cached_of(device_id)
        if self._offline:
            if not cached:
                raise NoBackendReachable(
                    f"{device_id} is not in the local cache", hint="--offline reads only the cache"
                )
            yield self._overlay(merge_devices(cached))
            return
        errors = {n: self._why_down(n) for n in self._infos if not self._connectivity.reachable(n)}
        found: dict[str, SourcedDevice] = {}
        if start is not None and start.device.id == device_id:
            for source in start.sources:
                copy = start.copies.get(source.backend)
                if not source.stale and copy is not None and source.backend in self._infos:
                    found[source.backend] = SourcedDevice(copy, source)
        if found:
            yield self._view_of(found, cached, {})
        elif cached:
            yield self._overlay(merge_devices(cached))
        holders = self.cloud.copies.get(device_id, {})
        answered = False
        for name in self._infos:
            copy = holders.get(name)
            if copy is None or name in errors or name in found:
                continue
            found[name] = SourcedDevice(copy, Source(name, copy.kind, self.now()))
            answered = True
            yield self._view_of(found, cached, errors)
        self._remember([c.device for c in found.values()], self.now())
        if found:
            if not answered:  # every holder was in ``start``: the complete view, with errors
                yield self._view_of(found, cached, errors)
            return
        if any(c.source.backend in errors for c in cached):
            yield self._view_of(found, cached, errors)
            return
        if errors and len(errors) == len(self._infos):
            raise NoBackendReachable(
                f"no backend could be reached to look up {device_id}", hint="; ".join(errors.values())
            )
        hint = "not checked: " + "; ".join(f"{n}: {errors[n]}" for n in sorted(errors)) if errors else None
        raise DeviceNotFound(f"{device_id} is not known to any configured backend", hint=hint)

    async def known_devices(self) -> AsyncIterator[DeviceView]:
        for device_id in sorted(self.cache):
            copies = self._cached_of(device_id)
            if copies:
                yield merge_devices(copies)

    # -- history, telemetry, tasks --------------------------------------------------------
    async def history(self, device_id: str) -> HistoryView:
        """Installation changes, check-ins, tasks and commands, newest first, each with its cloud;
        MQTT commands still in the outbox from fieldtui's own record."""
        device_id = valid_id(device_id)
        errors = {n: self._why_down(n) for n in self._infos if not self._connectivity.reachable(n)}
        entries = [e for e in self.cloud.events.get(device_id, []) if e.backend not in errors]
        for (backend, device), tasks in self.cloud.tasks.items():
            if device != device_id or backend in errors:
                continue
            commands = self._infos[backend].capabilities.commands
            entries += [_command_entry(t) if commands else task_entry(t) for t in tasks]
        for record in self._outbox.open_for(device_id):
            target = record.action.backend
            if record.action.type is ActionType.SEND_COMMAND and (
                target is None or self._infos[target].kind is BackendKind.MQTT
            ):
                state = record.state.value + (f": {record.last_error}" if record.last_error else "")
                entries.append(
                    HistoryEntry(
                        device=device_id,
                        backend=target or "(any)",
                        kind=HistoryKind.COMMAND,
                        timestamp=record.action.created_at,
                        summary=str(record.action.params.get("name", "command")),
                        who="fieldtui (this machine)",
                        state=state,
                        detail=f"outbox action {record.id[:8]}",
                    )
                )
        epoch = datetime.min.replace(tzinfo=self.now().tzinfo)
        entries.sort(key=lambda e: e.timestamp or epoch, reverse=True)
        return HistoryView(device=device_id, entries=entries, errors=errors)

    async def telemetry(self, device_id: str) -> AsyncIterator[TelemetryItem]:
        """What the test pushes (``push_telemetry``, ``sample``) for the device, until
        ``end_telemetry``; items pushed before anyone listens wait for the first listener."""
        device_id = valid_id(device_id)
        if self._offline:
            raise NoBackendReachable(
                "live telemetry needs the network", hint="--offline reads only the cache"
            )
        holders = self.cloud.copies.get(device_id, {})
        if not holders:
            raise DeviceNotFound(f"{device_id} is not known to any configured backend")
        if not any(self._infos[name].capabilities.telemetry.value != "none" for name in holders):
            clouds = ", ".join(f"{name} ({self._infos[name].kind.value})" for name in holders)
            raise Unsupported(f"{device_id} is on {clouds}, which offer no telemetry")
        queue: asyncio.Queue[TelemetryItem | None] = asyncio.Queue()
        for item in self._backlog.pop(device_id, []):
            queue.put_nowait(item)
        self._streams.setdefault(device_id, []).append(queue)
        try:
            while True:
                item = await queue.get()
                if item is None:  # _END: the stream is over
                    return
                yield item
        finally:
            with contextlib.suppress(ValueError):
                self._streams[device_id].remove(queue)

    async def task_view(self, device_id: str) -> TaskView:
        device_id = valid_id(device_id)
        targets = [n for n, i in self._infos.items() if i.capabilities.tasks or i.capabilities.commands]
        holders = self.cloud.copies.get(device_id, {})
        tasks: list[Task] = []
        sources: list[Source] = []
        errors: dict[str, str] = {}
        for name in targets:
            if not self._connectivity.reachable(name):
                errors[name] = self._why_down(name)
            elif name in holders:
                tasks += self.cloud.tasks.get((name, device_id), [])
                sources.append(Source(name, self._infos[name].kind, self.now()))
        if not sources:
            if errors and len(errors) == len(targets):
                raise NoBackendReachable(
                    f"no backend could be reached for the tasks of {device_id}",
                    hint="; ".join(f"{n}: {t}" for n, t in errors.items()),
                )
            if not holders:
                raise DeviceNotFound(f"{device_id} is not known to any configured backend")
        return TaskView(tasks=_newest_first(tasks), sources=tuple(sources), errors=errors)

    async def task_monitor(self, backend: str, device_id: str | None = None) -> AsyncIterator[list[Task]]:
        """The backend's tasks now, then again after every change (``set_task``, an applied
        task or command): a device's, or the backend's unfinished ones when ``device_id`` is None."""
        info = self._info(backend)
        live = device_id is not None and info.kind is BackendKind.MQTT
        if not live and not info.capabilities.tasks:
            raise Unsupported(info.why_not("tasks") or "no tasks", backend=backend)
        changed: asyncio.Queue[None] = asyncio.Queue()
        watcher = (backend, device_id, changed)
        self._task_watchers.append(watcher)
        try:
            while True:
                yield self._tasks_of(backend, device_id)
                await changed.get()
        finally:
            with contextlib.suppress(ValueError):
                self._task_watchers.remove(watcher)

    # -- groups, catalogues --------------------------------------------------------------
    async def groups(self, backend: str) -> GroupListing:
        info = self._info(backend)
        why = info.why_not("groups")
        if why is not None:
            return GroupListing(backend, [], None, why)
        counted = [
            g.model_copy(update={"member_count": len(self._members(backend, g.id))})
            for g in self.cloud.groups.get(backend, [])
        ]
        if self._offline or not self._connectivity.reachable(backend):
            error = "offline" if self._offline else self._why_down(backend)
            return GroupListing(backend, counted, self.now() - CACHE_AGE, error)
        return GroupListing(backend, counted)

    async def group_members(self, backend: str, group: str) -> list[GroupMember]:
        self._info(backend)
        if self._offline or not self._connectivity.reachable(backend):
            raise ConnectionError_(self._why_down(backend), backend=backend)
        return [
            GroupMember(
                id=d.id,
                name=d.name,
                installation_status=d.installation_status,
                online=d.online,
                battery=d.battery,
            )
            for d in self._members(backend, group)
        ]

    async def catalogue(self, backend: str, source: str, *args: str) -> list[CatalogueItem]:
        info = self._info(backend)
        lists = self.cloud.catalogues.get(backend, {})
        if info.kind is not BackendKind.DEVICEHQ or source not in lists:
            raise Unsupported(f"the {info.kind.value} API has no {source.replace('_', ' ')} list")
        if source == "app":
            if not args:
                raise Unsupported("an app's details need the app id")
            return [item for item in lists[source] if item.id == args[0]]
        return list(lists[source])

    # -- the test's hands ------------------------------------------------------------------
    def apply_pending(self) -> list[Any]:
        """The clouds take every queued action (see :meth:`FakeOutbox.apply_pending`)."""
        return self._outbox.apply_pending()

    def fail(self, action_id: str, words: str) -> Any:
        return self._outbox.fail(action_id, words)

    def conflict(self, action_id: str, words: str = "the device changed since you saw it") -> Any:
        return self._outbox.conflict(action_id, words)

    def set_device(self, device: Device) -> None:
        """Someone else changed the device in its cloud (the cache keeps the old copy until read)."""
        self.cloud.copies.setdefault(device.id, {})[device.backend] = device

    def set_task(self, task: Task) -> None:
        """A task or command changed in its cloud (added when new); monitors see it at once."""
        tasks = self.cloud.tasks.setdefault((task.backend, task.device), [])
        tasks[:] = [t for t in tasks if t.id != task.id] + [task]
        self._tasks_changed(task.backend, task.device)

    def push_telemetry(self, item: TelemetryItem) -> None:
        """Hand ``item`` to every listener of its device (kept for the first one if none listens)."""
        self._push(item.device, item)

    def sample(self, device_id: str, backend: str | None = None, **metrics: MetricValue) -> TelemetrySample:
        """Push a sample of ``metrics`` stamped with the fake's clock; returns it."""
        holder = backend or next(iter(self.cloud.copies[device_id]))
        sample = TelemetrySample(device=device_id, backend=holder, timestamp=self.now(), metrics=metrics)
        self.push_telemetry(sample)
        return sample

    def end_telemetry(self, device_id: str) -> None:
        """End the device's telemetry streams (as closing the session does)."""
        self._push(device_id, _END)

    def listening(self, device_id: str) -> int:
        """How many telemetry streams of the device are open."""
        return len(self._streams.get(device_id, []))

    # -- listings, alerts ---------------------------------------------------------------
    async def list_devices(self, filter: DeviceFilter, *, backend: str | None = None) -> DeviceListing:
        """The fake clouds' listings: query (id or name), group, owner and release are applied."""
        if backend is not None:
            self._info(backend)
        names = [backend] if backend is not None else list(self._infos)
        devices: list[Device] = []
        errors: dict[str, str] = {}
        skipped: dict[str, str] = {}
        for name in names:
            kind = self._infos[name].kind
            understood = LISTING_FILTERS.get(kind, frozenset())
            beyond = filter.beyond(understood)
            why = (
                f"the {kind.value} API has no device listing"
                if not understood or (kind is BackendKind.MYSENSOR and not filter.query)
                else (f"the {kind.value} listing cannot filter by {', '.join(beyond)}" if beyond else None)
            )
            if why is not None:
                if backend is not None:
                    raise Unsupported(why, backend=name)
                skipped[name] = why
                continue
            if self._offline or not self._connectivity.reachable(name):
                errors[name] = "offline" if self._offline else self._why_down(name)
                continue
            found = [
                by[name]
                for _, by in sorted(self.cloud.copies.items())
                if name in by and _listed(by[name], filter)
            ]
            devices.extend(found if filter.limit is None else found[: filter.limit])
        return DeviceListing(devices=devices, errors=errors, skipped=skipped)

    async def alerts(self) -> AlertsView:
        """Every fake device whose copy carries alerts (the fake clouds answer at once)."""
        found = [
            AlertingDevice(backend=name, device=device.id, alerts=device.alerts, name=device.name)
            for _, by in sorted(self.cloud.copies.items())
            for name, device in sorted(by.items())
            if device.alerts
        ]
        return AlertsView(devices=found)

    async def cloud_details(self, device_id: str, backend: str) -> CloudDetails:
        """Each cloud's details as the documents' samples show them; things keeps none."""
        device_id = valid_id(device_id)
        info = self._info(backend)
        if self._offline:
            raise Unsupported(f"{backend}: reading a cloud's details needs the network")
        if info.kind is BackendKind.THINGS:
            raise Unsupported(f"the {info.kind.value} API keeps no more about a device", backend=backend)
        if not self._connectivity.reachable(backend):
            raise ConnectionError_(self._why_down(backend), backend=backend)
        copy = self.cloud.copies.get(device_id, {}).get(backend)
        if copy is None:
            raise NotFound(f"no device {device_id}", backend=backend)
        sections = sections_for(info.kind, copy)
        if sections is None:
            raise Unsupported(f"the {info.kind.value} API keeps no more about a device", backend=backend)
        return CloudDetails(backend=backend, device=device_id, sections=sections)

    async def request_config(self, device_id: str, backend: str) -> CloudDetails:
        """An online MQTT device answers with the configuration it runs."""
        details = await self.cloud_details(device_id, backend)
        if self._info(backend).kind is not BackendKind.MQTT:
            raise Unsupported(
                f"the {self._info(backend).kind.value} API cannot ask a device for its configuration",
                backend=backend,
            )
        copy = self.cloud.copies[device_id][backend]
        if copy.online is False:
            raise TimeoutError_(
                f"{device_id} did not answer the config request (offline, or its access key was refused)",
                backend=backend,
            )
        return CloudDetails(
            backend=backend, device=device_id, sections={"config": details.sections["config"]}
        )

    async def download(self, device_id: str, backend: str, kind: str) -> DownloadedFile:
        """A gateway's last log or config upload: a small .tar.gz, as DeviceHQ serves it."""
        details = await self.cloud_details(device_id, backend)
        if self._info(backend).kind is not BackendKind.DEVICEHQ:
            raise Unsupported(
                f"the {self._info(backend).kind.value} API keeps no files of a device", backend=backend
            )
        if kind not in ("log", "config"):
            raise Rejected(f"can download 'log' or 'config', not {kind!r}", backend=backend)
        return DownloadedFile(
            backend=backend,
            device=device_id,
            name=f"{device_id}-{kind}.tar.gz",
            content=gzip.compress(f"{kind} of {device_id}: {details.sections[kind]['md5sum']}\n".encode()),
        )

    async def diagnostics(self, device_id: str, *, backend: str | None = None) -> DiagnosticsView:
        return await gather_diagnostics(self, device_id, backend)

    # -- inside --------------------------------------------------------------------------
    def _info(self, backend: str) -> BackendInfo:
        info = self._infos.get(backend)
        if info is None:
            names = ", ".join(self._infos)
            raise ConfigError(f"no backend named {backend!r} in this profile; allowed: {names}")
        return info

    def _why_down(self, backend: str) -> str:
        return self._connectivity.snapshot()[backend].last_error or "offline"

    def _remember(self, devices: Sequence[Device], fetched_at: datetime) -> None:
        for device in devices:
            self.cache.setdefault(device.id, {})[device.backend] = (device, fetched_at)

    def _cached_of(self, device_id: str) -> list[SourcedDevice]:
        return [
            SourcedDevice(device, Source(backend, device.kind, when, stale=True))
            for backend, (device, when) in self.cache.get(device_id, {}).items()
        ]

    def _cached_copies(self, backend: str) -> list[SourcedDevice]:
        return [
            c
            for device_id in sorted(self.cache)
            for c in self._cached_of(device_id)
            if c.source.backend == backend
        ]

    def _view_of(
        self, found: dict[str, SourcedDevice], cached: list[SourcedDevice], errors: dict[str, str]
    ) -> DeviceView:
        copies = list(found.values()) + [c for c in cached if c.source.backend not in found]
        order = {name: i for i, name in enumerate(self._infos)}
        copies.sort(key=lambda c: order.get(c.source.backend, len(order)))
        return self._overlay(replace(merge_devices(copies), errors=dict(errors)))

    def _overlay(self, view: DeviceView) -> DeviceView:
        return replace(view, pending=pending_changes(self._outbox.open_for(view.device.id)))

    def _write_through(self, record: Any) -> None:
        """An applied action: the cache takes the cloud's new copy, task monitors the new list."""
        action = record.action
        if action.device is None or action.backend is None:
            return
        copy = self.cloud.copies.get(action.device, {}).get(action.backend)
        if copy is not None and action.device in self.cache:
            self._remember([copy], record.done_at or self.now())
        self._tasks_changed(action.backend, action.device)

    def _tasks_of(self, backend: str, device_id: str | None) -> list[Task]:
        if device_id is not None:
            return _newest_first(self.cloud.tasks.get((backend, device_id), []))
        every = [t for (b, _), tasks in self.cloud.tasks.items() if b == backend for t in tasks]
        return _newest_first(t for t in every if not t.state.finished)

    def _tasks_changed(self, backend: str, device_id: str) -> None:
        for watched, device, queue in self._task_watchers:
            if watched == backend and device in (None, device_id):
                queue.put_nowait(None)

    def _members(self, backend: str, group: str) -> list[Device]:
        return [
            by[backend]
            for _, by in sorted(self.cloud.copies.items())
            if backend in by and by[backend].group == group
        ]

    def _push(self, device_id: str, item: TelemetryItem | None) -> None:
        queues = self._streams.get(device_id)
        if not queues:
            if item is not _END:
                self._backlog.setdefault(device_id, []).append(item)
            return
        for queue in queues:
            queue.put_nowait(item)


def _matches(query: str, device: Device, *, search: bool) -> bool:
    if not query:
        return False
    if not search:
        return device.id == query
    needle = query.casefold()
    return needle in device.id.casefold() or needle in (device.name or "").casefold()


def _command_entry(task: Task) -> HistoryEntry:
    state = (
        task.state.value if task.raw_state == task.state.value else f"{task.state.value} ({task.raw_state})"
    )
    return HistoryEntry(
        device=task.device,
        backend=task.backend,
        kind=HistoryKind.COMMAND,
        timestamp=task.updated or task.created,
        summary=task.type,
        state=state,
        detail=task.detail,
    )


def _newest_first(tasks: Any) -> list[Task]:
    epoch = datetime.min.replace(tzinfo=FIXED_NOW.tzinfo)
    return sorted(tasks, key=lambda t: t.updated or t.created or epoch, reverse=True)


def _listed(device: Device, filter: DeviceFilter) -> bool:
    raw = device.raw
    checks = [
        filter.query is None or filter.query.lower() in f"{device.id} {device.name or ''}".lower(),
        filter.group is None or device.group == filter.group,
        filter.installation_status is None or device.installation_status == filter.installation_status,
        not filter.owner or raw.get("owner_ref") in filter.owner,
        not filter.release or device.firmware in filter.release,
        not filter.hardware_version or device.model in filter.hardware_version,
    ]
    return all(checks)


def as_port(fake: FakeService) -> FieldService:
    """The fake as the port (this line is mypy's proof that it is one: ``mypy --strict tests/fakes``)."""
    return fake


__all__ = ["CACHE_AGE", "FIXED_NOW", "FakeService", "Ids", "as_port"]
