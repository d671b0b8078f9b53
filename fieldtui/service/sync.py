"""The sync engine: sends what the outbox holds, in order per device, exactly once.

No cloud here takes idempotency keys, so "exactly once" is kept by checking: an action whose
earlier attempt may have reached the server (a crash while ``sending``, a request that got no
answer) is looked up first (status already set, device already in the group, task already
present) and only sent when it has not taken effect. A move is also checked against what the
technician saw: a device that is now in neither that group nor the target is a ``conflict``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fieldtui.connectors.base import Connector
from fieldtui.core.actions import Action, ActionState, ActionType
from fieldtui.core.errors import (
    AuthError,
    BackendError,
    ConnectionError_,
    FieldtuiError,
    LimitReached,
    NotFound,
    Rejected,
    ServerError,
    SessionLost,
    TimeoutError_,
    Unsupported,
)
from fieldtui.core.models import Device, InstallationStatus, Task
from fieldtui.core.send_window import SendWindowClosed, send_window
from fieldtui.secrets import env_var_name
from fieldtui.service import device_records
from fieldtui.service.store import ActionRecord, Claimed, OutboxStore, new_owner_id
from fieldtui.service.write_through import write_through

log = logging.getLogger(__name__)

#: The capability each action type needs (``Capabilities`` field names).
CAPABILITY: dict[ActionType, str] = {
    ActionType.SET_INSTALLATION_STATUS: "installation_status",
    ActionType.MOVE_TO_GROUP: "groups",
    ActionType.CREATE_GROUP: "groups",
    ActionType.RENAME_GROUP: "groups",
    ActionType.DELETE_GROUP: "groups",
    ActionType.CREATE_TASK: "tasks",
    ActionType.CANCEL_TASK: "tasks",
    ActionType.DELETE_TASK: "tasks",
    ActionType.UPDATE_DEVICE: "device_update",
    ActionType.SEND_COMMAND: "commands",
    ActionType.CREATE_DEVICE: "device_lifecycle",
    ActionType.DELETE_DEVICE: "device_lifecycle",
    ActionType.SET_CLOUD_SETTING: "cloud_settings",
}

#: A server clock may run a little behind ours: how far back a "created since" check looks.
CLOCK_SKEW = timedelta(seconds=120)
#: The longest wait between two tries of one action inside a bounded drain (``outbox sync``).
DRAIN_BACKOFF_CAP = 4.0
#: A cloud that failed this many times in a drain without a single answer is not tried again in it.
DRAIN_GIVE_UP_AFTER = 12
#: Connection errors in a row before a cloud is paused (skipped until its backoff ends).
DOWN_AFTER_STREAK = 3
#: A drain does not start a wait it cannot finish: it ends this close to its deadline.
DRAIN_SLACK = 0.05
#: How long a claimed action is held for its sender before another process may take it over.
LEASE_SECONDS = 30.0
#: Shortens the lease for tests and soaks: a process paused past it is taken over sooner.
LEASE_ENV = "FIELDTUI_OUTBOX_LEASE_SECONDS"
#: Actions in process at once, per unit of ``concurrency``. An action spends part of its turn on
#: durable commits (claimed, confirmed, done) and on backoff bookkeeping rather than on the
#: network: with only ``concurrency`` actions in process, fewer requests than the bound would be
#: in flight. Requests to one cloud stay within ``concurrency`` (``SyncEngine._gate``).
PIPELINE = 4
#: Connection errors in a row pause a cloud only when it has not answered for this long either:
#: one cloud losing 10 % of its connections, at a few dozen answers a second, loses three in a
#: row now and then, and a pause would stall every device while the cloud works.
DOWN_QUIET = 2.0
#: The "already applied?" check is a read: one that meets a 503 or a dropped connection is asked
#: again at once, this many times, instead of costing the action a whole round of backoff (under
#: 20 % errors and 10 % drops, a round then needs both its read and its change to get through).
CHECK_RETRIES = 2
#: A cloud that answered this recently is still there: the background sync retries a transient
#: failure of one request as soon as ``outbox sync`` would, instead of backing off for minutes.
ANSWERED_RECENTLY = 60.0


def default_lease_seconds() -> float:
    """The lease (``LEASE_SECONDS``, or ``FIELDTUI_OUTBOX_LEASE_SECONDS`` when it is a number
    of at least one second: a test knob, so a bad value falls back to the default)."""
    raw = os.environ.get(LEASE_ENV, "")
    try:
        value = float(raw)
    except ValueError:
        return LEASE_SECONDS
    return value if math.isfinite(value) and value >= 1.0 else LEASE_SECONDS


def supports(connector: Connector, action_type: ActionType) -> bool:
    return connector.capabilities.why_not(CAPABILITY[action_type], connector.kind.value) is None


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: ``base * 2**(attempt-1)``, capped, times 0.5..1."""

    base: float = 2.0
    cap: float = 300.0
    #: How long a held quota (DeviceHQ's 25 unfinished tasks) waits before asking again.
    hold: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        raw = min(self.cap, self.base * 2.0 ** max(attempt - 1, 0))
        return raw * (0.5 + rng.random() / 2)

    def hold_delay(self, attempt: int, rng: random.Random) -> float:
        return min(self.cap, self.hold * (1 + rng.random() / 4))


@dataclass(frozen=True, slots=True)
class ActionEvent:
    """A state change of one action, for the app (outbox count, per-device badges, toasts)."""

    record: ActionRecord
    previous: ActionState | None
    #: What happened, in words: "synced", "already applied", the server's refusal, ...
    message: str

    @property
    def state(self) -> ActionState:
        return self.record.state


@dataclass(slots=True)
class SyncSummary:
    """What one ``drain()`` did and what is left."""

    done: list[ActionRecord] = field(default_factory=list)
    failed: list[ActionRecord] = field(default_factory=list)
    conflicts: list[ActionRecord] = field(default_factory=list)
    #: Back to ``queued`` for later: a transient error or a held quota (their last_error says).
    deferred: list[ActionRecord] = field(default_factory=list)
    #: Open actions left in the outbox after the drain, by state.
    remaining: dict[ActionState, int] = field(default_factory=dict)
    #: Backends found unreachable during the drain, with the error.
    unreachable: dict[str, str] = field(default_factory=dict)
    #: Every action still queued or sending when the drain ended (its last_error says why).
    left: list[ActionRecord] = field(default_factory=list)
    #: Backends not tried again in this drain (credentials refused, no answer at all), and why.
    given_up: dict[str, str] = field(default_factory=dict)
    #: The drain stopped at its deadline with actions still due.
    timed_out: bool = False

    @property
    def drained(self) -> bool:
        """True when nothing is left queued or sending: the sync is done."""
        return not (self.remaining.get(ActionState.QUEUED) or self.remaining.get(ActionState.SENDING))

    def reason(self, record: ActionRecord) -> str:
        """Why ``record`` is left, and when it will be tried, in words."""
        backend = record.action.backend
        why = self.given_up.get(backend or "") or record.last_error or "not tried yet"
        if record.state is ActionState.SENDING:
            when = "checked once its sender's lease ends"
        else:
            when = "next try " + record.next_attempt_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        return f"{why}; {when} (by `fieldtui outbox sync` or the app)"

    @property
    def ok(self) -> bool:
        """False when an action failed or conflicted (during this drain or before it)."""
        return not (
            self.failed
            or self.conflicts
            or self.remaining.get(ActionState.FAILED)
            or self.remaining.get(ActionState.CONFLICT)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "done": [r.id for r in self.done],
            "failed": [r.to_json() for r in self.failed],
            "conflicts": [r.to_json() for r in self.conflicts],
            "deferred": [r.to_json() for r in self.deferred],
            "remaining": {state.value: n for state, n in self.remaining.items()},
            "unreachable": self.unreachable,
            "left": [{**r.to_json(), "reason": self.reason(r)} for r in self.left],
            "given_up": self.given_up,
            "timed_out": self.timed_out,
            "drained": self.drained,
            "ok": self.ok,
        }


class _SettledError(Exception):
    """Internal: how processing one action ended, raised from deep inside to the worker."""

    def __init__(self, state: ActionState, message: str, *, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.state = state
        self.message = message
        self.result = result or {}


class _DeferError(Exception):
    """Internal: put the action back in the queue for later."""

    def __init__(
        self,
        message: str,
        *,
        uncertain: bool,
        hold: bool = False,
        backend: str | None = None,
        wait: float | None = None,
        in_flight: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.uncertain = uncertain
        self.hold = hold
        self.backend = backend
        #: An exact delay instead of the backoff.
        self.wait = wait
        #: No answer in time: the request may still be on its way (a slow server or proxy), so
        #: the check before a resend waits until its deadline. A connection the other side closed
        #: is not waited for: whatever was done with that request is done.
        self.in_flight = in_flight


class _LeaseLostError(Exception):
    """Internal: another process took the action over (our lease expired): leave it alone."""


Listener = Callable[[ActionEvent], None]


class SyncEngine:
    """Sends the outbox: ``drain()`` once, or ``run()`` until stopped.

    ``connectors`` maps backend name to connector. ``is_reachable`` (from the connectivity
    module) lets the engine skip backends known to be offline without trying them; ``report``
    hears how each send went, so the header's backend states include what the outbox saw.
    """

    def __init__(
        self,
        store: OutboxStore,
        connectors: Mapping[str, Connector],
        *,
        concurrency: int = 8,
        lease_seconds: float | None = None,
        backoff: Backoff | None = None,
        is_reachable: Callable[[str], bool] | None = None,
        owner: str | None = None,
        rng: random.Random | None = None,
        report: Callable[[str, BaseException | None], None] | None = None,
        settle_seconds: float = 3.0,
        store_poll: float = 2.0,
        profile: str | None = None,
        request_timeouts: Mapping[str, float] | None = None,
        down_after: int = DOWN_AFTER_STREAK,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.store = store
        #: May be lazy (built on first use): only the backends actually sent to are built.
        self.connectors = connectors
        self.concurrency = concurrency
        self.lease_seconds = default_lease_seconds() if lease_seconds is None else lease_seconds
        self.backoff = backoff or Backoff()
        self.owner = owner or new_owner_id()
        self._is_reachable = is_reachable
        #: Told of every answer (None) or failure per backend: ``Connectivity.record`` fits.
        self._report = report
        #: A request from a sender that died may still be on its way to the cloud: an interrupted
        #: send is checked only this long after that sender's last sign of life.
        self.settle_seconds = settle_seconds
        #: How often ``run()`` looks whether another process changed the outbox (``fieldtui
        #: move`` in a shell while the app is open): nothing in this process wakes it for that.
        self.store_poll = store_poll
        #: The config profile, to name a backend's secret variable when its credentials are refused.
        self.profile = profile
        #: backend -> its request timeout (the config's ``timeout``): how long a request that got
        #: no answer may still be on its way. A check before a resend waits that long after the
        #: request left (see ``_deadline_wait``).
        self.request_timeouts = dict(request_timeouts or {})
        #: action id -> when its change request last left this process (the lease was confirmed).
        self._sent_at: dict[str, float] = {}
        #: When the store committed each in-flight action's lease confirmation: its send window opens there.
        self._confirmed_at: dict[str, float] = {}
        self._rng = rng or random.Random()
        self._listeners: list[Listener] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._inflight: dict[str, tuple[asyncio.Task[None], str]] = {}
        #: backend -> (until, error): found unreachable; skipped until then or until online.
        self._down: dict[str, tuple[float, str]] = {}
        self._summary: SyncSummary | None = None
        self._pump_lock = asyncio.Lock()
        #: When the running drain must end (epoch seconds); None outside a bounded drain.
        self._drain_end: float | None = None
        #: backend -> connection errors in a row: one dropped connection does not pause a cloud,
        #: ``down_after`` in a row do (it is skipped until its backoff ends or it is back online).
        self._conn_streak: dict[str, int] = {}
        self.down_after = down_after
        #: backend -> [answers, transient failures] in the running drain.
        self._run_tally: dict[str, list[int]] = {}
        #: backend -> why it is not tried again in the running drain.
        self._given_up: dict[str, str] = {}
        #: backend -> when it last answered a request of this engine (epoch seconds).
        self._answered_at: dict[str, float] = {}
        #: backend -> the bound on this engine's requests in flight to it (``concurrency``).
        self._gates: dict[str, asyncio.Semaphore] = {}

    # -- events ------------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` on every state change; returns the function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def events(self) -> AsyncIterator[ActionEvent]:
        """Every state change as an async iterator (for a Textual worker)."""
        inbox: asyncio.Queue[ActionEvent] = asyncio.Queue()
        unsubscribe = self.subscribe(inbox.put_nowait)
        try:
            while True:
                yield await inbox.get()
        finally:
            unsubscribe()

    def publish(self, record: ActionRecord, previous: ActionState | None, message: str) -> None:
        event = ActionEvent(record=record, previous=previous, message=message)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not stop the sync
                log.exception("outbox event listener failed")

    async def wait_for_outcome(self, action_id: str, timeout: float) -> ActionEvent | None:
        """The first event that ends an attempt of ``action_id`` (None if none in ``timeout``)."""
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[ActionEvent] = loop.create_future()

        def listen(event: ActionEvent) -> None:
            if event.record.id != action_id or outcome.done():
                return
            if event.state is not ActionState.SENDING and event.previous is not None:
                outcome.set_result(event)

        unsubscribe = self.subscribe(listen)
        try:
            return await asyncio.wait_for(outcome, timeout)
        except TimeoutError:
            return None
        finally:
            unsubscribe()

    # -- signals -----------------------------------------------------------------------------
    def wake(self) -> None:
        """New work (an enqueue, a retry): look at the outbox now."""
        self._wake.set()

    def backend_online(self, backend: str) -> None:
        """The connectivity module saw ``backend`` come back: send its actions now."""
        self._down.pop(backend, None)
        self._wake.set()

    async def sync_now(self) -> None:
        """Send everything queued now, without waiting out backoff (works while ``run()`` runs)."""
        self._down.clear()
        await self.store.make_due()
        self._wake.set()

    def unreachable_backends(self) -> dict[str, str]:
        """Backends this engine found unreachable and is skipping for now, with the error."""
        now = time.time()
        return {name: error for name, (until, error) in self._down.items() if until > now}

    # -- asking the cloud ---------------------------------------------------------------------
    async def check_applied(self, record: ActionRecord) -> bool | None:
        """Did ``record``'s action take effect on its cloud? Asked before an uncertain action
        is dropped (its last attempt got no answer): "cancelled, not sent" must not be said of
        a change the cloud did apply.

        True: the cloud shows it applied. False: the cloud shows it was not (a device now in
        another state than the action asked for is that too). None: cannot tell: the action
        has no backend yet, the cloud did not answer, or it shows nothing to compare with.
        The same check the engine runs before it sends an uncertain action again; it never
        sends anything and changes nothing in the outbox.
        """
        action = record.action
        backend = action.backend
        if backend is None or backend not in self.connectors:
            return None
        try:
            connector = self._connector(backend)
            if not supports(connector, action.type):
                return None
            if action.type is ActionType.DELETE_TASK:
                try:
                    await connector.get_task(action.device or "", action.params["task_id"])
                except NotFound:
                    return True
                return False
            if action.type is ActionType.UPDATE_DEVICE:
                shown = shown_fields(await connector.get_device(action.device or ""))
                fields: Mapping[str, Any] = action.params.get("fields") or {}
                if any(key not in shown for key in fields):
                    return None
                return all(_same_value(shown[key], target) for key, target in fields.items())
            if action.type in device_records.TYPES:
                return await device_records.applied(connector, action)
            found = await self._already_applied(connector, record)
        except _SettledError as settled:
            # A conflict: the device is in neither the state seen nor the one asked for.
            return settled.state is ActionState.DONE
        except (_DeferError, FieldtuiError):
            return None
        return found is not None and found.state is ActionState.DONE

    # -- running -----------------------------------------------------------------------------
    async def drain(self, timeout: float | None = None) -> SyncSummary:
        """Send every action that can be sent; return what happened and what is left.

        Not while ``run()`` is running in the same engine (use ``sync_now()`` then). Without
        ``timeout``: one pass over what is due now (a transient error goes back to the queue
        for later). With it: everything that can be drained within ``timeout`` seconds is:
        transient failures are retried per action with a short, bounded backoff
        (``DRAIN_BACKOFF_CAP``), until nothing is left, only what cannot be sent in this run
        (credentials refused, a quota held, a cloud that never answers) is left, or the
        deadline passes.
        """
        summary = SyncSummary()
        async with self._pump_lock:
            self._summary = summary
            self._drain_end = None if timeout is None else time.time() + timeout
            self._run_tally.clear()
            self._given_up.clear()
            try:
                while True:
                    await self._pump(until_idle=True)
                    wait = await self._drain_wait()
                    if wait is None:
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), wait)
                    self._wake.clear()
            finally:
                self._summary = None
                end, self._drain_end = self._drain_end, None
        summary.remaining = {state: n for state, n in (await self.store.counts()).items() if state in _OPEN}
        summary.unreachable = self.unreachable_backends()
        summary.given_up = dict(self._given_up)
        if not summary.drained:
            summary.left = await self.store.list_actions([ActionState.QUEUED, ActionState.SENDING])
            summary.timed_out = end is not None and time.time() >= end - DRAIN_SLACK
        return summary

    async def _drain_wait(self) -> float | None:
        """How long a bounded drain waits for its next due action; None: the drain is over."""
        end = self._drain_end
        if end is None:
            return None
        now = time.time()
        if now >= end - DRAIN_SLACK:
            return None
        due = await self.store.next_due(exclude_backends=set(self._given_up))
        if due is None:
            return None
        wake_at = due.timestamp()
        if wake_at <= now:
            # Due, yet not claimed: its cloud is paused after errors in a row, or another
            # process holds it. Look again when the pause ends, or soon.
            pauses = [until for until, _error in self._down.values() if until > now]
            wake_at = min(pauses) if pauses else now + 0.25
        if wake_at >= end:
            return None
        return max(0.05, wake_at - now)

    async def run(self, online: Callable[[], Awaitable[str | None]] | None = None) -> None:
        """Send as actions become due, until ``stop()`` (or cancellation).

        ``online``, when given, is awaited repeatedly; each time it returns a backend name
        (a backend came back online) that backend's actions are sent at once.
        """
        watchers = [asyncio.create_task(self._watch_store(), name="outbox-store-poll")]
        if online is not None:
            watchers.append(asyncio.create_task(self._watch_online(online)))
        try:
            async with self._pump_lock:
                await self._pump(until_idle=False)
        finally:
            for watcher in watchers:
                watcher.cancel()
            for watcher in watchers:
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming; let in-flight sends finish within ``grace``, then interrupt them."""
        self._stopping = True
        self._wake.set()
        tasks = [task for task, _key in self._inflight.values()]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    async def _watch_store(self) -> None:
        """Wake when another process commits to the outbox (an enqueue, a retry, a drop).

        ``PRAGMA data_version`` every ``store_poll`` seconds: one tiny query, and this store's
        own commits do not count, so an idle app costs nothing more than the poll.
        """
        seen: int | None = None
        while True:
            try:
                version = await self.store.data_version()
            except Exception:  # a failed poll must not stop the sync: try again next time
                log.debug("outbox: cannot poll the store", exc_info=True)
            else:
                if seen is not None and version != seen:
                    self._wake.set()
                seen = version
            await asyncio.sleep(self.store_poll)

    async def _watch_online(self, online: Callable[[], Awaitable[str | None]]) -> None:
        while True:
            backend = await online()
            if backend is None:
                self.wake()
            else:
                self.backend_online(backend)

    def _excluded_backends(self) -> set[str]:
        now = time.time()
        excluded = {name for name, (until, _error) in self._down.items() if until > now}
        excluded.update(self._given_up)
        if self._is_reachable is not None:
            excluded.update(name for name in self.connectors if not self._is_reachable(name))
        return excluded

    async def _pump(self, *, until_idle: bool) -> None:
        self._stopping = False
        renewer = asyncio.create_task(self._renew_leases())
        try:
            while True:
                self._wake.clear()
                claimed: list[Claimed] = []
                # Keys excluded from the claim are those in flight *before* it; one that
                # finishes during the claim frees its device's next action, so only a claim
                # made with nothing in flight can prove there is nothing left to send.
                busy_before = bool(self._inflight)
                free = self.concurrency * PIPELINE - len(self._inflight)
                # A claim is a durable commit and a walk over every queue's head: made for a
                # batch of free places (``concurrency``: enough to keep every request place
                # busy meanwhile), not for each action that ends, unless nothing is in process.
                batch = free >= self.concurrency or not self._inflight
                if free > 0 and batch and not self._stopping:
                    claimed = await self.store.claim(
                        self.owner,
                        limit=free,
                        lease_seconds=self.lease_seconds,
                        exclude_keys={key for _task, key in self._inflight.values()},
                        exclude_backends=self._excluded_backends(),
                    )
                    for item in claimed:
                        self._start(item)
                if not self._inflight:
                    if busy_before and not self._stopping:
                        continue
                    if until_idle or self._stopping:
                        return
                    await self._sleep_until_due()
                    continue
                waiter = asyncio.create_task(self._wake.wait())
                try:
                    await asyncio.wait(
                        [waiter, *(task for task, _key in self._inflight.values())],
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    waiter.cancel()
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            if self._inflight:
                tasks = [task for task, _key in self._inflight.values()]
                for task in tasks:
                    task.cancel()
                await asyncio.wait(tasks)

    async def _sleep_until_due(self) -> None:
        due = await self.store.next_due(exclude_backends=self._excluded_backends())
        delay: float | None = None
        if due is not None:
            delay = max(0.05, due.timestamp() - time.time())
        downs = [until for until, _error in self._down.values() if until > time.time()]
        if downs:
            until_up = max(0.05, min(downs) - time.time())
            delay = until_up if delay is None else min(delay, until_up)
        if self._is_reachable is not None:
            # Connectivity may change without a signal: look again now and then.
            delay = 5.0 if delay is None else min(delay, 5.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            ids = list(self._inflight)
            if ids:
                try:
                    await self.store.renew(self.owner, ids, self.lease_seconds)
                except FieldtuiError:
                    log.warning("could not renew outbox leases", exc_info=True)

    def _start(self, claimed: Claimed) -> None:
        record = claimed.record
        task = asyncio.create_task(self._process(claimed), name=f"outbox-{record.id}")
        self._inflight[record.id] = (task, record.queue_key)
        action_id = record.id

        def forget(_task: asyncio.Task[None]) -> None:
            self._inflight.pop(action_id, None)

        task.add_done_callback(forget)

    # -- one action ----------------------------------------------------------------------------
    async def _process(self, claimed: Claimed) -> None:
        record = claimed.record
        self.publish(record, ActionState.QUEUED, "sending")
        backend = record.action.backend
        try:
            try:
                if claimed.interrupted:
                    # Its sender died (or was paused past its lease), perhaps with a request on its
                    # way. The last sign of life is when it confirmed its lease to send (or claimed
                    # the action): such a request may land until a request timeout after that.
                    window = max(self.settle_seconds, self._timeout(backend))
                    quiet = time.time() - claimed.previous_update.timestamp()
                    if quiet < window:
                        raise _DeferError(
                            "an interrupted send is checked once any request still on its way has landed",
                            uncertain=True,
                            wait=window - quiet,
                        )
                if backend is None:
                    backend, record = await self._resolve_backend(record)
                connector = self._connector(backend)
                outcome = await self._send_checked(connector, record, claimed.needs_check)
            except _LeaseLostError:
                log.warning("outbox: lost the lease on %s; another process has it", record.id)
            except SendWindowClosed as closed:
                # Stopped between confirming the lease and sending: nothing left this time (an
                # earlier request of the same action may have), so give it back to be checked,
                # unless another process has taken it over meanwhile (then it is theirs).
                log.warning("outbox: %s not sent: %s", record.id, closed)
                await asyncio.shield(self.store.release(self.owner, record.id, uncertain=True))
            except _SettledError as end:
                await self._finish(record, end.state, end.message, end.result)
            except _DeferError as defer:
                await self._defer(record, defer)
            except (BackendError, Unsupported) as exc:
                self._tell(backend, exc)
                await self._handle_error(record, backend, exc)
            else:
                self._tell(backend, None)
                await self._finish(record, ActionState.DONE, outcome.message, outcome.result)
        except asyncio.CancelledError:
            # Interrupted (stop, shutdown): the request may have gone out, so check next time.
            with contextlib.suppress(Exception):
                await asyncio.shield(self.store.release(self.owner, record.id, uncertain=True))
            raise
        except Exception as exc:  # a bug: keep the action, say so, do not spin on it
            log.exception("outbox: unexpected error sending %s", record.id)
            message = f"unexpected error: {type(exc).__name__}: {exc}"
            with contextlib.suppress(Exception):
                # Failed, but still "uncertain": a retry checks before sending again.
                new = await self.store.settle_failed(self.owner, record.id, message, uncertain=True)
                if new is not None:
                    self._note(new)
                    self.publish(new, ActionState.SENDING, message)
        finally:
            self._sent_at.pop(record.id, None)
            self._confirmed_at.pop(record.id, None)

    def _gate(self, backend: str) -> asyncio.Semaphore:
        """The bound on requests in flight to ``backend`` (``concurrency``): more actions are in
        process than that (``PIPELINE``), but no cloud gets more requests at once."""
        gate = self._gates.get(backend)
        if gate is None:
            gate = self._gates[backend] = asyncio.Semaphore(self.concurrency)
        return gate

    def _timeout(self, backend: str | None) -> float:
        """How long a request to ``backend`` may take (any backend's longest when not known yet)."""
        if backend is not None and backend in self.request_timeouts:
            return self.request_timeouts[backend]
        # Not told (an engine built without a config): the settle window alone applies.
        return max(self.request_timeouts.values(), default=0.0)

    def _deadline_wait(self, record: ActionRecord) -> float:
        """Seconds until the change request this process last sent for ``record`` can no longer
        land (it left at the lease confirmation; a request takes up to its timeout): 0 if none."""
        sent = self._sent_at.get(record.id)
        if sent is None:
            return 0.0
        return max(0.0, sent + self._timeout(record.action.backend) - time.time())

    async def _confirm_lease(self, record: ActionRecord) -> None:
        """Right before a change request: is the action still ours? A process paused past its
        lease (Ctrl-Z, a suspended laptop) may have been replaced by another that has sent it
        meanwhile: it must send nothing. Confirming also renews the lease and records the moment
        the request leaves, from which a later check waits out the request's timeout."""
        confirmed = await self.store.confirm_lease(self.owner, record.id, self.lease_seconds)
        if confirmed is None:
            raise _LeaseLostError
        self._sent_at[record.id] = time.time()
        self._confirmed_at[record.id] = confirmed.updated_at.timestamp()

    def _connector(self, backend: str) -> Connector:
        if backend not in self.connectors:
            raise _SettledError(ActionState.FAILED, f"backend {backend!r} is not configured in this profile")
        try:
            return self.connectors[backend]
        except (BackendError, Unsupported):
            raise
        except FieldtuiError as exc:  # its secret cannot be read: hold until that is fixed
            raise _DeferError(str(exc), uncertain=False, backend=backend) from None

    def _tell(self, backend: str | None, error: BaseException | None) -> None:
        if backend is not None:
            self._count(backend, error)
        if self._report is None or backend is None:
            return
        try:
            self._report(backend, error)
        except Exception:  # a broken reporter must not stop the sync
            log.exception("outbox: reporting %s's state failed", backend)

    def _count(self, backend: str, error: BaseException | None) -> None:
        """Keep the tallies behind pausing a cloud and giving up on it within a drain."""
        if isinstance(error, ConnectionError_):
            self._conn_streak[backend] = self._conn_streak.get(backend, 0) + 1
        elif error is None:
            self._conn_streak.pop(backend, None)
        if error is None:
            self._answered_at[backend] = time.time()
        if self._drain_end is None:
            return
        tally = self._run_tally.setdefault(backend, [0, 0])
        if error is None:
            tally[0] += 1
        elif isinstance(error, BackendError) and error.transient:
            tally[1] += 1
            if tally[0] == 0 and tally[1] >= DRAIN_GIVE_UP_AFTER:
                self._given_up.setdefault(
                    backend, f"{backend} did not answer once in this run ({tally[1]} tries; last: {error})"
                )

    async def _handle_error(
        self, record: ActionRecord, backend: str | None, exc: BackendError | Unsupported
    ) -> None:
        message = str(exc)
        if isinstance(exc, LimitReached):
            await self._defer(record, _DeferError(f"held: {message}", uncertain=False, hold=True))
            await self._let_pass(record)
        elif isinstance(exc, Rejected | Unsupported | NotFound):
            await self._finish(record, ActionState.FAILED, message, {})
        elif isinstance(exc, SessionLost):
            await self._defer(record, _DeferError(message, uncertain=False))
        elif isinstance(exc, AuthError):
            # Not the action's fault: keep it queued (the request was refused, so nothing can
            # have applied) until the credentials are fixed; retried with backoff meanwhile.
            message = self._auth_message(backend, exc)
            if backend is not None and self._drain_end is not None:
                self._given_up.setdefault(backend, message)  # more tries in this run cannot help
            await self._defer(record, _DeferError(message, uncertain=False, backend=backend))
        else:
            # 429 is refused before doing anything; other transient errors may have applied.
            refused = isinstance(exc, ServerError) and exc.status_code == 429
            # One dropped connection is one request's bad luck; several in a row, a cloud down.
            streak = self._conn_streak.get(backend or "", 0)
            quiet = time.time() - self._answered_at.get(backend or "", 0.0) >= DOWN_QUIET
            down = (
                backend if isinstance(exc, ConnectionError_) and streak >= self.down_after and quiet else None
            )
            late = isinstance(exc, TimeoutError_)
            await self._defer(
                record, _DeferError(message, uncertain=not refused, backend=down, in_flight=late)
            )

    async def _let_pass(self, held: ActionRecord) -> None:
        """A task creation held by the cloud's quota lets the same device's later cancels and
        deletes through: they are what makes room for it, and behind it they would wait forever."""
        if held.action.type is not ActionType.CREATE_TASK:
            return
        passing = await self.store.claim_passing(
            self.owner,
            held.id,
            (ActionType.CANCEL_TASK, ActionType.DELETE_TASK),
            lease_seconds=self.lease_seconds,
        )
        for claimed in passing:
            await self._process(claimed)

    def _auth_message(self, backend: str | None, exc: AuthError) -> str:
        """The refusal, and the two ways to fix the secret (``fieldtui login`` or the variable)."""
        if backend is None:
            return str(exc)
        ways = f"`fieldtui login {backend}`"
        if self.profile is not None:
            ways += f" or set {env_var_name(self.profile, backend)}"
        return f"{exc}; the change stays queued: fix the secret with {ways}, then it syncs"

    async def _finish(
        self, record: ActionRecord, state: ActionState, message: str, result: dict[str, Any]
    ) -> None:
        if state is ActionState.DONE:
            new = await self.store.complete(self.owner, record.id, result)
        else:
            new = await self.store.settle_failed(self.owner, record.id, message, state=state)
        if new is None:
            log.warning("outbox: lost the lease on %s before recording %s", record.id, state.value)
            return
        self._note(new)
        if state is ActionState.DONE:
            # The cache shows what was applied before anyone hears of it: the next screen, the
            # next `status` and the next action's precondition start from the new value.
            await write_through(self.store, new)
        self.publish(new, ActionState.SENDING, message)

    async def _defer(self, record: ActionRecord, defer: _DeferError) -> None:
        if defer.wait is not None:
            delay = defer.wait
        elif defer.hold:
            delay = self.backoff.hold_delay(record.attempts, self._rng)
        else:
            delay = self.backoff.delay(record.attempts, self._rng)
        if self._drain_end is not None:
            # Inside a bounded drain: a transient failure is tried again soon, within the run;
            # what cannot succeed in this run (a held quota, a cloud given up) waits past it.
            later = defer.hold or (record.action.backend or "") in self._given_up
            if later:
                delay = max(delay, self._drain_end - time.time())
            elif defer.wait is None:
                delay = min(delay, DRAIN_BACKOFF_CAP * (0.5 + self._rng.random() / 2))
        elif defer.wait is None and not defer.hold and defer.backend is None and self._answering(record):
            # The background sync (the app) keeps ``outbox sync``'s pace: one request's 503 or
            # dropped connection, from a cloud that is answering others, is tried again within
            # seconds. A cloud that stopped answering altogether still backs off in full.
            delay = min(delay, DRAIN_BACKOFF_CAP * (0.5 + self._rng.random() / 2))
        if defer.backend is not None:
            self._down[defer.backend] = (time.time() + delay, defer.message)
        if defer.in_flight:
            # The request may still land: the check before any resend waits for its deadline.
            delay = max(delay, self._deadline_wait(record))
        new = await self.store.reschedule(
            self.owner, record.id, delay=delay, message=defer.message, uncertain=defer.uncertain
        )
        if new is None:
            log.warning("outbox: lost the lease on %s before rescheduling it", record.id)
            return
        self._note(new)
        self.publish(new, ActionState.SENDING, defer.message)

    def _answering(self, record: ActionRecord) -> bool:
        """Has the action's cloud answered this engine recently (``ANSWERED_RECENTLY``)?"""
        answered = self._answered_at.get(record.action.backend or "")
        return answered is not None and time.time() - answered < ANSWERED_RECENTLY

    def _note(self, record: ActionRecord) -> None:
        summary = self._summary
        if summary is None:
            return
        match record.state:
            case ActionState.DONE:
                summary.done.append(record)
            case ActionState.FAILED:
                summary.failed.append(record)
            case ActionState.CONFLICT:
                summary.conflicts.append(record)
            case _:
                summary.deferred.append(record)

    async def _resolve_backend(self, record: ActionRecord) -> tuple[str, ActionRecord]:
        """Find the one cloud that knows the device (the action was queued without one)."""
        action = record.action
        device = action.device
        if device is None:
            raise _SettledError(
                ActionState.FAILED, "a group action needs a backend: queue it again with --backend"
            )
        candidates: dict[str, Connector] = {}
        for name in self.connectors:
            try:
                connector = self._connector(name)
            except _DeferError:
                continue  # cannot be built (no secret): it cannot be asked either
            if supports(connector, action.type):
                candidates[name] = connector
        what = CAPABILITY[action.type].replace("_", " ")
        if not candidates:
            raise _SettledError(ActionState.FAILED, f"no configured cloud supports {what}")
        names = list(candidates)
        answers = await asyncio.gather(
            *(candidates[name].get_device(device) for name in names), return_exceptions=True
        )
        found: list[str] = []
        errors: list[tuple[str, BaseException]] = []
        for name, answer in zip(names, answers, strict=True):
            if isinstance(answer, Device):
                found.append(name)
            elif isinstance(answer, NotFound):
                continue
            elif isinstance(answer, BaseException):
                if not isinstance(answer, Exception):
                    raise answer
                errors.append((name, answer))
        if len(found) > 1:
            raise _SettledError(
                ActionState.FAILED,
                f"{device} is known to more than one cloud ({', '.join(found)}): queue it again "
                f"with --backend NAME",
            )
        if errors:
            name, error = errors[0]
            # One that did not answer may know the device too: ask again later.
            raise _DeferError(
                f"cannot tell which cloud knows {device} until {name} answers: {error}",
                uncertain=False,
            )
        if not found:
            raise _SettledError(ActionState.FAILED, f"no cloud knows {device} (asked: {', '.join(names)})")
        bound = await self.store.bind_backend(self.owner, record.id, found[0])
        if bound is None:
            raise _LeaseLostError
        return found[0], bound

    async def _send_checked(
        self, connector: Connector, record: ActionRecord, needs_check: bool
    ) -> _SettledError:
        action = record.action
        check_precondition = action.type is ActionType.MOVE_TO_GROUP and "group" in action.precondition
        check_update = action.type is ActionType.UPDATE_DEVICE and bool(action.precondition.get("fields"))
        if needs_check or check_precondition or check_update:
            async with self._gate(connector.name):
                already = await self._checked(connector, record)
            if already is not None:
                return already
        async with self._gate(connector.name):
            # Confirmed inside the gate, right before the request: an action that waited here
            # (or was paused here) past its lease must not send what another process took over.
            await self._confirm_lease(record)
            # And again in the transport, right before the bytes leave: a process stopped here,
            # between the confirmation and the request, must not send once it wakes (see
            # fieldtui.core.send_window). Half the lease: the request still lands before a
            # process that took the action over can have checked it.
            with send_window(self._confirmed_at[record.id] + self.lease_seconds / 2):
                result = await _apply(connector, action)
        return _SettledError(ActionState.DONE, "synced", result=result)

    async def _checked(self, connector: Connector, record: ActionRecord) -> _SettledError | None:
        """``_already_applied``, its reads asked again at once after one 503 or dropped connection
        (a read changes nothing). Not after a timeout (the cloud is slow: asking again at once
        only adds to its load) nor a 429 (it asked us to slow down)."""
        for attempt in range(CHECK_RETRIES + 1):
            try:
                return await self._already_applied(connector, record)
            except (ServerError, ConnectionError_) as exc:
                busy = isinstance(exc, ServerError) and exc.status_code == 429
                if attempt == CHECK_RETRIES or busy or isinstance(exc, TimeoutError_):
                    raise
                self._tell(connector.name, exc)
                await asyncio.sleep(0.05 + self._rng.random() * 0.15)
        return None  # pragma: no cover - the loop returns or raises

    async def _already_applied(self, connector: Connector, record: ActionRecord) -> _SettledError | None:
        """Return DONE when the action already took effect; raise a conflict; None to send."""
        action = record.action
        device = action.device or ""
        p = action.params
        done = "already applied"
        match action.type:
            case ActionType.SET_INSTALLATION_STATUS:
                history = await connector.installation_history(device)
                if history and history[0].status.value == p["status"]:
                    return _SettledError(ActionState.DONE, done)
            case ActionType.MOVE_TO_GROUP:
                current = await connector.get_group(device)
                if current == p["group"]:
                    return _SettledError(ActionState.DONE, done)
                if "group" in action.precondition and current != action.precondition["group"]:
                    raise _SettledError(
                        ActionState.CONFLICT,
                        f"{device} is now in group {current or '(none)'}, not "
                        f"{action.precondition['group'] or '(none)'} as when the move to "
                        f"{p['group']} was made: retry to move it anyway, or drop the move",
                    )
            case ActionType.CREATE_TASK:
                return await self._task_already_created(connector, record)
            case ActionType.CANCEL_TASK:
                try:
                    task = await connector.get_task(device, p["task_id"])
                except NotFound:
                    return None
                if task.state.finished:
                    return _SettledError(ActionState.DONE, f"task already {task.state.value}")
            case ActionType.SEND_COMMAND:
                return await self._command_already_sent(connector, record)
            case ActionType.CREATE_GROUP | ActionType.RENAME_GROUP | ActionType.DELETE_GROUP:
                ids = {g.id for g in await connector.list_groups()}
                if action.type is ActionType.CREATE_GROUP and p["group"] in ids:
                    return _SettledError(ActionState.DONE, done)
                if action.type is ActionType.RENAME_GROUP and p["new_group"] in ids and p["group"] not in ids:
                    return _SettledError(ActionState.DONE, done)
                if action.type is ActionType.DELETE_GROUP and p["group"] not in ids:
                    return _SettledError(ActionState.DONE, done)
            case ActionType.UPDATE_DEVICE:
                return await self._update_already_applied(connector, record)
            case ActionType.DELETE_TASK:
                pass  # idempotent: sending again does no harm (a deleted task is NotFound: done)
            case ActionType.CREATE_DEVICE | ActionType.DELETE_DEVICE | ActionType.SET_CLOUD_SETTING:
                found = await device_records.check(connector, action)
                if found is not None and not found.applied:
                    raise _SettledError(ActionState.CONFLICT, found.message)
                return None if found is None else _SettledError(ActionState.DONE, found.message)
        return None

    async def _command_already_sent(self, connector: Connector, record: ActionRecord) -> _SettledError | None:
        """Was this very command sent? By its correlation where the cloud echoes one (001's
        ``transactionId``; MQTT's command id, which every try of the action shares, so a device
        that finished it and no longer announces it drops the resend): nothing else can pass
        for it. Otherwise (an action queued before correlations) the same command with the same
        parameters, sent since our first attempt; either way never one that another action
        already claimed."""
        action = record.action
        device = action.device or ""
        p = action.params
        taken = await self.store.task_ids_claimed(connector.name, device, record.id)
        commands = [c for c in await connector.list_commands(device) if c.id not in taken]
        correlation = p.get("correlation")
        if isinstance(correlation, int) and connector.echoes_command_correlation:
            for command in commands:
                if connector.command_correlation(command) == correlation:
                    return _SettledError(
                        ActionState.DONE, "already applied", result={"created_id": command.id}
                    )
            return None
        since = (record.first_sent_at or action.created_at) - CLOCK_SKEW
        asked = dict(p.get("params") or {})
        for command in commands:
            if (
                command.name.strip() == str(p["name"]).strip()
                and _same_values(command.parameters, asked)
                and command.timestamp is not None
                and command.timestamp >= since
            ):
                return _SettledError(ActionState.DONE, "already applied", result={"created_id": command.id})
        return None

    async def _update_already_applied(
        self, connector: Connector, record: ActionRecord
    ) -> _SettledError | None:
        """A device update against what the cloud shows now: every field already at its target
        is done; a field that someone else changed since the technician saw it is a conflict
        (never overwritten); otherwise send. A field the cloud does not show cannot be checked."""
        action = record.action
        device = action.device or ""
        fields: Mapping[str, Any] = action.params.get("fields") or {}
        seen = action.precondition.get("fields")
        seen = seen if isinstance(seen, Mapping) else {}
        shown = shown_fields(await connector.get_device(device))
        if any(key not in shown for key in fields):
            return None
        changed = [
            key
            for key, target in fields.items()
            if not _same_value(shown[key], target) and key in seen and not _same_value(shown[key], seen[key])
        ]
        if changed:
            words = ", ".join(
                f"{key} is now {_comparable(shown[key]) or '(empty)'}, not "
                f"{_comparable(seen[key]) or '(empty)'} as when the change was made"
                for key in changed
            )
            raise _SettledError(
                ActionState.CONFLICT,
                f"{device} was changed meanwhile: {words}: retry to change it anyway, or drop the change",
            )
        if all(_same_value(shown[key], target) for key, target in fields.items()):
            return _SettledError(ActionState.DONE, "already applied")
        return None

    async def _task_already_created(self, connector: Connector, record: ActionRecord) -> _SettledError | None:
        action = record.action
        device = action.device or ""
        since = (record.first_sent_at or action.created_at) - CLOCK_SKEW
        taken = await self.store.task_ids_claimed(connector.name, device, record.id)
        asked = dict(action.params.get("params") or {})
        asked_type = str(action.params["type"]).strip().lower()
        for task in await connector.list_tasks(device):
            # The type as the cloud shows it may differ in case (DeviceHQ upper-cases it on the wire).
            if task.id in taken or task.type.strip().lower() != asked_type or not _same_params(task, asked):
                continue
            if task.created is not None and task.created >= since:
                return _SettledError(ActionState.DONE, "already applied", result={"created_id": task.id})
        return None


def _same_params(task: Task, asked: Mapping[str, Any]) -> bool:
    """False when the task shows a parameter with another value than the action asked for.

    Without this an unrelated task of the same type created a moment earlier (by another tool,
    or the device's own schedule) would pass for ours, and ours would never be sent.
    """
    attributes = task.raw.get("attributes")
    shown = {**task.raw, **(attributes if isinstance(attributes, Mapping) else {})}
    return _same_values(shown, asked)


def _same_values(shown: Mapping[str, Any], asked: Mapping[str, Any]) -> bool:
    """False when ``shown`` has one of ``asked``'s keys with another value (compared as shown)."""
    return all(_same_value(shown[key], value) for key, value in asked.items() if key in shown)


def _comparable(value: Any) -> str:
    """A value in the form clouds show it: a list as comma-separated text (DeviceHQ queues
    ``config_ids`` as a list and shows them as ``"a,b"``), nothing as empty text, a reference
    object (a fleet cohort ``{"id", "name", "slug"}``) by its slug or id, else its name
    (Memfault's ``hardware_version`` ``{"name"}``), a place as ``lat,lon``, anything else as
    its text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return ",".join(_comparable(item) for item in value)
    if isinstance(value, Mapping):
        if "lat" in value and "lon" in value:
            return f"{_comparable(value['lat'])},{_comparable(value['lon'])}"
        for key in ("slug", "id", "name"):
            if value.get(key) is not None:
                return _comparable(value[key])
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _same_value(shown: Any, asked: Any) -> bool:
    return _comparable(shown) == _comparable(asked)


def shown_fields(device: Device) -> dict[str, Any]:
    """The device's fields as its cloud shows them (top level, and JSON:API ``attributes``):
    what a device update is compared with, before it is queued (the precondition) and before
    it is sent again."""
    raw = device.raw
    attributes = raw.get("attributes")
    return {**raw, **(attributes if isinstance(attributes, Mapping) else {})}


_OPEN = (ActionState.QUEUED, ActionState.SENDING, ActionState.FAILED, ActionState.CONFLICT)


async def _apply(connector: Connector, action: Action) -> dict[str, Any]:
    """Send ``action``; returns what to remember about the result (a created task's id)."""
    device = action.device or ""
    p = action.params
    match action.type:
        case ActionType.SET_INSTALLATION_STATUS:
            await connector.set_installation_status(device, InstallationStatus(p["status"]))
        case ActionType.MOVE_TO_GROUP:
            await connector.move_to_group(device, p["group"])
        case ActionType.CREATE_TASK:
            task = await connector.create_task(device, p["type"], dict(p.get("params") or {}))
            return {"created_id": task.id}
        case ActionType.CANCEL_TASK:
            await connector.cancel_task(device, p["task_id"])
        case ActionType.DELETE_TASK:
            try:
                await connector.delete_task(device, p["task_id"])
            except NotFound:
                return {"note": "task was already gone"}
        case ActionType.UPDATE_DEVICE:
            await connector.update_device(device, dict(p["fields"]))
        case ActionType.SEND_COMMAND:
            correlation = p.get("correlation")
            command = await connector.send_command(
                device,
                p["name"],
                dict(p.get("params") or {}),
                correlation=correlation if isinstance(correlation, int) else None,
            )
            return {"created_id": command.id}
        case ActionType.CREATE_GROUP:
            await connector.create_group(p["group"], p.get("description"))
        case ActionType.RENAME_GROUP:
            await connector.rename_group(p["group"], p["new_group"])
        case ActionType.DELETE_GROUP:
            try:
                await connector.delete_group(p["group"])
            except NotFound:
                return {"note": "group was already gone"}
        case ActionType.CREATE_DEVICE | ActionType.DELETE_DEVICE | ActionType.SET_CLOUD_SETTING:
            return await device_records.apply(connector, action)
    return {}
