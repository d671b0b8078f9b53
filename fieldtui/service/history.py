"""A device's timeline across clouds, newest first, with fieldtui's own record beside them.

Each cloud that knows the device contributes what it keeps (:mod:`fieldtui.connectors.history`).
MQTT keeps nothing: the commands fieldtui sent through its outbox, and the states their devices
reported while a screen followed them (kept in the read cache), stand in for the broker's
missing history.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fieldtui.connectors.history import history_of
from fieldtui.core.actions import ActionType
from fieldtui.core.errors import BackendError, NotFound, Rejected, Unsupported
from fieldtui.core.models import BackendKind, HistoryEntry, HistoryKind
from fieldtui.service.api import HistoryView
from fieldtui.service.connectivity import describe
from fieldtui.service.fleet import FleetService
from fieldtui.service.store import ActionRecord, OutboxStore

_EPOCH = datetime.min.replace(tzinfo=UTC)


def _outbox_entry(record: ActionRecord) -> HistoryEntry:
    action = record.action
    state = record.state.value if record.state.value != "done" else "sent"
    if record.last_error and record.state.value in ("failed", "conflict", "queued"):
        state = f"{state}: {record.last_error}"
    return HistoryEntry(
        device=action.device or "",
        backend=action.backend or "(any)",
        kind=HistoryKind.COMMAND,
        timestamp=record.done_at or record.first_sent_at or action.created_at,
        summary=str(action.params.get("name", "command")),
        who="fieldtui (this machine)",
        state=state,
        detail=f"outbox action {record.id[:8]}",
    )


async def device_history(fleet: FleetService, store: OutboxStore, device_id: str) -> HistoryView:
    """Every cloud's history of ``device_id`` plus fieldtui's record of MQTT commands."""
    names = list(fleet.backends)

    async def one(name: str) -> list[HistoryEntry] | BackendError | None:
        try:
            return await fleet._call(name, lambda c: history_of(c, device_id))
        except (NotFound, Rejected, Unsupported):
            return None  # this cloud does not know the device
        except BackendError as exc:
            return exc

    results = dict(zip(names, await asyncio.gather(*(one(n) for n in names)), strict=True))
    entries: list[HistoryEntry] = []
    errors: dict[str, str] = {}
    for name, result in results.items():
        if isinstance(result, BackendError):
            errors[name] = describe(result)
        elif result is not None:
            entries += result
    entries += await _own_record(fleet, store, device_id, entries)
    entries.sort(key=lambda e: e.timestamp or _EPOCH, reverse=True)
    return HistoryView(device=device_id, entries=entries, errors=errors)


async def _own_record(
    fleet: FleetService, store: OutboxStore, device_id: str, listed: list[HistoryEntry]
) -> list[HistoryEntry]:
    """MQTT commands as fieldtui saw them: the cached command states (from the device's own
    updates), and the commands sent through the outbox that no cloud lists."""
    mqtt = {name for name in fleet.backends if fleet.kind(name) is BackendKind.MQTT}
    entries: list[HistoryEntry] = []
    seen = {(e.backend, e.summary, e.timestamp) for e in listed}
    listed_refs = {e.ref for e in listed if e.ref}
    ids: set[str] = set(listed_refs)
    for cached in await store.cached_tasks(device_id):
        if cached.backend not in mqtt:
            continue
        for task in cached.value:
            if task.id in listed_refs:
                continue
            ids.add(task.id)
            entry = HistoryEntry(
                device=device_id,
                backend=task.backend,
                kind=HistoryKind.COMMAND,
                timestamp=task.updated or task.created,
                summary=task.type,
                state=task.state.value,
                detail=task.detail,
                ref=task.id,
            )
            if (entry.backend, entry.summary, entry.timestamp) not in seen:
                entries.append(entry)
    for record in await store.list_actions():
        action = record.action
        if action.device != device_id or action.type is not ActionType.SEND_COMMAND:
            continue
        if str(record.result.get("created_id", "")) in ids:
            continue
        if action.backend is not None and action.backend not in mqtt:
            continue
        entries.append(_outbox_entry(record))
    return entries
