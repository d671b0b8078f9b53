"""What an applied action changes in the read cache, so every face shows it at once.

When the sync engine records an action as done, the device's cached copy on that backend takes
the new value (installation status, group, edited fields) with the time it was applied, and a
deleted device leaves the cache: the next device view, the next ``fieldtui status`` and the next
action's precondition all start from what the cloud now holds, not from what it held before.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fieldtui.connectors.declarations import view_field_names
from fieldtui.core.actions import Action, ActionType
from fieldtui.core.models import BackendKind, Device, InstallationStatus
from fieldtui.service.store import ActionRecord, OutboxStore

log = logging.getLogger(__name__)

#: Device fields a device update may set directly (others are the vendor's own attributes).
_DEVICE_FIELDS = frozenset({"name", "group", "location", "model", "firmware"})
#: The actions whose effect ``applied_fields`` can name.
_SETS_FIELDS = frozenset(
    {ActionType.SET_INSTALLATION_STATUS, ActionType.MOVE_TO_GROUP, ActionType.UPDATE_DEVICE}
)


def applied_fields(action: Action, kind: BackendKind | None = None) -> dict[str, Any]:
    """The Device fields ``action`` sets once applied (empty for actions that set none); with
    the cloud's ``kind``, an update's fields in that cloud's words count under the view's names
    (DeviceHQ's ``description`` is the ``name``)."""
    p: Mapping[str, Any] = action.params
    match action.type:
        case ActionType.SET_INSTALLATION_STATUS:
            return {"installation_status": InstallationStatus(p["status"])}
        case ActionType.MOVE_TO_GROUP:
            return {"group": p["group"]}
        case ActionType.UPDATE_DEVICE:
            fields = p.get("fields")
            if isinstance(fields, Mapping):
                names = view_field_names(kind) if kind is not None else {}
                renamed = {names.get(k, k): v for k, v in fields.items()}
                return {k: v for k, v in renamed.items() if k in _DEVICE_FIELDS and isinstance(v, str)}
    return {}


def applied_to(device: Device, action: Action) -> Device:
    """``device`` as it is once ``action`` took effect (unchanged for other actions)."""
    fields = applied_fields(action, device.kind)
    return device.model_copy(update=fields) if fields else device


async def write_through(store: OutboxStore, record: ActionRecord) -> None:
    """Put what ``record`` applied into the read cache (a cache failure is logged, never raised:
    the action is done either way)."""
    action = record.action
    if action.type is ActionType.DELETE_DEVICE and action.device is not None and action.backend is not None:
        try:  # the cloud no longer holds it: the cache must not show it (offline) as if it did
            await store.forget_device(action.backend, action.device)
        except Exception:
            log.exception("could not forget %s in the cache", action.device)
        return
    if action.device is None or action.backend is None or action.type not in _SETS_FIELDS:
        return
    try:
        for cached in await store.cached_device(action.device):
            if cached.backend == action.backend:
                updated = applied_to(cached.value, action)
                if updated is not cached.value:
                    await store.store_devices([updated], record.done_at or datetime.now(UTC))
    except Exception:  # the change is applied; only the cache missed it
        log.exception("could not write %s through to the cache", record.id)
