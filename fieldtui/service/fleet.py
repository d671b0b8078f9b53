"""FleetService: the one facade the UI and the CLI read the fleet through.

It asks every configured cloud concurrently, each bounded by a timeout so a slow or dead cloud
never holds up the others, merges the same device from several clouds into one entry, reports
each call's outcome to :class:`Connectivity`, and, given a read cache, stores what it fetched and
serves cached copies (marked stale, with their fetch time) when a cloud cannot be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol, Self, TypeVar, runtime_checkable

from fieldtui.connectors.base import Connector
from fieldtui.connectors.search import PagedSearch
from fieldtui.core.capabilities import Capabilities, TelemetryMode
from fieldtui.core.errors import (
    AuthError,
    BackendError,
    DeviceNotFound,
    FieldtuiError,
    InvalidResponse,
    NoBackendReachable,
    NotFound,
    Rejected,
    SessionLost,
    TimeoutError_,
    Unsupported,
)
from fieldtui.core.filters import DeviceFilter, device_matches
from fieldtui.core.ids import valid_id
from fieldtui.core.models import BackendKind, Command, Device, InstallationStatus, Task
from fieldtui.service.connectivity import Connectivity, describe, reason
from fieldtui.service.merge import DeviceView, Source, SourcedDevice, merge_devices
from fieldtui.service.ports import Cached, ReadCache
from fieldtui.service.telemetry import Backoff, TelemetryItem, merged_telemetry

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds a cloud without search may spend listing devices to answer one (bounded further by
#: the per-backend timeout): past it, its answer is what it found so far, marked partial.
SEARCH_BUDGET = 3.0
#: Cached devices a filtered listing of an unreachable cloud looks through.
CACHE_SCAN = 100_000

#: What one backend's part of a find came to: devices handed on, the error (None: it answered),
#: whether they came from the cache, why it is partial, and why it found nothing (its note).
FindOutcome = tuple[int, str | None, bool, str | None, str | None]


# -- find events ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FindMatch:
    """A device matching the query. ``key`` (the device id) names the UI row: a later match with
    the same key (``new`` false) replaces that row, now listing one more source."""

    key: str
    view: DeviceView
    new: bool


@dataclass(frozen=True, slots=True)
class BackendFinished:
    """One backend has answered (or failed, or timed out): nothing more will come from it."""

    backend: str
    #: Devices this backend contributed (cached ones included).
    count: int
    #: Seconds from the start of the search.
    elapsed: float
    #: Why the backend could not be searched (None when it answered).
    error: str | None = None
    #: True when ``count`` devices came from the read cache because the backend failed.
    from_cache: bool = False
    #: Set when the backend answered only part of the search (a cloud without search whose
    #: listing stopped at its time budget or cap): what was and was not looked at.
    partial: str | None = None
    #: Why the backend found nothing it could have: what its search looks at (things: tuids
    #: only), or why it was not asked (its listing cannot apply a filter). None otherwise.
    note: str | None = None


FindResult = FindMatch | BackendFinished


@dataclass(frozen=True, slots=True)
class TaskView:
    """A device's tasks across clouds (MQTT commands included), with where they came from."""

    tasks: list[Task]
    sources: tuple[Source, ...]
    errors: dict[str, str]


@runtime_checkable
class LiveCommandStatus(Protocol):
    """A connector that pushes a device's command status changes (MQTT ``.../commands/update``)."""

    def command_updates(self, device_id: str) -> AsyncIterator[Command]: ...


def command_as_task(command: Command) -> Task:
    """An MQTT/things command shown beside the clouds' tasks (they are what a technician follows)."""
    return Task(
        backend=command.backend,
        device=command.device,
        id=command.id,
        type=command.name,
        state=command.state,
        raw_state=command.status,
        created=command.timestamp,
        updated=command.timestamp,
        detail=command.message,
        raw={"parameters": command.parameters},
    )


@dataclass(frozen=True, slots=True)
class ConnectorSpec:
    """How to build one backend's connector when it is first needed."""

    kind: BackendKind
    build: Callable[[], Connector]
    #: How to fix refused credentials here (the profile's FIELDTUI_SECRET_ variable and
    #: ``fieldtui login``): a connector knows neither the profile nor the variable.
    secret_fix: str | None = None


class _Slot:
    """A connector built on first use: a quick command pays only for the clouds it asks."""

    def __init__(self, spec: ConnectorSpec) -> None:
        self.kind = spec.kind
        self._build = spec.build
        self.secret_fix = spec.secret_fix
        self.connector: Connector | None = None

    @classmethod
    def ready(cls, connector: Connector) -> _Slot:
        slot = cls(ConnectorSpec(connector.kind, lambda: connector))
        slot.connector = connector
        return slot

    def get(self) -> Connector:
        if self.connector is None:
            self.connector = self._build()
        return self.connector


def _now() -> datetime:
    return datetime.now(UTC)


class FleetService:
    """Reads across every configured cloud. Use as ``async with``: closing closes the connectors."""

    def __init__(
        self,
        connectors: Mapping[str, Connector | ConnectorSpec],
        *,
        cache: ReadCache | None = None,
        offline: bool = False,
        probe_interval: float = 2.0,
        per_backend_timeout: float = 15.0,
        search_limit: int = 500,
        search_budget: float = SEARCH_BUDGET,
        task_refresh_interval: float = 10.0,
        telemetry_backoff: Backoff | None = None,
    ) -> None:
        """``connectors`` maps each backend to a ready connector, or to a :class:`ConnectorSpec`
        that builds it (and imports its module) on first use."""
        self._slots = {
            name: _Slot.ready(item) if isinstance(item, Connector) else _Slot(item)
            for name, item in connectors.items()
        }
        self.cache = cache
        self.offline = offline
        self.per_backend_timeout = per_backend_timeout
        self.search_limit = search_limit
        self.search_budget = search_budget
        self.task_refresh_interval = task_refresh_interval
        self.telemetry_backoff = telemetry_backoff or Backoff()
        self.connectivity = Connectivity(
            self._slots, probe=self._probe, probe_interval=probe_interval, probe_timeout=per_backend_timeout
        )

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

    async def aclose(self) -> None:
        await self.connectivity.stop()
        built = [slot.connector for slot in self._slots.values() if slot.connector is not None]
        results = await asyncio.gather(*(connector.aclose() for connector in built), return_exceptions=True)
        for connector, result in zip(built, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("closing %s failed: %s", connector.name, result)

    def start(self) -> None:
        """Start probing backends that are not online (the app does; one-shot commands do not)."""
        if not self.offline:
            self.connectivity.start()

    async def stop(self) -> None:
        await self.connectivity.stop()

    @property
    def backends(self) -> list[str]:
        return list(self._slots)

    def kind(self, backend: str) -> BackendKind:
        return self._slots[backend].kind

    def connector(self, backend: str) -> Connector:
        """The connector of one backend, built now if it was not yet.

        A connector that cannot be built (its secret unreadable, its module broken) raises a
        BackendError naming the backend, recorded in connectivity like any failed call.
        """
        try:
            return self._slots[backend].get()
        except BackendError as exc:
            error: BackendError = exc
        except FieldtuiError as exc:  # a secret that cannot be read: the backend cannot be used
            error = self._with_secret_fix(backend, AuthError(exc.message, backend=backend, hint=exc.hint))
        except Exception as exc:  # a connector bug must not take the other clouds down with it
            log.exception("%s: cannot build the connector", backend)
            error = BackendError(f"cannot set up the connector: {describe(exc)}", backend=backend)
        self.connectivity.record_failure(backend, error)
        raise error

    # -- calls ---------------------------------------------------------------------------
    async def _call(self, backend: str, operation: Callable[[Connector], Awaitable[T]]) -> T:
        """One bounded call to one backend, its outcome recorded in connectivity.

        Raises BackendError (NotFound and Rejected included) or Unsupported; anything else a
        connector lets escape is logged and raised as a BackendError naming the backend.
        """
        try:
            async with asyncio.timeout(self.per_backend_timeout):
                result = await operation(self.connector(backend))
        except Unsupported:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is mapped (and recorded) by _failed
            raise self._failed(backend, exc) from None
        self.connectivity.record_success(backend)
        return result

    def _failed(self, backend: str, exc: Exception) -> BackendError:
        """``exc`` from a call to ``backend`` as a BackendError, recorded in connectivity.

        Call it from the ``except`` block (an unexpected error is logged with its traceback).
        """
        if isinstance(exc, BackendError):
            error = self._with_secret_fix(backend, exc)
        elif isinstance(exc, TimeoutError):
            error = TimeoutError_(f"no answer within {self.per_backend_timeout:g} s", backend=backend)
        else:  # a connector bug must not take the other clouds down with it
            log.exception("%s: unexpected error", backend)
            error = BackendError(describe(exc), backend=backend)
        self.connectivity.record_failure(backend, error)
        return error

    def _with_secret_fix(self, backend: str, error: BackendError) -> BackendError:
        """A refused or missing secret names both ways to fix it, whatever the connector said."""
        fix = self._slots[backend].secret_fix
        if fix is not None and isinstance(error, AuthError) and not isinstance(error, SessionLost):
            error.hint = fix
        return error

    async def _probe(self, backend: str) -> None:
        await self.connector(backend).probe()

    async def _store(self, what: str, write: Awaitable[None]) -> None:
        """Write to the cache; a cache failure is logged, never a failed read."""
        try:
            await write
        except Exception:  # the read already succeeded: do not lose it over the cache
            log.exception("could not cache %s", what)

    def _capable(self, test: Callable[[Capabilities], bool]) -> list[str]:
        """Backends whose capabilities pass ``test`` (those that cannot be built are left out)."""
        names = []
        for name in self._slots:
            with contextlib.suppress(BackendError):
                if test(self.connector(name).capabilities):
                    names.append(name)
        return names

    # -- find ----------------------------------------------------------------------------
    async def find(
        self,
        query: str,
        *,
        limit: int | None = None,
        cloud: str | None = None,
        group: str | None = None,
        status: InstallationStatus | None = None,
    ) -> AsyncIterator[FindResult]:
        """Devices matching ``query`` from every backend, streamed as each backend answers.

        Backends with search are searched (those that list and filter on this side hand on each
        page's matches as it comes, within ``search_budget``); the others are asked for the
        exact id. ``cloud`` asks that backend only (with no query: its own listing); ``group``
        and ``status`` ask the clouds that keep groups or installation statuses for their
        listing with that filter (:meth:`_list_in`). Each backend ends with a
        :class:`BackendFinished` (with its error, why its answer is partial, or why it found
        nothing); failures are never raised.
        """
        query = query.strip()
        limit = limit or self.search_limit
        started = time.monotonic()
        out: asyncio.Queue[tuple[str, list[SourcedDevice]] | BackendFinished] = asyncio.Queue()
        listing = cloud is not None or group is not None or status is not None
        wanted = DeviceFilter(query=query or None, group=group, installation_status=status, limit=limit)

        async def search_one(backend: str) -> None:
            def emit(copies: list[SourcedDevice]) -> None:
                out.put_nowait((backend, copies))

            if group is not None or status is not None or (listing and not query):
                outcome = await self._list_in(backend, wanted, emit)
            else:
                outcome = await self._find_in(backend, query, limit, emit)
            count, error, from_cache, partial, note = outcome
            out.put_nowait(
                BackendFinished(
                    backend=backend,
                    count=count,
                    elapsed=time.monotonic() - started,
                    error=error,
                    from_cache=from_cache,
                    partial=partial,
                    note=note,
                )
            )

        names = [name for name in self._slots if cloud is None or name == cloud]
        if group is not None:
            names = [name for name in names if self._can(name, lambda caps: caps.groups)]
        if status is not None:
            names = [name for name in names if self._can(name, lambda caps: caps.installation_status)]
        tasks = [asyncio.create_task(search_one(name), name=f"find-{name}") for name in names]
        seen: dict[str, dict[str, SourcedDevice]] = {}
        running = len(tasks)
        try:
            while running:
                item = await out.get()
                if isinstance(item, BackendFinished):
                    running -= 1
                    yield item
                    continue
                backend, copies = item
                for copy in copies:
                    by_backend = seen.setdefault(copy.device.id, {})
                    new = not by_backend
                    by_backend[backend] = copy
                    yield FindMatch(
                        key=copy.device.id, view=merge_devices(list(by_backend.values())), new=new
                    )
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _can(self, backend: str, test: Callable[[Capabilities], bool]) -> bool:
        """True when ``backend`` offers what ``test`` asks (and when it cannot be built: it is
        then asked, and its failure said, rather than silently left out)."""
        try:
            return test(self.connector(backend).capabilities)
        except BackendError:
            return True

    async def _list_in(
        self, backend: str, wanted: DeviceFilter, emit: Callable[[list[SourcedDevice]], None]
    ) -> FindOutcome:
        """One backend's own listing with ``wanted`` applied, as :meth:`_find_in` answers.

        A listing that cannot apply a filter is not asked (the note says why); devices it
        returns are checked against the group and status again on this side. A cloud that
        fails answers from the cache, with the same filters applied.
        """
        if self.offline:
            cached = await self._cached_listing(backend, wanted)
            emit(cached)
            return len(cached), None, True, None, None
        partial: str | None = None
        by_field = replace_filter(wanted, query=None)
        hand_on = _Handout(self, backend, emit, wanted.limit, "listed devices", by_field)

        try:
            connector = self.connector(backend)
            beyond = wanted.beyond(connector.device_filters)
            if not connector.device_filters:
                return 0, None, False, None, "not asked: its API has no device listing"
            if beyond:
                return 0, None, False, None, f"not asked: its listing cannot filter by {', '.join(beyond)}"
            try:
                async with asyncio.timeout(self.per_backend_timeout):
                    budget = min(self.search_budget, 0.75 * self.per_backend_timeout)
                    stream = connector.list_pages(wanted, budget=budget)
                    async with contextlib.aclosing(stream):
                        async for page in stream:
                            await hand_on(page.devices)
                            partial = page.partial or partial
            except Unsupported:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is mapped (and recorded) by _failed
                raise self._failed(backend, exc) from None
            self.connectivity.record_success(backend)
        except (NotFound, Rejected):
            # A group the cloud does not have (or an id it cannot hold): nothing there.
            return hand_on.count, None, False, None, _no_group(wanted)
        except Unsupported as exc:
            return hand_on.count, None, False, None, f"not asked: {exc.message}"
        except BackendError as exc:
            cached = [
                c for c in await self._cached_listing(backend, wanted) if c.device.id not in hand_on.handed
            ]
            emit(cached)
            return hand_on.count + len(cached), describe(exc), bool(cached), partial, None
        return hand_on.count, None, False, partial, _no_group(wanted) if not hand_on.count else None

    async def listing(self, backend: str, wanted: DeviceFilter) -> tuple[list[Device], str | None]:
        """One backend's own listing with ``wanted`` (a command's: most of the per-backend
        timeout to spend), and why it stopped short (None when complete). Raises as
        :meth:`_call`."""
        budget = 0.75 * self.per_backend_timeout

        async def pages(connector: Connector) -> tuple[list[Device], str | None]:
            devices: list[Device] = []
            partial: str | None = None
            stream = connector.list_pages(wanted, budget=budget)
            async with contextlib.aclosing(stream):
                async for page in stream:
                    devices += page.devices
                    partial = page.partial or partial
            return devices, partial

        return await self._call(backend, pages)

    async def _cached_listing(self, backend: str, wanted: DeviceFilter) -> list[SourcedDevice]:
        """What the cache holds of ``backend`` that passes ``wanted`` (the listing's stand-in)."""
        if self.cache is None:
            return []
        try:
            cached = await self.cache.search_devices(wanted.query or "", CACHE_SCAN)
        except Exception:  # a broken cache means no cached answer, not a crash
            log.exception("cache search failed")
            return []
        found = [_stale(c) for c in cached if c.backend == backend and device_matches(c.value, wanted)]
        return found[: wanted.limit] if wanted.limit is not None else found

    async def _find_in(
        self, backend: str, query: str, limit: int, emit: Callable[[list[SourcedDevice]], None]
    ) -> FindOutcome:
        """Search one backend, handing each batch of matches to ``emit`` as it arrives.

        Returns how many devices it handed on, the error (None when it answered), whether they
        came from the cache, why the answer is partial (None when complete), and, when it found
        nothing, what its search looks at (None for a cloud with a search of its own).
        """
        if self.offline:
            cached = await self._cached_matches(backend, query, limit)
            emit(cached)
            return len(cached), None, True, None, None
        count, error, from_cache, partial = await self._search_in(backend, query, limit, emit)
        note = None
        if count == 0 and error is None and query:
            with contextlib.suppress(BackendError):
                note = self.connector(backend).search_scope
        return count, error, from_cache, partial, note

    async def _search_in(
        self, backend: str, query: str, limit: int, emit: Callable[[list[SourcedDevice]], None]
    ) -> tuple[int, str | None, bool, str | None]:
        partial: str | None = None
        hand_on = _Handout(self, backend, emit, limit, "search results")

        try:
            connector = self.connector(backend)
            if connector.capabilities.search and isinstance(connector, PagedSearch):
                budget = min(self.search_budget, 0.75 * self.per_backend_timeout)
                try:
                    async with asyncio.timeout(self.per_backend_timeout):
                        pages = connector.search_pages(query, limit=limit, budget=budget)
                        async with contextlib.aclosing(pages):
                            async for page in pages:
                                await hand_on(page.devices)
                                partial = page.partial or partial
                                if hand_on.count >= limit:
                                    break
                except Unsupported:
                    raise
                except Exception as exc:  # noqa: BLE001 - every failure is mapped (and recorded) by _failed
                    raise self._failed(backend, exc) from None
                self.connectivity.record_success(backend)
            elif connector.capabilities.search:
                await hand_on(await self._call(backend, lambda c: c.search(query, limit=limit)))
            elif query and not any(ch.isspace() for ch in query):
                await hand_on([await self._call(backend, lambda c: c.get_device(query))])
        except (NotFound, Rejected, Unsupported):
            # Not this backend's id format, or an id it does not know: no match, not a failure.
            return hand_on.count, None, False, None
        except BackendError as exc:
            cached = [
                c
                for c in await self._cached_matches(backend, query, limit)
                if c.device.id not in hand_on.handed
            ]
            cached = cached[: limit - hand_on.count]
            emit(cached)
            return hand_on.count + len(cached), describe(exc), bool(cached), partial
        return hand_on.count, None, False, partial

    async def _cached_matches(self, backend: str, query: str, limit: int) -> list[SourcedDevice]:
        if self.cache is None or not query:
            return []
        try:
            cached = await self.cache.search_devices(query, limit)
        except Exception:  # a broken cache means no cached answer, not a crash
            log.exception("cache search failed")
            return []
        return [_stale(c) for c in cached if c.backend == backend]

    # -- one device ----------------------------------------------------------------------
    async def device(self, device_id: str) -> DeviceView:
        """Everything known about ``device_id``, merged across every configured cloud.

        Every backend is asked, whatever the cache says (a cached copy never narrows the
        search: the device may have been registered in another cloud since). Backends that
        fail contribute their cached copy, marked stale. Raises DeviceNotFound when no backend
        knows the device, NoBackendReachable when none could be asked and nothing is cached.
        """
        last: DeviceView | None = None
        async for view in self.device_updates(device_id):
            last = view
        assert last is not None  # device_updates yields at least once or raises
        return last

    async def device_updates(
        self, device_id: str, *, start: DeviceView | None = None
    ) -> AsyncIterator[DeviceView]:
        """The device view as it grows: the cached copies first (when there are any), then a
        new view each time a backend answers; the last one is complete (as :meth:`device`).

        Raises as :meth:`device` once every backend has answered and none knows the device;
        an id that cannot be one (``/``, ``?``, control characters...) raises InvalidId first.
        ``start`` is a view already in hand (what a lookup found): the clouds that answered it
        fresh are not asked again, and it is the first view yielded.
        """
        device_id = valid_id(device_id)
        cached = await self._cached_device(device_id)
        if self.offline:
            if cached:
                yield merge_devices([_stale(c) for c in cached])
                return
            raise NoBackendReachable(
                f"{device_id} is not in the local cache", hint="--offline reads only the cache"
            )
        found: dict[str, Device] = {}
        failed: dict[str, BackendError] = {}
        fetched: dict[str, datetime] = {}
        if start is not None and start.device.id == device_id:
            for source in start.sources:
                copy = start.copies.get(source.backend)
                if not source.stale and copy is not None and source.backend in self._slots:
                    found[source.backend] = copy
                    fetched[source.backend] = source.fetched_at
        if found:
            yield self._view_of(found, fetched, failed, cached)
        elif cached:
            yield merge_devices([_stale(c) for c in cached])
        names = [name for name in self._slots if name not in found]
        pending = {asyncio.ensure_future(self._lookup_one(name, device_id)): name for name in names}
        try:
            while pending:
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                changed = False
                for future in done:
                    name = pending.pop(future)
                    result = future.result()
                    if isinstance(result, Device):
                        found[name] = result
                        fetched[name] = _now()
                        changed = True
                    elif not _missing(result):
                        failed[name] = result
                        changed = changed or any(c.backend == name for c in cached)
                if changed and pending:
                    yield self._view_of(found, fetched, failed, cached)
        finally:
            for future in pending:
                future.cancel()
        if not found and not any(c.backend in failed for c in cached):
            if failed and len(failed) == len(names) and names:
                raise NoBackendReachable(
                    f"no backend could be reached to look up {device_id}",
                    hint="; ".join(describe(e) for e in failed.values()),
                )
            invalid = [e for e in failed.values() if isinstance(e, InvalidResponse)]
            if invalid:
                # A cloud that answered with something unreadable may well hold the device: that
                # is its invalid answer, never "not found".
                raise invalid[0]
            hint = None
            if failed:
                # Why each was not asked, and its fix: an unknown secret is not "unreachable".
                hint = "not checked: " + "; ".join(
                    f"{name}: {reason(failed[name])}" for name in sorted(failed)
                )
            raise DeviceNotFound(f"{device_id} is not known to any configured backend", hint=hint)
        if self.cache is not None and found:
            by_time: dict[datetime, list[Device]] = {}
            for name, device in found.items():
                by_time.setdefault(fetched[name], []).append(device)
            for when, devices in by_time.items():
                await self._store("device", self.cache.store_devices(devices, when))
        yield self._view_of(found, fetched, failed, cached)

    def _view_of(
        self,
        found: Mapping[str, Device],
        fetched: Mapping[str, datetime],
        failed: Mapping[str, BackendError],
        cached: Sequence[Cached[Device]],
    ) -> DeviceView:
        """The merged view of the fresh copies so far, plus cached copies of the backends that
        failed or have not answered yet (marked stale), in the configured backend order."""
        copies = [SourcedDevice(d, Source(name, d.kind, fetched[name])) for name, d in found.items()]
        copies += [_stale(c) for c in cached if c.backend not in found]
        order = {name: i for i, name in enumerate(self._slots)}
        copies.sort(key=lambda c: order.get(c.source.backend, len(order)))
        view = merge_devices(copies)
        return replace(view, errors={name: reason(e) for name, e in failed.items()})

    async def _lookup_one(self, backend: str, device_id: str) -> Device | BackendError:
        try:
            return await self._call(backend, lambda c: c.get_device(device_id))
        except Unsupported as exc:
            return NotFound(exc.message, backend=backend)
        except BackendError as exc:
            return exc

    async def _lookup(self, backends: Sequence[str], device_id: str) -> dict[str, Device | BackendError]:
        results = await asyncio.gather(*(self._lookup_one(name, device_id) for name in backends))
        return dict(zip(backends, results, strict=True))

    async def _cached_device(self, device_id: str) -> list[Cached[Device]]:
        if self.cache is None:
            return []
        try:
            return await self.cache.cached_device(device_id)
        except Exception:  # a broken cache means no cached answer, not a crash
            log.exception("cache lookup failed")
            return []

    async def _holders(
        self, device_id: str, candidates: Sequence[str]
    ) -> tuple[list[str], dict[str, BackendError]]:
        """Which of ``candidates`` hold ``device_id``, and which could not be asked.

        Every candidate is asked (the cache never narrows this: a device two clouds know may be
        cached from one only); offline, the cache is all there is.
        """
        if self.offline:
            cached = {c.backend for c in await self._cached_device(device_id)}
            return [name for name in candidates if name in cached], {}
        results = await self._lookup(candidates, device_id)
        holders = [name for name, r in results.items() if isinstance(r, Device)]
        failed = {name: r for name, r in results.items() if isinstance(r, BackendError) and not _missing(r)}
        return holders, failed

    # -- telemetry -----------------------------------------------------------------------
    async def telemetry(self, device_id: str) -> AsyncIterator[TelemetryItem]:
        """The device's telemetry from every cloud that carries it, as one stream.

        Yields samples and :class:`StreamEvent` s (``reconnecting`` on a loss, ``connected`` when
        samples flow again). Raises DeviceNotFound, NoBackendReachable, or Unsupported when the
        device lives only on clouds without telemetry.
        """
        if self.offline:
            raise NoBackendReachable(
                "live telemetry needs the network", hint="--offline reads only the cache"
            )
        capable = self._capable(lambda caps: caps.telemetry is not TelemetryMode.NONE)
        holders, failed = await self._holders(device_id, capable)
        if not holders:
            if failed and len(failed) == len(capable):
                raise NoBackendReachable(
                    f"no telemetry backend could be reached to find {device_id}",
                    hint="; ".join(describe(e) for e in failed.values()),
                )
            view = await self.device(device_id)
            clouds = ", ".join(f"{s.backend} ({s.kind.value})" for s in view.sources)
            raise Unsupported(f"{device_id} is on {clouds}, which offer no telemetry")
        connectors = [self.connector(name) for name in holders]
        async for item in merged_telemetry(
            connectors, device_id, connectivity=self.connectivity, backoff=self.telemetry_backoff
        ):
            yield item

    # -- tasks ---------------------------------------------------------------------------
    async def tasks(self, device_id: str) -> list[Task]:
        return (await self.task_view(device_id)).tasks

    async def task_view(self, device_id: str) -> TaskView:
        """The device's tasks (and MQTT/things commands) across clouds, newest first.

        Backends that fail contribute their cached list (marked stale in ``sources``).
        """
        cached_lists = await self._cached_tasks(device_id)
        targets: list[str] = []
        if not self.offline:
            targets = self._capable(lambda caps: caps.tasks or caps.commands)

        async def one(backend: str) -> list[Task] | BackendError:
            found: list[Task] = []
            try:
                caps = self.connector(backend).capabilities
                if caps.tasks:
                    found += await self._call(backend, lambda c: c.list_tasks(device_id))
                if caps.commands:
                    commands = await self._call(backend, lambda c: c.list_commands(device_id))
                    found += [command_as_task(cmd) for cmd in commands]
            except Unsupported:
                pass
            except BackendError as exc:
                return exc
            return found

        results = dict(zip(targets, await asyncio.gather(*(one(n) for n in targets)), strict=True))
        fetched_at = _now()
        tasks: list[Task] = []
        sources: list[Source] = []
        errors: dict[str, str] = {}
        for backend, result in results.items():
            kind = self.kind(backend)
            if isinstance(result, list):
                if self._keeps_no_history(backend):
                    result = _with_remembered(result, cached_lists, backend)
                tasks += result
                sources.append(Source(backend, kind, fetched_at))
                if self.cache is not None:
                    await self._store("tasks", self.cache.store_tasks(backend, device_id, result, fetched_at))
            elif not _missing(result):
                errors[backend] = reason(result)
        for cached in cached_lists:
            if cached.backend in errors or (self.offline and cached.backend in self._slots):
                tasks += cached.value
                sources.append(Source(cached.backend, self.kind(cached.backend), cached.fetched_at, True))
        if not sources:
            if self.offline or (errors and len(errors) == len(results)):
                raise NoBackendReachable(
                    f"no backend could be reached for the tasks of {device_id}",
                    hint="; ".join(f"{name}: {text}" for name, text in errors.items())
                    or "--offline reads only the cache",
                )
            # No task backend knows the device: it may still live on one without tasks.
            await self.device(device_id)
        tasks.sort(key=lambda t: t.updated or t.created or datetime.min.replace(tzinfo=UTC), reverse=True)
        return TaskView(tasks=tasks, sources=tuple(sources), errors=errors)

    async def _remember_commands(self, backend: str, device_id: str, current: Mapping[str, Task]) -> None:
        """The broker keeps no history: what the device said is remembered in the cache, so
        `fieldtui tasks` and `history` in another process still show it."""
        if self.cache is not None:
            tasks = list(current.values())
            await self._store("commands", self.cache.store_tasks(backend, device_id, tasks, _now()))

    def _keeps_no_history(self, backend: str) -> bool:
        """True for a cloud that forgets finished commands (MQTT: the broker keeps nothing)."""
        slot = self._slots[backend]
        return slot.connector is not None and isinstance(slot.connector, LiveCommandStatus)

    async def _cached_tasks(self, device_id: str) -> list[Cached[list[Task]]]:
        if self.cache is None:
            return []
        try:
            return await self.cache.cached_tasks(device_id)
        except Exception:  # a broken cache means no cached answer, not a crash
            log.exception("cache lookup failed")
            return []

    async def task_monitor(self, backend: str, device_id: str | None = None) -> AsyncIterator[list[Task]]:
        """A backend's tasks, as a fresh list on every change: fleet-wide (its unfinished tasks),
        or one device's when ``device_id`` is given.

        A device's commands are followed live where the connector pushes their status (MQTT);
        otherwise the backend is asked every ``task_refresh_interval`` seconds. Failures are
        recorded in connectivity and the monitor keeps going. Raises Unsupported when the
        backend offers neither.
        """
        connector = self.connector(backend)
        if device_id is not None and isinstance(connector, LiveCommandStatus):
            async for tasks in self._follow_commands(backend, connector, device_id):
                yield tasks
            return
        if not connector.capabilities.tasks:
            raise connector._unsupported("tasks")
        while True:
            try:
                if device_id is None:
                    yield await self._call(backend, lambda c: c.fleet_tasks())
                else:
                    yield await self._call(backend, lambda c: c.list_tasks(device_id))
            except BackendError:
                pass  # recorded in connectivity; the next round tries again
            await asyncio.sleep(self.task_refresh_interval)

    async def _follow_commands(
        self, backend: str, source: LiveCommandStatus, device_id: str
    ) -> AsyncIterator[list[Task]]:
        current: dict[str, Task] = {}
        for remembered in await self._cached_tasks(device_id):
            if remembered.backend == backend:
                current.update((task.id, task) for task in remembered.value)
        with contextlib.suppress(BackendError):
            for known in await self._call(backend, lambda c: c.list_commands(device_id)):
                current[known.id] = command_as_task(known)
        await self._remember_commands(backend, device_id, current)
        yield _newest_first(current.values())
        attempt = 0
        while True:
            stream = source.command_updates(device_id)
            try:
                async for command in stream:
                    attempt = 0
                    self.connectivity.record_success(backend)
                    task = command_as_task(command)
                    current[task.id] = task
                    await self._remember_commands(backend, device_id, current)
                    yield _newest_first(current.values())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a lost broker: recorded, then reconnected
                self.connectivity.record_failure(backend, exc)
            finally:
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    with contextlib.suppress(Exception):
                        await aclose()
            await asyncio.sleep(self.telemetry_backoff.delay(attempt, _RNG))
            attempt += 1


def _with_remembered(fresh: list[Task], cached: Sequence[Cached[list[Task]]], backend: str) -> list[Task]:
    """``fresh`` plus the commands remembered in the cache for ``backend`` (fresh wins by id)."""
    merged = {task.id: task for c in cached if c.backend == backend for task in c.value}
    merged.update((task.id, task) for task in fresh)
    return _newest_first(merged.values())


def _newest_first(tasks: Iterable[Task]) -> list[Task]:
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(tasks, key=lambda t: t.updated or t.created or epoch, reverse=True)


def _missing(error: BackendError) -> bool:
    """True for errors that mean "this backend does not have it" rather than "could not ask"."""
    return isinstance(error, NotFound | Rejected)


def _no_group(wanted: DeviceFilter) -> str | None:
    """What an empty answer to a group listing means, in words (None without a group)."""
    return f"no group {wanted.group!r} with a device in it" if wanted.group is not None else None


def replace_filter(wanted: DeviceFilter, **changes: object) -> DeviceFilter:
    """``wanted`` with ``changes`` (a frozen model's copy)."""
    return wanted.model_copy(update=changes)


def _stale(cached: Cached[Device]) -> SourcedDevice:
    device = cached.value
    return SourcedDevice(device, Source(cached.backend, device.kind, cached.fetched_at, stale=True))


_RNG = random.Random()
__all__ = [
    "BackendFinished",
    "ConnectorSpec",
    "DeviceView",
    "FindMatch",
    "FindResult",
    "FleetService",
    "LiveCommandStatus",
    "Source",
    "TaskView",
    "command_as_task",
]


class _Handout:
    """Hands one backend's devices on as they arrive: each device once, up to ``limit`` (None:
    no bound), only those passing ``keep`` (when given), and stores them in the read cache."""

    def __init__(
        self,
        service: FleetService,
        backend: str,
        emit: Callable[[list[SourcedDevice]], None],
        limit: int | None,
        what: str,
        keep: DeviceFilter | None = None,
    ) -> None:
        self._service = service
        self._backend = backend
        self._emit = emit
        self._limit = limit
        self._what = what
        self._keep = keep
        self.count = 0
        self.handed: set[str] = set()

    async def __call__(self, devices: Sequence[Device]) -> None:
        keep = self._keep
        fresh = [d for d in devices if d.id not in self.handed and (keep is None or device_matches(d, keep))]
        if self._limit is not None:
            fresh = fresh[: self._limit - self.count]
        if not fresh:
            return
        fetched_at = _now()
        self.handed.update(d.id for d in fresh)
        self.count += len(fresh)
        self._emit([SourcedDevice(d, Source(self._backend, d.kind, fetched_at)) for d in fresh])
        cache = self._service.cache
        if cache is not None:
            await self._service._store(self._what, cache.store_devices(fresh, fetched_at))
