"""DeviceHQ simulator: a gateway's own state and every payload that describes it.

The fleet gives each gateway its identity (serial, UUID, product, firmware, rssi, position,
group); what the account changes through the API (description, group, location) and what
tasks change on the device (apps, firmwares, configuration) lives in :class:`DeviceState`.
Everything else (interfaces, counters, history) is derived from the serial and the
:class:`Schedule`, so nothing grows with time.
"""

from __future__ import annotations

import io
import random
import tarfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fieldtui.sim.clouds.devicehq_catalog import Catalog, family
from fieldtui.sim.clouds.devicehq_schedule import CONFIG_EVERY, LOG_EVERY, SIGNAL_EVERY, Schedule
from fieldtui.sim.clouds.devicehq_wire import (
    DHQError,
    day_start,
    iso_offset,
    iso_z,
    log_stamp,
    md5_hex,
    stable_hash,
)
from fieldtui.sim.fleet import SimDevice

VENDOR = "Multi-Tech Systems"


@dataclass(slots=True)
class DeviceState:
    description: str
    group: str
    location: tuple[float, float] | None
    firmware: str
    radio_firmware: str
    config_id: str | None
    apps: dict[str, str] = field(default_factory=dict)  # app id -> installed version
    app_configs: dict[str, list[str]] = field(default_factory=dict)  # app id -> config ids
    #: Check-ins at or before this time were deleted with the device.
    floor: float | None = None
    #: Registered through the API and never heard from since.
    never_checked_in: bool = False
    deleted_at: float | None = None

    @classmethod
    def initial(cls, device: SimDevice, catalog: Catalog, *, registered: bool = False) -> DeviceState:
        pick = stable_hash(device.id, "config")
        config = catalog.configuration_for(device.model, pick)
        state = cls(
            description="" if registered else device.name,
            group="" if registered else (device.group or ""),
            location=None if device.lat is None or device.lon is None else (device.lat, device.lon),
            firmware=device.firmware,
            radio_firmware="" if registered else "12.00.024",
            config_id=None if registered or config is None else config.id,
            never_checked_in=registered,
        )
        if not registered and supports_apps(device.model):
            apps = list(catalog.apps.values())
            for n in range(stable_hash(device.id, "apps") % 3):
                app = apps[(pick + n) % len(apps)]
                state.apps[app.id] = app.versions[(pick >> 8) % len(app.versions)].version
        return state

    def recreated(self) -> DeviceState:
        """What the cloud knows of a deleted device that checks in again: only what it reports."""
        return DeviceState(
            "",
            "",
            None,
            self.firmware,
            self.radio_firmware,
            self.config_id,
            dict(self.apps),
            {k: list(v) for k, v in self.app_configs.items()},
        )


def supports_apps(product: str | None) -> bool:
    return family(product) in ("MTCDT", "MTCAP")


def has_lora(product: str | None) -> bool:
    return (product or "").endswith("L")


def _mac(rng: random.Random) -> str:
    return ":".join(f"{rng.randrange(256):02X}" for _ in range(6))


def _link_statistics(rng: random.Random, checkins: int) -> dict[str, int]:
    rx_rate, tx_rate = rng.randint(80, 200), rng.randint(80, 600)
    rx_packets, tx_packets = rng.randint(200, 900) + checkins, rng.randint(200, 3000) + checkins
    return {
        "rx_bytes": rx_packets * rx_rate,
        "rx_packets": rx_packets,
        "rx_errors": rng.randint(0, 80),
        "rx_dropped": rng.randint(0, 9),
        "rx_overrun": rng.randint(0, 9),
        "rx_multicast": 0,
        "tx_bytes": tx_packets * tx_rate,
        "tx_packets": tx_packets,
        "tx_errors": rng.randint(0, 80),
        "tx_dropped": rng.randint(0, 9),
        "tx_carrier": rng.randint(0, 9),
        "tx_collisions": 0,
    }


def _flags() -> dict[str, bool]:
    return {
        "up": True,
        "lower_up": True,
        "loopback": False,
        "broadcast": True,
        "pointtopoint": False,
        "multicast": False,
        "dynamic": False,
        "noarp": False,
        "allmulti": False,
        "promisc": False,
    }


def device_attributes(
    device: SimDevice,
    state: DeviceState,
    schedule: Schedule | None,
    catalog: Catalog,
    now: float,
    *,
    single: bool,
) -> dict[str, Any]:
    """The ``attributes`` of a device: the list shape, or the single-device shape.

    The two samples of document 002 differ and both are kept: the list carries ``firmware``
    and ``position``, the single device ``location_description`` and ``software_version``.
    """
    rng = random.Random(f"devicehq-device:{device.id}")
    latest = None if schedule is None else schedule.latest()
    checkins = 0 if schedule is None else schedule.count()
    product = device.model
    provider = device.extra.get("provider")
    apps = [
        {
            "status": "READY",
            "info": None,
            "name": catalog.apps[app_id].name,
            "version": version,
            "type": "app",
            "id": app_id,
        }
        for app_id, version in state.apps.items()
        if app_id in catalog.apps
    ]
    hardware_version = rng.choice(("REV A", "REV B", "REV C"))
    subnet = rng.randint(2, 250)
    boot = device.last_seen - rng.uniform(3_600, 200 * 86_400)
    up_seconds = None if latest is None else int(latest - boot)
    attributes: dict[str, Any] = {
        "product": product,
        "group": state.group,
        "serial": device.id,
        "provider": provider,
        "description": state.description,
    }
    if single:
        attributes["location_description"] = None if state.location is None else list(state.location)
        attributes["software_version"] = state.firmware
        attributes["hardware_version"] = hardware_version
        attributes["last_checkin"] = None if latest is None else iso_offset(latest)
    else:
        attributes["firmware"] = state.firmware
        attributes["position"] = None
        attributes["last_checkin"] = None if latest is None else iso_offset(latest)
        attributes["active_apps"] = apps or None
    attributes["enabled"] = True
    if not single:
        attributes["hardware_version"] = hardware_version
    attributes["lora_network"] = {}
    if single:
        attributes["active_apps"] = apps
    attributes["dhcp"] = {
        "enabled": True,
        "range_start": f"192.168.{subnet}.100",
        "range_end": f"192.168.{subnet}.254",
        "lease_time": 86400,
        "netmask": "255.255.255.0",
        "gateway": f"192.168.{subnet}.1",
        "dns": f"192.168.{subnet}.1",
    }
    attributes["ethernet"] = {
        "name": "eth0",
        "link_type": "LINK_TYPE_ETHER",
        "mtu": 1500,
        "mac": _mac(rng),
        "gateway": "0.0.0.0",
        "name_servers": [],
        "flags": _flags(),
        "link_statistics": _link_statistics(rng, checkins),
    }
    attributes["cell_radio"] = {
        "firmware": state.radio_firmware or None,
        "phone_number": None if state.never_checked_in else f"1{rng.randint(100_000_000, 999_999_999)}",
        "provider": provider,
        "rssi": device.rssi,
        "imsi": None,
        "up_time": None,
    }
    wifi_net = rng.randint(2, 250)
    attributes["wifi"] = {
        "name": "wlan0",
        "link_type": "LINK_TYPE_ETHER",
        "mtu": 1500,
        "ip_addr": f"192.168.{wifi_net}.{subnet}",
        "netmask": "255.255.255.0",
        "gateway": f"192.168.{wifi_net}.1",
        "name_servers": [],
        "flags": _flags(),
        "link_statistics": _link_statistics(rng, checkins),
        "wifi": {
            "mode": "client",
            "client": {
                "mode": "WAN",
                "security_mode": "WPA2-PSK",
                "ssid": f"site-{wifi_net}",
                "rssi": rng.randint(-90, -50),
            },
        },
    }
    attributes["up_time"] = None if up_seconds is None else f" {up_seconds // 86_400} days"
    attributes["up_time_seconds"] = up_seconds
    attributes["supports"] = {"logs": True, "configs": supports_apps(product), "apps": supports_apps(product)}
    attributes["has_radio"] = True
    return attributes


def device_resource(
    device: SimDevice,
    state: DeviceState,
    schedule: Schedule | None,
    catalog: Catalog,
    now: float,
    *,
    single: bool,
) -> dict[str, Any]:
    return {
        "id": device.id,
        "type": "devices",
        "attributes": device_attributes(device, state, schedule, catalog, now, single=single),
    }


def _window(schedule: Schedule | None, start: float, end: float) -> range:
    return range(0) if schedule is None else schedule.ks_between(start, end, retained=True)


def _history_header(device: SimDevice, state: DeviceState) -> dict[str, Any]:
    return {
        "id": device.id,
        "type": "devices",
        "description": state.description,
        "product_id": device.model,
        "vendor_id": VENDOR,
        "device_id": device.id,
    }


def checkin_history(
    device: SimDevice, state: DeviceState, schedule: Schedule | None, start: float, end: float
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for k in _window(schedule, start, end):
        assert schedule is not None
        t = schedule.time(k)
        action = (
            "upload_log" if k % LOG_EVERY == 0 else "upload_config" if k % CONFIG_EVERY == 0 else "update"
        )
        rows.append(
            {
                "timestamp": iso_offset(t),
                "action": action,
                "result": "200",
                "ssl": True,
                "duration": stable_hash(device.id, "duration", k) % 3,
            }
        )
    body = _history_header(device, state)
    body["attributes"] = {"check_ins": rows}
    return body


def rssi_at(device: SimDevice, k: int) -> int:
    base = device.rssi if device.rssi is not None else -90
    return max(-121, min(-40, base + stable_hash(device.id, "rssi", k) % 9 - 4))


def signal_history(
    device: SimDevice, state: DeviceState, schedule: Schedule | None, start: float, end: float
) -> dict[str, Any]:
    samples: list[dict[str, Any]] = []
    for k in _window(schedule, start, end):
        assert schedule is not None
        if k % SIGNAL_EVERY == 0:
            # "rssii": the spelling of document 002, kept.
            samples.append(
                {"timestamp": iso_offset(schedule.time(k)), "rssii": rssi_at(device, k), "fer": None}
            )
    return {
        "id": device.id,
        "type": "devices",
        "attributes": {
            "signal_strength": samples,
            "description": state.description,
            "product_id": device.model,
            "vendor_id": "MultiTech",
            "device_id": device.id,
        },
    }


def network_usage(
    device: SimDevice,
    state: DeviceState,
    schedule: Schedule | None,
    start: float,
    end: float,
    kind: str,
    now: float,
) -> dict[str, Any]:
    """Daily byte counts of one interface: each check-in moves a device-specific amount."""
    usages: list[dict[str, Any]] = []
    if schedule is not None and not schedule.empty:
        rx_rate = 2_000 + stable_hash(device.id, kind, "rx") % 50_000
        tx_rate = 2_000 + stable_hash(device.id, kind, "tx") % 80_000
        first_day = datetime.fromtimestamp(schedule.time(schedule.first_k), UTC).date()
        day = max(datetime.fromtimestamp(start, UTC).date(), first_day)
        last_day = min(
            datetime.fromtimestamp(end, UTC).date() - timedelta(days=1),
            datetime.fromtimestamp(now, UTC).date(),
        )
        while day <= last_day:
            lo = day_start(day)
            n = len(schedule.ks_between(lo, lo + 86_400))
            usages.append({day.isoformat(): {kind: {"rx_bytes": n * rx_rate, "tx_bytes": n * tx_rate}}})
            day += timedelta(days=1)
    body = _history_header(device, state)
    body["attributes"] = {"network_usages": usages}
    return body


def lora_card(device: SimDevice, state: DeviceState, schedule: Schedule | None) -> dict[str, Any]:
    lora: dict[str, Any] = {}
    if has_lora(device.model):
        rng = random.Random(f"devicehq-lora:{device.id}")
        traffic = 0 if schedule is None else schedule.count()
        nodes: list[dict[str, Any]] = []
        for n in range(rng.randint(1, 4)):
            pkts = rng.randint(50, 500) + traffic
            rss = sorted(rng.randint(-110, -30) for _ in range(3))
            snr = sorted(round(rng.uniform(-5.0, 14.0), 1) for _ in range(3))
            nodes.append(
                {
                    "node_addr": f"00:00:00:{n + 1:02x}",
                    "dev_eui": "00-80-00-00-" + "-".join(f"{rng.randrange(256):02x}" for _ in range(4)),
                    "class": "A",
                    "joined": iso_z(device.last_seen - rng.uniform(86_400, 90 * 86_400)),
                    "seq_num": pkts * 2,
                    "pkts_up": pkts,
                    "pkts_down": 0,
                    "pkts_1st": 0,
                    "pkts_2nd": 0,
                    "dropped": 0,
                    "rss_i_min": rss[0],
                    "rss_i_max": rss[2],
                    "rss_i_avg": rss[1],
                    "snr_min": snr[0],
                    "snr_max": snr[2],
                    "snr_avg": snr[1],
                    "per": 0,
                }
            )
        rx = sum(node["pkts_up"] for node in nodes)
        lora = {
            "nodes": nodes,
            "link_statistics": {
                "rx_micfails": rng.randint(0, 40_000),
                "rx_crcerrors": rng.randint(0, 80_000),
                "rx_dups": rng.randint(0, 300),
                "rx_join_dups": rng.randint(0, 999),
                "rx_joins": len(nodes),
                "rx_pkts": rx,
                "tx_ack_dups": 0,
                "tx_ack_pkts": 0,
                "tx_joins_1st wnd": len(nodes),
                "tx_joins_2nd wnd": 0,
                "tx_joins_dropped": 0,
                "tx_pkts": len(nodes),
                "tx_pkts_1st wnd": len(nodes),
                "tx_pkts_2nd wnd": 0,
                "tx_pkts_dropped": 0,
            },
            "enabled": True,
            "running": schedule is not None and device.online,
        }
    return {
        "id": device.id,
        "type": "devices",
        "description": state.description,
        "product": device.model,
        "vendor": VENDOR,
        "device": device.id,
        "attributes": {"lora": lora},
    }


def last_upload(schedule: Schedule | None, start: float, end: float, every: int) -> int | None:
    """The latest check-in in the window that uploaded (logs or configuration)."""
    window = _window(schedule, start, end)
    if not window:
        return None
    k = window[-1] - window[-1] % every
    return k if k >= window[0] else None


def log_attributes(device: SimDevice, schedule: Schedule, k: int) -> dict[str, Any]:
    t = schedule.time(k)
    return {
        "log": {
            "uploaded_at": log_stamp(t),
            "md5sum": md5_hex(device.id, "log", k),
            "description": f"{log_stamp(t, sep='_')}.zip",
        }
    }


def config_attributes(device: SimDevice, state: DeviceState, catalog: Catalog, k: int) -> dict[str, Any]:
    config = catalog.configurations.get(state.config_id or "")
    name = config.name if config else f"config_{device.id}"
    description = config.description if config else "Configuration reported by the device"
    return {
        "config": {
            "md5sum": md5_hex(device.id, "config", k, name).upper(),
            "name": name,
            "description": description,
        }
    }


#: "Fields updatable through the api/v2 interface include description, group, and
#: location_description."
UPDATABLE = ("description", "group", "location_description")


def apply_update(attributes: dict[str, Any], state: DeviceState) -> None:
    """Validate all of ``attributes`` first, then change ``state``: a 423 changes nothing."""
    forbidden = sorted(set(attributes) - set(UPDATABLE))
    if forbidden:
        raise DHQError(
            f"Cannot update {', '.join(forbidden)}: only description, group and "
            "location_description can be changed through the API"
        )
    for name in ("description", "group"):
        if name in attributes and not isinstance(attributes[name], str):
            raise DHQError(f"{name} must be a string")
    location = state.location
    if "location_description" in attributes:
        raw = attributes["location_description"]
        if raw is None:
            location = None
        else:
            ok = isinstance(raw, list) and len(raw) == 2
            ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw)
            if not ok or not (-90 <= raw[0] <= 90 and -180 <= raw[1] <= 180):
                raise DHQError("location_description must be an array of [latitude, longitude]")
            location = (float(raw[0]), float(raw[1]))
    state.description = attributes.get("description", state.description)
    state.group = attributes.get("group", state.group)
    state.location = location


def installed_apps(device: SimDevice, state: DeviceState, catalog: Catalog) -> dict[str, Any]:
    apps = [
        {
            "name": catalog.apps[app_id].name,
            "id": app_id,
            "version": version,
            "status": "Active",
            "type": "custom",
            "info": "What the app reported.",
        }
        for app_id, version in state.apps.items()
        if app_id in catalog.apps
    ]
    attributes = {
        "id": device.id,
        "description": state.description,
        "product": device.model,
        "vendor": "Multi-Tech Systems Inc.",
        "apps": apps,
    }
    return {"type": "devices", "id": device.id, "attributes": attributes}


def upload_archive(serial: str, kind: str, when: float) -> bytes:
    """The .tar.gz a log or configuration upload link serves."""
    content = f"{kind} of {serial} uploaded at {iso_z(when)}\n".encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo(f"{kind}/{serial}.txt")
        info.size, info.mtime = len(content), int(when)
        archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()
