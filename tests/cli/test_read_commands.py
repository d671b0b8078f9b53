"""`fieldtui status|watch|tasks` as a script or a person runs them: real processes, real simulator."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fieldtui.commands import _output
from fieldtui.core.models import BackendKind, Device
from fieldtui.secrets import env_var_name
from fieldtui.service.merge import Source, SourcedDevice, merge_devices


def fieldtui(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fieldtui", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def gateway_also_in_things(sim: Any) -> str:
    for device_id, device in sim.fleet.of("devicehq").items():
        if any(kind == "things" for kind, _ in device.also_in):
            return str(device_id)
    raise AssertionError("no gateway in two clouds")


ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def test_status_json_prints_the_documented_document(sim: Any, cli_env: dict[str, str]) -> None:
    device_id = gateway_also_in_things(sim)
    result = fieldtui(cli_env, "status", device_id, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    # device and sources keep today's shape for scripts; each cloud's copy, where they differ
    # and the technician's pending changes come beside them.
    assert set(document) == {"device", "sources", "clouds", "differs", "pending"}
    assert set(document["device"]) == set(Device.model_fields)
    assert set(document["clouds"]) == {"gateways", "things"}
    for field, values in document["differs"].items():
        assert set(values) <= {"gateways", "things"}, field
    assert document["device"]["id"] == device_id
    assert ISO_UTC.match(document["device"]["last_seen"])
    assert {s["backend"] for s in document["sources"]} == {"gateways", "things"}
    for source in document["sources"]:
        assert set(source) == {"backend", "kind", "fetched_at", "stale"}
        assert ISO_UTC.match(source["fetched_at"]) and source["stale"] is False


def test_ten_status_runs_of_a_twin_give_the_same_headline(sim: Any, cli_env: dict[str, str]) -> None:
    device_id = gateway_also_in_things(sim)
    headlines = set()
    for _ in range(10):
        result = fieldtui(cli_env, "status", device_id, "--json")
        assert result.returncode == 0, result.stderr
        device = json.loads(result.stdout)["device"]
        headlines.add((device["backend"], device["firmware"], device["group"], device["name"]))
    assert len(headlines) == 1, headlines


def test_status_for_a_person_fits_80_columns(sim: Any, cli_env: dict[str, str]) -> None:
    device_id = gateway_also_in_things(sim)
    result = fieldtui(cli_env, "status", device_id)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(device_id)
    assert all(len(line) <= 80 for line in lines), lines
    text = result.stdout
    for label in (
        "clouds",
        "model",
        "firmware",
        "online",
        "last seen",
        "battery",
        "signal",
        "location",
        "group",
    ):
        assert label in text
    assert "gateways (devicehq)" in text and "things (things)" in text
    assert "ago)" in text


def test_unknown_device_exits_3(cli_env: dict[str, str]) -> None:
    result = fieldtui(cli_env, "status", "NOSUCHDEVICE42")
    assert result.returncode == 3
    assert "NOSUCHDEVICE42" in result.stderr and result.stdout == ""


def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_every_backend_unreachable_and_nothing_cached_exits_4(
    sim_clean: Any, cli_env: dict[str, str]
) -> None:
    for backend in ("sensors", "things", "gateways", "fleet"):
        assert (
            sim_clean.admin("PUT", f"/_sim/faults/{backend}", json={"unreachable": True}).status_code == 200
        )
    config = Path(cli_env["FIELDTUI_CONFIG"])
    config.write_text(re.sub(r"(?m)^port = \d+$", f"port = {dead_port()}", config.read_text()))
    result = fieldtui(cli_env, "status", gateway_also_in_things(sim_clean), "--json")
    assert result.returncode == 4, result.stderr
    # Under --json the error is JSON on stdout, each cloud named once with why it was not reached.
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "no_backend_reachable"
    assert "no backend could be reached" in error["message"]
    assert "things: cannot reach" in error["hint"] and "things: things:" not in error["hint"]


def test_cached_device_is_served_stale_when_clouds_are_away_and_with_offline(
    sim_clean: Any, cli_env: dict[str, str]
) -> None:
    device_id = gateway_also_in_things(sim_clean)
    assert fieldtui(cli_env, "status", device_id).returncode == 0
    offline = fieldtui(cli_env, "--offline", "status", device_id, "--json")
    assert offline.returncode == 0, offline.stderr
    assert all(s["stale"] for s in json.loads(offline.stdout)["sources"])
    assert fieldtui(cli_env, "--offline", "status", "NOSUCHDEVICE42").returncode == 4


def test_broken_config_exits_2(cli_env: dict[str, str], tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('[profiles.sim.backends.things]\nkind = "thingz"\nurl = "http://x"\n')
    result = fieldtui(cli_env, "--config", str(broken), "status", "X")
    assert result.returncode == 2
    assert str(broken) in result.stderr and "kind" in result.stderr


def test_watch_json_prints_ndjson_until_ctrl_c(sim: Any, cli_env: dict[str, str]) -> None:
    device_id = next(iter(sim.fleet.of("mqtt")))
    process = subprocess.Popen(
        [sys.executable, "-m", "fieldtui", "watch", device_id, "--json"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[dict[str, Any]] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        while len(lines) < 3 and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(json.loads(line))
        process.send_signal(signal.SIGINT)
        returncode = process.wait(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert len(lines) == 3, process.stderr.read() if process.stderr else ""
    for sample in lines:
        assert set(sample) == {"device", "backend", "timestamp", "metrics"}
        assert sample["device"] == device_id and ISO_UTC.match(sample["timestamp"])
    assert returncode == 0


def test_tasks_lists_a_device_tasks(sim: Any, cli_env: dict[str, str]) -> None:
    serial = next(iter(sim.fleet.of("mysensor")))
    result = fieldtui(cli_env, "tasks", serial, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["device"] == serial
    assert all(task["backend"] == "sensors" for task in document["tasks"])
    human = fieldtui(cli_env, "tasks", serial)
    assert human.returncode == 0 and all(len(line) <= 80 for line in human.stdout.splitlines())


PROBE = """
import sys
from fieldtui.cli import main
code = main(sys.argv[1:])
loaded = sorted({m.split(".")[0] for m in sys.modules} & {"textual", "keyring"})
print("LOADED=" + ",".join(loaded), file=sys.stderr)
raise SystemExit(code)
"""


def test_status_imports_no_textual_and_no_keyring_when_secrets_are_in_the_environment(
    sim: Any, cli_env: dict[str, str]
) -> None:
    device_id = gateway_also_in_things(sim)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "status", device_id, "--json"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "LOADED=\n" in result.stderr
    # without the secret in the environment, the keyring is asked (and only then imported)
    env = dict(cli_env)
    del env[env_var_name("sim", "things")]
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "status", device_id, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "LOADED=keyring\n" in result.stderr


def test_vendor_text_cannot_send_escape_sequences_to_the_terminal() -> None:
    evil = "Lab\x1b]52;c;ZXZpbA==\x07 \x1b[2J\x9b31m one"
    device = Device(
        id="dev-1\x1b[31m", backend="live", kind=BackendKind.MQTT, name=evil, status=evil, alerts=(evil,)
    )
    now = datetime(2025, 1, 1, tzinfo=UTC)
    view = merge_devices([SourcedDevice(device, Source("live", BackendKind.MQTT, now))])
    for line in _output.status_lines(view, now):
        assert not re.search(r"[\x00-\x1f\x7f-\x9f]", line), line
        assert len(line) <= 80
    document = _output.status_json(view)
    assert not re.search(r"[\x00-\x1f\x7f-\x9f]", document)
    assert json.loads(document)["device"]["name"] == evil
