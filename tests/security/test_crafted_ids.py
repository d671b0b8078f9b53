"""Ids are data, never paths: a crafted id is refused before anything is queued, cached or sent,
and every connector keeps whatever id it is given as one URL segment (or one MQTT topic level).

Judged by the simulator's own record: its mutation log (every change a cloud accepted) and
its inspection of the devices a crafted id aimed at.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fieldtui.config import (
    DeviceHQBackend,
    FleetBackend,
    LoadedConfig,
    MqttBackend,
    MySensorBackend,
    ThingsBackend,
    load_config,
)
from fieldtui.connectors.devicehq import DeviceHQConnector
from fieldtui.connectors.fleet import FleetConnector
from fieldtui.connectors.mqtt import MqttConnector
from fieldtui.connectors.mysensor import MySensorConnector
from fieldtui.connectors.things import ThingsConnector
from fieldtui.core.errors import InvalidId, NotFound, Rejected
from fieldtui.core.ids import valid_id, valid_name
from fieldtui.core.models import InstallationStatus
from fieldtui.service.connectivity import BackendState
from fieldtui.service.factory import build_fleet_service
from fieldtui.service.fleet import BackendFinished, FindMatch
from fieldtui.service.writes import open_outbox

#: Ids a scanner, a paste or a hostile QR code may hand over, each with what must be named.
CRAFTED = {
    "a path": ("../things/{id}", "'/'"),
    "a stray query mark": ("{id}?", "'?'"),
    "a fragment": ("{id}#top", "'#'"),
    "an escape sequence": ("{id}\x1b[2J", "control characters"),
    "inner whitespace": ("{id} {id}", "whitespace"),
    "a dot segment": ("..", "path step"),
}


def _victim(sim: Any, kind: str = "things") -> Any:
    return sorted(sim.fleet.of(kind).values(), key=lambda d: d.id)[0]


#: Logins the simulator logs as accepted POSTs: they change no device.
_LOGINS = ("/session", "/auth/client-token")


def _mutations(sim: Any) -> list[dict[str, Any]]:
    """Every change a simulated cloud accepted, logins aside."""
    response = sim.admin("GET", "/_sim/mutations")
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()
    return [entry for entry in entries if not entry["path"].endswith(_LOGINS)]


def _inspect(sim: Any, backend: str, device_id: str) -> dict[str, Any]:
    response = sim.admin("GET", f"/_sim/inspect/{backend}/{device_id}")
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()
    return state


# -- the CLI ---------------------------------------------------------------------------------
@pytest.fixture
def cli_env(sim_clean: Any, tmp_path: Path) -> dict[str, str]:
    config, _ = sim_clean.write_config(tmp_path / "config.toml")
    return {
        **os.environ,
        **sim_clean.env(),
        "FIELDTUI_CONFIG": str(config),
        "FIELDTUI_DATA_DIR": str(tmp_path / "data"),
    }


def _fieldtui(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fieldtui", *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=90,
    )


def _outbox_actions(env: dict[str, str]) -> list[Any]:
    listed = _fieldtui(env, "outbox", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    actions: list[Any] = json.loads(listed.stdout)["actions"]
    return actions


def test_set_status_with_a_path_for_an_id_exits_2_and_changes_no_device(
    cli_env: dict[str, str], sim_clean: Any
) -> None:
    victim = _victim(sim_clean)
    before = _inspect(sim_clean, "things", victim.id)["installation_status"]
    target = "uninstalled" if before != "uninstalled" else "retired"
    result = _fieldtui(cli_env, "set-status", f"../things/{victim.id}", target)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "device id" in result.stderr and "'/'" in result.stderr
    assert "Traceback" not in result.stderr
    assert _mutations(sim_clean) == []
    assert _inspect(sim_clean, "things", victim.id)["installation_status"] == before
    assert _outbox_actions(cli_env) == []


@pytest.mark.parametrize("case", ["a stray query mark", "a fragment", "an escape sequence", "a dot segment"])
def test_move_and_status_refuse_a_crafted_id_with_exit_2_naming_the_problem(
    cli_env: dict[str, str], sim_clean: Any, case: str
) -> None:
    template, named = CRAFTED[case]
    crafted = template.format(id=_victim(sim_clean).id)
    moved = _fieldtui(cli_env, "move", crafted, "roof", "--backend", "things")
    assert moved.returncode == 2, (moved.stdout, moved.stderr)
    assert named in moved.stderr and "\x1b" not in moved.stderr
    status = _fieldtui(cli_env, "status", crafted)
    assert status.returncode == 2, (status.stdout, status.stderr)
    assert named in status.stderr and "\x1b" not in status.stderr
    assert _mutations(sim_clean) == []
    assert _outbox_actions(cli_env) == []


# -- the service -----------------------------------------------------------------------------
@pytest.fixture
def loaded(sim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LoadedConfig:
    path, _ = sim.write_config(tmp_path / "config.toml")
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    return load_config(str(path), "sim")


@pytest.mark.parametrize("case", sorted(CRAFTED))
async def test_no_change_with_a_crafted_id_is_queued(
    loaded: LoadedConfig, tmp_path: Path, sim: Any, case: str
) -> None:
    template, named = CRAFTED[case]
    crafted = template.format(id=_victim(sim).id)
    async with open_outbox(loaded, offline=True, path=tmp_path / "outbox.sqlite3") as outbox:
        writes = outbox.writes
        attempts = [
            writes.set_installation_status(crafted, "installed"),
            writes.move_to_group(crafted, "roof"),
            writes.create_task(crafted, "update_firmware", {"file_id": 1}),
            writes.cancel_task("1", crafted, backend="sensors"),
            writes.delete_task("1", crafted, backend="sensors"),
            writes.update_device(crafted, {"owner_ref": "x"}),
            writes.send_command(crafted, "1500", {"tsmEv": 1}),
            writes.create_group("things", crafted),
            writes.rename_group("things", "roof", crafted),
            writes.delete_group("things", crafted),
        ]
        for attempt in attempts:
            with pytest.raises(InvalidId) as refused:
                await attempt
            assert named in str(refused.value)
        assert await outbox.store.list_actions() == []


async def test_a_group_name_with_spaces_is_data_and_may_be_queued(
    loaded: LoadedConfig, tmp_path: Path
) -> None:
    # DeviceHQ's groups are "arbitrary strings" sent in a body: only control characters are refused.
    async with open_outbox(loaded, offline=True, path=tmp_path / "outbox.sqlite3") as outbox:
        record = await outbox.writes.move_to_group("991516757", "product test", backend="gateways")
        assert record.action.params["group"] == "product test"
        with pytest.raises(InvalidId, match="control characters"):
            await outbox.writes.move_to_group("991516757", "roof\x1b]52;c;x\x07", backend="gateways")


@pytest.mark.parametrize("kind", ["things", "mysensor", "fleet", "devicehq", "mqtt"])
@pytest.mark.parametrize("stray", ["?", "#"])
async def test_a_scanned_serial_with_a_stray_character_reaches_no_device_and_degrades_no_cloud(
    loaded: LoadedConfig, sim_clean: Any, kind: str, stray: str
) -> None:
    scanned = _victim(sim_clean, kind).id + stray
    async with build_fleet_service(loaded) as service:
        results = [item async for item in service.find(scanned)]
        with pytest.raises(InvalidId):
            await service.device(scanned)
        states = {name: service.connectivity.status(name).state for name in service.backends}
    finished = [r for r in results if isinstance(r, BackendFinished)]
    assert sorted(f.backend for f in finished) == sorted(service.backends)
    assert [f for f in finished if f.error] == []
    assert BackendState.DEGRADED not in states.values(), states
    matched = {r.key for r in results if isinstance(r, FindMatch)}
    assert matched <= {scanned.rstrip(stray)}, matched
    assert _mutations(sim_clean) == []


# -- each connector, against the simulator over HTTP -------------------------------------------
class _Seen:
    """The raw request paths a connector sent."""

    def __init__(self) -> None:
        self.paths: list[bytes] = []

    def client(self, base_url: str = "") -> httpx.AsyncClient:
        async def on_request(request: httpx.Request) -> None:
            self.paths.append(request.url.raw_path)

        return httpx.AsyncClient(base_url=base_url, event_hooks={"request": [on_request]}, timeout=10)


@pytest.fixture
async def seen() -> AsyncIterator[_Seen]:
    yield _Seen()


async def test_things_sends_a_path_shaped_id_as_one_segment(sim_clean: Any, seen: _Seen) -> None:
    victim = _victim(sim_clean)
    before = _inspect(sim_clean, "things", victim.id)["installation_status"]
    target = InstallationStatus.UNINSTALLED if before != "uninstalled" else InstallationStatus.RETIRED
    config = ThingsBackend(
        kind="things", url=sim_clean.urls["things"], client_id=sim_clean.credentials.things_client_id
    )
    async with seen.client() as client:
        connector = ThingsConnector(
            "things", config, sim_clean.credentials.things_client_secret, client=client
        )
        with pytest.raises(NotFound):
            await connector.set_installation_status(f"../things/{victim.id}", target)
        with pytest.raises(NotFound):
            await connector.get_device(f"{victim.id}?")
        with pytest.raises(NotFound):
            await connector.group_members("roof/../../things")
    assert f"/things/..%2Fthings%2F{victim.id}/installations".encode() in b" ".join(seen.paths)
    assert f"/things/{victim.id}%3F".encode() in b" ".join(seen.paths)
    assert _mutations(sim_clean) == []
    assert _inspect(sim_clean, "things", victim.id)["installation_status"] == before


async def test_mysensor_sends_a_path_shaped_id_as_one_segment(sim_clean: Any, seen: _Seen) -> None:
    victim = _victim(sim_clean, "mysensor")
    config = MySensorBackend(kind="mysensor", url=sim_clean.urls["mysensor"])
    async with seen.client() as client:
        connector = MySensorConnector("sensors", config, sim_clean.credentials.mysensor_token, client=client)
        with pytest.raises(NotFound):
            await connector.get_device(f"../sensors/{victim.id}")
        with pytest.raises(NotFound):
            await connector.get_device("..")
        with pytest.raises((NotFound, Rejected)):
            await connector.delete_task(victim.id, "1/../2")
    joined = b" ".join(seen.paths)
    assert f"/sensors/..%2Fsensors%2F{victim.id}".encode() in joined
    assert b"/sensors/%2E%2E" in joined and b"/tasks/1%2F..%2F2" in joined
    assert _mutations(sim_clean) == []


async def test_fleet_sends_a_path_shaped_id_as_one_segment(sim_clean: Any, seen: _Seen) -> None:
    victim = _victim(sim_clean, "fleet")
    config = FleetBackend(kind="fleet", url=sim_clean.urls["fleet"])
    async with seen.client() as client:
        connector = FleetConnector("fleet", config, sim_clean.credentials.fleet_token, client=client)
        with pytest.raises(NotFound):
            await connector.delete_device(f"../devices/{victim.id}")
        with pytest.raises(NotFound):
            await connector.update_device(f"{victim.id}?x=", {"owner_ref": "crafted"})
        assert (await connector.get_device(victim.id)).id == victim.id
    joined = b" ".join(seen.paths)
    assert f"/devices/..%2Fdevices%2F{victim.id}".encode() in joined
    assert f"/devices/{victim.id}%3Fx%3D".encode() in joined
    assert _mutations(sim_clean) == []


async def test_devicehq_sends_a_path_shaped_id_as_one_segment(sim_clean: Any, seen: _Seen) -> None:
    victim = _victim(sim_clean, "devicehq")
    config = DeviceHQBackend(kind="devicehq", url=sim_clean.urls["devicehq"], timeout=5)
    async with seen.client(config.url) as client:
        connector = DeviceHQConnector(
            "gateways", config, sim_clean.credentials.devicehq_api_key, client=client
        )
        # Document 002: every error that is not a 404 is a 423 (a refusal).
        with pytest.raises((NotFound, Rejected)):
            await connector.move_to_group(f"../devices/{victim.id}", "crafted")
    assert f"/devices/..%2Fdevices%2F{victim.id}".encode() in b" ".join(seen.paths)
    assert _mutations(sim_clean) == []


async def test_mqtt_refuses_a_topic_shaped_id_without_publishing(sim_clean: Any) -> None:
    if sim_clean.mqtt_port is None:
        pytest.fail("the simulator runs no MQTT broker")
    victim = _victim(sim_clean, "mqtt")
    protocol: Any = "3.1.1" if sim_clean.mqtt_protocol == "3.1.1" else 5
    config = MqttBackend(
        kind="mqtt", host="127.0.0.1", port=sim_clean.mqtt_port, protocol=protocol, timeout=5
    )
    connector = MqttConnector("live", config, sim_clean.credentials.mqtt_access_key)
    devices = sim_clean.simulator.mqtt_devices
    before = devices.inspect(victim.id)["commands"]
    try:
        for crafted in (f"{victim.id}/#", f"{victim.id}/+", "#", f"x/../{victim.id}", f"{victim.id}\x00"):
            with pytest.raises(NotFound, match="not an MQTT device id"):
                await connector.send_command(crafted, "reboot", {})
    finally:
        await connector.aclose()
    assert devices.inspect(victim.id)["commands"] == before


# -- the rule itself ---------------------------------------------------------------------------
def test_surrounding_whitespace_is_not_part_of_an_id() -> None:
    assert valid_id("  XYGH07P6C64291655\n") == "XYGH07P6C64291655"
    assert valid_id("dev-924346df761b") == "dev-924346df761b"


def test_a_devicehq_uuid_is_cleaned_as_document_002_says() -> None:
    typed = "776334CB-8E42-4839-835C-899D075D63AE"
    assert valid_id(typed) == typed  # nothing to refuse: the connector normalises it
    assert valid_id("776334cb/8e42 4839 835c 899d075d63ae") == "776334cb8e424839835c899d075d63ae"
    with pytest.raises(InvalidId, match="control characters"):
        valid_id("776334cb8e424839835c899d075d63ae\x1b")
    with pytest.raises(InvalidId, match="'/'"):
        valid_id("../things/776334cb8e424839835c899d075d63ae")


def test_an_empty_id_or_name_is_refused() -> None:
    with pytest.raises(InvalidId, match="empty"):
        valid_id("  ")
    with pytest.raises(InvalidId, match="empty"):
        valid_name("", what="group")
    with pytest.raises(InvalidId, match="control characters"):
        valid_id("abc\u202edef")
