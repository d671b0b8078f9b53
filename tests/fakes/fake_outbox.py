"""The fake's write path: an in-memory outbox and the test-controlled cloud that applies it.

Every write is checked and queued as the real outbox does (ids refused before queuing, a backend
that lacks the capability refused with its reason, the precondition taken from what the cloud
showed), then waits: nothing is sent until the test says what the cloud does with it
(:meth:`FakeOutbox.apply_pending`, :meth:`~FakeOutbox.fail`, :meth:`~FakeOutbox.conflict`,
:meth:`~FakeOutbox.defer`). Each change of state is an :class:`ActionEvent` to the ``on_change``
listeners, as the sync engine publishes them.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from fakes.fake_connectivity import FakeConnectivity
from fakes.fleet_data import THINGS_CLIENT, FleetData
from fieldtui.core.actions import Action, ActionState, ActionType
from fieldtui.core.capabilities import Capabilities
from fieldtui.core.errors import ConfigError, Unsupported
from fieldtui.core.ids import devicehq_uuid, valid_id, valid_name
from fieldtui.core.models import (
    BackendKind,
    Device,
    Group,
    HistoryEntry,
    HistoryKind,
    InstallationStatus,
    Task,
    TaskState,
)
from fieldtui.service.api import (
    ActionEvent,
    ActionRecord,
    BackendInfo,
    DamagedRow,
    Loss,
    OutboxCounts,
    StoreError,
    SyncSummary,
    Unsubscribe,
    WriteOutcome,
)
from fieldtui.service.session import outcome_summary
from fieldtui.service.sync import CAPABILITY
from fieldtui.service.write_through import applied_to
from fieldtui.service.writes import ReadOnlyError

_OPEN = (ActionState.QUEUED, ActionState.SENDING, ActionState.FAILED, ActionState.CONFLICT)


def _supports(capabilities: Capabilities, kind: BackendKind, action_type: ActionType) -> bool:
    return capabilities.why_not(CAPABILITY[action_type], kind.value) is None


class FakeOutbox:
    """The port's ``writes`` and ``outbox`` in one object (as the session's ``AppWrites`` is)."""

    def __init__(
        self,
        cloud: FleetData,
        backends: Mapping[str, BackendInfo],
        connectivity: FakeConnectivity,
        now: Callable[[], datetime],
        *,
        read_only: bool = False,
        offline: bool = False,
        auto_apply: bool = False,
    ) -> None:
        self._cloud = cloud
        self._backends = backends
        self._connectivity = connectivity
        self._now = now
        self._read_only = read_only
        self._offline = offline
        #: True: ``first_outcome`` applies the action (a cloud that takes everything at once).
        self.auto_apply = auto_apply
        self._records: dict[str, ActionRecord] = {}
        self._seq = itertools.count(1)
        # 32 hex digits as the real ids; the first 8 (what screens show) differ from action to action.
        self._ids = (f"{n:08x}{0:024x}" for n in itertools.count(0xF00D0001))
        self._listeners: list[Callable[[ActionEvent], None]] = []
        self._last_sync: datetime | None = None
        self._last_sync_error: str | None = None
        #: action id -> whether the cloud shows it applied (``check_applied``; absent: cannot tell).
        self.took_effect: dict[str, bool] = {}
        #: Called with each applied record (the service writes it through to its read cache).
        self.applied: Callable[[ActionRecord], None] = lambda record: None

    # -- Writes ---------------------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        return self._read_only

    async def set_installation_status(
        self,
        device: str,
        status: InstallationStatus | str,
        *,
        backend: str | None = None,
        precondition: dict[str, Any] | None = None,
    ) -> ActionRecord:
        value = InstallationStatus(status).value
        return self._submit(
            ActionType.SET_INSTALLATION_STATUS, device, backend, {"status": value}, precondition
        )

    async def move_to_group(
        self,
        device: str,
        group: str,
        *,
        backend: str | None = None,
        precondition: dict[str, Any] | None = None,
    ) -> ActionRecord:
        group = valid_name(group, what="group")
        return self._submit(ActionType.MOVE_TO_GROUP, device, backend, {"group": group}, precondition)

    async def create_task(
        self, device: str, task_type: str, params: dict[str, Any] | None = None, *, backend: str | None = None
    ) -> ActionRecord:
        params = {"type": task_type, "params": dict(params or {})}
        return self._submit(ActionType.CREATE_TASK, device, backend, params, None)

    async def cancel_task(self, device: str, task_id: str, *, backend: str | None = None) -> ActionRecord:
        task_id = valid_id(task_id, what="task id")
        return self._submit(ActionType.CANCEL_TASK, device, backend, {"task_id": task_id}, None)

    async def delete_task(self, device: str, task_id: str, *, backend: str | None = None) -> ActionRecord:
        task_id = valid_id(task_id, what="task id")
        return self._submit(ActionType.DELETE_TASK, device, backend, {"task_id": task_id}, None)

    async def update_device(
        self,
        device: str,
        fields: dict[str, Any],
        *,
        backend: str | None = None,
        precondition: dict[str, Any] | None = None,
    ) -> ActionRecord:
        return self._submit(ActionType.UPDATE_DEVICE, device, backend, {"fields": dict(fields)}, precondition)

    async def send_command(
        self, device: str, name: str, params: dict[str, Any] | None = None, *, backend: str | None = None
    ) -> ActionRecord:
        correlation = next(self._seq)  # fixed per action, as the real one's random correlation
        params_ = {"name": name, "params": dict(params or {}), "correlation": correlation}
        return self._submit(ActionType.SEND_COMMAND, device, backend, params_, None)

    async def create_device(self, backend: str, device: str, fields: dict[str, Any]) -> ActionRecord:
        """Refuses what the real connectors refuse unasked: fleet needs owner_ref and
        hardware_version, DeviceHQ a 32-hex uuid."""
        self._check_backend(backend, ActionType.CREATE_DEVICE)
        kind = self._backends[backend].kind
        if kind is BackendKind.FLEET:
            missing = [k for k in ("owner_ref", "hardware_version") if not str(fields.get(k) or "").strip()]
            if missing:
                raise ConfigError(
                    f"{backend}: a device needs {', '.join(missing)}", hint="nothing was queued"
                )
        if kind is BackendKind.DEVICEHQ and devicehq_uuid(str(fields.get("uuid") or "")) is None:
            raise ConfigError(f"{backend}: registering needs the device's uuid", hint="nothing was queued")
        return self._submit(ActionType.CREATE_DEVICE, device, backend, {"fields": dict(fields)}, {})

    async def delete_device(self, backend: str, device: str) -> ActionRecord:
        return self._submit(ActionType.DELETE_DEVICE, device, backend, {}, {})

    async def set_cloud_setting(
        self, device: str, prop: str, value: Any, *, backend: str | None = None
    ) -> ActionRecord:
        prop = valid_name(prop, what="setting").strip()
        params = {"property": prop, "value": value}
        return self._submit(ActionType.SET_CLOUD_SETTING, device, backend, params, {})

    async def create_group(self, backend: str, group: str, description: str | None = None) -> ActionRecord:
        group = valid_id(group, what="group id")
        params = {"group": group, "description": description}
        return self._submit(ActionType.CREATE_GROUP, None, backend, params, None)

    async def rename_group(self, backend: str, group: str, new_group: str) -> ActionRecord:
        group, new_group = valid_id(group, what="group id"), valid_id(new_group, what="group id")
        params = {"group": group, "new_group": new_group}
        return self._submit(ActionType.RENAME_GROUP, None, backend, params, None)

    async def delete_group(self, backend: str, group: str) -> ActionRecord:
        group = valid_id(group, what="group id")
        return self._submit(ActionType.DELETE_GROUP, None, backend, {"group": group}, None)

    async def first_outcome(self, record: ActionRecord, timeout: float = 10.0) -> WriteOutcome:
        """Where the action stands now (no waiting: the test decides what the cloud does).
        With ``auto_apply`` the action and those before it on its device are applied first."""
        if self._offline:
            current = self._records[record.id]
            if current.state is ActionState.QUEUED:
                return WriteOutcome(
                    current, "queued", "offline (--offline): it syncs on the next run without it"
                )
            return self._describe(current)
        if self.auto_apply:
            self.apply_pending(only=record.queue_key)
        return self._describe(self._records[record.id])

    # -- Outbox ---------------------------------------------------------------------------
    async def counts(self) -> OutboxCounts:
        states = [r.state for r in self._records.values()]
        return OutboxCounts(
            queued=states.count(ActionState.QUEUED),
            sending=states.count(ActionState.SENDING),
            failed=states.count(ActionState.FAILED),
            conflict=states.count(ActionState.CONFLICT),
            done=states.count(ActionState.DONE),
            cancelled=states.count(ActionState.CANCELLED),
            last_sync=self._last_sync,
            last_sync_error=self._last_sync_error,
        )

    async def list_actions(self) -> list[ActionRecord]:
        return self.records()

    async def pending_for(self, device_id: str) -> list[ActionRecord]:
        return self.open_for(device_id)

    async def retry(self, action_id: str) -> ActionRecord:
        record = self._get(action_id)
        if record.state not in (ActionState.FAILED, ActionState.CONFLICT, ActionState.QUEUED):
            raise StoreError(
                f"action {record.id} is {record.state.value}: only failed, conflicting or queued actions can be retried"
            )
        update: dict[str, Any] = {}
        if record.state is ActionState.CONFLICT:
            update["action"] = record.action.model_copy(update={"precondition": {}})
        return self._move(record, ActionState.QUEUED, "retry asked", next_attempt_at=self._now(), **update)

    async def drop(self, action_id: str) -> ActionRecord:
        return self._drop(action_id, "dropped")

    async def resolve_conflict(self, action_id: str, *, apply: bool) -> ActionRecord:
        if apply:
            record = self._get(action_id)
            action = record.action.model_copy(update={"precondition": {}})
            return self._move(record, ActionState.QUEUED, "apply anyway", action=action)
        return self._drop(action_id, "discarded")

    async def sync_now(self) -> str:
        """The fake cloud takes everything queued on a reachable backend now."""
        queued = [r for r in self._records.values() if r.state is ActionState.QUEUED]
        if self._offline:
            return f"{len(queued)} queued; nothing is sent in this session"
        self.apply_pending()
        return outcome_summary([self._records[r.id].state.value for r in queued])

    async def action(self, action_id: str) -> ActionRecord:
        return self._get(action_id)

    async def list_recent(self, finished: int = 20) -> list[ActionRecord]:
        records = self.records()
        ended = [r for r in records if r.state not in _OPEN][-finished:] if finished else []
        return [r for r in records if r.state in _OPEN or r in ended]

    async def damaged(self) -> list[DamagedRow]:
        return []  # an in-memory outbox has no unreadable rows

    async def lost_actions(self) -> list[Loss]:
        return []

    async def drain(self, timeout: float | None = None) -> SyncSummary:
        """The fake cloud takes everything queued on a reachable backend now, as one drain."""
        if self._offline:
            raise StoreError("only a session opened with SyncMode.DRAIN drains the outbox (else: sync now)")
        summary = SyncSummary(done=self.apply_pending())
        open_now = [r for r in self.records() if r.state in _OPEN]
        summary.remaining = {s: n for s in _OPEN if (n := sum(r.state is s for r in open_now))}
        summary.failed = [r for r in open_now if r.state is ActionState.FAILED]
        summary.conflicts = [r for r in open_now if r.state is ActionState.CONFLICT]
        summary.left = [r for r in open_now if r.state in (ActionState.QUEUED, ActionState.SENDING)]
        return summary

    async def check_applied(self, action_id: str) -> bool | None:
        """What the test said the cloud shows (:attr:`took_effect`) for an action whose last
        attempt got no answer; False for one never sent or refused."""
        record = self._get(action_id)
        if record.state is ActionState.DONE:
            return True
        if record.attempts == 0 or not (record.uncertain or record.state is ActionState.SENDING):
            return False
        return None if self._offline else self.took_effect.get(record.id)

    def on_change(self, callback: Callable[[ActionEvent], None]) -> Unsubscribe:
        self._listeners.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return unsubscribe

    # -- for the fake service and for tests -------------------------------------------------
    def records(self) -> list[ActionRecord]:
        """Every action, in queue order."""
        return sorted(self._records.values(), key=lambda r: r.seq)

    def open_for(self, device_id: str) -> list[ActionRecord]:
        """The device's open actions, oldest first (what its view shows as pending)."""
        key = f"device:{device_id}"
        return [r for r in self.records() if r.queue_key == key and r.state in _OPEN]

    @property
    def listeners(self) -> int:
        """How many ``on_change`` listeners are subscribed (a screen that closed leaves none)."""
        return len(self._listeners)

    # -- the cloud, as the test drives it ---------------------------------------------------
    def apply_pending(self, *, only: str | None = None) -> list[ActionRecord]:
        """The cloud takes every queued action, in order, on reachable backends: each is done,
        its device changed (written through), and an event sent. An action behind a failed or
        conflicting one on its device waits, as the real queue does. ``only``: one queue key."""
        applied: list[ActionRecord] = []
        blocked: set[str] = set()
        for record in self.records():
            key = record.queue_key
            if only is not None and key != only:
                continue
            if record.state in (ActionState.FAILED, ActionState.CONFLICT):
                blocked.add(key)
                continue
            if record.state not in (ActionState.QUEUED, ActionState.SENDING) or key in blocked:
                continue
            backend = record.action.backend
            if backend is None:
                backend = self._resolve(record.action.device, record.action.type)
            if backend is None or not self._connectivity.reachable(backend):
                why = "backend unreachable" if backend is not None else "no cloud holds the device"
                self._last_sync_error = why
                self._records[record.id] = record.model_copy(update={"last_error": why})
                blocked.add(key)
                continue
            action = record.action.model_copy(update={"backend": backend})
            result = self._apply(action)
            done = self._move(
                record,
                ActionState.DONE,
                "synced",
                action=action,
                attempts=record.attempts + 1,
                first_sent_at=record.first_sent_at or self._now(),
                done_at=self._now(),
                last_error=None,
                result=result,
            )
            self.applied(done)
            applied.append(done)
            self._last_sync = self._now()
            self._last_sync_error = None
        return applied

    def sending(self, action_id: str) -> ActionRecord:
        """The action's first attempt has started (no answer yet)."""
        record = self._get(action_id)
        return self._move(record, ActionState.SENDING, "sending", first_sent_at=self._now())

    def fail(self, action_id: str, words: str) -> ActionRecord:
        """The cloud refuses the action for good, saying ``words``."""
        return self._end(action_id, ActionState.FAILED, words)

    def conflict(self, action_id: str, words: str = "the device changed since you saw it") -> ActionRecord:
        """The device changed under the technician: the action waits for their decision."""
        return self._end(action_id, ActionState.CONFLICT, words)

    def defer(self, action_id: str, words: str = "no answer in time") -> ActionRecord:
        """A transient failure: the action is queued again with ``words`` as why it waits."""
        record = self._get(action_id)
        self._last_sync_error = words
        return self._move(
            record,
            ActionState.QUEUED,
            words,
            attempts=record.attempts + 1,
            last_error=words,
            first_sent_at=record.first_sent_at or self._now(),
        )

    # -- inside --------------------------------------------------------------------------
    def _submit(
        self,
        action_type: ActionType,
        device: str | None,
        backend: str | None,
        params: dict[str, Any],
        precondition: Mapping[str, Any] | None,
    ) -> ActionRecord:
        if self._read_only:
            raise ReadOnlyError(
                "read-only mode: changes are refused", hint="run without --read-only to queue this change"
            )
        if device is not None:
            device = valid_id(device)
        if backend is not None:
            self._check_backend(backend, action_type)
        elif device is not None:
            backend = self._resolve(device, action_type)
        seen = dict(precondition) if precondition is not None else self._seen(action_type, device, backend)
        action = Action(
            id=next(self._ids),
            type=action_type,
            device=device,
            backend=backend,
            params=params,
            precondition=seen,
            created_at=self._now(),
        )
        now = self._now()
        record = ActionRecord(
            action=action,
            seq=next(self._seq),
            state=ActionState.QUEUED,
            attempts=0,
            uncertain=False,
            next_attempt_at=now,
            last_error=None,
            lease_owner=None,
            lease_until=None,
            result={},
            first_sent_at=None,
            updated_at=now,
            done_at=None,
        )
        self._records[record.id] = record
        self._publish(record, None, "queued")
        return record

    def _check_backend(self, backend: str, action_type: ActionType) -> None:
        info = self._backends.get(backend)
        if info is None:
            names = ", ".join(sorted(self._backends)) or "none configured"
            raise ConfigError(f"no backend named {backend!r} in this profile; allowed: {names}")
        if not _supports(info.capabilities, info.kind, action_type):
            reason = info.capabilities.why_not(CAPABILITY[action_type], info.kind.value)
            raise Unsupported(reason or "not supported", backend=backend)

    def _resolve(self, device: str | None, action_type: ActionType) -> str | None:
        """The one capable cloud that holds ``device`` (None: none does; two: say which)."""
        if device is None:
            return None
        names = sorted(
            name
            for name in self._cloud.copies.get(device, {})
            if name in self._backends
            and _supports(self._backends[name].capabilities, self._backends[name].kind, action_type)
        )
        if len(names) > 1:
            raise ConfigError(
                f"{device} is known to more than one cloud ({', '.join(names)})", hint="pass --backend NAME"
            )
        return names[0] if names else None

    def _seen(self, action_type: ActionType, device: str | None, backend: str | None) -> dict[str, Any]:
        """What the device showed (after the technician's own open changes of the same kind)."""
        if device is None or backend is None:
            return {}
        copy = self._cloud.copies.get(device, {}).get(backend)
        seen: dict[str, Any] = {}
        if action_type is ActionType.MOVE_TO_GROUP and copy is not None:
            seen = {"group": copy.group}
        elif (
            action_type is ActionType.SET_INSTALLATION_STATUS
            and copy is not None
            and copy.installation_status
        ):
            seen = {"status": copy.installation_status.value}
        key = "group" if action_type is ActionType.MOVE_TO_GROUP else "status"
        earlier = [r for r in self.open_for(device) if r.action.type is action_type]
        if earlier and action_type in (ActionType.MOVE_TO_GROUP, ActionType.SET_INSTALLATION_STATUS):
            seen[key] = earlier[-1].action.params[key]
        return seen

    def _apply(self, action: Action) -> dict[str, Any]:
        """Change the fake cloud as the real one would; returns the action's result."""
        backend = action.backend
        assert backend is not None
        now = self._now()
        device = action.device
        p = action.params
        copies = self._cloud.copies.get(device, {}) if device is not None else {}
        if device is not None and backend in copies:
            copies[backend] = applied_to(copies[backend], action)
        match action.type:
            case ActionType.SET_INSTALLATION_STATUS if device is not None:
                self._cloud.events.setdefault(device, []).append(
                    HistoryEntry(
                        device=device,
                        backend=backend,
                        kind=HistoryKind.INSTALLATION,
                        timestamp=now,
                        summary=str(p["status"]),
                        who=THINGS_CLIENT,
                    )
                )
            case ActionType.CREATE_TASK | ActionType.SEND_COMMAND if device is not None:
                created = f"fake-{next(self._seq)}"
                is_command = action.type is ActionType.SEND_COMMAND
                self._tasks(backend, device).append(
                    Task(
                        backend=backend,
                        device=device,
                        id=created,
                        type=str(p["name"] if is_command else p["type"]),
                        state=TaskState.QUEUED,
                        raw_state="sent" if is_command else "pending",
                        created=now,
                        updated=now,
                        raw={"parameters": dict(p.get("params") or {})},
                    )
                )
                return {"created_id": created}
            case ActionType.CANCEL_TASK | ActionType.DELETE_TASK if device is not None:
                tasks = self._tasks(backend, device)
                for i, task in enumerate(tasks):
                    if task.id == p["task_id"]:
                        if action.type is ActionType.DELETE_TASK:
                            del tasks[i]
                        else:
                            tasks[i] = task.model_copy(
                                update={
                                    "state": TaskState.CANCELLED,
                                    "raw_state": "cancelled",
                                    "updated": now,
                                }
                            )
                        break
            case ActionType.CREATE_GROUP:
                group = Group(
                    backend=backend, id=str(p["group"]), description=p.get("description"), member_count=0
                )
                self._cloud.groups.setdefault(backend, []).append(group)
            case ActionType.RENAME_GROUP:
                groups = self._cloud.groups.setdefault(backend, [])
                groups[:] = [
                    g.model_copy(update={"id": p["new_group"]}) if g.id == p["group"] else g for g in groups
                ]
                for held in self._cloud.copies.values():
                    copy = held.get(backend)
                    if copy is not None and copy.group == p["group"]:
                        held[backend] = copy.model_copy(update={"group": p["new_group"]})
            case ActionType.DELETE_GROUP:
                groups = self._cloud.groups.setdefault(backend, [])
                groups[:] = [g for g in groups if g.id != p["group"]]
            case ActionType.CREATE_DEVICE if device is not None:
                kind = self._backends[backend].kind
                self._cloud.copies.setdefault(device, {})[backend] = Device(
                    id=device, backend=backend, kind=kind, name=device, raw=dict(p.get("fields") or {})
                )
                return {"created_id": device}
            case ActionType.DELETE_DEVICE if device is not None:
                self._cloud.copies.get(device, {}).pop(backend, None)
        return {}

    def _tasks(self, backend: str, device: str) -> list[Task]:
        return self._cloud.tasks.setdefault((backend, device), [])

    def _get(self, action_id: str) -> ActionRecord:
        found = [r for i, r in self._records.items() if i.startswith(action_id)] if action_id else []
        if len(found) != 1:
            raise StoreError(f"no single action {action_id!r} in the outbox")
        return found[0]

    def _drop(self, action_id: str, message: str) -> ActionRecord:
        record = self._get(action_id)
        if record.state is ActionState.SENDING:
            raise StoreError(f"action {record.id} is being sent (or was interrupted while sending)")
        if record.state not in (ActionState.FAILED, ActionState.CONFLICT, ActionState.QUEUED):
            raise StoreError(f"action {record.id} is already {record.state.value}")
        return self._move(record, ActionState.CANCELLED, message, done_at=self._now())

    def _end(self, action_id: str, state: ActionState, words: str) -> ActionRecord:
        record = self._get(action_id)
        self._last_sync = self._now()
        return self._move(
            record,
            state,
            words,
            attempts=record.attempts + 1,
            last_error=words,
            first_sent_at=record.first_sent_at or self._now(),
            done_at=self._now() if state is ActionState.FAILED else None,
        )

    def _move(self, record: ActionRecord, state: ActionState, message: str, **update: Any) -> ActionRecord:
        moved = record.model_copy(update={"state": state, "updated_at": self._now(), **update})
        self._records[record.id] = moved
        self._publish(moved, record.state, message)
        return moved

    def _publish(self, record: ActionRecord, previous: ActionState | None, message: str) -> None:
        event = ActionEvent(record=record, previous=previous, message=message)
        for listener in list(self._listeners):
            listener(event)

    def _describe(self, record: ActionRecord) -> WriteOutcome:
        match record.state:
            case ActionState.DONE:
                return WriteOutcome(record, "synced", "synced")
            case ActionState.QUEUED:
                held = [r for r in self.open_for(record.action.device or "") if r.seq < record.seq]
                if held:
                    first = held[0]
                    why = (
                        f"held by an earlier action {first.id[:8]} ({first.describe()}, {first.state.value})"
                    )
                    return WriteOutcome(record, "queued", why)
                return WriteOutcome(record, "queued", record.last_error or "not sent yet")
            case ActionState.SENDING:
                return WriteOutcome(record, "sending", "still being sent")
            case state:
                return WriteOutcome(record, state.value, record.last_error or state.value)
