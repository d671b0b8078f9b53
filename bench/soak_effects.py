"""The chaos soak's judgement: how the simulator's record shows each action, and what counts.

``bench/soak.py`` queues, through the product's write API (``OutboxWrites``), besides things
statuses, moves and commands, DeviceHQ moves and descriptions, fleet owner updates and mysensor
tasks, these action types (queued by ``bench/soak_lifecycle.py``; read back and checked here,
:class:`Lifecycles`):

* **DeviceHQ tasks** (CREATE_TASK): INSTALL_CONFIGS with one or two app config ids, or
  SOFTWARE_UPGRADE with a firmware of the gateway's family, ids from the account's catalogue;
  on gateways that do not check in (offline ones, or gateways registered for the soak), so a
  task stays unfinished and can be cancelled. Each create, once done, gets its **CANCEL_TASK**
  (also while the soak settles). Another tool fills the account's 25-unfinished-task cap up to
  ``ROOM_UNDER_CAP`` free places first, so a create is held by the cap now and then; the
  cancels make room, and a cancel passes a create held on the same gateway (the engine's rule).
* **mysensor DELETE_TASK** of some of the technician's own tasks once they have finished (a task
  in progress cannot be deleted).
* **MQTT** (``live``) **SEND_COMMAND** ``identify`` with a parameter unique to the action, on one
  device, and **SET_CLOUD_SETTING** of two properties to ever new values, on another (one kind
  per device, so each device's record is one ordered list).
* **things groups**: CREATE_GROUP, then RENAME_GROUP, then DELETE_GROUP of each group the soak
  makes (a name is never reused).
* **device records**: fleet CREATE_DEVICE then (for some) DELETE_DEVICE; DeviceHQ register
  (CREATE_DEVICE) then (for some) DELETE_DEVICE, of new serials. A deleted device is not
  changed after.

Judged by the simulator's own record: the mutation logs (task creates, cancels and deletes,
group creates, renames and deletes, device creates, registers and deletes), ``/_sim/inspect/live``
(each command the device took, each cloud-setting message in order) and, at the end,
``/_sim/inspect`` (and the things group list) for the final state.

Idempotent resends, shown as resends and not counted as doubles (:func:`without_resends`):

* a DeviceHQ description set again to the text it holds (PUT of an attribute);
* a cloud setting set again to the value it holds (an assignment; also what an MQTT QoS 1
  redelivery looks like: the message carries no id the device could drop it by);
* a DeviceHQ task cancelled again (the cloud answers 2xx; a cancelled task stays cancelled);
* a DeviceHQ register of the same serial and uuid again before any delete (the cloud answers
  with the same device; after a delete it would bring the device back: then it is a double).

Everything else repeated in the record is a double: statuses, moves, commands (things by
``transactionId``, MQTT by the unique parameter), task creates, group creates, renames and
deletes, device creates and deletes. Most resends of these never reach the record at all: the
clouds refuse them (a group or device that exists: 409; one that is gone: 404), and only
accepted (2xx) changes are logged.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

THINGS_PREFIX = "/things/prod/v1"
DEVICEHQ_PREFIX = "/devicehq/api/v2"
MYSENSOR_PREFIX = "/mysensor/api"
FLEET_PREFIX = "/fleet/api/v0"

#: (backend or None for any, effect) repeated while the value holds: no change, not a double.
IDEMPOTENT_EFFECTS = frozenset(
    {
        (None, "description"),
        (None, "cloud_setting"),
        ("gateways", "cancel_task"),
        ("gateways", "create_device"),
    }
)
#: Effects that may pass earlier creates on the same device (a cancel or delete passes a create
#: held by DeviceHQ's cap): their order is judged among themselves, the rest among the rest.
MAKES_ROOM = frozenset({"cancel_task", "delete_task"})

Effect = tuple[str, Any]
Key = tuple[str, str]


@dataclass
class Planned:
    """One action the technician queued, with the effect the cloud must show for it."""

    id: str
    backend: str
    device: str
    #: (what, value): ("status", "installed"), ("group", "roof"), ("task", 123), ("cancel_task", id)
    effect: Effect
    #: None: whatever the chaos allows; "failed" / "conflict": the outcome this action must have.
    expect: str | None = None


def norm(device: str) -> str:
    return re.sub(r"[^0-9a-z]", "", device.lower())


def _slot(backend: str, effect: Effect) -> tuple[str, ...] | None:
    """What an effect assigns (a later effect on the same slot replaces it), or None."""
    kind, value = effect
    if kind == "description":
        return ("description",)
    if kind == "cloud_setting":
        return ("cloud_setting", str(value).split("=", 1)[0])
    if kind == "cancel_task":
        return ("cancel_task", str(value))
    if backend == "gateways" and kind in ("create_device", "delete_device"):
        return ("record",)
    return None


def _idempotent(backend: str, kind: str) -> bool:
    return (None, kind) in IDEMPOTENT_EFFECTS or (backend, kind) in IDEMPOTENT_EFFECTS


def without_resends(backend: str, seen: list[Effect]) -> tuple[list[Effect], int]:
    """``seen`` without the idempotent repeats (see the module's docstring), and their number.

    A repeat is dropped only while what it assigns still holds: a description set to A, then
    B, then A again is three changes; A then A is one, sent twice."""
    holds: dict[tuple[str, ...], Effect] = {}
    out: list[Effect] = []
    resends = 0
    for effect in seen:
        slot = _slot(backend, effect)
        if slot is not None and holds.get(slot) == effect and _idempotent(backend, effect[0]):
            resends += 1
            continue
        if slot is not None:
            holds[slot] = effect
        out.append(effect)
    return out, resends


def same_order(seen: list[Effect], expected: list[Effect]) -> bool:
    """In order: the cancels and deletes among themselves, everything else among itself (a
    cancel may pass a create held by the cap; nothing else may pass anything)."""
    for room in (True, False):
        if [e for e in seen if (e[0] in MAKES_ROOM) == room] != [
            e for e in expected if (e[0] in MAKES_ROOM) == room
        ]:
            return False
    return True


def task_effect(kind: str, params: Mapping[str, Any]) -> str:
    """A DeviceHQ task create as the cloud's record shows it: ``TYPE:ids`` or ``TYPE:firmware``."""
    ids = params.get("config_ids")
    if ids is not None:
        listed = [ids] if isinstance(ids, str) else [str(i) for i in ids]
        return f"{kind.upper()}:{','.join(listed)}"
    return f"{kind.upper()}:{params.get('firmware_id')}"


@dataclass
class GroupLife:
    """A things group the soak makes: its first name (the key), its name now, its stage."""

    first: str
    name: str
    #: 0 create queued, 1 rename queued, 2 delete queued
    stage: int = 0


@dataclass
class NewDevice:
    """A device record the soak makes (fleet create, DeviceHQ register) and whether it asked to delete it."""

    backend: str
    serial: str
    deleted: bool = False


@dataclass
class Lifecycles:
    """What the soak's lifecycle actions named, to read the clouds' records by (filled in by
    ``soak_lifecycle.LifecycleActions``): devices, groups, task ids, and what another tool did."""

    #: Devices and catalogue ids picked before the chaos (``LifecycleActions.prepare``).
    plan: dict[str, Any] = field(default_factory=dict)
    #: Effects on the clouds made by another tool (the cap's filler tasks), per device.
    external: dict[str, set[Effect]] = field(default_factory=dict)
    groups: list[GroupLife] = field(default_factory=list)
    #: Every name a soak group had -> its first name.
    group_names: dict[str, str] = field(default_factory=dict)
    new_devices: list[NewDevice] = field(default_factory=list)
    #: mysensor task id -> sensor serial, of the tasks the technician deletes.
    task_sensor: dict[str, str] = field(default_factory=dict)
    #: DeviceHQ uuid -> serial, of the gateways the soak registers.
    dhq_uuid: dict[str, str] = field(default_factory=dict)
    #: DeviceHQ task creates seen held by the account's cap while the technician watched.
    held_by_cap: set[str] = field(default_factory=set)

    # -- the simulator's record ----------------------------------------------------------------
    async def observe(
        self,
        client: httpx.AsyncClient,
        logs: Mapping[str, list[dict[str, Any]]],
        out: dict[Key, list[Effect]],
    ) -> None:
        """Add what the clouds' records show of these types to ``out``, per (backend, device), in order."""
        gateways = {norm(d): d for d in [*(await _ids(client, "devicehq")), *self._registered()]}

        def gateway(raw: str) -> str:
            return self.dhq_uuid.get(raw.lower(), gateways.get(norm(raw), raw))

        for m in logs["gateways"]:
            path, method, body = m["path"], m["method"], m["body"] or {}
            if method == "POST" and (
                match := re.fullmatch(rf"{DEVICEHQ_PREFIX}/devices/([^/]+)/tasks", path)
            ):
                attributes = (body.get("data") or {}).get("attributes") or {}
                kind = str(attributes.get("type", ""))
                out[("gateways", gateway(match.group(1)))].append(("task", task_effect(kind, attributes)))
            elif match := re.fullmatch(rf"{DEVICEHQ_PREFIX}/devices/([^/]+)/tasks/([^/]+)/cancel", path):
                out[("gateways", gateway(match.group(1)))].append(("cancel_task", match.group(2)))
            elif method == "DELETE" and (
                match := re.fullmatch(rf"{DEVICEHQ_PREFIX}/devices/([^/]+)/tasks/([^/]+)", path)
            ):
                out[("gateways", gateway(match.group(1)))].append(("delete_task", match.group(2)))
            elif method == "POST" and path == f"{DEVICEHQ_PREFIX}/devices/register":
                fields = (
                    body.get("data", {}).get("attributes", body)
                    if isinstance(body.get("data"), dict)
                    else body
                )
                serial = str(fields.get("serial"))
                out[("gateways", serial)].append(("create_device", serial))
            elif method == "DELETE" and (match := re.fullmatch(rf"{DEVICEHQ_PREFIX}/devices/([^/]+)", path)):
                serial = gateway(match.group(1))
                out[("gateways", serial)].append(("delete_device", serial))
        for m in logs["sensors"]:
            match = re.fullmatch(rf"{MYSENSOR_PREFIX}/tasks/([^/]+)", m["path"])
            if match and m["method"] == "DELETE":
                task_id = match.group(1)
                out[("sensors", self.task_sensor.get(task_id, f"task:{task_id}"))].append(
                    ("delete_task", task_id)
                )
        for m in logs["fleet"]:
            path, method, body = m["path"], m["method"], m["body"] or {}
            if method == "POST" and re.fullmatch(rf"{FLEET_PREFIX}/projects/[^/]+/devices", path):
                serial = str(body.get("device_serial"))
                out[("fleet", serial)].append(("create_device", serial))
            elif method == "DELETE" and (
                match := re.fullmatch(rf"{FLEET_PREFIX}/projects/[^/]+/devices/([^/]+)", path)
            ):
                out[("fleet", match.group(1))].append(("delete_device", match.group(1)))
        for m in logs["things"]:
            path, method, body = m["path"], m["method"], m["body"] or {}
            if method == "POST" and path.rstrip("/") == f"{THINGS_PREFIX}/groups":
                name = str(body.get("group_id"))
                out[("things", f"group:{self.group_names.get(name, name)}")].append(("create_group", name))
            elif method == "POST" and (
                match := re.fullmatch(rf"{THINGS_PREFIX}/groups/([^/]+)/rename", path)
            ):
                old = match.group(1)
                key = ("things", f"group:{self.group_names.get(old, old)}")
                out[key].append(("rename_group", str(body.get("group_id"))))
            elif method == "DELETE" and (match := re.fullmatch(rf"{THINGS_PREFIX}/groups/([^/]+)", path)):
                name = match.group(1)
                out[("things", f"group:{self.group_names.get(name, name)}")].append(("delete_group", name))
        if not self.plan:
            return
        commands = (await client.get(f"/_sim/inspect/live/{self.plan['command_device']}")).json()["commands"]
        for command in commands:
            parameters = command.get("parameters") or {}
            out[("live", self.plan["command_device"])].append(
                ("command", parameters.get("soak", command["name"]))
            )
        shown = (await client.get(f"/_sim/inspect/live/{self.plan['setting_device']}")).json()
        for setting in shown["cloud_settings_received"]:
            effect = ("cloud_setting", f"{setting['property']}={setting['value']}")
            out[("live", self.plan["setting_device"])].append(effect)

    def _registered(self) -> list[str]:
        return [d.serial for d in self.new_devices if d.backend == "gateways"] + list(self.external)

    # -- the final state ------------------------------------------------------------------------
    async def check_final_state(
        self,
        client: httpx.AsyncClient,
        loaded: Any,
        by_device: Mapping[Key, list[Planned]],
        records: Mapping[str, Any],
        violation: Callable[[str], None],
    ) -> None:
        """What the clouds show at the end agrees with the last applied action of each kind."""
        from fieldtui.connectors.registry import build_connector
        from fieldtui.core.actions import ActionState

        def done(key: Key) -> list[Effect]:
            return [
                p.effect
                for p in by_device.get(key, [])
                if (r := records.get(p.id)) is not None and r.state is ActionState.DONE
            ]

        for device in self.plan.get("dhq_task_devices", []):
            tasks = {
                t["id"]: t for t in (await client.get(f"/_sim/inspect/gateways/{device}")).json()["tasks"]
            }
            effects = done(("gateways", device))
            created = [
                str(r.result.get("created_id"))
                for p in by_device.get(("gateways", device), [])
                if p.effect[0] == "task"
                and (r := records.get(p.id)) is not None
                and r.state is ActionState.DONE
            ]
            cancelled = {str(v) for k, v in effects if k == "cancel_task"}
            want = self.plan["dhq_tasks_before"][device] + len(created)
            if len(tasks) != want:
                violation(f"gateways {device}: {len(tasks)} tasks, expected {want}")
            for task_id in created:
                state = tasks.get(task_id, {}).get("state")
                expected = "cancelled" if task_id in cancelled else "queued"
                if state != expected:
                    violation(f"gateways {device}: task {task_id} is {state}, expected {expected}")
        for (backend, device), planned in by_device.items():
            if backend == "sensors":
                for kind, task_id in done((backend, device)):
                    if kind != "delete_task":
                        continue
                    tasks = (await client.get(f"/_sim/inspect/sensors/{device}")).json()["tasks"]
                    if any(str(t["id"]) == str(task_id) for t in tasks):
                        violation(f"sensors {device}: task {task_id} is still there after its delete")
            elif backend in ("fleet", "gateways") and any(p.effect[0] == "create_device" for p in planned):
                await self._check_record(client, backend, device, done((backend, device)), violation)
        setting_device = self.plan.get("setting_device")
        if setting_device:
            last: dict[str, str] = {}
            for kind, value in done(("live", setting_device)):
                if kind == "cloud_setting":
                    prop, _, text = str(value).partition("=")
                    last[prop] = text
            shown = (await client.get(f"/_sim/inspect/live/{setting_device}")).json()["cloud_settings"]
            for prop, text in last.items():
                if str(shown.get(prop)) != text:
                    violation(f"live {setting_device}: {prop} is {shown.get(prop)!r}, expected {text!r}")
        if self.groups:
            from fieldtui.secrets import get_secret

            things: Any = build_connector(
                "things", loaded.backends["things"], get_secret(loaded.profile_name, "things")
            )
            async with things:
                names = {g.id for g in await things.list_groups()}
            for life in self.groups:
                effects = done(("things", f"group:{life.first}"))
                want = None
                for kind, value in effects:
                    want = None if kind == "delete_group" else value
                ours = {life.first, f"{life.first}-renamed"} & names
                if ours != ({want} if want else set()):
                    violation(f"things group {life.first}: the cloud has {sorted(ours)}, expected {want!r}")

    async def _check_record(
        self,
        client: httpx.AsyncClient,
        backend: str,
        serial: str,
        effects: list[Effect],
        violation: Callable[[str], None],
    ) -> None:
        exists = bool(effects) and effects[-1][0] == "create_device"
        response = await client.get(f"/_sim/inspect/{backend}/{serial}")
        if backend == "gateways" and response.status_code == 200:
            shown = not response.json()["deleted"]
        else:
            shown = response.status_code == 200
        if shown != exists:
            violation(
                f"{backend} {serial}: {'there' if shown else 'not there'} at the end, expected "
                f"{'there' if exists else 'not there'} after {[k for k, _ in effects] or 'nothing done'}"
            )


async def _ids(client: httpx.AsyncClient, kind: str) -> list[str]:
    return [r["id"] for r in (await client.get(f"/_sim/fleet?kind={kind}")).json()]


def count_lost_and_doubled(
    seen: list[Effect], expected: list[Effect]
) -> tuple[Counter[Effect], Counter[Effect]]:
    """(applied more often than done, done but never applied), by effect."""
    return Counter(seen) - Counter(expected), Counter(expected) - Counter(seen)
