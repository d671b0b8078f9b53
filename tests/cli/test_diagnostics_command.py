"""``fieldtui diagnostics`` in a shell against the simulator: each cloud's section as the
simulator itself records the device (its apps, attributes, task queue, licences), download
links printed whole, errors in the one vocabulary and README's exit codes."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

from test_read_commands import fieldtui


def _gateway(sim: Any) -> str:
    return str(next(i for i, d in sim.fleet.of("devicehq").items() if not d.also_in))


def test_a_gateways_diagnostics_show_its_network_lora_uploads_and_apps(
    sim: Any, cli_env: dict[str, str]
) -> None:
    gateway = _gateway(sim)
    result = fieldtui(cli_env, "diagnostics", gateway, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    sections = document["clouds"]["gateways"]
    recorded = sim.admin("GET", f"/_sim/inspect/gateways/{gateway}").json()
    assert {app["id"]: app["version"] for app in sections["apps"]} == recorded["apps"]
    assert set(sections["network"]) == {"cell", "ethernet", "wifi"}
    link = sections["log"].get("download")
    assert link is None or link.startswith(sim.base_url)

    text = fieldtui(cli_env, "diagnostics", gateway)
    assert text.returncode == 0, text.stderr
    assert "Network" in text.stdout and "Apps" in text.stdout
    if link:
        # The link is one whole line a technician can copy, never cut.
        assert any(line.strip() == f"download: {link}" for line in text.stdout.splitlines())


def test_a_sensors_task_queue_and_configuration_match_the_clouds_record(
    sim: Any, cli_env: dict[str, str]
) -> None:
    serial = str(next(iter(sim.fleet.of("mysensor"))))
    result = fieldtui(cli_env, "diagnostics", serial, "--json")
    assert result.returncode == 0, result.stderr
    sections = json.loads(result.stdout)["clouds"]["sensors"]
    recorded = sim.admin("GET", f"/_sim/inspect/sensors/{serial}").json()["sensor"]
    assert sections["task_queue"] == {
        "state": recorded["task_queue"],
        "next_task": None if recorded["next_task"] is None else str(recorded["next_task"]),
        "task_count": recorded["task_count"],
    }
    assert sections["configuration"]["current_configuration"] == recorded["current_configuration"]


def test_an_mqtt_devices_licences_attributes_and_asked_config(sim: Any, cli_env: dict[str, str]) -> None:
    device = str(
        next(
            i for i, d in sim.fleet.of("mqtt").items() if d.online and any(k == "fleet" for k, _ in d.also_in)
        )
    )
    result = fieldtui(cli_env, "diagnostics", device, "--ask-device", "--json")
    assert result.returncode == 0, result.stderr
    clouds = json.loads(result.stdout)["clouds"]
    recorded = sim.simulator.mqtt_devices.inspect(device)
    assert {lic["id"] for lic in clouds["live"]["licenses"]} == {lic["id"] for lic in recorded["licenses"]}
    assert clouds["live"]["device_config"]["version"] == recorded["config"]["version"]
    attributes = sim.admin("GET", f"/_sim/inspect/fleet/{device}").json()["attributes"]
    assert clouds["fleet"]["attributes"] == {a["string_key"]: a["value"] for a in attributes}


def test_an_offline_mqtt_device_still_shows_what_the_cloud_holds_and_says_it_did_not_answer(
    sim: Any, cli_env: dict[str, str]
) -> None:
    device = str(next(i for i, d in sim.fleet.of("mqtt").items() if not d.online))
    result = fieldtui(cli_env, "diagnostics", device, "--ask-device", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Licenses" in result.stdout and "Space info" in result.stdout
    assert f"live: the device did not give its configuration: {device} did not answer" in result.stderr


def test_errors_read_in_the_one_vocabulary_with_readmes_exit_codes(sim: Any, cli_env: dict[str, str]) -> None:
    missing = fieldtui(cli_env, "diagnostics", "no-such-device-77", "--json")
    assert missing.returncode == 3
    assert json.loads(missing.stdout)["error"]["code"]
    crafted = fieldtui(cli_env, "diagnostics", "../things/x")
    assert crafted.returncode == 2 and "Traceback" not in crafted.stderr
    unknown = fieldtui(cli_env, "diagnostics", _gateway(sim), "--backend", "nowhere")
    assert unknown.returncode == 2 and "no backend named 'nowhere'" in unknown.stderr
    thing = str(next(i for i, d in sim.fleet.of("things").items() if not d.also_in))
    nothing = fieldtui(cli_env, "diagnostics", thing)
    assert nothing.returncode == 2
    assert "things: the things API keeps no more about a device" in nothing.stderr
    assert fieldtui(cli_env, "status", _gateway(sim)).returncode == 0  # now in the read cache
    offline = fieldtui(cli_env, "--offline", "diagnostics", _gateway(sim))
    assert offline.returncode == 2, offline.stderr
    assert "gateways: reading a cloud's details needs the network" in offline.stderr


def test_a_gateways_last_log_is_saved_through_the_session_and_never_overwritten(
    sim: Any, cli_env: dict[str, str], tmp_path: Path
) -> None:
    gateway = _gateway(sim)
    result = fieldtui(
        cli_env, "diagnostics", gateway, "--download", "log", "--output", str(tmp_path), "--json"
    )
    assert result.returncode == 0, result.stderr
    saved = Path(json.loads(result.stdout)["file"])
    assert saved.parent == tmp_path
    with tarfile.open(saved) as archive:
        assert any(gateway in name for name in archive.getnames())
    before = saved.read_bytes()
    again = fieldtui(cli_env, "diagnostics", gateway, "--download", "log", "--output", str(saved))
    assert again.returncode == 2 and "nothing was overwritten" in again.stderr
    assert saved.read_bytes() == before
