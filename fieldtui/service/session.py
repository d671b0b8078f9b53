"""The one implementation of the port (:mod:`fieldtui.service.api`) and its composition root.

:func:`open_service` opens, for every face, the FleetService (reads across the clouds), the
outbox (whose SQLite file is also the read cache) and, by sync mode, its engine:
``background`` for the app (the engine runs for the whole session and wakes when a cloud comes
back), ``once`` for the writing commands, ``none`` for reads. No Textual here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from fieldtui.config import LoadedConfig
from fieldtui.connectors.base import Connector
from fieldtui.connectors.declarations import catalogue, declared
from fieldtui.core.actions import ActionState
from fieldtui.core.alerts import AlertingDevice
from fieldtui.core.capabilities import Capabilities
from fieldtui.core.catalogue import CatalogueItem
from fieldtui.core.errors import BackendError, ConfigError, Unsupported
from fieldtui.core.filters import DeviceFilter
from fieldtui.core.ids import valid_id
from fieldtui.core.models import Device, InstallationStatus, Task
from fieldtui.service.api import (
    AlertsView,
    BackendInfo,
    CloudDetails,
    DeviceListing,
    DiagnosticsView,
    DownloadedFile,
    GroupListing,
    GroupMember,
    HistoryView,
    OutboxCounts,
    SyncMode,
    TelemetryItem,
    Unsubscribe,
)
from fieldtui.service.connectivity import BackendState, Connectivity
from fieldtui.service.diagnostics import gather_diagnostics
from fieldtui.service.factory import build_fleet_service
from fieldtui.service.fleet import FindResult, FleetService, TaskView
from fieldtui.service.history import device_history
from fieldtui.service.merge import DeviceView, Source, SourcedDevice, merge_devices
from fieldtui.service.overlay import pending_changes
from fieldtui.service.store import (
    ActionRecord,
    DamagedRow,
    Loss,
    OutboxStore,
    Salvage,
    StoreError,
    salvage,
)
from fieldtui.service.sync import ActionEvent, SyncEngine, SyncSummary
from fieldtui.service.writes import OutboxWrites

log = logging.getLogger(__name__)

#: How many cached devices the app preloads into its index at start.
PRELOAD_LIMIT = 200_000
#: The preload reads the cache this many rows at a time.
PRELOAD_PAGE = 5_000
#: How long "sync now" waits for the attempts it started before summing them up.
SYNC_WAIT = 10.0
#: The longest a writing command (``SyncMode.ONCE``) waits, on close, for sends in flight.
ONCE_GRACE_CAP = 30.0
#: In the app, a cloud that comes back is noticed within this many seconds.
BACK_WITHIN = 5.0
#: A catalogue (firmwares, apps...) is awaited at most this long.
CATALOGUE_TIMEOUT = 20.0
#: Devices read at once from one cloud (group members the cache lacks, alert checks).
READ_CONCURRENCY = 8
#: A group's members the cache lacks are read from the cloud, at most this many...
MEMBER_READ_CAP = 100
#: ...within this many seconds (the others are listed by id only).
MEMBER_READ_SECONDS = 20.0
#: Known devices of a cloud with no alerting list that are read for their alerts, at most...
ALERT_CHECK_CAP = 200
#: ...within this many seconds (the others are judged by their cached copy).
ALERT_CHECK_SECONDS = 20.0


class ServiceConnectors(Mapping[str, Connector]):
    """Backend name -> connector, built on first use by the FleetService (one client per backend)."""

    def __init__(self, fleet: FleetService) -> None:
        self._fleet = fleet

    def __getitem__(self, name: str) -> Connector:
        if name not in self._fleet.backends:
            raise KeyError(name)
        return self._fleet.connector(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._fleet.backends)

    def __len__(self) -> int:
        return len(self._fleet.backends)


class AppWrites(OutboxWrites):
    """The write API plus the outbox as a face sees it: counts, events, sync now, retry, drop."""

    last_sync: datetime | None = None
    last_sync_error: str | None = None
    #: Set by the session in ``SyncMode.DRAIN``: nothing else sends, so ``drain`` may.
    drains = False
    #: Set by the session: asks backends believed offline again (connectivity's probe).
    probe_offline: Callable[[set[str]], Awaitable[None]] | None = None

    def on_change(self, callback: Callable[[ActionEvent], None]) -> Unsubscribe:
        if self.engine is None:
            return lambda: None
        return self.engine.subscribe(callback)

    def events(self) -> AsyncIterator[ActionEvent] | None:
        return self.engine.events() if self.engine is not None else None

    def heard(self, event: ActionEvent) -> None:
        """Follow the engine: a finished attempt is a sync, a deferred one says why."""
        state = event.record.state
        if state in (ActionState.DONE, ActionState.FAILED, ActionState.CONFLICT):
            self.last_sync = datetime.now(UTC)
            self.last_sync_error = None
        elif state is ActionState.QUEUED and event.previous is ActionState.SENDING:
            self.last_sync_error = event.record.last_error or event.message

    async def counts(self) -> OutboxCounts:
        by_state = {state.value: n for state, n in (await self.store.counts()).items()}
        return OutboxCounts(
            queued=by_state.get("queued", 0),
            sending=by_state.get("sending", 0),
            failed=by_state.get("failed", 0),
            conflict=by_state.get("conflict", 0),
            # Set aside in their own table, not a state of the actions table.
            damaged=len(await self.store.damaged()),
            done=by_state.get("done", 0),
            cancelled=by_state.get("cancelled", 0),
            last_sync=self.last_sync,
            last_sync_error=self.last_sync_error,
        )

    async def list_actions(self) -> list[ActionRecord]:
        return await self.store.list_actions()

    async def action(self, action_id: str) -> ActionRecord:
        full = await self.store.resolve_id(action_id)
        record = await self.store.get(full)
        if record is None:  # dropped from the file between the two reads
            raise StoreError(f"no action {action_id!r} in the outbox")
        return record

    async def list_recent(self, finished: int = 20) -> list[ActionRecord]:
        return await self.store.list_recent(finished)

    async def damaged(self) -> list[DamagedRow]:
        return await self.store.damaged()

    async def lost_actions(self) -> list[Loss]:
        return await self.store.losses()

    async def drain(self, timeout: float | None = None) -> SyncSummary:
        """Asked for by hand: every queued action is tried now, not when its backoff ends."""
        if self.engine is None or not self.drains:
            # A running engine holds the send loop: a drain beside it would wait for ever.
            raise StoreError("only a session opened with SyncMode.DRAIN drains the outbox (else: sync now)")
        await self.store.make_due()
        return await self.engine.drain(timeout=timeout)

    async def check_applied(self, action_id: str) -> bool | None:
        record = await self.action(action_id)
        if record.state is ActionState.DONE:
            return True
        if record.attempts == 0 or not (record.uncertain or record.state is ActionState.SENDING):
            return False  # never sent, or the cloud answered (a refusal): it did not take effect
        if self.offline:
            return None
        engine = self.engine or SyncEngine(self.store, self.connectors)  # only asks; sends nothing
        return await engine.check_applied(record)

    async def pending_for(self, device_id: str) -> list[ActionRecord]:
        return await self.store.open_before(f"device:{device_id}")

    async def retry(self, action_id: str) -> ActionRecord:
        return await self._change(self.store.retry, action_id, "retry asked")

    async def drop(self, action_id: str) -> ActionRecord:
        return await self._change(self.store.drop, action_id, "dropped")

    async def resolve_conflict(self, action_id: str, *, apply: bool) -> ActionRecord:
        """Apply a conflicting action anyway (sent as it is, over what the device now holds),
        or discard it."""
        if apply:
            return await self._change(self.store.retry, action_id, "apply anyway")
        return await self._change(self.store.drop, action_id, "discarded")

    async def _change(
        self, change: Callable[[str], Awaitable[ActionRecord]], action_id: str, message: str
    ) -> ActionRecord:
        before = await self.store.get(action_id)
        record = await change(action_id)
        if self.engine is not None:
            self.engine.publish(record, before.state if before is not None else None, message)
            self.engine.wake()
        return record

    async def sync_now(self) -> str:
        """Send what waits now: backoff skipped, backends marked unreachable asked again.

        The session's engine runs for the whole session, so this wakes it with every queued
        action due now and waits (bounded) for their attempts, rather than draining beside it
        (a second drain would wait for the running engine's lock for ever).
        """
        queued = await self.store.list_actions([ActionState.QUEUED])
        await self.store.make_due()
        if self.engine is None or self.offline:
            return f"{len(queued)} queued; nothing is sent in this session"
        if self.probe_offline is not None:
            await self.probe_offline({r.action.backend for r in queued if r.action.backend})
        for backend in list(self.engine.unreachable_backends()):
            self.engine.backend_online(backend)
        waits = [asyncio.ensure_future(self.engine.wait_for_outcome(r.id, SYNC_WAIT)) for r in queued]
        await asyncio.sleep(0)  # listening before the engine wakes, so no outcome slips by
        await self.engine.sync_now()
        events = await asyncio.gather(*waits)
        self.last_sync = datetime.now(UTC)
        return outcome_summary([e.state.value if e is not None else "queued" for e in events])


def outcome_summary(states: list[str]) -> str:
    """``2 synced, 1 failed, 1 still queued`` from the states the attempts ended in."""
    if not states:
        return "nothing was waiting"
    words = {"done": "synced", "queued": "still queued", "conflict": "in conflict"}
    counted = {state: states.count(state) for state in dict.fromkeys(states)}
    return ", ".join(f"{n} {words.get(state, state)}" for state, n in counted.items())


class ServiceSession:
    """The port over the real clouds: reads through the FleetService, writes through the outbox."""

    def __init__(
        self,
        fleet: FleetService,
        store: OutboxStore,
        engine: SyncEngine | None,
        writes: AppWrites,
        *,
        sync: SyncMode,
        offline: bool,
    ) -> None:
        self.fleet = fleet
        self.store = store
        self.engine = engine
        self._writes = writes
        self.sync = sync
        self._offline = offline
        self._runner: asyncio.Task[None] | None = None
        self._probes: asyncio.Future[list[BackendState | BaseException]] | None = None
        self._infos: dict[str, BackendInfo] = {}
        self._unheard: Unsubscribe | None = None
        #: How long ``aclose`` lets sends in flight finish before interrupting them.
        self.stop_grace = 2.0

    # -- the port's parts -----------------------------------------------------------------
    @property
    def offline(self) -> bool:
        return self._offline

    @property
    def writes(self) -> AppWrites:
        return self._writes

    @property
    def outbox(self) -> AppWrites:
        return self._writes

    @property
    def connectivity(self) -> Connectivity:
        return self.fleet.connectivity

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """In background mode (the app): probe every cloud once now, so the header is true
        from the start, keep probing the ones that are down, and run the sync engine. The
        other modes start nothing: a command asks what it needs and closes."""
        if self.sync is SyncMode.ONCE and self.engine is not None and not self._offline:
            # A writing command: the engine sends what it queues until the session closes
            # (no probes: the one attempt says whether the cloud is there).
            self._runner = asyncio.get_running_loop().create_task(self.engine.run(), name="outbox-once")
        if self.sync is not SyncMode.BACKGROUND:
            return
        self._go_online()

    def _go_online(self) -> None:
        self.fleet.start()
        if self._offline:
            return
        self._probes = asyncio.ensure_future(
            asyncio.gather(
                *(self.fleet.connectivity.probe_now(name) for name in self.fleet.backends),
                return_exceptions=True,
            )
        )
        if self.engine is not None:
            self._unheard = self.engine.subscribe(self._writes.heard)
            self._runner = asyncio.get_running_loop().create_task(
                self.engine.run(online=self._next_online), name="outbox-sync"
            )

    async def set_offline(self, offline: bool) -> None:
        """Offline: the engine and the prober stop, reads come from the cache and every change
        is queued. Online again: every cloud is asked at once and the engine sends what waits."""
        if offline == self._offline:
            return
        self._offline = offline
        self.fleet.offline = offline
        self._writes.offline = offline
        if offline:
            await self._stop_sending()
            await self.fleet.stop()
        elif self.sync is SyncMode.BACKGROUND:
            self._go_online()

    async def _stop_sending(self) -> None:
        runner, self._runner = self._runner, None
        probes, self._probes = self._probes, None
        if self._unheard is not None:
            self._unheard()
            self._unheard = None
        if probes is not None:
            probes.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await probes
        if runner is not None and self.engine is not None:
            await self.engine.stop(grace=2.0)
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await runner

    async def _next_online(self) -> str | None:
        async for change in self.fleet.connectivity.subscribe():
            if change.new is BackendState.ONLINE:
                return change.backend
        return None

    async def aclose(self) -> None:
        runner, self._runner = self._runner, None
        probes, self._probes = self._probes, None
        if self._unheard is not None:
            self._unheard()
        try:
            if probes is not None:
                probes.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await probes
            if runner is not None and self.engine is not None:
                await self.engine.stop(grace=self.stop_grace)
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await runner
        finally:
            try:
                await self.fleet.aclose()
            finally:
                await self.store.close()

    # -- backends -------------------------------------------------------------------------
    def backends(self) -> list[BackendInfo]:
        return [self._info(name) for name in self.fleet.backends]

    def backend(self, name: str) -> BackendInfo | None:
        return self._info(name) if name in self.fleet.backends else None

    def _info(self, name: str) -> BackendInfo:
        known = self._infos.get(name)
        if known is not None:
            return known
        try:
            connector = self.fleet.connector(name)
        except BackendError as exc:
            # Not kept: the secret may be set later in the session (fieldtui login).
            return BackendInfo(
                name=name,
                kind=self.fleet.kind(name),
                capabilities=_NO_CAPABILITIES,
                unusable=f"{name} cannot be used: {exc}",
            )
        declarations = declared(connector)
        info = BackendInfo(
            name=name,
            kind=connector.kind,
            capabilities=connector.capabilities,
            task_kinds=declarations.task_kinds,
            command_kinds=declarations.command_kinds,
            group_rules=declarations.group_rules,
        )
        self._infos[name] = info
        return info

    # -- reads ----------------------------------------------------------------------------
    def find(
        self,
        query: str,
        *,
        limit: int | None = None,
        cloud: str | None = None,
        group: str | None = None,
        status: InstallationStatus | None = None,
    ) -> AsyncIterator[FindResult]:
        return self.fleet.find(query, limit=limit, cloud=cloud, group=group, status=status)

    async def device(self, device_id: str) -> DeviceView:
        last: DeviceView | None = None
        async for view in self.device_updates(device_id):
            last = view
        assert last is not None  # device_updates yields at least once or raises
        return last

    async def device_updates(
        self, device_id: str, *, start: DeviceView | None = None
    ) -> AsyncIterator[DeviceView]:
        """The view as it grows (``start`` or the cache first, then each cloud's answer), each
        with the technician's open changes on the device."""
        async for view in self.fleet.device_updates(device_id, start=start):
            yield await self.with_pending(view)

    async def with_pending(self, view: DeviceView) -> DeviceView:
        """``view`` with the device's open outbox actions (a broken outbox: without them)."""
        try:
            records = await self._writes.pending_for(view.device.id)
        except Exception:  # the view is still true without its overlay
            log.exception("could not read the open actions of %s", view.device.id)
            return view
        return DeviceView(
            device=view.device,
            sources=view.sources,
            copies=view.copies,
            errors=view.errors,
            pending=pending_changes(records),
        )

    async def known_devices(self, page_size: int = PRELOAD_PAGE) -> AsyncIterator[DeviceView]:
        """Every device in the read cache, merged across clouds (marked stale: they are cached).

        Read ``page_size`` rows at a time (the vendor payloads stay in the database), each
        device parsed only when the caller reaches it: a 100,000-device cache never holds more
        than one page of rows, nor more than one device's models, at once.
        """
        copies: list[SourcedDevice] = []
        after: tuple[str, str] | None = None
        left = PRELOAD_LIMIT
        while left > 0:
            page = await self.store.cached_device_page(after, min(page_size, left))
            left -= len(page)
            for _id, backend, data, fetched_at in page:
                device = Device.model_validate_json(data)
                # A device's copies are consecutive (id order), possibly across two pages.
                if copies and copies[0].device.id != device.id:
                    yield merge_devices(copies)
                    copies = []
                when = datetime.fromtimestamp(fetched_at, UTC)
                copies.append(SourcedDevice(device, Source(backend, device.kind, when, stale=True)))
            if len(page) < page_size:
                break
            after = page[-1][0], page[-1][1]
            del page
        if copies:
            yield merge_devices(copies)

    async def history(self, device_id: str) -> HistoryView:
        return await device_history(self.fleet, self.store, device_id)

    def telemetry(self, device_id: str) -> AsyncIterator[TelemetryItem]:
        return self.fleet.telemetry(device_id)

    async def task_view(self, device_id: str) -> TaskView:
        return await self.fleet.task_view(device_id)

    def task_monitor(self, backend: str, device_id: str | None = None) -> AsyncIterator[list[Task]]:
        return self.fleet.task_monitor(backend, device_id)

    async def groups(self, backend: str) -> GroupListing:
        """A backend's groups: fresh when it answers (and cached), else the cached list."""
        error: str | None = None
        if not self._offline:
            try:
                groups = await self.fleet._call(backend, lambda c: c.list_groups())
            except Exception as exc:  # noqa: BLE001 - fall back to the cache, say why
                error = str(exc)
            else:
                with contextlib.suppress(Exception):
                    await self.store.store_groups(backend, groups, datetime.now(UTC))
                return GroupListing(backend, list(groups))
        cached = await self.store.cached_groups(backend)
        if cached is None:
            return GroupListing(backend, [], None, error or "offline and nothing cached")
        return GroupListing(
            backend, list(cached.value), cached.fetched_at, error or ("offline" if self._offline else None)
        )

    async def group_members(self, backend: str, group: str) -> list[GroupMember]:
        """A group's members, each with its status, online and battery: from the cache, and
        read from the cloud (bounded: :data:`MEMBER_READ_CAP` within :data:`MEMBER_READ_SECONDS`)
        for the members the cache does not hold yet."""
        ids = await self.fleet._call(backend, lambda c: c.group_members(group))
        known: dict[str, Device] = {}
        for device_id in ids:
            copies = [c.value for c in await self.store.cached_device(device_id) if c.backend == backend]
            if copies:
                known[device_id] = copies[0]
        missing = [i for i in ids if i not in known][:MEMBER_READ_CAP]
        if missing and not self._offline:
            known.update(await self._read_devices(backend, missing, MEMBER_READ_SECONDS))
        return [_member(device_id, known.get(device_id)) for device_id in ids]

    async def _read_devices(self, backend: str, ids: Sequence[str], seconds: float) -> dict[str, Device]:
        """``ids`` read from ``backend`` a few at a time for at most ``seconds`` (cached too);
        those not read in time, or that failed, are left out."""
        gate = asyncio.Semaphore(READ_CONCURRENCY)

        async def one(device_id: str) -> Device:
            async with gate:
                return await self.fleet._call(backend, lambda c: c.get_device(device_id))

        tasks = [asyncio.ensure_future(one(device_id)) for device_id in ids]
        if not tasks:
            return {}
        done, pending = await asyncio.wait(tasks, timeout=seconds)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        read = [t.result() for t in done if not t.cancelled() and t.exception() is None]
        if read:
            with contextlib.suppress(Exception):
                await self.store.store_devices(read, datetime.now(UTC))
        return {device.id: device for device in read}

    async def list_devices(self, filter: DeviceFilter, *, backend: str | None = None) -> DeviceListing:
        """The clouds' own listings with ``filter`` (the devices found are cached)."""
        if backend is not None and backend not in self.fleet.backends:
            allowed = ", ".join(self.fleet.backends) or "none configured"
            raise ConfigError(f"no backend named {backend!r} in this profile; allowed: {allowed}")
        names = [backend] if backend is not None else list(self.fleet.backends)
        devices: list[Device] = []
        errors: dict[str, str] = {}
        skipped: dict[str, str] = {}
        partial: dict[str, str] = {}

        async def one(name: str) -> None:
            try:
                listed, short = await self.fleet.listing(name, filter)
                if short is not None:
                    partial[name] = short.removeprefix("partial: ")
            except Unsupported as exc:
                if backend is not None:
                    raise
                skipped[name] = exc.message
            except BackendError as exc:
                errors[name] = exc.message
            else:
                devices.extend(listed)
                with contextlib.suppress(Exception):
                    await self.store.store_devices(listed, datetime.now(UTC))

        await asyncio.gather(*(one(name) for name in names))
        return DeviceListing(devices=devices, errors=errors, skipped=skipped, partial=partial)

    async def alerts(self) -> AlertsView:
        """Each cloud's own alerting list (things), else the alerts of the devices fieldtui
        knows on it (MQTT maintenance and firmware, mysensor error states), re-read bounded."""
        found: list[AlertingDevice] = []
        counts: dict[str, int] = {}
        checked: dict[str, int] = {}
        errors: dict[str, str] = {}
        known = await self._known_by_backend()

        async def one(name: str) -> None:
            try:
                connector = self.fleet.connector(name)
                report = None if self._offline else await self.fleet._call(name, lambda c: c.alerting())
            except BackendError as exc:
                errors[name] = exc.message
                return
            if report is not None:
                found.extend(report.devices)
                if report.count is not None:
                    counts[name] = report.count
                if report.unread:
                    errors[name] = f"the alert types of {report.unread} alerting devices could not be read"
                return
            if not connector.alerts_on_devices and not self._offline:
                return
            # Offline, every cloud is judged by the copies the cache holds (things' too).
            cached = known.get(name, {})
            ids = sorted(cached)[:ALERT_CHECK_CAP]
            fresh = {} if self._offline else await self._read_devices(name, ids, ALERT_CHECK_SECONDS)
            checked[name] = len(ids)
            stale = [i for i in ids if i not in fresh]
            if stale and not self._offline:
                errors[name] = f"{len(stale)} devices could not be read now: their cached copy is judged"
            for device_id in ids:
                device = fresh.get(device_id) or cached[device_id]
                alerts = connector.device_alerts(device)
                if alerts:
                    found.append(
                        AlertingDevice(
                            backend=name,
                            device=device_id,
                            alerts=alerts,
                            name=device.name,
                            online=device.online,
                        )
                    )

        await asyncio.gather(*(one(name) for name in self.fleet.backends))
        found.sort(key=lambda d: (d.backend, d.device))
        return AlertsView(devices=found, counts=counts, checked=checked, errors=errors)

    async def _known_by_backend(self) -> dict[str, dict[str, Device]]:
        """The cached devices, by backend (at most :data:`PRELOAD_LIMIT` rows read)."""
        by_backend: dict[str, dict[str, Device]] = {}
        after: tuple[str, str] | None = None
        left = PRELOAD_LIMIT
        while left > 0:
            page = await self.store.cached_device_page(after, min(PRELOAD_PAGE, left))
            left -= len(page)
            for device_id, backend, data, _fetched_at in page:
                by_backend.setdefault(backend, {})[device_id] = Device.model_validate_json(data)
            if len(page) < PRELOAD_PAGE:
                break
            after = page[-1][0], page[-1][1]
        return by_backend

    async def catalogue(self, backend: str, source: str, *args: str) -> list[CatalogueItem]:
        async with asyncio.timeout(CATALOGUE_TIMEOUT):
            return await self.fleet._call(backend, lambda c: catalogue(c, source, args))

    async def cloud_details(self, device_id: str, backend: str) -> CloudDetails:
        device_id = valid_id(device_id)
        if self._offline:
            raise Unsupported(f"{backend}: reading a cloud's details needs the network")
        sections = await self.fleet._call(backend, lambda c: c.details(device_id))
        return CloudDetails(backend=backend, device=device_id, sections=sections)

    async def request_config(self, device_id: str, backend: str) -> CloudDetails:
        device_id = valid_id(device_id)
        if self._offline:
            raise Unsupported(f"{backend}: asking a device for its configuration needs the network")
        config = await self.fleet._call(backend, lambda c: c.request_config(device_id))
        return CloudDetails(backend=backend, device=device_id, sections={"config": config})

    async def download(self, device_id: str, backend: str, kind: str) -> DownloadedFile:
        device_id = valid_id(device_id)
        if self._offline:
            raise Unsupported(f"{backend}: downloading a file needs the network")
        name, content = await self.fleet._call(backend, lambda c: c.download(device_id, kind))
        return DownloadedFile(backend=backend, device=device_id, name=name, content=content)

    async def diagnostics(self, device_id: str, *, backend: str | None = None) -> DiagnosticsView:
        return await gather_diagnostics(self, device_id, backend)


_NO_CAPABILITIES = Capabilities(lookup=False)


def _member(device_id: str, device: Device | None) -> GroupMember:
    if device is None:
        return GroupMember(id=device_id)
    return GroupMember(
        id=device_id,
        name=device.name,
        installation_status=device.installation_status,
        online=device.online,
        battery=device.battery,
    )


async def open_service(
    loaded: LoadedConfig,
    *,
    sync: SyncMode = SyncMode.BACKGROUND,
    offline: bool = False,
    read_only: bool = False,
    path: Path | None = None,
    probe_interval: float | None = None,
    on_cache_error: Callable[[str], None] | None = None,
) -> ServiceSession:
    """The composition root: open the outbox (default: the data dir), build the service and,
    by ``sync``, its engine; start probing. Close with ``aclose()``.

    A read session (``SyncMode.NONE``) whose outbox cannot be opened still answers from the
    clouds, over a throwaway cache; ``on_cache_error`` hears why (a broken cache must not stop
    a live read). A writing session refuses: nothing may be queued where it could be lost.
    """
    try:
        store = await OutboxStore.open(path)
    except Exception as exc:
        if sync is not SyncMode.NONE or on_cache_error is None:
            raise
        on_cache_error(f"the read cache cannot be used: {exc}")
        scratch = Path(tempfile.mkdtemp(prefix="fieldtui-cache-"))
        store = await OutboxStore.open(scratch / "cache.db")
    try:
        fleet = build_fleet_service(loaded, cache=store, offline=offline)
        if probe_interval is not None:
            fleet.connectivity._probe_interval = probe_interval
        if sync is SyncMode.BACKGROUND:
            # A technician waiting in a basement for the cloud to come back: it is noticed within
            # BACK_WITHIN seconds (one small probe request per cloud that is down), not minutes.
            fleet.connectivity._probe_max_interval = BACK_WITHIN
        connectors = ServiceConnectors(fleet)
        engine = None
        if sync is not SyncMode.NONE:
            engine = SyncEngine(
                store,
                _buildable(connectors),
                is_reachable=_reachable(fleet),
                profile=loaded.profile_name,
                request_timeouts={name: cfg.timeout for name, cfg in loaded.backends.items()},
            )
        writes = AppWrites(store, engine, connectors, read_only=read_only, offline=offline)
        writes.probe_offline = _prober(fleet)
        writes.drains = sync is SyncMode.DRAIN
    except BaseException:
        await store.close()
        raise
    session = ServiceSession(fleet, store, engine, writes, sync=sync, offline=offline)
    if sync is SyncMode.ONCE:
        # A writing command closes once its change had its first attempt: a send still on its
        # way gets as long as its cloud's request timeout (bounded) before it is interrupted.
        timeouts = [b.timeout for b in loaded.backends.values()]
        session.stop_grace = min(ONCE_GRACE_CAP, max(timeouts, default=10.0))
    session.start()
    return session


@contextlib.asynccontextmanager
async def open_outbox_session(
    loaded: LoadedConfig | None, *, path: Path | None = None, offline: bool = False
) -> AsyncIterator[AppWrites]:
    """The outbox for a command that sends nothing (``outbox list``, ``retry``, ``drop``).

    With a config, over a read session (so ``check_applied`` can ask the clouds); without one,
    the outbox alone: a broken or missing config must not hide what is queued. A file that
    cannot be opened raises its ``StorageFault`` (see :func:`salvage_listing`).
    """
    if loaded is not None:
        session = await open_service(loaded, sync=SyncMode.NONE, offline=offline, path=path)
        try:
            yield session.outbox
        finally:
            await session.aclose()
        return
    store = await OutboxStore.open(path)
    try:
        yield AppWrites(store, None, {}, offline=True)
    finally:
        await store.close()


def salvage_listing(path: Path) -> Salvage | None:
    """What a broken outbox file still holds, read without writing (``outbox list`` when
    :func:`open_service` raised a ``StorageFault``); None when nothing at all can be read."""
    try:
        return salvage(path)
    except (OSError, sqlite3.Error):
        return None


async def open_session(
    loaded: LoadedConfig,
    *,
    offline: bool = False,
    read_only: bool = False,
    path: Path | None = None,
    probe_interval: float | None = None,
) -> ServiceSession:
    """The app's session: :func:`open_service` with the engine in the background."""
    return await open_service(
        loaded,
        sync=SyncMode.BACKGROUND,
        offline=offline,
        read_only=read_only,
        path=path,
        probe_interval=probe_interval,
    )


#: The app's session (the name the tests and the app knew it by).
AppSession = ServiceSession


def _prober(fleet: FleetService) -> Callable[[set[str]], Awaitable[None]]:
    async def probe(backends: set[str]) -> None:
        states = fleet.connectivity.snapshot()
        down = [b for b in backends if b in states and states[b].state is BackendState.OFFLINE]
        if down:
            await asyncio.gather(*(fleet.connectivity.probe_now(b) for b in down), return_exceptions=True)

    return probe


def _reachable(fleet: FleetService) -> Callable[[str], bool]:
    def reachable(backend: str) -> bool:
        return fleet.connectivity.status(backend).state is not BackendState.OFFLINE

    return reachable


def _buildable(connectors: ServiceConnectors) -> dict[str, Connector]:
    """The engine's connectors (it copies the mapping): one that cannot be built is left out,
    recorded in connectivity by the FleetService, and its actions wait in the outbox."""
    built: dict[str, Connector] = {}
    for name in connectors:
        try:
            built[name] = connectors[name]
        except Exception:  # noqa: BLE001 - one broken backend must not stop the others syncing
            log.warning("%s: cannot set up its connector; its changes stay queued", name)
    return built
