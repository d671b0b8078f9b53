"""The simulator as users start it: the written config, ``fieldtui sim`` as a real process, the demo."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest

from fieldtui.config import parse_config
from fieldtui.sim.fleet import BACKEND_NAMES

SERVING = re.compile(r"serving (http://\S+)")


def test_written_config_is_valid_and_points_at_the_simulator(sim: Any, tmp_path: Path) -> None:
    config_path, env_path = sim.write_config(tmp_path / "conf" / "config.toml")
    text = config_path.read_text()
    config = parse_config(text, config_path)  # the app's own strict loader accepts it
    assert config.default_profile == "sim"
    backends = config.profiles["sim"].backends
    assert {name: backend.kind for name, backend in backends.items()} == {
        name: kind for kind, name in BACKEND_NAMES.items() if kind != "mqtt" or sim.mqtt_port is not None
    }
    raw = tomllib.loads(text)["profiles"]["sim"]["backends"]
    for kind, url in sim.urls.items():
        assert raw[BACKEND_NAMES[kind]]["url"] == url
    assert raw["things"]["client_id"] == sim.credentials.things_client_id
    if sim.mqtt_port is not None:
        live = raw["live"]
        assert (live["port"], live["tls"]) == (sim.mqtt_port, False)
        assert live["protocol"] == (5 if sim.mqtt_protocol == "5" else "3.1.1")

    assert env_path == Path(f"{config_path}.env")
    assert stat.S_IMODE(env_path.stat().st_mode) == 0o600
    lines = dict(line.split("=", 1) for line in env_path.read_text().splitlines())
    assert lines == sim.env()
    assert lines["FIELDTUI_SECRET_SIM_SENSORS"] == sim.credentials.mysensor_token
    assert lines["FIELDTUI_SECRET_SIM_GATEWAYS"] == sim.credentials.devicehq_api_key
    assert lines["FIELDTUI_SECRET_SIM_FLEET"] == sim.credentials.fleet_token


def test_an_existing_wider_env_file_becomes_private(sim: Any, tmp_path: Path) -> None:
    env_path = tmp_path / "config.toml.env"
    env_path.write_text("old")
    env_path.chmod(0o644)
    sim.write_config(tmp_path / "config.toml")
    assert stat.S_IMODE(env_path.stat().st_mode) == 0o600
    assert "old" not in env_path.read_text()


def _start_sim(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], str, str]:
    """Start ``fieldtui sim``; return the process, its base URL and its start-up banner."""
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
            "40",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert process.stdout is not None
    banner: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        banner.append(line)
        if line.startswith("Press Ctrl-C") and (match := SERVING.search("".join(banner))):
            return process, match.group(1), "".join(banner)
    process.kill()
    raise AssertionError(f"fieldtui sim did not start: {process.communicate(timeout=5)}")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found += [int(child) for child in children]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sim_command_serves_until_a_signal_then_exits_0_and_frees_its_ports(
    tmp_path: Path, signum: int
) -> None:
    process, base_url, _ = _start_sim(tmp_path, "--write-config", "sim.toml", "--fault", "things:unreachable")
    try:
        rows = httpx.get(f"{base_url}/_sim/fleet", timeout=10).json()
        assert rows and {"id", "kind", "backend"} <= set(rows[0])
        assert httpx.get(f"{base_url}/_sim/faults").json()["things"]["unreachable"] is True
        assert (tmp_path / "sim.toml").exists()
        assert stat.S_IMODE((tmp_path / "sim.toml.env").stat().st_mode) == 0o600
        children = _children(process.pid)
    finally:
        process.send_signal(signum)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    port = int(base_url.rsplit(":", 1)[1])
    with socket.socket() as probe:  # nothing listens there any more
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    assert not [child for child in children if _alive(child)], "the broker outlived the simulator"


def test_sim_command_says_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "fieldtui", "sim", "--port", str(port), "--mqtt-port", "0"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2
    assert f"port {port}" in result.stderr and "already in use" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr


def test_sim_command_refuses_a_bad_fault(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fieldtui", "sim", "--port", "0", "--fault", "things:melted"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "unknown fault 'melted'" in result.stderr


def test_sim_command_prints_urls_and_mqtt(tmp_path: Path) -> None:
    process, base_url, out = _start_sim(tmp_path)
    try:
        assert httpx.get(f"{base_url}/_sim/info").json()["fleet_size"] == 40
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
    for kind, name in BACKEND_NAMES.items():
        if kind != "mqtt":
            assert re.search(rf"{name}\s+{kind}\s+{re.escape(base_url)}/", out), out
    assert re.search(r"live\s+mqtt\s+127\.0\.0\.1:\d+\s+\(MQTT (5|3\.1\.1)\)", out)


def test_demo_opens_a_screen_and_quits_cleanly(tmp_path: Path) -> None:
    session = f"fieldtui-demo-test-{os.getpid()}"
    done = tmp_path / "exit-code"
    command = f"{sys.executable} -m fieldtui demo --fleet-size 30; echo $? > {done}"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command], check=True, env=env
    )
    try:
        screen = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            screen = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
            ).stdout
            # The backend names show whichever screen opens (the app's header, or the
            # placeholder fleet table of a build without the app).
            if "sensors" in screen and "fleet" in screen:
                break
            time.sleep(0.3)
        assert "sensors" in screen and "fleet" in screen, screen
        time.sleep(0.5)
        subprocess.run(["tmux", "send-keys", "-t", session, "C-q"], check=True)
        deadline = time.monotonic() + 20
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert done.exists(), "the demo did not quit on ctrl+q"
        assert done.read_text().strip() == "0"
        assert not list(tmp_path.glob("fieldtui-demo-*")), "the demo left its secrets behind"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
