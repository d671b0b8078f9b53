"""What the fake clouds hold about a device beyond its record (``cloud_details``), shaped as
the real connectors give it, from the documents' own samples: a DeviceHQ gateway's diagnostics
(document 002), an MQTT device's snapshot (003), a fleet device's attributes (004), a sensor's
task queue and configuration (000). Things keeps nothing more."""

from __future__ import annotations

from typing import Any

from fieldtui.core.models import BackendKind, Device

#: A log line longer than any terminal: the app must let a technician read it whole.
LONG_INFO = "What the app reported: " + "modem restarted after a watchdog timeout; " * 6


def gateway_sections(copy: Device) -> dict[str, Any]:
    """In the connector's order: uploads and apps first, the daily byte counts last."""
    sections = _gateway_sections()
    return {name: sections[name] for name in ("log", "config", "apps", "lora", "network")}


def _gateway_sections() -> dict[str, Any]:
    return {
        "network": {
            "cell": {
                "rx_bytes": 20997455,
                "tx_bytes": 35255516,
                "days": [
                    {"day": "2017-01-15", "rx_bytes": 0, "tx_bytes": 0},
                    {"day": "2017-01-16", "rx_bytes": 20997455, "tx_bytes": 35255516},
                ],
            },
            "ethernet": {"rx_bytes": 0, "tx_bytes": 0, "days": []},
            "wifi": {"rx_bytes": 0, "tx_bytes": 0, "days": []},
        },
        "lora": {
            "card": True,
            "enabled": True,
            "running": True,
            "link_statistics": {"rx_pkts": 123616, "tx_pkts": 36},
            "nodes": [{"node_addr": "00:00:00:01", "dev_eui": "00-80-00-00-00-00-9c-3d", "pkts_up": 377}],
        },
        "log": {
            "uploaded": True,
            "uploaded_at": "09-23-16 11:12:29UTC",
            "md5sum": "69ed906fbec08f0ee7d66550e0f590ec",
            "description": "09-23-16_11:12:29UTC.zip",
            "download": "https://devicehq.com/api/v2/files/57e50e1d11c3a8fd12711fff",
        },
        "config": {
            "uploaded": True,
            "md5sum": "ADFA1341234131341234AFDDDD",
            "name": "config22",
            "description": "Config #22",
            "download": "https://devicehq.com/api/v2/files/5894cd7f95b54a75e732f952",
        },
        "apps": [
            {
                "id": "60d0a5eb31eddd285865a784",
                "name": "app_37278085",
                "version": "0.2.6",
                "status": "Active",
                "type": "custom",
                "info": LONG_INFO,
            }
        ],
    }


def mqtt_sections(copy: Device) -> dict[str, Any]:
    return {
        "config": {"version": "3", "last_updated": "2021-08-04T07:45:44.122Z", "fan_mode": "auto"},
        "licenses": [
            {
                "id": "lic-1",
                "data": "features=display",
                "signature": "sig",
                "add": False,
                "update": False,
                "remove": False,
            }
        ],
        "space_info": {"name": copy.name, "maintenance": "in maintenance" in copy.alerts},
        "firmware": {"current": copy.firmware, "latest": "1.0.8", "latest_file_id": None},
    }


def sections_for(kind: BackendKind, copy: Device) -> dict[str, Any] | None:
    """The sections of ``copy``'s cloud, None for a cloud that keeps nothing more."""
    if kind is BackendKind.DEVICEHQ:
        return gateway_sections(copy)
    if kind is BackendKind.MQTT:
        return mqtt_sections(copy)
    if kind is BackendKind.FLEET:
        return {"attributes": {"site": "harbour-06", "boot_count": 505}}
    if kind is BackendKind.MYSENSOR:
        return {
            "task_queue": {"state": "Queued", "next_task": "42", "task_count": 5},
            "configuration": {
                "current_configuration": "G1_350424060716329_2022-09-08T10:02:15.477317252.cfg",
                "current_firmware": copy.firmware,
                "status": copy.status,
                "activity": "Online" if copy.online else "Offline",
                "updated_at": "2022-10-18T17:53:48",
            },
        }
    return None
