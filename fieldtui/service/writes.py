"""Every change a technician makes, as the service exposes it: outbox first, then the sync engine.

Each call builds an :class:`Action` with the precondition the technician saw, commits it to
the outbox (on disk before anything is sent, online or not), wakes the engine and returns the
queued record. ``first_outcome`` waits a short while for the first attempt, so a caller can say
"synced now" or "queued because ...".
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fieldtui.config import BackendConfig, LoadedConfig
from fieldtui.connectors.base import Connector
from fieldtui.connectors.registry import build_connector
from fieldtui.core.actions import Action, ActionState, ActionType
from fieldtui.core.errors import ConfigError, Rejected, Unsupported
from fieldtui.core.ids import valid_id, valid_name
from fieldtui.core.models import InstallationStatus
from fieldtui.secrets import get_secret
from fieldtui.service.store import ActionRecord, OutboxStore
from fieldtui.service.sync import CAPABILITY, Backoff, SyncEngine, shown_fields, supports

#: Command correlations are drawn from 1 .. 2**31 - 1: a number, as document 001 shows it.
CORRELATION_RANGE = 2**31 - 1

log = logging.getLogger(__name__)


class ReadOnlyError(ConfigError):
    """A change was asked for under ``--read-only`` (a usage error: exit code 2)."""


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """Where an action stands after its first attempt (or after waiting for one)."""

    record: ActionRecord
    #: "synced", "queued", "failed", "conflict", "cancelled" or "sending".
    status: str
    #: Why, in words: the server's refusal, "offline (--offline)", "waits for ...", ...
    reason: str

    @property
    def synced(self) -> bool:
        return self.status == "synced"

    def to_json(self) -> dict[str, Any]:
        return {"action": self.record.to_json(), "status": self.status, "reason": self.reason}


class OutboxWrites:
    """The write half of the service. ``connectors`` maps backend name to connector (may be lazy)."""

    def __init__(
        self,
        store: OutboxStore,
        engine: SyncEngine | None,
        connectors: Mapping[str, Connector],
        *,
        read_only: bool = False,
        offline: bool = False,
    ) -> None:
        self.store = store
        self.engine = engine
        self.connectors = connectors
        self.read_only = read_only
        self.offline = offline

    # -- device actions ----------------------------------------------------------------------
    async def set_installation_status(
        self,
        device: str,
        status: InstallationStatus | str,
        *,
        backend: str | None = None,
        precondition: Mapping[str, Any] | None = None,
    ) -> ActionRecord:
        value = InstallationStatus(status).value
        return await self._submit(
            ActionType.SET_INSTALLATION_STATUS, device, backend, {"status": value}, precondition
        )

    async def move_to_group(
        self,
        device: str,
        group: str,
        *,
        backend: str | None = None,
        precondition: Mapping[str, Any] | None = None,
    ) -> ActionRecord:
        """``precondition``: ``{"group": ...}`` as the technician saw it (else from the cache)."""
        # The group travels in a request body (DeviceHQ's are free text), not in a path.
        group = valid_name(group, what="group")
        return await self._submit(ActionType.MOVE_TO_GROUP, device, backend, {"group": group}, precondition)

    async def create_task(
        self,
        device: str,
        task_type: str,
        params: Mapping[str, Any] | None = None,
        *,
        backend: str | None = None,
    ) -> ActionRecord:
        return await self._submit(
            ActionType.CREATE_TASK, device, backend, {"type": task_type, "params": dict(params or {})}, None
        )

    async def cancel_task(self, device: str, task_id: str, *, backend: str | None = None) -> ActionRecord:
        task_id = valid_id(task_id, what="task id")
        return await self._submit(ActionType.CANCEL_TASK, device, backend, {"task_id": task_id}, None)

    async def delete_task(self, device: str, task_id: str, *, backend: str | None = None) -> ActionRecord:
        task_id = valid_id(task_id, what="task id")
        return await self._submit(ActionType.DELETE_TASK, device, backend, {"task_id": task_id}, None)

    async def update_device(
        self,
        device: str,
        fields: Mapping[str, Any],
        *,
        backend: str | None = None,
        precondition: Mapping[str, Any] | None = None,
    ) -> ActionRecord:
        """``precondition``: ``{"fields": {name: value}}`` as the technician saw them (else from
        the cache). A field someone else changed meanwhile is then a conflict, not overwritten."""
        return await self._submit(
            ActionType.UPDATE_DEVICE, device, backend, {"fields": dict(fields)}, precondition
        )

    async def send_command(
        self, device: str, name: str, params: Mapping[str, Any] | None = None, *, backend: str | None = None
    ) -> ActionRecord:
        """The command gets its correlation now, once: every retry sends the same one, so the
        check after a lost answer finds this very command (001 echoes it as ``transactionId``)."""
        correlation = secrets.randbelow(CORRELATION_RANGE) + 1
        return await self._submit(
            ActionType.SEND_COMMAND,
            device,
            backend,
            {"name": name, "params": dict(params or {}), "correlation": correlation},
            None,
        )

    # -- device records (always for one named backend) ------------------------------------------
    async def create_device(self, backend: str, device: str, fields: Mapping[str, Any]) -> ActionRecord:
        """Create (fleet) or register (DeviceHQ) ``device`` with the cloud's own ``fields``
        (fleet ``owner_ref``, ``hardware_version``; DeviceHQ ``uuid``). Fields the cloud would
        refuse unasked (one missing, a malformed uuid) are a usage error, never queued."""
        self._check_backend(backend, ActionType.CREATE_DEVICE)
        try:
            self.connectors[backend].check_new_device(valid_id(device), dict(fields))
        except Rejected as refused:
            raise ConfigError(str(refused), hint="nothing was queued") from None
        return await self._submit(ActionType.CREATE_DEVICE, device, backend, {"fields": dict(fields)}, {})

    async def delete_device(self, backend: str, device: str) -> ActionRecord:
        return await self._submit(ActionType.DELETE_DEVICE, device, backend, {}, {})

    async def set_cloud_setting(
        self, device: str, prop: str, value: Any, *, backend: str | None = None
    ) -> ActionRecord:
        """One MQTT cloud setting (document 003: ``{"property", "value"}``)."""
        prop = valid_name(prop, what="setting").strip()
        return await self._submit(
            ActionType.SET_CLOUD_SETTING, device, backend, {"property": prop, "value": value}, {}
        )

    # -- group actions (always for one named backend) -------------------------------------------
    async def create_group(self, backend: str, group: str, description: str | None = None) -> ActionRecord:
        group = valid_id(group, what="group id")
        return await self._submit(
            ActionType.CREATE_GROUP, None, backend, {"group": group, "description": description}, None
        )

    async def rename_group(self, backend: str, group: str, new_group: str) -> ActionRecord:
        group, new_group = valid_id(group, what="group id"), valid_id(new_group, what="group id")
        return await self._submit(
            ActionType.RENAME_GROUP, None, backend, {"group": group, "new_group": new_group}, None
        )

    async def delete_group(self, backend: str, group: str) -> ActionRecord:
        group = valid_id(group, what="group id")
        return await self._submit(ActionType.DELETE_GROUP, None, backend, {"group": group}, None)

    # -- outcome -------------------------------------------------------------------------------
    async def first_outcome(self, record: ActionRecord, timeout: float = 10.0) -> WriteOutcome:
        """Wait up to ``timeout`` for the first attempt; say where the action stands."""
        if self.offline or self.engine is None:
            current = await self.store.get(record.id) or record
            if current.state is ActionState.QUEUED:
                return WriteOutcome(
                    current, "queued", "offline (--offline): it syncs on the next run without it"
                )
            return self._describe(current)
        waiting = asyncio.ensure_future(self.engine.wait_for_outcome(record.id, timeout))
        await asyncio.sleep(0)  # subscribed before looking, so no outcome slips between
        current = await self.store.get(record.id) or record
        if _attempt_ended(current):
            waiting.cancel()
            return self._describe(current)
        event = await waiting
        if event is not None:
            return self._describe(event.record)
        current = await self.store.get(record.id) or record
        if _attempt_ended(current):
            return self._describe(current)
        return await self._why_waiting(current)

    def _describe(self, record: ActionRecord) -> WriteOutcome:
        match record.state:
            case ActionState.DONE:
                note = record.result.get("note")
                return WriteOutcome(record, "synced", str(note) if note else "synced")
            case ActionState.QUEUED:
                when = record.next_attempt_at.astimezone().strftime("%H:%M:%S")
                return WriteOutcome(
                    record, "queued", f"{record.last_error or 'waiting'}; next attempt at {when}"
                )
            case ActionState.SENDING:
                return WriteOutcome(record, "sending", "still being sent")
            case state:
                return WriteOutcome(record, state.value, record.last_error or state.value)

    async def _why_waiting(self, record: ActionRecord) -> WriteOutcome:
        earlier = await self.store.held_by(record.id)
        if earlier:
            first = earlier[0]
            return WriteOutcome(
                record,
                "queued",
                f"held by an earlier action {first.id[:8]} ({first.describe()}, {first.state.value})",
            )
        if self.engine is not None and record.action.backend is not None:
            down = self.engine.unreachable_backends().get(record.action.backend)
            if down is not None:
                return WriteOutcome(record, "queued", f"backend unreachable: {down}")
        if record.state is ActionState.SENDING:
            return WriteOutcome(record, "sending", "no answer yet: it is checked before any resend")
        return WriteOutcome(record, "queued", record.last_error or "not sent yet")

    # -- building actions ----------------------------------------------------------------------
    async def _submit(
        self,
        action_type: ActionType,
        device: str | None,
        backend: str | None,
        params: dict[str, Any],
        precondition: Mapping[str, Any] | None,
    ) -> ActionRecord:
        if self.read_only:
            raise ReadOnlyError(
                "read-only mode: changes are refused", hint="run without --read-only to queue this change"
            )
        if device is not None:
            # Refused before it reaches the cache lookup, the outbox or a URL.
            device = valid_id(device)
        if backend is not None:
            self._check_backend(backend, action_type)
        elif device is not None:
            backend = await self._backend_from_cache(device, action_type)
        seen = (
            dict(precondition)
            if precondition is not None
            else await self._seen(action_type, device, backend, params)
        )
        action = Action(
            type=action_type,
            device=device,
            backend=backend,
            params=params,
            precondition=seen,
            created_at=datetime.now(UTC),
        )
        if precondition is None:
            action = await self._after_pending(action)
        record = await self.store.enqueue(action)
        if self.engine is not None:
            self.engine.publish(record, None, "queued")
            if not self.offline:
                self.engine.wake()
        return record

    def _check_backend(self, backend: str, action_type: ActionType) -> None:
        if backend not in self.connectors:
            names = ", ".join(sorted(self.connectors)) or "none configured"
            raise ConfigError(f"no backend named {backend!r} in this profile; allowed: {names}")
        connector = self.connectors[backend]
        if not supports(connector, action_type):
            reason = connector.capabilities.why_not(CAPABILITY[action_type], connector.kind.value)
            raise Unsupported(reason or "not supported", backend=backend)

    async def _backend_from_cache(self, device: str, action_type: ActionType) -> str | None:
        """The one configured, capable backend the cache knows ``device`` on (None: resolve later)."""
        cached = await self.store.cached_device(device)
        names = sorted(
            {
                c.backend
                for c in cached
                if c.backend in self.connectors and supports(self.connectors[c.backend], action_type)
            }
        )
        if len(names) > 1:
            raise ConfigError(
                f"{device} is known to more than one cloud ({', '.join(names)})",
                hint="pass --backend NAME",
            )
        return names[0] if names else None

    async def _seen(
        self, action_type: ActionType, device: str | None, backend: str | None, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """What the cache last showed of ``device`` (the precondition, when none was given)."""
        if device is None or backend is None:
            return {}
        for cached in await self.store.cached_device(device):
            if cached.backend != backend:
                continue
            if action_type is ActionType.UPDATE_DEVICE:
                shown = shown_fields(cached.value)
                fields = params.get("fields") or {}
                return {"fields": {key: shown[key] for key in fields if key in shown}}
            if action_type is ActionType.MOVE_TO_GROUP:
                return {"group": cached.value.group}
            if action_type is ActionType.SET_INSTALLATION_STATUS and cached.value.installation_status:
                return {"status": cached.value.installation_status.value}
        return {}

    async def _after_pending(self, action: Action) -> Action:
        """Earlier queued changes of the same device are what the technician "sees" next."""
        if action.type not in (ActionType.MOVE_TO_GROUP, ActionType.SET_INSTALLATION_STATUS):
            return action
        key = "group" if action.type is ActionType.MOVE_TO_GROUP else "status"
        pending = [
            r
            for r in await self.store.open_before(action.queue_key)
            if r.action.type is action.type and r.state is not ActionState.CANCELLED
        ]
        if not pending:
            return action
        seen = dict(action.precondition)
        seen[key] = pending[-1].action.params[key]
        return action.model_copy(update={"precondition": seen})


def _attempt_ended(record: ActionRecord) -> bool:
    if record.state in (ActionState.DONE, ActionState.FAILED, ActionState.CONFLICT, ActionState.CANCELLED):
        return True
    return record.state is ActionState.QUEUED and record.attempts > 0


def _builder(profile: str, name: str, config: BackendConfig) -> Callable[[], Connector]:
    def build() -> Connector:
        return build_connector(name, config, get_secret(profile, name), profile=profile)

    return build


class LazyConnectors(Mapping[str, Connector]):
    """Backend name -> connector, each built (module imported, secret read) on first use."""

    def __init__(self, builders: Mapping[str, Callable[[], Connector]]) -> None:
        self._builders = dict(builders)
        self._built: dict[str, Connector] = {}

    def __getitem__(self, name: str) -> Connector:
        connector = self._built.get(name)
        if connector is None:
            connector = self._built[name] = self._builders[name]()
        return connector

    def __contains__(self, name: object) -> bool:
        return name in self._builders  # without building it (Mapping's default would)

    def __iter__(self) -> Iterator[str]:
        return iter(self._builders)

    def __len__(self) -> int:
        return len(self._builders)

    async def aclose(self) -> None:
        built, self._built = list(self._built.values()), {}
        for connector in built:
            try:
                await connector.aclose()
            except Exception:  # closing one must not keep the others open
                log.warning("closing %s failed", connector.name, exc_info=True)


@dataclass(slots=True)
class Outbox:
    """The outbox, its sync engine and the write API, opened together for one profile."""

    store: OutboxStore
    engine: SyncEngine
    writes: OutboxWrites
    connectors: Mapping[str, Connector]


@asynccontextmanager
async def open_outbox(
    loaded: LoadedConfig,
    *,
    offline: bool = False,
    read_only: bool = False,
    path: Path | None = None,
    connectors: Mapping[str, Connector] | None = None,
    concurrency: int = 8,
    backoff: Backoff | None = None,
) -> AsyncIterator[Outbox]:
    """Open the outbox of ``loaded``'s profile (default path: the data dir) for one run.

    Connectors are built lazily from the config unless given; those built here are closed on exit.
    """
    own = connectors is None
    chosen: Mapping[str, Connector]
    if connectors is None:
        chosen = LazyConnectors(
            {name: _builder(loaded.profile_name, name, cfg) for name, cfg in loaded.backends.items()}
        )
    else:
        chosen = connectors
    store = await OutboxStore.open(path)
    try:
        engine = SyncEngine(
            store,
            chosen,
            concurrency=concurrency,
            backoff=backoff,
            profile=loaded.profile_name,
            request_timeouts={name: cfg.timeout for name, cfg in loaded.backends.items()},
        )
        writes = OutboxWrites(store, engine, chosen, read_only=read_only, offline=offline)
        yield Outbox(store=store, engine=engine, writes=writes, connectors=chosen)
    finally:
        try:
            if own and isinstance(chosen, LazyConnectors):
                await chosen.aclose()
        finally:
            await store.close()
