"""What the app calls ``service``: the FleetService, the outbox and its sync engine, opened together.

The app reads through :class:`FleetService` (the outbox's SQLite file is its read cache, so
lookups work offline) and writes through :class:`AppWrites` (the outbox first, then the sync
engine, which runs in the background for the whole session and wakes when a backend comes
back online). No Textual here: the app only awaits these coroutines in its workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fieldtui.config import LoadedConfig
from fieldtui.connectors.base import Connector
from fieldtui.core.actions import ActionState
from fieldtui.core.models import Device, Group
from fieldtui.service.connectivity import BackendState
from fieldtui.service.factory import build_fleet_service
from fieldtui.service.fleet import FleetService
from fieldtui.service.merge import DeviceView, Source, SourcedDevice, merge_devices
from fieldtui.service.store import ActionRecord, OutboxStore
from fieldtui.service.sync import ActionEvent, SyncEngine
from fieldtui.service.writes import OutboxWrites

log = logging.getLogger(__name__)

#: How many cached devices the app preloads into its index at start.
PRELOAD_LIMIT = 200_000
#: The preload reads the cache this many rows at a time.
PRELOAD_PAGE = 5_000


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


#: How long "sync now" waits for the attempts it started before summing them up.
SYNC_WAIT = 10.0


class AppWrites(OutboxWrites):
    """The write API plus what the app needs: counts, events, sync now, retry, drop, conflicts."""

    last_sync: datetime | None = None
    #: Set by the session: asks backends believed offline again (connectivity's probe).
    probe_offline: Callable[[set[str]], Awaitable[None]] | None = None

    def on_change(self, callback: Callable[[ActionEvent], None]) -> Callable[[], None]:
        if self.engine is None:
            return lambda: None
        return self.engine.subscribe(callback)

    def events(self) -> AsyncIterator[ActionEvent] | None:
        return self.engine.events() if self.engine is not None else None

    async def counts(self) -> dict[str, Any]:
        counts: dict[str, Any] = {state.value: n for state, n in (await self.store.counts()).items()}
        counts["last_sync"] = self.last_sync
        return counts

    async def list_actions(self) -> list[ActionRecord]:
        return await self.store.list_actions()

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
        if self.engine is None:
            return f"{len(queued)} queued; no sync engine is running"
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


class AppSession:
    """The app's ``service``: reads delegate to the FleetService, writes go to ``writes``."""

    def __init__(
        self,
        fleet: FleetService,
        store: OutboxStore,
        engine: SyncEngine,
        writes: AppWrites,
        connectors: ServiceConnectors,
        *,
        offline: bool,
    ) -> None:
        self.fleet = fleet
        self.store = store
        self.engine = engine
        self.writes = writes
        self.connectors = connectors
        self.offline = offline
        self._runner: asyncio.Task[None] | None = None

    def __getattr__(self, name: str) -> Any:
        # find, device, telemetry, task_view, task_monitor, connectivity, connector, backends ...
        return getattr(self.fleet, name)

    def start(self) -> None:
        self.fleet.start()
        if not self.offline:
            self._runner = asyncio.get_running_loop().create_task(
                self.engine.run(online=self._next_online), name="outbox-sync"
            )

    async def _next_online(self) -> str | None:
        async for change in self.fleet.connectivity.subscribe():
            if change.new is BackendState.ONLINE:
                return change.backend
        return None

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

    async def groups(self, backend: str) -> tuple[list[Group], datetime | None, str | None]:
        """A backend's groups: fresh when it answers (and cached), else the cached list.

        Returns (groups, fetched_at of a cached answer or None when fresh, error or None).
        """
        error: str | None = None
        if not self.offline:
            try:
                groups = await self.fleet._call(backend, lambda c: c.list_groups())
            except Exception as exc:  # noqa: BLE001 - fall back to the cache, say why
                error = str(exc)
            else:
                with contextlib.suppress(Exception):
                    await self.store.store_groups(backend, groups, datetime.now(UTC))
                return groups, None, None
        cached = await self.store.cached_groups(backend)
        if cached is None:
            return [], None, error or "offline and nothing cached"
        return list(cached.value), cached.fetched_at, error or ("offline" if self.offline else None)

    async def group_members(self, backend: str, group: str) -> list[str]:
        return await self.fleet._call(backend, lambda c: c.group_members(group))

    async def aclose(self) -> None:
        runner, self._runner = self._runner, None
        try:
            if runner is not None:
                await self.engine.stop(grace=2.0)
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await runner
        finally:
            try:
                await self.fleet.aclose()
            finally:
                await self.store.close()


async def open_session(
    loaded: LoadedConfig,
    *,
    offline: bool = False,
    read_only: bool = False,
    path: Path | None = None,
    probe_interval: float | None = None,
) -> AppSession:
    """Open the outbox (default: the data dir), build the service, start syncing. Close with aclose()."""
    store = await OutboxStore.open(path)
    try:
        fleet = build_fleet_service(loaded, cache=store, offline=offline)
        if probe_interval is not None:
            fleet.connectivity._probe_interval = probe_interval
        connectors = ServiceConnectors(fleet)
        engine = SyncEngine(
            store,
            _buildable(connectors),
            is_reachable=_reachable(fleet),
            profile=loaded.profile_name,
            request_timeouts={name: cfg.timeout for name, cfg in loaded.backends.items()},
        )
        writes = AppWrites(store, engine, connectors, read_only=read_only, offline=offline)
        writes.probe_offline = _prober(fleet)
    except BaseException:
        await store.close()
        raise
    session = AppSession(fleet, store, engine, writes, connectors, offline=offline)
    session.start()
    return session


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
