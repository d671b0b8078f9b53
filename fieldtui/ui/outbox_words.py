"""Outbox actions in a technician's words: what changes, and why a queued one has not gone yet.

Shared by the outbox screen (its Action column and detail) and the app (what Ctrl+S waits for).
"""

from __future__ import annotations

from fieldtui.core.actions import ActionType
from fieldtui.service.api import ActionRecord, ActionState

OPEN = (ActionState.QUEUED, ActionState.SENDING, ActionState.FAILED, ActionState.CONFLICT)


def describe(record: ActionRecord) -> str:
    return record.describe()


def what_changes(record: ActionRecord) -> str:
    """The Action column: what changes, to what, without the device (its own column), so
    the target group or status is in sight at 80 columns."""
    a = record.action
    p = a.params
    match a.type:
        case ActionType.SET_INSTALLATION_STATUS:
            return f"status → {p.get('status')}"
        case ActionType.MOVE_TO_GROUP:
            return f"group → {p.get('group')}"
        case ActionType.CREATE_TASK:
            return f"new task {p.get('type')}"
        case ActionType.CANCEL_TASK:
            return f"cancel task {p.get('task_id')}"
        case ActionType.DELETE_TASK:
            return f"delete task {p.get('task_id')}"
        case ActionType.UPDATE_DEVICE:
            return f"update {','.join(sorted(p.get('fields', {})))}"
        case ActionType.SEND_COMMAND:
            return f"command {p.get('name')}"
        case ActionType.CREATE_GROUP:
            return f"new group {p.get('group')}"
        case ActionType.RENAME_GROUP:
            return f"group {p.get('group')} → {p.get('new_group')}"
        case ActionType.DELETE_GROUP:
            return f"delete group {p.get('group')}"
        case ActionType.CREATE_DEVICE:
            return f"new device on {a.backend}"
        case ActionType.DELETE_DEVICE:
            return f"delete device from {a.backend}"
        case ActionType.SET_CLOUD_SETTING:
            return f"cloud setting {p.get('property')}"
    return describe(record)


def held_by(record: ActionRecord, records: list[ActionRecord]) -> ActionRecord | None:
    """The earlier open action this one waits for: a device's (or group's) changes go in order,
    and a failed or conflicting one stops the ones after it until it is settled."""
    if record.state is not ActionState.QUEUED:
        return None
    earlier = [
        r for r in records if r.queue_key == record.queue_key and r.seq < record.seq and r.state in OPEN
    ]
    return min(earlier, key=lambda r: r.seq) if earlier else None


def why_waiting(record: ActionRecord, records: list[ActionRecord], cloud_state: str | None) -> str | None:
    """Why a queued action has not gone yet, in words (None when it is not waiting)."""
    if record.state is not ActionState.QUEUED:
        return None
    before = held_by(record, records)
    if before is not None:
        state = before.state.value
        settle = {
            "failed": " Retry (r) or drop (d) it first.",
            "conflict": " Apply it anyway (a) or discard it (x) first.",
        }.get(state, "")
        return f"Held: waits for “{describe(before)}” ({state}), earlier on the same queue.{settle}"
    if cloud_state is not None and cloud_state != "online":
        return f"Waiting for {record.action.backend} to be reachable (now {cloud_state.replace('_', ' ')})."
    if record.attempts:
        return f"Retrying: attempt {record.attempts + 1} at {record.next_attempt_at.astimezone():%H:%M:%S}."
    return "Next to be sent."


def dependents(record: ActionRecord, records: list[ActionRecord]) -> list[ActionRecord]:
    """Open actions after ``record`` that rely on it: the later changes of its queue, and moves
    into a group it creates (dropping it would leave them to fail)."""
    later = [r for r in records if r.seq > record.seq and r.state in OPEN and r.id != record.id]
    out = [r for r in later if r.queue_key == record.queue_key]
    if record.action.type is ActionType.CREATE_GROUP:
        group = record.action.params.get("group")
        out += [
            r
            for r in later
            if r not in out
            and r.action.type is ActionType.MOVE_TO_GROUP
            and r.action.backend == record.action.backend
            and r.action.params.get("group") == group
        ]
    return out
