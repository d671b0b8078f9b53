"""What one simulated MQTT device knows about itself, and the payloads document 003 gives it.

Nothing here does I/O: :mod:`fieldtui.sim.mqtt.devices` moves these payloads over MQTT.
Every device's starting state (config, licence, metric baselines) comes from a random
generator seeded with the fleet seed and the device id, so it is the same whichever order
devices are first touched in, and a 100,000-device fleet costs nothing until it is asked.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from fieldtui.sim.fleet import SimDevice

#: The firmware every simulated model should run; older devices announce it on ``.../firmware``.
LATEST_FIRMWARE = "1.0.8"
LATEST_FIRMWARE_FILE_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, f"fieldtui-sim/firmware/{LATEST_FIRMWARE}"))

#: Command names a device executes; anything else ends in ``error``.
KNOWN_COMMANDS = ("identify", "reboot", "set_config", "update_firmware")
COMMAND_STATUSES = ("pending", "in_progress", "done", "error")

#: (name, lat, lon, UTC offset in minutes): the space's country is the nearest of these.
_COUNTRIES: tuple[tuple[str, float, float, int], ...] = (
    ("Portugal", 39.4, -8.2, 0),
    ("Spain", 40.4, -3.7, 60),
    ("France", 46.6, 2.2, 60),
    ("United Kingdom", 55.4, -3.4, 0),
    ("Germany", 51.165691, 10.451526, 60),
    ("Italy", 41.9, 12.6, 60),
    ("Austria", 47.5, 14.55, 60),
    ("Poland", 51.9, 19.1, 60),
    ("Norway", 60.5, 8.5, 60),
    ("Sweden", 60.1, 18.6, 60),
    ("Finland", 61.9, 25.7, 120),
    ("Romania", 45.9, 24.97, 120),
    ("Greece", 39.1, 21.8, 120),
)


def iso_ms(unix: float) -> str:
    """``2021-08-04T07:45:44.122Z``: the timestamp format of document 003."""
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def device_access_key(fleet_secret: str, device_id: str) -> str:
    """The access key the Register Device API gave this device (document 003 authenticates each
    device by its own key; the document names no shared one). Derived from the simulator's
    secret and the id, so a reset fleet with the same seed keeps every device's key."""
    digest = hmac.new(fleet_secret.encode(), device_id.encode(), hashlib.sha256).hexdigest()
    return "mqd-" + digest[:32]


def device_rng(seed: int, device_id: str) -> random.Random:
    return random.Random(f"fieldtui-sim-mqtt:{seed}:{device_id}")


@dataclass(slots=True)
class MetricBaseline:
    """A device's typical readings, around which its telemetry wanders."""

    temperature: float
    humidity: float
    co2: float
    fan_speed: float
    connection: str
    usbc: bool

    @classmethod
    def for_device(cls, rng: random.Random, model: str | None) -> MetricBaseline:
        fan = model == "fan-controller-v1"
        return cls(
            temperature=rng.uniform(19.0, 25.0),
            humidity=rng.uniform(32.0, 58.0),
            co2=rng.uniform(420.0, 950.0),
            fan_speed=rng.uniform(55.0, 100.0) if fan else rng.uniform(0.0, 40.0),
            connection=rng.choice(("4g", "wifi", "wifi")),
            usbc=rng.random() < 0.6,
        )

    def sample(self, rng: random.Random, rssi: int | None) -> dict[str, Any]:
        """One reading: the baseline plus noise (no state, so cheap for a whole fleet)."""
        return {
            "temperature": round(self.temperature + rng.gauss(0.0, 0.3), 1),
            "humidity": round(min(100.0, max(0.0, self.humidity + rng.gauss(0.0, 1.0))), 1),
            "co2": round(max(380.0, self.co2 + rng.gauss(0.0, 25.0))),
            "fan_speed": round(min(100.0, max(0.0, self.fan_speed + rng.gauss(0.0, 2.0))), 1),
            "connection": self.connection,
            "usbc": self.usbc,
            "rssi": (rssi if rssi is not None else -70) + round(rng.gauss(0.0, 2.0)),
        }


@dataclass(slots=True)
class Command:
    id: str
    name: str
    parameters: dict[str, Any]
    status: str = "pending"
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "name": self.name,
            "parameters": dict(self.parameters),
        }
        if self.message is not None:
            out["message"] = self.message
        return out


@dataclass(slots=True)
class License:
    id: str
    data: str
    signature: str
    state: str = "inuse"  # inuse | removed | error


@dataclass(slots=True)
class DeviceState:
    """Per-device state the protocol can change: config, commands, licences, cloud settings.

    ``cloud_settings`` hold what document 003 "Set Cloud Settings" (``.../cloud_settings/update``,
    ``{property, value}``, authenticated by the device's key) last set for each property: the
    cloud keeps them. ``refused`` counts requests for this device whose key was not its own.
    """

    baseline: MetricBaseline
    config_version: int
    config_updated: float
    config: dict[str, Any]
    licenses: dict[str, License]
    maintenance: bool
    commands: dict[str, Command] = field(default_factory=dict)
    cloud_settings: dict[str, Any] = field(default_factory=dict)
    #: Every "Set Cloud Settings" message taken, in arrival order (``{property, value}``): the
    #: cloud's own record, so a test can tell a setting applied twice from one applied once.
    cloud_settings_received: list[dict[str, Any]] = field(default_factory=list)
    last_telemetries: dict[str, Any] | None = None
    messages_published: int = 0
    refused: int = 0
    #: Commands run one at a time, in arrival order (asyncio.Lock is FIFO).
    command_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def initial(cls, seed: int, device: SimDevice, now: float, interval: float) -> DeviceState:
        rng = device_rng(seed, device.id)
        baseline = MetricBaseline.for_device(rng, device.model)
        license_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        signature = base64.b64encode(rng.getrandbits(512).to_bytes(64, "big")).decode()
        return cls(
            baseline=baseline,
            config_version=rng.randint(1, 12),
            config_updated=now - rng.uniform(3_600, 90 * 86_400),
            config={
                "telemetry_interval": interval,
                "display_brightness": rng.choice((40, 60, 80, 100)),
                "co2_alarm_ppm": rng.choice((1000, 1200, 1500)),
                "fan_mode": rng.choice(("auto", "auto", "eco", "boost")),
                "night_mode": rng.random() < 0.3,
            },
            licenses={
                license_id: License(
                    id=license_id,
                    data=f"{device.model}:{device.id}:features=display,analytics;expires=2027-12-31",
                    signature=signature,
                )
            },
            maintenance=rng.random() < 0.05,
        )

    def next_command(self) -> Command | None:
        """The oldest command the device has not finished, if any."""
        return next((c for c in self.commands.values() if c.status in ("pending", "in_progress")), None)

    def config_payload(self) -> dict[str, Any]:
        """The configuration as the cloud and the device report it; the cloud settings set on
        the device (document 003 "Set Cloud Settings") show under ``cloud_settings``, a reading
        of the document's "…configuration_fields" (it names no read of them)."""
        settings = {"cloud_settings": dict(self.cloud_settings)} if self.cloud_settings else {}
        return {
            "version": str(self.config_version),
            "last_updated": iso_ms(self.config_updated),
            **self.config,
            **settings,
        }

    def apply_config(self, fields: dict[str, Any], now: float) -> None:
        self.config.update(
            {k: v for k, v in fields.items() if k not in ("version", "last_updated", "cloud_settings")}
        )
        self.config_version += 1
        self.config_updated = now


def telemetry_payload(telemetries: dict[str, Any], now: float) -> dict[str, Any]:
    return {"status": "online", "timestamp": iso_ms(now), "telemetries": telemetries}


def space_info_payload(device: SimDevice, state: DeviceState, now: float) -> dict[str, Any]:
    lat = device.lat if device.lat is not None else 51.165691
    lon = device.lon if device.lon is not None else 10.451526
    country, _, _, offset = min(_COUNTRIES, key=lambda c: (c[1] - lat) ** 2 + (c[2] - lon) ** 2)
    local = datetime.fromtimestamp(now, timezone(timedelta(minutes=offset)))
    return {
        "location": {"coordinates": {"lat": lat, "lng": lon}, "utc_offset": offset, "name": country},
        "temperature_units": "celsius",
        "maintenance": state.maintenance,
        "name": device.name,
        "local_time": local.isoformat(timespec="seconds"),
    }


def license_payload(lic: License) -> dict[str, Any]:
    """A licence as the snapshot announces it: nothing for the device to add, update or remove."""
    return {
        "data": lic.data,
        "signature": lic.signature,
        "id": lic.id,
        "add": False,
        "update": False,
        "remove": False,
    }


def device_update_payload(device: SimDevice) -> dict[str, Any]:
    """Document 003 "Update Device", which the device publishes on ``v1/device/ID/update``."""
    return {"firmware_version": device.firmware, "name": device.name}


def firmware_payload() -> dict[str, Any]:
    return {"latest_fw_version": LATEST_FIRMWARE, "latest_fw_file_id": LATEST_FIRMWARE_FILE_ID}
