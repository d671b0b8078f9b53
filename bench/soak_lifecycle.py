"""The chaos soak's lifecycle actions: what the technician queues beyond the first seven types.

``bench/soak.py``'s technician queues these through the product's write API (``OutboxWrites``);
the sequences, and how the clouds' records are read and judged, are described in
``bench/soak_effects.py``. Here: the devices and catalogue ids picked before the chaos (and the
DeviceHQ task cap filled up by another tool), each operation, and the follow-ups that wait for
an earlier action to be done (a DeviceHQ cancel for each task made, a mysensor delete of a
finished task).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from soak_effects import Effect, GroupLife, Lifecycles, NewDevice, task_effect

#: DeviceHQ's documented cap on unfinished tasks per account (document 002).
TASK_CAP = 25
#: Free places another tool leaves under the cap before the chaos starts.
ROOM_UNDER_CAP = 3
#: A new mysensor task is pending for 2 s, then in progress for 6 s (the simulator's pace):
#: the technician deletes only tasks older than this.
SENSOR_TASK_FINISHED_AFTER = 9.0

#: The technician's operations this module adds, with their weights among the soak's.
OPS: dict[str, int] = {
    "dhq_task": 2,
    "mqtt_command": 2,
    "cloud_setting": 1,
    "group": 2,
    "fleet_device": 1,
    "dhq_device": 1,
}

#: The technician's first operations, so even the short soak queues each of these types (and
#: a rename and delete, a device delete) early, under the same chaos as the rest.
FIRST_OPS = (
    "dhq_task",
    "group",
    "mqtt_command",
    "fleet_device",
    "cloud_setting",
    "dhq_device",
    "group_next",
    "fleet_delete",
    "dhq_delete",
    "group_next",
    "dhq_task",
    "mqtt_command",
    "cloud_setting",
)
#: Every operation :meth:`LifecycleActions.queue` takes.
LIFECYCLE_OPS = frozenset({*OPS, *FIRST_OPS})


@dataclass
class _Pending:
    """An action whose follow-up waits for it to be done (a cancel, a delete)."""

    action_id: str
    device: str


class LifecycleActions:
    """Picks, queues and follows up the soak's lifecycle actions; what they named is kept in
    ``named`` (:class:`soak_effects.Lifecycles`) for reading the clouds' records.

    ``plan_action(action_id, backend, device, effect)`` records what the technician queued;
    ``violation(text)`` reports a broken promise.
    """

    def __init__(
        self,
        seed: int,
        plan_action: Callable[[str, str, str, Effect], None],
        violation: Callable[[str], None],
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed * 37 + 9)
        self.plan_action = plan_action
        self.violation = violation
        self.named = Lifecycles()
        self.dhq_creates: list[_Pending] = []
        self.sensor_creates: list[_Pending] = []

    # -- before the chaos ------------------------------------------------------------------------
    async def prepare(self, client: httpx.AsyncClient, plan: dict[str, Any], loaded: Any) -> None:
        """Pick devices and catalogue ids; fill the task cap up to ``ROOM_UNDER_CAP`` (another tool)."""
        from fieldtui.connectors.registry import build_connector
        from fieldtui.core.errors import LimitReached
        from fieldtui.secrets import get_secret

        fleet = (await client.get("/_sim/fleet")).json()
        used = set(plan["gateways"])
        offline = sorted(
            r["id"] for r in fleet if r["kind"] == "devicehq" and not r["online"] and r["id"] not in used
        )
        mqtt = sorted(
            r["id"] for r in fleet if r["kind"] == "mqtt" and r["online"] and r["id"] not in plan["mqtt"]
        )
        if len(mqtt) < 2:
            raise SystemExit(f"the simulated fleet has too few online MQTT devices: {mqtt}")
        dhq: Any = build_connector(
            "gateways", loaded.backends["gateways"], get_secret(loaded.profile_name, "gateways")
        )
        async with dhq:
            task_devices = offline[:2]
            # Registered gateways never check in: their tasks stay unfinished, as on offline ones.
            registered = [f"SOAK-GW{self.seed % 10_000}-{n}" for n in range(3 - len(task_devices))]
            for serial in registered:
                await dhq.create_device(serial, {"uuid": uuid.UUID(int=self.rng.getrandbits(128)).hex})
            task_devices += registered[:-1]
            filler_device = registered[-1]
            configs: list[str] = []
            for listed in await dhq.apps():
                app = await dhq.app(listed.id)
                configs = [c.id for c in app.app_configs if c.id]
                if len(configs) >= 2:
                    break
            if len(configs) < 2:
                raise SystemExit("the simulated DeviceHQ catalogue has no app with two configs")
            firmwares = await dhq.device_firmwares()
            firmware_of: dict[str, str | None] = {}
            for device in task_devices:
                model = (await dhq.get_device(device)).model or ""
                family = model.split("-", 1)[0]
                firmware_of[device] = next((f.id for f in firmwares if family and f.model == family), None)
            filler: set[Effect] = set()
            for _ in range(TASK_CAP):
                open_now = await self._open_tasks(client, [*task_devices, filler_device])
                if open_now >= TASK_CAP - ROOM_UNDER_CAP:
                    break
                try:
                    await dhq.create_task(filler_device, "INSTALL_CONFIGS", {"config_ids": [configs[0]]})
                except LimitReached:
                    break
                filler.add(("task", task_effect("INSTALL_CONFIGS", {"config_ids": [configs[0]]})))
            self.named.external[filler_device] = filler
        for serial in registered:
            self.named.external.setdefault(serial, set()).add(("create_device", serial))
        self.named.plan = {
            "dhq_task_devices": task_devices,
            "filler_device": filler_device,
            "configs": configs[:2],
            "firmware_of": firmware_of,
            "command_device": mqtt[0],
            "setting_device": mqtt[1],
            "dhq_tasks_before": {
                d: len((await client.get(f"/_sim/inspect/gateways/{d}")).json()["tasks"])
                for d in task_devices
            },
        }

    async def _open_tasks(self, client: httpx.AsyncClient, devices: list[str]) -> int:
        """Unfinished tasks on the devices that can have them (the others are online: theirs finish)."""
        count = 0
        for device in devices:
            tasks = (await client.get(f"/_sim/inspect/gateways/{device}")).json()["tasks"]
            count += sum(1 for t in tasks if t["state"] in ("queued", "pending"))
        return count

    # -- the technician ------------------------------------------------------------------------
    async def queue(self, op: str, writes: Any, counter: int) -> None:
        """Queue one of ``OPS`` through the product's write API."""
        rng, plan = self.rng, self.named.plan
        if op == "dhq_task":
            device = rng.choice(plan["dhq_task_devices"])
            firmware = plan["firmware_of"].get(device)
            params: dict[str, Any]
            if firmware is not None and rng.random() < 0.4:
                kind, params = "SOFTWARE_UPGRADE", {"firmware_id": firmware}
            else:
                ids = plan["configs"][: rng.choice((1, 2))]
                # As a technician types it: a lower-case type now and then (the cloud shows it upper case).
                kind, params = rng.choice(("INSTALL_CONFIGS", "install_configs")), {"config_ids": ids}
            record = await writes.create_task(device, kind, params, backend="gateways")
            self.plan_action(record.id, "gateways", device, ("task", task_effect(kind, params)))
            self.dhq_creates.append(_Pending(record.id, device))
        elif op == "mqtt_command":
            device = plan["command_device"]
            record = await writes.send_command(device, "identify", {"soak": counter}, backend="live")
            self.plan_action(record.id, "live", device, ("command", counter))
        elif op == "cloud_setting":
            device = plan["setting_device"]
            prop = rng.choice(("soak_interval", "soak_label"))
            value: Any = counter if prop == "soak_interval" else f"label {counter}"
            record = await writes.set_cloud_setting(device, prop, value, backend="live")
            self.plan_action(record.id, "live", device, ("cloud_setting", f"{prop}={value}"))
        elif op in ("group", "group_next"):
            await self._group_step(writes, counter, advance=True if op == "group_next" else None)
        elif op in ("fleet_device", "fleet_delete"):
            await self._device_step(writes, "fleet", counter, delete=True if op == "fleet_delete" else None)
        elif op in ("dhq_device", "dhq_delete"):
            await self._device_step(writes, "gateways", counter, delete=True if op == "dhq_delete" else None)
        else:
            raise ValueError(f"not a lifecycle operation: {op}")

    async def _group_step(self, writes: Any, counter: int, *, advance: bool | None) -> None:
        """A new group, or the next step of one: create, rename, delete (in that order).
        ``advance``: True, the next step of the oldest group not deleted; None, either."""
        open_ = [g for g in self.named.groups if g.stage < 2]
        if not open_ or (advance is None and (len(open_) < 2 or self.rng.random() < 0.3)):
            name = f"soak-grp-{counter}"
            life = GroupLife(name, name)
            self.named.groups.append(life)
            self.named.group_names[name] = name
            record = await writes.create_group("things", name, f"made by the chaos soak ({counter})")
            self.plan_action(record.id, "things", f"group:{name}", ("create_group", name))
            return
        life = open_[0] if advance else self.rng.choice(open_)
        if life.stage == 0:
            new = f"{life.first}-renamed"
            record = await writes.rename_group("things", life.name, new)
            life.name, life.stage = new, 1
            self.named.group_names[new] = life.first
            self.plan_action(record.id, "things", f"group:{life.first}", ("rename_group", new))
        else:
            record = await writes.delete_group("things", life.name)
            life.stage = 2
            self.plan_action(record.id, "things", f"group:{life.first}", ("delete_group", life.name))

    async def _device_step(self, writes: Any, backend: str, counter: int, *, delete: bool | None) -> None:
        """A new device record, or the deletion of one made earlier (never changed after).
        ``delete``: True, delete the oldest one (if any); None, either."""
        alive = [d for d in self.named.new_devices if d.backend == backend and not d.deleted]
        if alive and (delete or (delete is None and self.rng.random() < 0.5)):
            device = alive[0] if delete else self.rng.choice(alive)
            device.deleted = True
            record = await writes.delete_device(backend, device.serial)
            self.plan_action(record.id, backend, device.serial, ("delete_device", device.serial))
            return
        if backend == "fleet":
            serial = f"SOAK-F{self.seed % 10_000}-{counter}"
            fields: dict[str, Any] = {"owner_ref": f"soak-owner-{counter}", "hardware_version": "soak-hw1"}
        else:
            serial = f"SOAK-R{self.seed % 10_000}-{counter}"
            fields = {"uuid": uuid.UUID(int=self.rng.getrandbits(128)).hex}
            self.named.dhq_uuid[fields["uuid"]] = serial
        self.named.new_devices.append(NewDevice(backend, serial))
        record = await writes.create_device(backend, serial, fields)
        self.plan_action(record.id, backend, serial, ("create_device", serial))

    def track_sensor_task(self, action_id: str, device: str) -> None:
        """A mysensor task create the technician may delete once it has finished."""
        self.sensor_creates.append(_Pending(action_id, device))

    async def follow_ups(self, writes: Any, *, settling: bool = False) -> None:
        """Cancel each DeviceHQ task once its create is done; delete some finished mysensor
        tasks (not while settling: cancels must go on then, they make room under the cap)."""
        from fieldtui.core.actions import ActionState

        store = writes.store
        keep: list[_Pending] = []
        for pending in self.dhq_creates:
            record = await store.get(pending.action_id)
            if record is None or record.state is not ActionState.DONE:
                if record is not None and record.last_error and record.last_error.startswith("held"):
                    self.named.held_by_cap.add(record.id)  # seen held by the cap (a glimpse, not a count)
                if record is not None and record.state in (ActionState.FAILED, ActionState.CANCELLED):
                    continue
                keep.append(pending)
                continue
            task_id = str(record.result.get("created_id") or "")
            if not task_id:
                self.violation(f"{record.describe()} is done without the id of the task it made")
                continue
            cancel = await writes.cancel_task(pending.device, task_id, backend="gateways")
            self.plan_action(cancel.id, "gateways", pending.device, ("cancel_task", task_id))
        self.dhq_creates = keep
        if settling:
            return
        keep = []
        for pending in self.sensor_creates:
            record = await store.get(pending.action_id)
            if record is None or record.state in (ActionState.FAILED, ActionState.CANCELLED):
                continue
            finished = time.time() - (record.done_at.timestamp() if record.done_at else time.time())
            if record.state is not ActionState.DONE or finished < SENSOR_TASK_FINISHED_AFTER:
                keep.append(pending)
                continue
            if self.rng.random() < 0.5:
                continue  # kept: the technician deletes about half of them
            task_id = str(record.result.get("created_id") or "")
            if not task_id:
                self.violation(f"{record.describe()} is done without the id of the task it made")
                continue
            self.named.task_sensor[task_id] = pending.device
            delete = await writes.delete_task(pending.device, task_id, backend="sensors")
            self.plan_action(delete.id, "sensors", pending.device, ("delete_task", task_id))
        self.sensor_creates = keep
