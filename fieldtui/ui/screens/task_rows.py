"""How tasks and commands show in a table: the columns (as data) and the rows of the commands
view, which joins the cloud's commands with those still in the outbox."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.text import Text

from fieldtui.core.actions import ActionState, ActionType
from fieldtui.core.models import Task, TaskState
from fieldtui.service.api import ActionRecord
from fieldtui.ui.text import age, clean
from fieldtui.ui.text import now as ui_now
from fieldtui.ui.widgets.table import Column

STATE_STYLE: dict[str, str] = {
    TaskState.QUEUED.value: "yellow",
    TaskState.RUNNING.value: "bold cyan",
    TaskState.DONE.value: "green",
    TaskState.FAILED.value: "bold red",
    TaskState.CANCELLED.value: "grey50",
}
_EPOCH = datetime.min.replace(tzinfo=UTC)


def state_cell(state: str, raw: str | None = None) -> Text:
    return Text(clean(raw or state, 14), style=STATE_STYLE.get(state, ""), no_wrap=True)


def when_cell(moment: datetime | None) -> str:
    return age(moment, ui_now()) if moment is not None else "—"


def task_key(task: Task) -> str:
    return f"{task.backend}\x1f{task.id}"


def newest_first(tasks: Iterable[Task]) -> list[Task]:
    return sorted(tasks, key=lambda t: t.updated or t.created or _EPOCH, reverse=True)


def task_search_text(task: Task) -> list[str]:
    return [
        task.state.value,
        task.raw_state,
        task.type,
        task.device,
        task.backend,
        task.id,
        task.detail or "",
    ]


def parameters_text(task: Task) -> str:
    params = task.raw.get("parameters") if isinstance(task.raw, dict) else None
    return json.dumps(params, separators=(",", ":"), default=str) if params else ""


def _task_columns(with_device: bool) -> list[Column[Task]]:
    columns: list[Column[Task]] = [
        Column("state", "State", 9, lambda t: state_cell(t.state.value)),
        Column("type", "Type", 18 if with_device else 20, lambda t: clean(t.type, 24)),
    ]
    if with_device:
        columns.append(Column("device", "Device", 14, lambda t: clean(t.device, 20)))
    columns += [
        Column("cloud", "Cloud", 9, lambda t: clean(t.backend, 12)),
        Column("updated", "Updated", 7, lambda t: when_cell(t.updated or t.created)),
        Column("attempts", "Try", 3, lambda t: "" if t.attempts is None else str(t.attempts)),
        Column("id", "Id", 10, lambda t: clean(t.id, 40)),
        Column("detail", "Detail", None, lambda t: clean(t.detail or t.raw_state, 120)),
    ]
    return columns


#: A device's tasks.
TASK_COLUMNS = _task_columns(with_device=False)
#: Every cloud's unfinished tasks.
FLEET_TASK_COLUMNS = _task_columns(with_device=True)


# -- the commands view --------------------------------------------------------------------------
#: How an outbox state reads in the commands view, and the task state whose colour it takes.
_OUTBOX_WORDS: dict[ActionState, tuple[str, str]] = {
    ActionState.QUEUED: ("queued", TaskState.QUEUED.value),
    ActionState.SENDING: ("sending", TaskState.QUEUED.value),
    ActionState.DONE: ("sent", TaskState.RUNNING.value),
    ActionState.FAILED: ("not sent", TaskState.FAILED.value),
    ActionState.CONFLICT: ("conflict", TaskState.FAILED.value),
    ActionState.CANCELLED: ("dropped", TaskState.CANCELLED.value),
}


@dataclass(frozen=True, slots=True)
class CommandLine:
    """One command as the technician follows it: the cloud's copy once it has one, else the
    outbox record (queued, sending, refused before it reached the device)."""

    key: str
    name: str
    backend: str
    #: The words shown (the cloud's own status, or the outbox's) and the state for its colour.
    status: str
    state: str
    when: datetime | None
    id: str
    message: str
    task: Task | None = None
    record: ActionRecord | None = None

    @classmethod
    def of_task(cls, task: Task) -> CommandLine:
        return cls(
            key=task_key(task),
            name=task.type,
            backend=task.backend,
            status=task.raw_state or task.state.value,
            state=task.state.value,
            when=task.updated or task.created,
            id=task.id,
            message=task.detail or parameters_text(task),
            task=task,
        )

    @classmethod
    def of_record(cls, record: ActionRecord) -> CommandLine:
        words, state = _OUTBOX_WORDS.get(record.state, (record.state.value, ""))
        backend = record.action.backend or "?"
        if record.state in (ActionState.QUEUED, ActionState.SENDING):
            message = record.last_error or f"in the outbox: sent when {backend} is reachable"
        elif record.state is ActionState.DONE:
            message = f"sent; waiting for {backend} to report it"
        else:
            message = record.last_error or "refused before it reached the device"
        return cls(
            key="outbox\x1f" + record.id,
            name=str(record.action.params.get("name") or "?"),
            backend=backend,
            status=words,
            state=state,
            when=record.updated_at,
            id=str(record.result.get("created_id") or record.id),
            message=message,
            record=record,
        )

    def search_text(self) -> list[str]:
        return [self.status, self.state, self.name, self.backend, self.id, self.message]


COMMAND_COLUMNS: list[Column[CommandLine]] = [
    Column("status", "Status", 11, lambda c: state_cell(c.state, c.status)),
    Column("name", "Command", 16, lambda c: clean(c.name, 24)),
    Column("cloud", "Cloud", 9, lambda c: clean(c.backend, 12)),
    Column("sent", "Sent", 7, lambda c: when_cell(c.when)),
    Column("id", "Id", 10, lambda c: clean(c.id, 40)),
    Column("message", "Message", None, lambda c: clean(c.message, 120)),
]


def command_lines(commands: Sequence[Task], records: Iterable[ActionRecord]) -> list[CommandLine]:
    """The cloud's commands, newest first, after the ones still on their way from the outbox.

    A record whose command the cloud already lists is left out (the cloud's copy is the truth);
    a sent one it does not list yet shows as "sent" until it does.
    """
    known = {(t.backend, t.id) for t in commands}
    outbox = [
        CommandLine.of_record(r)
        for r in sorted(records, key=lambda r: r.seq, reverse=True)
        if r.action.type is ActionType.SEND_COMMAND
        and r.state is not ActionState.CANCELLED
        and (r.action.backend, str(r.result.get("created_id") or "")) not in known
    ]
    return outbox + [CommandLine.of_task(t) for t in newest_first(commands)]
