"""The fake's clouds: five backends as the simulator's written config names them, and a small
fleet that holds every case a screen must show (a twin in two clouds on each pair, an offline
device, a device with alerts, tasks, commands and an installation history with who and when).

Capabilities and declarations come from the real connectors (:func:`declared` over each
connector class's own ``capabilities``), so the fake never offers what a cloud does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fieldtui.connectors.base import Connector
from fieldtui.connectors.declarations import declared
from fieldtui.connectors.devicehq import DeviceHQConnector
from fieldtui.connectors.fleet import FleetConnector
from fieldtui.connectors.mqtt import MqttConnector
from fieldtui.connectors.mysensor import MySensorConnector
from fieldtui.connectors.things import ThingsConnector
from fieldtui.core.catalogue import CatalogueItem
from fieldtui.core.models import (
    BackendKind,
    Device,
    Group,
    HistoryEntry,
    HistoryKind,
    InstallationStatus,
    Location,
    Task,
    TaskState,
)
from fieldtui.service.api import BackendInfo

#: The instant the fake's clock stands at unless told otherwise: the UI tests' frozen instant
#: (2026-01-05 08:10 UTC), so snapshots over the fake and over the frozen simulator agree.
FIXED_NOW = datetime(2026, 1, 5, 8, 10, tzinfo=UTC)

#: The things client id: the "who" of the installation changes this fieldtui makes.
THINGS_CLIENT = "installer-7"

_CONNECTORS: dict[str, type[Connector]] = {
    "sensors": MySensorConnector,
    "things": ThingsConnector,
    "gateways": DeviceHQConnector,
    "fleet": FleetConnector,
    "live": MqttConnector,
}


class Ids:
    """The fake fleet's device ids, named for what a test needs of them."""

    #: mysensor only, with a firmware task queued.
    SENSOR = "MS2308A1B2C3"
    #: things only, installed, with an installation history (who, when) and a commands log.
    THING = "TSPD04A1B00001234"
    #: things only, with alerts and a low battery.
    ALERTING = "TSPD04A1B00005678"
    #: A DeviceHQ gateway also a things gateway: firmware and group differ between the two.
    GATEWAY = "19023480"
    #: An MQTT device also in the fleet cloud: firmware and group differ between the two.
    MQTT_TWIN = "aq-3f2a91"
    #: fleet only, not heard from for three days.
    OFFLINE = "HWRV00012345"

    ALL = (SENSOR, THING, ALERTING, GATEWAY, MQTT_TWIN, OFFLINE)


def backend_infos() -> list[BackendInfo]:
    """The five configured clouds, in the simulator's config order, as the session reports them."""
    infos = []
    for name, connector_class in _CONNECTORS.items():
        declarations = declared(_shim(name, connector_class))
        infos.append(
            BackendInfo(
                name=name,
                kind=connector_class.kind,
                capabilities=connector_class.capabilities,
                task_kinds=declarations.task_kinds,
                command_kinds=declarations.command_kinds,
                group_rules=declarations.group_rules,
            )
        )
    return infos


def _shim(name: str, connector_class: type[Connector]) -> Connector:
    """A connector with the real class's kind and capabilities and no I/O at all: what
    :func:`declared` reads, without building a client."""

    class Declaring(Connector):
        kind = connector_class.kind
        capabilities = connector_class.capabilities

        async def aclose(self) -> None:
            return None

        async def probe(self) -> None:
            raise NotImplementedError("the fake's declarations do no I/O")

        async def get_device(self, device_id: str) -> Device:
            raise NotImplementedError("the fake's declarations do no I/O")

    return Declaring(name)


@dataclass
class FleetData:
    """What the fake clouds hold: each backend's copy of each device, tasks, history, groups."""

    #: device id -> backend -> that cloud's copy.
    copies: dict[str, dict[str, Device]]
    #: (backend, device id) -> tasks (MQTT and things commands are tasks too, as the session shows them).
    tasks: dict[tuple[str, str], list[Task]]
    #: device id -> installation changes and check-ins (tasks are added from ``tasks``).
    events: dict[str, list[HistoryEntry]]
    #: backend -> its groups.
    groups: dict[str, list[Group]]
    #: backend -> the catalogue lists it serves (DeviceHQ only), by source name.
    catalogues: dict[str, dict[str, list[CatalogueItem]]] = field(default_factory=dict)


def _device(backend: str, kind: BackendKind, device_id: str, **fields: Any) -> Device:
    return Device(id=device_id, backend=backend, kind=kind, **fields)


def sample_fleet(now: datetime) -> FleetData:
    """The fake fleet, its times relative to ``now``."""

    def ago(**kw: float) -> datetime:
        return now - timedelta(**kw)

    things, gateways, fleet = "things", "gateways", "fleet"
    copies: dict[str, dict[str, Device]] = {
        Ids.SENSOR: {
            "sensors": _device(
                "sensors",
                BackendKind.MYSENSOR,
                Ids.SENSOR,
                name="Boiler room sensor",
                firmware="1.4.2",
                online=True,
                last_seen=ago(minutes=3),
                status="Online",
            )
        },
        Ids.THING: {
            things: _device(
                things,
                BackendKind.THINGS,
                Ids.THING,
                name="Plant roof air 1",
                firmware="2023.02.20.0_ts_pod4wp12",
                online=True,
                last_seen=ago(minutes=1),
                battery=87.0,
                location=Location(lat=60.1699, lon=24.9384),
                group="plant-roof",
                installation_status=InstallationStatus.INSTALLED,
            )
        },
        Ids.ALERTING: {
            things: _device(
                things,
                BackendKind.THINGS,
                Ids.ALERTING,
                name="Depot basement leak",
                firmware="2021.04.02.1_ts_pod3wp40",
                online=True,
                last_seen=ago(minutes=9),
                battery=7.0,
                group="depot-basement",
                installation_status=InstallationStatus.INSTALLED,
                alerts=("battery low", "water detected"),
            )
        },
        Ids.GATEWAY: {
            things: _device(
                things,
                BackendKind.THINGS,
                Ids.GATEWAY,
                name="Tower gateway",
                model="gateway",
                firmware="2023.02.20.0_ts_pod4wp12",
                online=True,
                last_seen=ago(minutes=2),
                location=Location(lat=60.1708, lon=24.9410),
                group="tower-lobby",
                installation_status=InstallationStatus.INSTALLED,
            ),
            gateways: _device(
                gateways,
                BackendKind.DEVICEHQ,
                Ids.GATEWAY,
                name="Tower gateway",
                model="MTCDT-H5-210L",
                firmware="5.3.3",
                online=True,
                last_seen=ago(minutes=4),
                rssi=-71.0,
                group="north",
            ),
        },
        Ids.MQTT_TWIN: {
            "live": _device(
                "live",
                BackendKind.MQTT,
                Ids.MQTT_TWIN,
                name="Classroom 2 air",
                model="air-quality-v3",
                firmware="3.1.0",
                online=True,
                last_seen=ago(seconds=20),
                battery=64.0,
            ),
            fleet: _device(
                fleet,
                BackendKind.FLEET,
                Ids.MQTT_TWIN,
                name="Classroom 2 air",
                model="hwrev2",
                firmware="2.0.0",
                online=True,
                last_seen=ago(minutes=5),
                group="beta",
            ),
        },
        Ids.OFFLINE: {
            fleet: _device(
                fleet,
                BackendKind.FLEET,
                Ids.OFFLINE,
                name="Harbour fan 4",
                model="hwrev1",
                firmware="1.2.4",
                online=False,
                last_seen=ago(days=3),
                group="stable",
            )
        },
    }

    def task(
        backend: str, device: str, task_id: str, kind: str, state: TaskState, raw_state: str, **kw: Any
    ) -> Task:
        return Task(
            backend=backend, device=device, id=task_id, type=kind, state=state, raw_state=raw_state, **kw
        )

    tasks = {
        (gateways, Ids.GATEWAY): [
            task(
                gateways,
                Ids.GATEWAY,
                "T-2001",
                "CONFIG_UPGRADE",
                TaskState.RUNNING,
                "IN_PROGRESS",
                attempts=1,
                created=ago(minutes=30),
                updated=ago(minutes=10),
            ),
            task(
                gateways,
                Ids.GATEWAY,
                "T-1998",
                "SOFTWARE_UPGRADE",
                TaskState.DONE,
                "SUCCESS",
                attempts=1,
                created=ago(days=2),
                updated=ago(days=2, minutes=-20),
            ),
        ],
        ("sensors", Ids.SENSOR): [
            task(
                "sensors",
                Ids.SENSOR,
                "4411",
                "update_firmware",
                TaskState.QUEUED,
                "pending",
                created=ago(hours=1),
                updated=ago(hours=1),
            )
        ],
        ("live", Ids.MQTT_TWIN): [
            task(
                "live",
                Ids.MQTT_TWIN,
                "c-77",
                "reboot",
                TaskState.DONE,
                "done",
                created=ago(hours=5),
                updated=ago(hours=5),
                raw={"parameters": {}},
            )
        ],
        (things, Ids.THING): [
            task(
                things,
                Ids.THING,
                "81234",
                "1500",
                TaskState.DONE,
                "delivered",
                created=ago(days=1),
                updated=ago(days=1),
                raw={"parameters": {"tsmEv": 1}},
            )
        ],
    }

    def installed(device: str, status: InstallationStatus, who: str, when: datetime) -> HistoryEntry:
        return HistoryEntry(
            device=device,
            backend=things,
            kind=HistoryKind.INSTALLATION,
            timestamp=when,
            summary=status.value,
            who=who,
        )

    events = {
        Ids.THING: [
            installed(Ids.THING, InstallationStatus.NEW, "warehouse-2", ago(days=30)),
            installed(Ids.THING, InstallationStatus.INSTALLED, "installer-3", ago(days=2)),
        ],
        Ids.ALERTING: [installed(Ids.ALERTING, InstallationStatus.INSTALLED, "installer-3", ago(days=12))],
        Ids.GATEWAY: [
            installed(Ids.GATEWAY, InstallationStatus.INSTALLED, "installer-5", ago(days=40)),
            HistoryEntry(
                device=Ids.GATEWAY,
                backend=gateways,
                kind=HistoryKind.CHECKIN,
                timestamp=ago(minutes=4),
                summary="check-in ok",
                detail="2.1 s",
            ),
            HistoryEntry(
                device=Ids.GATEWAY,
                backend=gateways,
                kind=HistoryKind.CHECKIN,
                timestamp=ago(minutes=64),
                summary="check-in ok",
                detail="1.8 s",
            ),
        ],
    }
    groups = {
        things: [
            Group(backend=things, id="plant-roof", description="Plant, roof", member_count=1),
            Group(backend=things, id="depot-basement", description="Depot, basement", member_count=1),
            Group(backend=things, id="tower-lobby", description="Tower, lobby", member_count=1),
        ],
        gateways: [Group(backend=gateways, id="north", member_count=1)],
        fleet: [
            Group(backend=fleet, id="beta", description="Beta Channel", member_count=1),
            Group(backend=fleet, id="stable", description="Stable", member_count=1),
            Group(backend=fleet, id="canary", description="Canary", member_count=0),
        ],
    }
    app_versions = (CatalogueItem("1.2.0", "1.2.0 · stable"), CatalogueItem("1.3.0-rc1", "1.3.0-rc1 · beta"))
    app_configs = (CatalogueItem("cfg-11", "1.2.0 · default"),)
    app = CatalogueItem("app-7", "lora-forwarder", versions=app_versions, configs=app_configs)
    catalogues = {
        gateways: {
            "device_firmwares": [
                CatalogueItem("fw-533", "MTCDT firmware · 5.3.3 · MTCDT", model="MTCDT"),
                CatalogueItem("fw-540", "MTCDT firmware · 5.4.0 · MTCDT", model="MTCDT"),
            ],
            "radio_firmwares": [CatalogueItem("rf-12", "LoRa radio · 1.2 · MTAC-LORA")],
            "device_configurations": [CatalogueItem("conf-3", "north-site defaults · MTCDT", model="MTCDT")],
            "apps": [app],
            "app": [app],
            "device_apps": [CatalogueItem("app-7", "lora-forwarder · 1.2.0 · installed")],
        }
    }
    return FleetData(copies=copies, tasks=tasks, events=events, groups=groups, catalogues=catalogues)
