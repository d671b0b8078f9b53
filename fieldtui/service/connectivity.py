"""Per-backend connectivity: what each cloud's last answer says about it, and probing the lost ones.

Every call the service makes reports its outcome here. A transport failure makes the backend
``offline``, refused credentials ``auth_error``, a 5xx or a body we cannot read ``degraded``; any
answer at all (a 404 is an answer) makes it ``online``. Backends that are not online are probed
in the background with exponential backoff and jitter; the change back to ``online`` is announced
to subscribers, to callbacks, and to whoever awaits :meth:`Connectivity.wait_online` (the sync
engine, to send what queued up while the cloud was away).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from fieldtui.core.errors import (
    AuthError,
    BackendError,
    ConnectionError_,
    FieldtuiError,
    NotFound,
    Rejected,
    SessionLost,
    Unsupported,
)

log = logging.getLogger(__name__)


class BackendState(StrEnum):
    #: Not asked yet in this run.
    UNKNOWN = "unknown"
    ONLINE = "online"
    OFFLINE = "offline"
    AUTH_ERROR = "auth_error"
    DEGRADED = "degraded"


@dataclass(frozen=True, slots=True)
class BackendStatus:
    backend: str
    state: BackendState = BackendState.UNKNOWN
    #: The last failure in words a technician can act on (None once the backend answers again).
    last_error: str | None = None
    last_success: datetime | None = None
    changed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ConnectivityChange:
    backend: str
    old: BackendState
    new: BackendState
    status: BackendStatus


ChangeCallback = Callable[[ConnectivityChange], None]
Probe = Callable[[str], Awaitable[None]]


def state_for(error: BaseException) -> BackendState:
    """The state a failed call puts its backend in.

    A lost DeviceHQ session (another client took it) is not a credentials problem: the next
    call opens a new session, so it counts as degraded rather than auth_error.
    """
    if isinstance(error, ConnectionError_ | TimeoutError | OSError):
        return BackendState.OFFLINE
    if isinstance(error, SessionLost):
        return BackendState.DEGRADED
    if isinstance(error, AuthError):
        return BackendState.AUTH_ERROR
    return BackendState.DEGRADED


def is_answer(error: BaseException) -> bool:
    """True for errors that prove the backend is up (it answered, just not with what we wanted)."""
    return isinstance(error, NotFound | Rejected | Unsupported)


def reason(error: BaseException) -> str:
    """``describe`` without the backend, for a place that names it already (a dict keyed by
    backend, a stream event): the cloud is said once."""
    if isinstance(error, FieldtuiError):
        return error.reason
    return describe(error)


def describe(error: BaseException) -> str:
    """A one-line, user-readable reason (our errors already are; others get their type named)."""
    if isinstance(error, BackendError):
        return str(error)
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class Connectivity:
    """The state of every configured backend, and the prober that brings lost ones back."""

    def __init__(
        self,
        backends: Iterable[str],
        *,
        probe: Probe | None = None,
        probe_interval: float = 2.0,
        probe_max_interval: float = 60.0,
        probe_timeout: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self._status = {name: BackendStatus(backend=name) for name in backends}
        self._probe = probe
        self._probe_interval = probe_interval
        self._probe_max_interval = probe_max_interval
        self._probe_timeout = probe_timeout
        self._rng = rng or random.Random()
        self._callbacks: list[ChangeCallback] = []
        self._queues: set[asyncio.Queue[ConnectivityChange]] = set()
        self._online_events: dict[str, asyncio.Event] = {}
        self._wake = asyncio.Event()
        self._prober: asyncio.Task[None] | None = None
        #: backend -> (failed probes in a row, monotonic time of the next probe)
        self._probe_plan: dict[str, tuple[int, float]] = {}

    # -- reading -------------------------------------------------------------------------
    @property
    def backends(self) -> list[str]:
        return list(self._status)

    def status(self, backend: str) -> BackendStatus:
        return self._status[backend]

    def snapshot(self) -> dict[str, BackendStatus]:
        return dict(self._status)

    # -- recording outcomes ----------------------------------------------------------------
    def record_success(self, backend: str) -> None:
        now = datetime.now(UTC)
        self._set(backend, BackendState.ONLINE, last_error=None, last_success=now)

    def record_failure(self, backend: str, error: BaseException) -> None:
        """Record a failed call; errors that are answers (404, refusals) count as success."""
        if is_answer(error):
            self.record_success(backend)
            return
        self._set(backend, state_for(error), last_error=describe(error))

    def record(self, backend: str, error: BaseException | None) -> None:
        if error is None:
            self.record_success(backend)
        else:
            self.record_failure(backend, error)

    def _set(
        self,
        backend: str,
        state: BackendState,
        *,
        last_error: str | None,
        last_success: datetime | None = None,
    ) -> None:
        old = self._status.get(backend) or BackendStatus(backend=backend)
        changed = old.state is not state
        new = replace(
            old,
            state=state,
            last_error=last_error,
            last_success=last_success or old.last_success,
            changed_at=datetime.now(UTC) if changed else old.changed_at,
        )
        self._status[backend] = new
        if state is BackendState.ONLINE:
            self._probe_plan.pop(backend, None)
            event = self._online_events.get(backend)
            if event is not None:
                event.set()
        else:
            event = self._online_events.get(backend)
            if event is not None:
                event.clear()
            if backend not in self._probe_plan:
                self._probe_plan[backend] = (0, time.monotonic() + self._delay(0))
                self._wake.set()
        if changed:
            self._announce(ConnectivityChange(backend=backend, old=old.state, new=state, status=new))

    def _announce(self, change: ConnectivityChange) -> None:
        for callback in list(self._callbacks):
            try:
                callback(change)
            except Exception:  # a broken listener must not break the caller's request
                log.exception("connectivity callback failed")
        for queue in self._queues:
            queue.put_nowait(change)

    # -- listening -----------------------------------------------------------------------
    def on_change(self, callback: ChangeCallback) -> Callable[[], None]:
        """Call ``callback`` on every state change; returns a function that unsubscribes."""
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._callbacks.remove(callback)

        return unsubscribe

    async def subscribe(self) -> AsyncIterator[ConnectivityChange]:
        """Every state change from now on, in order, until the consumer stops iterating."""
        queue: asyncio.Queue[ConnectivityChange] = asyncio.Queue()
        self._queues.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.discard(queue)

    async def wait_online(self, backend: str) -> None:
        """Return as soon as ``backend`` is online (at once when it already is)."""
        event = self._online_events.get(backend)
        if event is None:
            event = self._online_events[backend] = asyncio.Event()
        if self._status[backend].state is BackendState.ONLINE:
            event.set()
        await event.wait()

    # -- probing -------------------------------------------------------------------------
    def start(self) -> None:
        """Probe backends that are not online in the background (needs a probe function)."""
        if self._probe is None:
            raise RuntimeError("Connectivity.start() needs a probe function")
        if self._prober is None or self._prober.done():
            self._prober = asyncio.get_running_loop().create_task(
                self._probe_loop(), name="connectivity-probe"
            )

    async def stop(self) -> None:
        prober, self._prober = self._prober, None
        if prober is not None:
            prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prober

    async def probe_now(self, backend: str) -> BackendState:
        """Probe one backend at once and record the outcome."""
        if self._probe is None:
            raise RuntimeError("no probe function configured")
        try:
            async with asyncio.timeout(self._probe_timeout):
                await self._probe(backend)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, whatever its type
            self.record_failure(backend, exc)
        else:
            self.record_success(backend)
        return self._status[backend].state

    def _delay(self, failures: int) -> float:
        base = min(self._probe_max_interval, self._probe_interval * (2.0**failures))
        # Full jitter on the upper half: probes from many clients do not arrive in lockstep.
        return base / 2 + self._rng.uniform(0, base / 2)

    async def _probe_loop(self) -> None:
        while True:
            now = time.monotonic()
            due = [name for name, (_, at) in self._probe_plan.items() if at <= now]
            if due:
                await asyncio.gather(*(self._probe_one(name) for name in due))
                continue
            self._wake.clear()
            wait = min((at for _, at in self._probe_plan.values()), default=now + 3600) - now
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(wait, 0.0)):
                    await self._wake.wait()

    async def _probe_one(self, backend: str) -> None:
        failures, _ = self._probe_plan.get(backend, (0, 0.0))
        state = await self.probe_now(backend)
        if state is not BackendState.ONLINE:
            self._probe_plan[backend] = (failures + 1, time.monotonic() + self._delay(failures + 1))
