"""Changes to several devices at once (a group's marked members): one installation status for
each, queued through the outbox, and what is already queued for them.

Each change carries the status the technician saw as its precondition (a device changed by
someone else meanwhile becomes a conflict) and names the cloud that holds the group, so a twin's
change goes to that cloud and no other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fieldtui.service.api import ActionRecord, ActionState
from fieldtui.ui.app import FieldApp
from fieldtui.ui.screens.group_rows import MEMBER_CHANGES, MemberChange
from fieldtui.ui.text import batch_words, clean
from fieldtui.ui.writes import queue_batch

#: States of a change the outbox still holds open (a failed one waits for the technician too).
OPEN = (ActionState.QUEUED, ActionState.SENDING, ActionState.FAILED, ActionState.CONFLICT)


def open_changes(records: Iterable[ActionRecord], devices: set[str], backend: str) -> dict[str, MemberChange]:
    """The newest open move or status change of each of ``devices`` on ``backend`` (or not yet
    resolved to a cloud), as the members' rows show it."""
    newest: dict[str, ActionRecord] = {}
    for record in records:
        action = record.action
        if (
            action.type in MEMBER_CHANGES
            and action.device in devices
            and action.backend in (backend, None)
            and record.state in OPEN
        ):
            best = newest.get(action.device)
            if best is None or record.seq > best.seq:
                newest[action.device] = record
    return {device: MemberChange.of(record) for device, record in newest.items()}


async def queue_statuses(
    app: FieldApp, backend: str, status: str, device_ids: list[str], seen: Mapping[str, str | None]
) -> list[ActionRecord]:
    """Queue one installation status change per device on ``backend`` (precondition: the status
    each was seen with), then say in one line how the first attempts went. Returns the records."""
    if app.service is None:
        app.notify("Not connected to the service yet; nothing was queued.", severity="warning")
        return []
    writes = app.service.writes

    async def queue_one(device_id: str, before: str | None) -> ActionRecord:
        return await writes.set_installation_status(
            device_id, status, backend=backend, precondition={"installation_status": before}
        )

    def what(count: int, first: str) -> str:
        return f"Status {batch_words(count, first)} → {clean(status, 20)}"

    records, _ = await queue_batch(app, device_ids, seen, status, queue_one, what)
    return records
