"""One cloud's part of a device's timeline, as :class:`HistoryEntry` s.

Each cloud keeps a different history: things (001) an installation history with who changed
the status and a commands log; DeviceHQ (002) check-ins and tasks; mysensor (000) tasks; MQTT
(003) none at all (fieldtui keeps its own record of the commands it sent, see the service).
"""

from __future__ import annotations

from fieldtui.connectors.base import Connector
from fieldtui.core.errors import NotFound, Unsupported
from fieldtui.core.models import BackendKind, Command, HistoryEntry, HistoryKind, Task

#: DeviceHQ check-ins are many (one per schedule slot): the newest this many are shown.
CHECKINS_SHOWN = 5


def task_entry(task: Task) -> HistoryEntry:
    state = (
        task.state.value
        if task.raw_state.lower() == task.state.value
        else f"{task.state.value} ({task.raw_state})"
    )
    return HistoryEntry(
        device=task.device,
        backend=task.backend,
        kind=HistoryKind.TASK,
        timestamp=task.updated or task.created,
        summary=task.type,
        state=state,
        detail=task.detail,
        ref=task.id,
    )


def command_entry(command: Command, *, who: str | None = None) -> HistoryEntry:
    responsible = command.parameters.get("responsible")
    return HistoryEntry(
        device=command.device,
        backend=command.backend,
        kind=HistoryKind.COMMAND,
        timestamp=command.timestamp,
        summary=command.name,
        who=who or (str(responsible) if responsible else None),
        state=command.state.value
        if command.status == command.state.value
        else f"{command.state.value} ({command.status})",
        detail=command.message,
        ref=command.id,
    )


async def history_of(connector: Connector, device_id: str) -> list[HistoryEntry]:
    """Everything ``connector``'s cloud keeps about ``device_id``'s past (raises NotFound when
    the cloud does not know the device; what it does not keep is simply absent)."""
    entries: list[HistoryEntry] = []
    caps = connector.capabilities
    if caps.installation_status:
        for record in await connector.installation_history(device_id):
            entries.append(
                HistoryEntry(
                    device=device_id,
                    backend=connector.name,
                    kind=HistoryKind.INSTALLATION,
                    timestamp=record.timestamp,
                    summary=record.status.value,
                    who=record.responsible,
                )
            )
    check_ins = getattr(connector, "check_ins", None)
    if connector.kind is BackendKind.DEVICEHQ and check_ins is not None:
        found = await check_ins(device_id)
        found.sort(key=lambda c: c.timestamp.timestamp() if c.timestamp else 0.0, reverse=True)
        for check_in in found[:CHECKINS_SHOWN]:
            words = [w for w in (check_in.action, check_in.result) if w]
            entries.append(
                HistoryEntry(
                    device=device_id,
                    backend=connector.name,
                    kind=HistoryKind.CHECKIN,
                    timestamp=check_in.timestamp,
                    summary=" ".join(words) or "check-in",
                    detail=f"{check_in.duration:g} s" if check_in.duration is not None else None,
                )
            )
    if caps.tasks:
        try:
            entries += [task_entry(task) for task in await connector.list_tasks(device_id)]
        except Unsupported:
            pass
    if caps.commands:
        try:
            entries += [command_entry(command) for command in await connector.list_commands(device_id)]
        except (Unsupported, NotFound):
            pass
    return entries
