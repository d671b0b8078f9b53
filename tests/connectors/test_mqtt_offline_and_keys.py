"""MQTT without the retained-message assumption, and one access key per device (issue 11 item 3).

Against the simulator's real broker and devices; what reached a device is judged by the
simulator's own record (``MqttDevices.inspect``: its commands, cloud settings and refused
requests), the CLI through ``python -m fieldtui``.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from fieldtui.config import MqttBackend, parse_config
from fieldtui.connectors.mqtt import MqttConnector
from fieldtui.core.errors import AuthError, NotFound, Rejected, TimeoutError_
from fieldtui.core.models import TaskState


def write_keys(path: Path, keys: dict[str, str]) -> str:
    path.write_text("".join(f"{json.dumps(d)} = {json.dumps(k)}\n" for d, k in keys.items()))
    path.chmod(0o600)
    return str(path)


def connector(sim: Any, keys: dict[str, str], directory: Path, secret: str | None = None) -> MqttConnector:
    protocol: Any = "3.1.1" if sim.mqtt_protocol == "3.1.1" else 5
    config = MqttBackend(
        kind="mqtt",
        host="127.0.0.1",
        port=sim.mqtt_port,
        protocol=protocol,
        timeout=5,
        keys_file=write_keys(directory / "live-keys.toml", keys),
    )
    return MqttConnector("live", config, secret)


def offline_device(sim: Any) -> Any:
    """An offline MQTT device registered nowhere else: only the MQTT cloud can tell of it."""
    return next(d for d in sim.fleet.of("mqtt").values() if not d.online and not d.also_in)


def online_devices(sim: Any) -> list[Any]:
    return [d for d in sim.fleet.of("mqtt").values() if d.online]


def devices_of(sim: Any) -> Any:
    devices = sim.simulator.mqtt_devices
    if devices is None:
        pytest.fail("the simulator runs no MQTT broker")
    return devices


@pytest.fixture
def mqtt5(sim: Any) -> None:
    if sim.mqtt_protocol != "5":
        pytest.fail("per-device keys travel as MQTT 5 user properties; this simulator runs 3.1.1")


# -- offline devices exist -----------------------------------------------------------------
async def test_an_offline_device_that_never_published_is_known_and_offline(sim: Any, tmp_path: Path) -> None:
    device = offline_device(sim)
    live = connector(sim, sim.simulator.mqtt_keys(), tmp_path)
    found = await live.get_device(device.id)
    assert found.id == device.id and found.online is False and found.last_seen is None
    assert found.status == "offline (never published)"
    assert found.name == device.name  # from the cloud's space info
    assert found.location is not None and found.location.lat == pytest.approx(device.lat)
    # the cloud holds its configuration, space info and licences even while it is away
    config = await live.config(device.id)
    assert {"version", "last_updated", "telemetry_interval"} <= set(config)
    space = await live.space_info(device.id)
    assert space.name == device.name
    licences = await live.licenses(device.id)
    held = devices_of(sim).inspect(device.id)["licenses"]
    assert {lic.id for lic in licences} == {lic["id"] for lic in held if lic["state"] == "inuse"}
    assert all(lic.data and lic.signature and lic.operation is None for lic in licences)
    # all of it at once, as the port's cloud details carry it
    details = await live.details(device.id)
    assert details["config"]["version"] == config["version"]
    assert details["space_info"]["name"] == device.name
    assert [lic["id"] for lic in details["licenses"]] == [lic.id for lic in licences]
    # the device itself is not there to answer a config request
    with pytest.raises(TimeoutError_, match="did not answer the config request"):
        await connector(sim, sim.simulator.mqtt_keys(), tmp_path).request_config(device.id)


def _fieldtui(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fieldtui", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def cli_env(sim: Any, tmp_path: Path) -> dict[str, str]:
    config, _ = sim.write_config(tmp_path / "config.toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDTUI_")}
    env.update(sim.env())
    env.update(
        FIELDTUI_CONFIG=str(config),
        FIELDTUI_DATA_DIR=str(tmp_path / "data"),
        FIELDTUI_LOG_DIR=str(tmp_path / "log"),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    return env


def test_fieldtui_status_of_an_offline_mqtt_device_exits_0_and_says_offline(
    sim: Any, cli_env: dict[str, str]
) -> None:
    device = offline_device(sim)
    shown = _fieldtui(cli_env, "status", device.id)
    assert shown.returncode == 0, shown.stderr
    assert device.id in shown.stdout and "offline" in shown.stdout
    assert "live (mqtt)" in shown.stdout
    as_json = _fieldtui(cli_env, "status", device.id, "--json")
    assert as_json.returncode == 0, as_json.stderr
    view = json.loads(as_json.stdout)
    assert view["device"]["online"] is False and view["device"]["name"] == device.name
    assert [source["backend"] for source in view["sources"]] == ["live"]


async def test_an_id_nobody_registered_is_still_not_found(sim: Any, tmp_path: Path) -> None:
    live = connector(sim, {}, tmp_path, secret="a-shared-key-the-cloud-does-not-take")
    with pytest.raises(NotFound, match="no MQTT device dev-000000000000"):
        await live.get_device("dev-000000000000")


# -- one key per device --------------------------------------------------------------------
async def test_a_command_with_the_devices_own_key_reaches_that_device_only(
    sim_clean: Any, tmp_path: Path, mqtt5: None
) -> None:
    target, bystander = online_devices(sim_clean)[4], online_devices(sim_clean)[5]
    devices = devices_of(sim_clean)
    before = devices.inspect(bystander.id)["commands"]
    live = connector(sim_clean, {target.id: sim_clean.simulator.mqtt_key(target.id)}, tmp_path)
    updates = [c async for c in live.run_command(target.id, "identify", {}, timeout=10)]
    assert updates[-1].state is TaskState.DONE
    assert [c["id"] for c in devices.inspect(target.id)["commands"]] == [updates[0].id]
    assert devices.inspect(bystander.id)["commands"] == before
    assert devices.inspect(target.id)["refused_requests"] == 0


async def test_a_command_with_a_wrong_key_is_refused_clearly_and_reaches_no_device(
    sim_clean: Any, tmp_path: Path, mqtt5: None
) -> None:
    target, other = online_devices(sim_clean)[4], online_devices(sim_clean)[5]
    devices = devices_of(sim_clean)
    # the other device's key filed under the target: a plausible mix-up on site
    keys_path = tmp_path / "live-keys.toml"
    live = connector(sim_clean, {target.id: sim_clean.simulator.mqtt_key(other.id)}, tmp_path)
    with pytest.raises(Rejected) as refused:
        await live.send_command(target.id, "reboot", {})
    message = str(refused.value)
    assert f"device {target.id} did not accept the access key from the keys file {keys_path}" in message
    assert f"replace the key of {target.id} in {keys_path} with its own" in message
    assert devices.inspect(target.id)["commands"] == []
    assert devices.inspect(other.id)["commands"] == []
    assert devices.inspect(target.id)["refused_requests"] >= 1
    # a shared key is not taken either (document 003 names only each device's own key)
    shared = connector(sim_clean, {}, tmp_path, secret=sim_clean.credentials.mqtt_access_key)
    with pytest.raises(Rejected, match="the shared key of live"):
        await shared.send_command(target.id, "reboot", {})
    assert devices.inspect(target.id)["commands"] == []


def test_fieldtui_command_send_reaches_the_device_with_its_key_and_a_wrong_key_fails_clearly(
    sim_clean: Any, cli_env: dict[str, str], mqtt5: None
) -> None:
    target, other = online_devices(sim_clean)[6], online_devices(sim_clean)[7]
    devices = devices_of(sim_clean)
    keys_path = sim_clean.simulator.keys_path
    keys = tomllib.loads(keys_path.read_text())
    write_keys(keys_path, {**keys, target.id: keys[other.id]})
    refused = _fieldtui(cli_env, "command", "send", target.id, "reboot", "--backend", "live")
    assert refused.returncode == 6, refused.stdout + refused.stderr
    assert (
        f"device {target.id} did not accept the access key from the keys file {keys_path}" in refused.stderr
    )
    assert "Traceback" not in refused.stderr
    assert devices.inspect(target.id)["commands"] == [] and devices.inspect(other.id)["commands"] == []
    # the right key: the command reaches that device and no other
    write_keys(keys_path, keys)
    drop = refused.stderr.split("fieldtui outbox drop ")[1].split("`")[0]
    assert _fieldtui(cli_env, "outbox", "drop", drop, "--yes").returncode == 0
    sent = _fieldtui(cli_env, "command", "send", target.id, "reboot", "--backend", "live")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    await_condition(lambda: [c["name"] for c in devices.inspect(target.id)["commands"]] == ["reboot"])
    assert devices.inspect(other.id)["commands"] == []


async def test_no_key_at_all_is_said_before_anything_is_sent(
    sim_clean: Any, tmp_path: Path, mqtt5: None
) -> None:
    target = online_devices(sim_clean)[4]
    live = connector(sim_clean, {}, tmp_path)
    with pytest.raises(AuthError, match=f"no MQTT access key for device {target.id}"):
        await live.send_command(target.id, "reboot", {})
    assert devices_of(sim_clean).inspect(target.id)["refused_requests"] == 0


async def test_a_command_for_an_offline_device_is_held_by_the_cloud(sim_clean: Any, tmp_path: Path) -> None:
    device = offline_device(sim_clean)
    live = connector(sim_clean, sim_clean.simulator.mqtt_keys(), tmp_path)
    sent = await live.send_command(device.id, "reboot", {})
    await _until(lambda: bool(devices_of(sim_clean).inspect(device.id)["commands"]))
    held = devices_of(sim_clean).inspect(device.id)["commands"]
    assert held == [{"id": sent.id, "status": "pending", "name": "reboot", "parameters": {}}]
    listed = await live.list_commands(device.id)
    assert listed[0].id == sent.id and listed[0].state is TaskState.QUEUED


# -- cloud settings --------------------------------------------------------------------------
async def test_a_cloud_setting_is_kept_by_the_cloud_and_a_wrong_key_changes_nothing(
    sim_clean: Any, tmp_path: Path
) -> None:
    device, other = online_devices(sim_clean)[0], offline_device(sim_clean)
    devices = devices_of(sim_clean)
    live = connector(sim_clean, sim_clean.simulator.mqtt_keys(), tmp_path)
    await live.set_cloud_setting(device.id, "reporting_interval", 300)
    await live.set_cloud_setting(other.id, "timezone", "Europe/Berlin")

    def settings_of(device_id: str) -> dict[str, Any]:
        return dict(devices.inspect(device_id)["cloud_settings"])

    await _until(lambda: settings_of(device.id) == {"reporting_interval": 300})
    await _until(lambda: settings_of(other.id) == {"timezone": "Europe/Berlin"})
    with pytest.raises(Rejected, match="a cloud setting needs a property name"):
        await live.set_cloud_setting(device.id, " ", 1)
    if sim_clean.mqtt_protocol == "5":
        (tmp_path / "wrong").mkdir()
        wrong = connector(sim_clean, {device.id: "mqd-wrong"}, tmp_path / "wrong")
        with pytest.raises(Rejected, match="did not accept the access key"):
            await wrong.set_cloud_setting(device.id, "reporting_interval", 1)
        assert settings_of(device.id) == {"reporting_interval": 300}


def await_condition(condition: Any, timeout: float = 10.0) -> None:
    """Wait (in a synchronous test) until the simulator's record shows ``condition``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("the simulator did not record the change in time")
        time.sleep(0.02)


async def _until(condition: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            pytest.fail("the simulator did not record the change in time")
        await asyncio.sleep(0.02)


# -- the simulator's written config ------------------------------------------------------------
def test_sim_write_config_writes_each_devices_key_privately_and_names_the_file(
    sim: Any, tmp_path: Path
) -> None:
    config_path, env_path = sim.write_config(tmp_path / "config.toml")
    keys_path = sim.simulator.keys_path
    assert keys_path == tmp_path / "config-live-keys.toml"
    assert stat.S_IMODE(keys_path.stat().st_mode) == 0o600
    keys = tomllib.loads(keys_path.read_text())
    assert set(keys) == set(sim.fleet.of("mqtt"))
    assert len(set(keys.values())) == len(keys)  # one key per device, none shared
    assert sim.credentials.mqtt_access_key not in keys.values()
    config = parse_config(config_path.read_text(), config_path)
    live = config.profiles["sim"].backends["live"]
    assert isinstance(live, MqttBackend) and live.keys_file == str(keys_path)
    # the backend's shared key is there as fieldtui's fallback, but no device takes it
    assert f"FIELDTUI_SECRET_SIM_LIVE={sim.credentials.mqtt_access_key}" in env_path.read_text()


def test_fieldtui_sim_says_where_the_mqtt_keys_are(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDTUI_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fieldtui",
            "sim",
            "--port",
            "0",
            "--mqtt-port",
            "0",
            "--fleet-size",
            "20",
            "--write-config",
            str(tmp_path / "config.toml"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
    finally:
        process.terminate()
        process.wait(timeout=30)
    banner = "".join(lines)
    keys_path = tmp_path / "config-live-keys.toml"
    if "mqtt      not available" in banner:
        pytest.fail("the simulator runs no MQTT broker")
    assert f"mqtt keys {keys_path} (each device's own access key; the config's keys_file)" in banner
    assert stat.S_IMODE(keys_path.stat().st_mode) == 0o600
