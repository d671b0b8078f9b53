"""Technician intents: what the outbox stores and the sync engine sends."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ActionType(StrEnum):
    SET_INSTALLATION_STATUS = "set_installation_status"
    MOVE_TO_GROUP = "move_to_group"
    CREATE_TASK = "create_task"
    CANCEL_TASK = "cancel_task"
    DELETE_TASK = "delete_task"
    UPDATE_DEVICE = "update_device"
    SEND_COMMAND = "send_command"
    CREATE_GROUP = "create_group"
    RENAME_GROUP = "rename_group"
    DELETE_GROUP = "delete_group"
    #: A device record made on a cloud (fleet "Create a device", DeviceHQ "register").
    CREATE_DEVICE = "create_device"
    #: A device record removed from a cloud (fleet and DeviceHQ "delete").
    DELETE_DEVICE = "delete_device"
    #: One MQTT cloud setting (document 003 "Set Cloud Settings": ``{property, value}``).
    SET_CLOUD_SETTING = "set_cloud_setting"


class ActionState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    DONE = "done"
    FAILED = "failed"
    CONFLICT = "conflict"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in (ActionState.DONE, ActionState.FAILED, ActionState.CANCELLED)


def new_action_id() -> str:
    return uuid.uuid4().hex


class Action(BaseModel):
    """One technician intent, made on the client with its own id.

    ``device`` is what the technician typed or picked. ``backend`` is None until the action
    is resolved to a cloud (a device scanned offline that the cache has never seen).
    ``params`` hold the intent (``{"status": "installed"}``, ``{"group": "roof"}``, ...);
    ``precondition`` what the technician saw when deciding (``{"group": "basement"}``).
    """

    # Schemas are built on first use: a quick command pays only for the models it touches.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    id: str = Field(default_factory=new_action_id)
    type: ActionType
    device: str | None
    backend: str | None
    params: dict[str, Any] = Field(default_factory=dict)
    precondition: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def queue_key(self) -> str:
        """Actions with the same key are sent strictly in order (per device, else per group).

        Across keys, actions that touch the same group (:attr:`groups_touched`) on the same
        backend also keep their order while the earlier one is pending: a move into a group
        created (or renamed to) in the same session waits for that creation, and a group's
        deletion or rename waits for earlier moves into it. Moves of different devices into one
        group still go concurrently. The outbox's claim enforces this (``OutboxStore.claim``).
        """
        if self.device is not None:
            return f"device:{self.device}"
        group = self.params.get("group") or self.params.get("old_group") or ""
        return f"group:{self.backend}:{group}"

    @property
    def groups_touched(self) -> tuple[str, ...]:
        """The groups this action names (see :func:`groups_touched`)."""
        return groups_touched(self.type, self.params)


def groups_touched(action_type: ActionType, params: Mapping[str, Any]) -> tuple[str, ...]:
    """The groups an action names: the target of a move (or of a device update that sets
    ``group``), the group a group action creates, renames (old and new name) or deletes."""
    names: list[Any] = []
    if action_type in (ActionType.MOVE_TO_GROUP, ActionType.CREATE_GROUP, ActionType.DELETE_GROUP):
        names.append(params.get("group"))
    elif action_type is ActionType.UPDATE_DEVICE:
        fields = params.get("fields")
        names.append(fields.get("group") if isinstance(fields, dict) else None)
    elif action_type is ActionType.RENAME_GROUP:
        names.extend((params.get("group"), params.get("new_group")))
    return tuple(name for name in names if isinstance(name, str) and name)
