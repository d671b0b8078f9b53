"""A deterministic simulated fleet: the same ``seed`` and ``size`` give the same devices.

Each :class:`SimDevice` is one device as one cloud holds it. A physical device known to two
clouds appears twice with the same ``id`` (a DeviceHQ gateway that is also a things gateway,
an MQTT device also registered in the fleet API), so cross-cloud lookup means something.
The cloud modules turn these into vendor payloads; nothing here knows a wire format.
"""

from __future__ import annotations

import random
import string
import time
from dataclasses import dataclass, field
from typing import Any

#: Backend names used by the simulator's written config, by kind (DESIGN.md's example names).
BACKEND_NAMES: dict[str, str] = {
    "mysensor": "sensors",
    "things": "things",
    "devicehq": "gateways",
    "mqtt": "live",
    "fleet": "fleet",
}

#: Share of the fleet per cloud (before cross-cloud duplicates are added).
_SHARES: tuple[tuple[str, float], ...] = (
    ("mysensor", 0.20),
    ("things", 0.30),
    ("devicehq", 0.15),
    ("mqtt", 0.15),
    ("fleet", 0.20),
)

INSTALLATION_STATUSES = ("new", "installed", "uninstalled", "quarantine", "retired")
_STATUS_WEIGHTS = (0.15, 0.65, 0.08, 0.07, 0.05)
_SITES = ("plant", "depot", "tower", "mall", "campus", "harbour", "school", "clinic")
_AREAS = ("basement", "roof", "floor1", "floor2", "floor3", "boiler-room", "car-park", "lobby")
_DHQ_PRODUCTS = ("MTCDT-H5-210L", "MTCDT-H5-210A", "MTCAP-LEU1-868-001L", "MTR-H5", "MTR-G3")
_DHQ_FIRMWARES = ("3.0.9", "4.8", "5.1.2", "5.3.0", "5.3.3")
_THINGS_VERSIONS = ("2019.11.15.2_ts_pod3wp34", "2021.04.02.1_ts_pod3wp40", "2023.02.20.0_ts_pod4wp12")
_FLEET_HW = ("hwrev1", "hwrev2", "hwrev3")
_FLEET_RELEASES = ("1.2.3", "1.2.4", "1.3.0", "2.0.0")
_FLEET_COHORTS = (("Beta Channel", "beta"), ("Stable", "stable"), ("Canary", "canary"))
_MQTT_MODELS = ("classroom-display-v2", "air-quality-v3", "fan-controller-v1")


@dataclass(slots=True)
class SimDevice:
    id: str
    kind: str  # the cloud kind: mysensor | things | devicehq | mqtt | fleet
    backend: str  # the backend name in the simulator's written config
    name: str
    model: str | None
    firmware: str
    online: bool
    last_seen: float  # unix seconds
    battery: int | None
    rssi: int | None
    lat: float | None
    lon: float | None
    group: str | None
    installation_status: str | None
    alerting: bool
    created: float
    #: Cloud-specific extras (uuid for DeviceHQ, owner_ref for fleet, file ids, ...).
    extra: dict[str, Any] = field(default_factory=dict)
    #: Ids of the same physical device in other clouds, as (kind, id).
    also_in: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """What ``GET /_sim/fleet`` shows for this device."""
        return {
            "id": self.id,
            "kind": self.kind,
            "backend": self.backend,
            "name": self.name,
            "online": self.online,
            "alerting": self.alerting,
            "group": self.group,
            "installation_status": self.installation_status,
            "also_in": [kind for kind, _ in self.also_in],
        }


@dataclass(slots=True)
class Fleet:
    seed: int
    size: int
    started: float
    devices: list[SimDevice]
    groups: dict[str, str]  # things deployment group id -> description
    by_kind: dict[str, dict[str, SimDevice]] = field(default_factory=dict)

    def of(self, kind: str) -> dict[str, SimDevice]:
        """Devices of one cloud by id (insertion ordered, deterministic)."""
        return self.by_kind.setdefault(kind, {})


def _tuid(rng: random.Random) -> str:
    letters = string.ascii_uppercase
    return (
        "".join(rng.choice(letters) for _ in range(4))
        + f"{rng.randint(0, 9):02d}"
        + rng.choice(letters)
        + str(rng.randint(0, 9))
        + rng.choice(letters)
        + f"{rng.randint(0, 99_999_999):08d}"
    )


def _fleet_serial(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + f"{rng.randint(0, 99_999_999):08d}"


def generate_fleet(seed: int = 1, size: int = 200, *, now: float | None = None) -> Fleet:
    """Build ``size`` devices (plus cross-cloud duplicates) deterministically from ``seed``.

    ``now`` anchors last-seen times; the device set and every attribute but the absolute
    times depend on ``seed`` and ``size`` only.
    """
    rng = random.Random(seed)
    started = time.time() if now is None else now
    n_groups = max(4, size // 25)
    groups: dict[str, str] = {}
    while len(groups) < n_groups:
        gid = f"{rng.choice(_SITES)}-{rng.randint(1, 99):02d}-{rng.choice(_AREAS)}"
        groups.setdefault(gid, f"Deployment at {gid.replace('-', ' ')}")
    group_ids = list(groups)

    fleet = Fleet(seed=seed, size=size, started=started, devices=[], groups=groups)
    used: set[tuple[str, str]] = set()

    def add(device: SimDevice) -> None:
        fleet.devices.append(device)
        fleet.of(device.kind)[device.id] = device

    counts = [(kind, int(size * share)) for kind, share in _SHARES]
    counts[0] = (counts[0][0], counts[0][1] + size - sum(c for _, c in counts))
    index = 0
    for kind, count in counts:
        for _ in range(count):
            index += 1
            online = rng.random() > 0.12
            last_seen = started - (rng.uniform(5, 240) if online else rng.uniform(3_600, 30 * 86_400))
            created = started - rng.uniform(30 * 86_400, 900 * 86_400)
            alerting = rng.random() < 0.08
            lat = round(rng.uniform(35.0, 69.0), 5)
            lon = round(rng.uniform(-9.0, 30.0), 5)
            while True:
                if kind == "mysensor":
                    ident = str(rng.randint(100_000_000_000_000, 999_999_999_999_999))
                elif kind == "things":
                    ident = _tuid(rng)
                elif kind == "devicehq":
                    ident = str(rng.randint(990_000_000, 999_999_999))
                elif kind == "mqtt":
                    ident = "dev-" + f"{rng.getrandbits(48):012x}"
                else:
                    ident = _fleet_serial(rng)
                if (kind, ident) not in used:
                    used.add((kind, ident))
                    break
            status = rng.choices(INSTALLATION_STATUSES, _STATUS_WEIGHTS)[0]
            common: dict[str, Any] = {
                "id": ident,
                "kind": kind,
                "backend": BACKEND_NAMES[kind],
                "online": online,
                "last_seen": last_seen,
                "alerting": alerting,
                "created": created,
            }
            if kind == "mysensor":
                day = rng.randint(1, 28)
                device = SimDevice(
                    **common,
                    name=f"Sensor {ident[-6:]}",
                    model=None,
                    firmware=f"FW:{day:02d}-{rng.randint(1, 12):02d}-{rng.choice((2022, 2023, 2024))}:{rng.randint(1, 9):02d}",
                    battery=None,
                    rssi=None,
                    lat=None,
                    lon=None,
                    group=None,
                    installation_status=None,
                    extra={
                        "configuration": f"G1_{ident}_2022-09-08T10:02:15.477317252.cfg",
                        "status_id": rng.choice((1, 1, 1, 2, 3)),
                    },
                )
            elif kind == "things":
                device = SimDevice(
                    **common,
                    name=f"Thing {ident[-5:]}",
                    model="pod3",
                    firmware=rng.choice(_THINGS_VERSIONS),
                    battery=rng.randint(3, 100),
                    rssi=None,
                    lat=lat,
                    lon=lon,
                    group=rng.choice(group_ids) if rng.random() > 0.1 else "unassigned",
                    installation_status=status,
                    extra={"gateway_tuid": None},
                )
            elif kind == "devicehq":
                device = SimDevice(
                    **common,
                    name=f"Gateway {ident}",
                    model=rng.choice(_DHQ_PRODUCTS),
                    firmware=rng.choice(_DHQ_FIRMWARES),
                    battery=None,
                    rssi=rng.randint(-115, -55),
                    lat=lat,
                    lon=lon,
                    group=f"Group {rng.randint(0, max(1, size // 40)):03d}",
                    installation_status=None,
                    extra={
                        "uuid": f"{rng.getrandbits(128):032x}",
                        "provider": rng.choice(("AT&T", "Verizon", "Vodafone")),
                    },
                )
            elif kind == "mqtt":
                device = SimDevice(
                    **common,
                    name=f"{rng.choice(('Interactive Class', 'Lab', 'Lobby', 'Office'))} {index % 1000}",
                    model=rng.choice(_MQTT_MODELS),
                    firmware=f"1.0.{rng.randint(3, 8)}",
                    battery=None,
                    rssi=rng.randint(-90, -40),
                    lat=lat,
                    lon=lon,
                    group=None,
                    installation_status=None,
                    extra={"access_key": None},
                )
            else:
                cohort = rng.choice(_FLEET_COHORTS)
                device = SimDevice(
                    **common,
                    name=f"Unit {ident}",
                    model=rng.choice(_FLEET_HW),
                    firmware=rng.choice(_FLEET_RELEASES),
                    battery=None,
                    rssi=None,
                    lat=None,
                    lon=None,
                    group=cohort[1],
                    installation_status=None,
                    extra={
                        "owner_ref": f"employee_{rng.randint(1, 9999):04d}",
                        "cohort_name": cohort[0],
                        "numeric_id": index,
                    },
                )
            add(device)

    # Document 003 promises no retained message: a registered MQTT device that is offline and
    # never published must exist in every fleet large enough (the last one, when chance made none).
    mqtt_devices = list(fleet.of("mqtt").values())
    if len(mqtt_devices) >= 2 and all(d.online for d in mqtt_devices):
        mqtt_devices[-1].online = False
        mqtt_devices[-1].last_seen = started - 7 * 86_400  # no rng draw: the rest stays as it was

    # Cross-cloud duplicates: a third of DeviceHQ gateways are also things gateways, and half
    # of the MQTT devices are also registered in the fleet API, under the same id.
    things_gateways: list[str] = []
    for gw in list(fleet.of("devicehq").values())[::3]:
        twin = SimDevice(
            id=gw.id,
            kind="things",
            backend=BACKEND_NAMES["things"],
            name=gw.name,
            model="gateway",
            firmware=rng.choice(_THINGS_VERSIONS),
            online=gw.online,
            last_seen=gw.last_seen,
            battery=None,
            rssi=None,
            lat=gw.lat,
            lon=gw.lon,
            group=rng.choice(group_ids),
            installation_status="installed",
            alerting=gw.alerting,
            created=gw.created,
            extra={"gateway_tuid": None, "is_gateway": True},
        )
        twin.also_in.append(("devicehq", gw.id))
        gw.also_in.append(("things", gw.id))
        add(twin)
        things_gateways.append(gw.id)
    if things_gateways:
        for thing in fleet.of("things").values():
            if not thing.extra.get("is_gateway"):
                thing.extra["gateway_tuid"] = rng.choice(things_gateways)
    for dev in list(fleet.of("mqtt").values())[::2]:
        cohort = rng.choice(_FLEET_COHORTS)
        twin = SimDevice(
            id=dev.id,
            kind="fleet",
            backend=BACKEND_NAMES["fleet"],
            name=dev.name,
            model=rng.choice(_FLEET_HW),
            firmware=rng.choice(_FLEET_RELEASES),
            online=dev.online,
            last_seen=dev.last_seen,
            battery=None,
            rssi=None,
            lat=None,
            lon=None,
            group=cohort[1],
            installation_status=None,
            alerting=dev.alerting,
            created=dev.created,
            extra={
                "owner_ref": f"employee_{rng.randint(1, 9999):04d}",
                "cohort_name": cohort[0],
                "numeric_id": len(fleet.devices) + 1,
            },
        )
        twin.also_in.append(("mqtt", dev.id))
        dev.also_in.append(("fleet", dev.id))
        add(twin)
    return fleet
