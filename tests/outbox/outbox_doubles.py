"""A test double of a vendor cloud for the outbox's state-machine tests (scripted answers)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from fieldtui.connectors.base import Connector
from fieldtui.core.actions import ActionState
from fieldtui.core.capabilities import Capabilities
from fieldtui.core.errors import NotFound
from fieldtui.core.models import BackendKind, Device, InstallationRecord, InstallationStatus, Task, TaskState
from fieldtui.service.sync import Backoff
from fieldtui.service.writes import Outbox

#: Backoff short enough for a test to wait out.
FAST = Backoff(base=0.05, cap=0.2, hold=0.1)


@dataclass
class FakeDevice:
    status: str = "new"
    group: str | None = "basement"
    tasks: list[Task] = field(default_factory=list)


class FakeCloud(Connector):
    """Scripted cloud: ``errors[op]`` raises (once each, in order) before or after applying."""

    kind: ClassVar[BackendKind] = BackendKind.THINGS
    capabilities: ClassVar[Capabilities] = Capabilities(installation_status=True, groups=True, tasks=True)

    def __init__(self, name: str = "cloud", devices: dict[str, FakeDevice] | None = None) -> None:
        super().__init__(name)
        self.devices: dict[str, FakeDevice] = devices if devices is not None else {}
        #: op -> exceptions raised before the change is applied (the server refused)
        self.errors: dict[str, list[Exception]] = {}
        #: op -> exceptions raised after the change was applied (the answer was lost)
        self.lost_answers: dict[str, list[Exception]] = {}
        self.mutations: list[tuple[str, str, Any]] = []
        self.delay = 0.0
        self.active = 0
        self.max_active = 0

    async def aclose(self) -> None:
        return None

    async def probe(self) -> None:
        return None

    def _device(self, device_id: str) -> FakeDevice:
        if device_id not in self.devices:
            raise NotFound(f"device {device_id} not found", backend=self.name)
        return self.devices[device_id]

    async def _mutate(self, op: str, device_id: str, value: Any, apply: Any) -> None:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            self._device(device_id)
            pending = self.errors.get(op)
            if pending:
                raise pending.pop(0)
            apply()
            self.mutations.append((op, device_id, value))
            lost = self.lost_answers.get(op)
            if lost:
                raise lost.pop(0)
        finally:
            self.active -= 1

    async def get_device(self, device_id: str) -> Device:
        d = self._device(device_id)
        return Device(
            id=device_id,
            backend=self.name,
            kind=self.kind,
            group=d.group,
            installation_status=InstallationStatus(d.status),
        )

    async def installation_history(self, device_id: str) -> list[InstallationRecord]:
        d = self._device(device_id)
        return [
            InstallationRecord(
                device=device_id,
                backend=self.name,
                status=InstallationStatus(d.status),
                timestamp=datetime.now(UTC),
            )
        ]

    async def get_group(self, device_id: str) -> str | None:
        return self._device(device_id).group

    async def set_installation_status(self, device_id: str, status: InstallationStatus) -> None:
        def apply() -> None:
            self.devices[device_id].status = status.value

        await self._mutate("status", device_id, status.value, apply)

    async def move_to_group(self, device_id: str, group_id: str) -> None:
        def apply() -> None:
            self.devices[device_id].group = group_id

        await self._mutate("move", device_id, group_id, apply)

    async def list_tasks(self, device_id: str) -> list[Task]:
        return list(self._device(device_id).tasks)

    async def create_task(self, device_id: str, task_type: str, params: dict[str, Any]) -> Task:
        d = self._device(device_id)
        task = Task(
            backend=self.name,
            device=device_id,
            id=f"t{sum(len(x.tasks) for x in self.devices.values()) + 1}",
            type=task_type,
            state=TaskState.QUEUED,
            raw_state="queued",
            created=datetime.now(UTC),
        )

        def apply() -> None:
            d.tasks.append(task)

        await self._mutate("task", device_id, task_type, apply)
        return task


async def drain_all(outbox: Outbox, patience: float) -> None:
    """Drain until nothing is queued or sending (waiting out backoff and request deadlines),
    for at most ``patience`` seconds (generous: the machine may be loaded)."""
    deadline = time.monotonic() + patience
    while True:
        summary = await outbox.engine.drain()
        open_now = summary.remaining.get(ActionState.QUEUED, 0) + summary.remaining.get(
            ActionState.SENDING, 0
        )
        if not open_now:
            return
        assert time.monotonic() < deadline, f"still open after {patience:g} s: {summary.remaining}"
        due = await outbox.store.next_due()
        wait = 0.05 if due is None else max(0.05, due.timestamp() - time.time())
        await asyncio.sleep(min(wait, 1.0))
