"""Device records and cloud settings as outbox actions: create (register), delete, set a setting.

Each is applied exactly once by checking before a resend (no cloud here takes idempotency keys):

- create: a device with the id is on the cloud. It is ours when it shows what the create asked
  for (``Connector.created_as_asked``: the fleet owner and hardware version, the DeviceHQ uuid);
  a record with other values is someone else's, a conflict, never overwritten.
- delete: the cloud answers "not found" for the id; a delete that meets "not found" is done.
- cloud setting (MQTT 003 "Set Cloud Settings"): the device reports the property at the asked
  value (its configuration's ``cloud_settings``). Where it reports nothing the setting is sent
  again: a setting is an assignment, sending the same value twice does no harm.

The sync engine (``sync.py``) calls :func:`check` before a resend and :func:`apply` to send.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fieldtui.connectors.base import Connector
from fieldtui.core.actions import Action, ActionType
from fieldtui.core.errors import NotFound

#: The action types this module handles.
TYPES = frozenset({ActionType.CREATE_DEVICE, ActionType.DELETE_DEVICE, ActionType.SET_CLOUD_SETTING})


@dataclass(frozen=True, slots=True)
class Found:
    """What the cloud shows about an action before it is sent again."""

    #: True: already applied; False: the cloud shows something else (a conflict).
    applied: bool
    message: str


async def check(connector: Connector, action: Action) -> Found | None:
    """Already applied (or in conflict) on ``connector``'s cloud? None: not there yet, send it."""
    device = action.device or ""
    p = action.params
    match action.type:
        case ActionType.CREATE_DEVICE:
            try:
                shown = await connector.get_device(device)
            except NotFound:
                return None
            if connector.created_as_asked(shown, dict(p.get("fields") or {})):
                return Found(True, "already applied")
            return Found(
                False,
                f"{device} already exists on {connector.name} with other values than this create "
                "asked for: it is not overwritten; drop the create, or change that device instead",
            )
        case ActionType.DELETE_DEVICE:
            try:
                await connector.get_device(device)
            except NotFound:
                return Found(True, "already applied (the device is gone)")
            return None
        case ActionType.SET_CLOUD_SETTING:
            settings = await connector.cloud_settings(device)
            prop = str(p["property"])
            if settings is not None and prop in settings and same_setting(settings[prop], p.get("value")):
                return Found(True, "already applied")
            return None
    raise ValueError(f"not a device record action: {action.type}")


async def applied(connector: Connector, action: Action) -> bool | None:
    """For dropping an uncertain action: True applied, False not, None cannot tell (a cloud
    setting the device does not report)."""
    if action.type is ActionType.SET_CLOUD_SETTING:
        settings = await connector.cloud_settings(action.device or "")
        prop = str(action.params["property"])
        if settings is None or prop not in settings:
            return None
        return same_setting(settings[prop], action.params.get("value"))
    found = await check(connector, action)
    return found is not None and found.applied


async def apply(connector: Connector, action: Action) -> dict[str, Any]:
    """Send ``action``; what to remember of the result."""
    device = action.device or ""
    p = action.params
    match action.type:
        case ActionType.CREATE_DEVICE:
            created = await connector.create_device(device, dict(p.get("fields") or {}))
            return {"created_id": created.id}
        case ActionType.DELETE_DEVICE:
            try:
                await connector.delete_device(device)
            except NotFound:
                return {"note": "the device was already gone"}
            return {}
        case ActionType.SET_CLOUD_SETTING:
            await connector.set_cloud_setting(device, str(p["property"]), p.get("value"))
            return {}
    raise ValueError(f"not a device record action: {action.type}")


def same_setting(shown: Any, asked: Any) -> bool:
    """Values compared as JSON (``60`` and ``"60"`` differ in a setting only by how they were
    typed, so text is compared as well)."""
    if json.dumps(shown, sort_keys=True) == json.dumps(asked, sort_keys=True):
        return True
    return not isinstance(shown, dict | list) and str(shown) == str(asked)
