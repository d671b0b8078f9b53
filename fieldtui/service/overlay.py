"""The technician's own changes laid over a device view (pure functions, no I/O).

An open outbox action shows on the view at once ("installed · queued"); an applied one changes
the view's values as it changes the read cache (:mod:`fieldtui.service.write_through`), so a
screen that hears the engine's event shows the new value without asking the clouds again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from fieldtui.core.actions import ActionState
from fieldtui.service.merge import DeviceView, PendingChange, SourcedDevice, merge_devices
from fieldtui.service.store import ActionRecord
from fieldtui.service.write_through import applied_fields, applied_to

_OPEN = (ActionState.QUEUED, ActionState.SENDING, ActionState.FAILED, ActionState.CONFLICT)


def pending_change(record: ActionRecord) -> PendingChange:
    """One open action as the device view shows it."""
    fields = applied_fields(record.action)
    name = next(iter(fields), None)
    value = fields.get(name) if name is not None else None
    return PendingChange(
        action_id=record.id,
        field=name,
        value=str(getattr(value, "value", value)) if value is not None else record.describe(),
        state=record.state.value,
        reason=record.last_error,
        description=record.describe(),
    )


def pending_changes(records: Sequence[ActionRecord]) -> tuple[PendingChange, ...]:
    """Open actions as the device view shows them (oldest first)."""
    return tuple(pending_change(r) for r in records if r.state in _OPEN)


def applied_view(view: DeviceView, record: ActionRecord) -> DeviceView:
    """``view`` once ``record`` took effect: its backend's copy takes the new values."""
    backend = record.action.backend
    if backend is None or backend not in view.copies:
        return view
    fields = applied_fields(record.action, view.copies[backend].kind)
    if not fields:
        return view
    copies = []
    for source in view.sources:
        device = view.copies.get(source.backend)
        if device is None:
            continue
        if source.backend == backend:
            device = applied_to(device, record.action)
        copies.append(SourcedDevice(device, source))
    merged = merge_devices(copies)
    return replace(merged, errors=view.errors, pending=view.pending)


def heard(view: DeviceView, record: ActionRecord) -> DeviceView:
    """``view`` after the engine's news of ``record`` (an action on this device): its pending
    entry added, updated or removed, and its values applied once it is done."""
    if record.action.device != view.device.id:
        return view
    others = tuple(p for p in view.pending if p.action_id != record.id)
    if record.state in _OPEN:
        known = [p.action_id for p in view.pending]
        change = pending_change(record)
        if record.id in known:
            pending = tuple(change if p.action_id == record.id else p for p in view.pending)
        else:
            pending = (*others, change)
        return replace(view, pending=pending)
    updated = replace(view, pending=others)
    return applied_view(updated, record) if record.state is ActionState.DONE else updated
