"""`fieldtui device create|register|delete|cloud-setting` as a script runs them, judged by the
simulator's own record: the mutation log for fleet and DeviceHQ, the MQTT cloud's state."""

from __future__ import annotations

import json
import time
from typing import Any

from test_read_commands import fieldtui

FLEET_DEVICES = "/fleet/api/v0/projects/demo/devices"
UUID = "fedcba98-7654-3210-fedc-ba9876543210"


def _writes(sim: Any) -> list[tuple[str, str]]:
    return [
        (m["method"], m["path"])
        for m in sim.admin("GET", "/_sim/mutations").json()
        if not m["path"].endswith(("/session", "/client-token"))
    ]


def test_create_and_delete_need_a_confirmation_and_reach_the_cloud_once(
    sim_clean: Any, cli_env: dict[str, str]
) -> None:
    create = [
        "device",
        "create",
        "CW-CLI-1",
        "owner_ref=tech-7",
        "hardware_version=hwrev1",
        "--cloud",
        "fleet",
    ]
    refused = fieldtui(cli_env, *create, "--json")
    assert refused.returncode == 2
    error = json.loads(refused.stdout)["error"]
    assert (
        "not confirmed" in error["message"] and "CW-CLI-1" in error["message"] and "fleet" in error["message"]
    )
    assert "--yes" in error["hint"]
    # Without a terminal to ask on, a person's run is refused the same way, on stderr.
    plain = fieldtui(cli_env, *create)
    assert plain.returncode == 2 and "--yes" in plain.stderr and "Traceback" not in plain.stderr
    assert _writes(sim_clean) == [], "nothing is queued or sent before the confirmation"

    made = fieldtui(cli_env, *create, "--yes", "--json")
    assert made.returncode == 0, made.stderr
    outcome = json.loads(made.stdout)
    assert outcome["status"] == "synced" and outcome["action"]["type"] == "create_device"
    shown = fieldtui(cli_env, "status", "CW-CLI-1", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["device"]["backend"] == "fleet"

    gone = fieldtui(cli_env, "device", "delete", "CW-CLI-1", "--cloud", "fleet", "--yes")
    assert gone.returncode == 0, gone.stderr
    assert "delete device CW-CLI-1 from fleet" in gone.stdout and "synced now" in gone.stdout
    assert _writes(sim_clean) == [("POST", FLEET_DEVICES), ("DELETE", f"{FLEET_DEVICES}/CW-CLI-1")]
    assert sim_clean.admin("GET", "/_sim/inspect/fleet/CW-CLI-1").status_code == 404
    # The cache forgot it too: offline, the deleted device is not shown as if it were still there.
    offline = fieldtui(cli_env, "--offline", "status", "CW-CLI-1")
    assert offline.returncode == 4 and "not in the local cache" in offline.stderr, offline.stdout


def test_register_and_delete_a_gateway(sim_clean: Any, cli_env: dict[str, str]) -> None:
    registered = fieldtui(cli_env, "device", "register", "CW-GW-1", UUID, "--yes")
    assert registered.returncode == 0, registered.stderr
    assert "register device CW-GW-1 on gateways" in registered.stdout
    deleted = fieldtui(cli_env, "device", "delete", "CW-GW-1", "--cloud", "gateways", "--yes", "--json")
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout)["status"] == "synced"
    assert _writes(sim_clean) == [
        ("POST", "/devicehq/api/v2/devices/register"),
        ("DELETE", "/devicehq/api/v2/devices/CW-GW-1"),
    ]
    bad = fieldtui(cli_env, "device", "register", "CW-GW-2", "not-a-uuid", "--yes", "--json")
    assert bad.returncode == 2, bad.stdout
    assert "32 hexadecimal" in json.loads(bad.stdout)["error"]["message"]
    missing = fieldtui(cli_env, "device", "create", "CW-FL-2", "owner_ref=x", "--yes", "--json")
    assert missing.returncode == 2, missing.stdout
    assert "a device needs hardware_version" in json.loads(missing.stdout)["error"]["message"]
    listed = fieldtui(cli_env, "outbox", "list", "--json")
    assert "CW-GW-2" not in listed.stdout and "CW-FL-2" not in listed.stdout, "nothing was queued"
    unknown = fieldtui(cli_env, "device", "delete", "CW-GW-1", "--cloud", "nowhere", "--yes")
    assert unknown.returncode == 2 and "no backend named 'nowhere'" in unknown.stderr


def test_a_cloud_setting_reaches_the_mqtt_cloud(sim_clean: Any, cli_env: dict[str, str]) -> None:
    device = next(i for i, d in sorted(sim_clean.fleet.of("mqtt").items()) if d.online)
    result = fieldtui(
        cli_env, "device", "cloud-setting", device, "reporting_interval=300", "--backend", "live"
    )
    assert result.returncode == 0, result.stderr
    assert "set cloud setting reporting_interval" in result.stdout and "synced now" in result.stdout
    devices = sim_clean.simulator.mqtt_devices
    deadline = time.monotonic() + 10
    while devices.inspect(device)["cloud_settings"] != {"reporting_interval": 300}:
        assert time.monotonic() < deadline, devices.inspect(device)["cloud_settings"]
        time.sleep(0.05)
    bad = fieldtui(cli_env, "device", "cloud-setting", device, "no-value", "--json")
    assert bad.returncode == 2 and "KEY=VALUE" in json.loads(bad.stdout)["error"]["message"]
