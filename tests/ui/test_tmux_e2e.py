"""One end-to-end run in a real terminal: ``fieldtui`` in tmux against the running simulator.

Type a serial, press Enter, see the device; open its telemetry and see the values change
between two captures of the pane.
"""

from __future__ import annotations

import os
import select
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

if shutil.which("tmux") is None:  # the README's test line installs it
    raise RuntimeError("the end-to-end test needs tmux (apt-get install tmux)")


class Pane:
    def __init__(self, session: str) -> None:
        self.session = session

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout

    def capture(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.session)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.session, "-l", text)

    def key(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.session, *keys)

    def wait(self, test: Callable[[str], bool], what: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            if test(screen):
                return screen
            # select, not time.sleep: libfaketime (the suite runs under `faketime -f +90d`) makes
            # sleep fail with EINVAL when monotonic time is not faked.
            select.select([], [], [], 0.2)
        raise AssertionError(f"timed out waiting for {what}; the screen was:\n{screen}")


@pytest.fixture
def pane(sim: Any, tmp_path: Path) -> Iterator[Pane]:
    config, env_file = sim.write_config(tmp_path / "config.toml")
    env = {
        "FIELDTUI_CONFIG": str(config),
        "FIELDTUI_DATA_DIR": str(tmp_path / "data"),
        "TERM": "xterm-256color",
        **dict(line.split("=", 1) for line in env_file.read_text().splitlines() if line),
    }
    # The installed `fieldtui` script of this interpreter (a venv need not be on PATH).
    script = Path(sys.executable).with_name("fieldtui")
    program = shlex.quote(str(script)) if script.exists() else "fieldtui"
    command = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + f" {program}"
    session = f"fieldtui-e2e-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30", f"env {command}"],
        check=True,
        env={**os.environ, "TMUX": ""},
    )
    try:
        yield Pane(session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False, capture_output=True)


def metric_lines(screen: str, metrics: list[str]) -> list[str]:
    return [line for line in screen.splitlines() if any(line.strip().startswith(m) for m in metrics)]


def metric_names(screen: str) -> list[str]:
    """The metrics the telemetry screen lists (each line: name, value, sparkline)."""
    lines = screen.splitlines()[3:]
    return [line.split()[0] for line in lines if len(line.split()) >= 2]


def test_scan_serial_see_device_and_live_telemetry(pane: Pane, sim: Any) -> None:
    device = next(d for d in sim.fleet.of("mqtt").values() if d.online and not d.also_in)
    pane.wait(lambda s: "Serial, tuid or name" in s, "the lookup screen")
    pane.type(device.id)
    pane.key("Enter")
    screen = pane.wait(lambda s: "Firmware" in s and "live[mqtt]" in s, "the device screen")
    assert "Online    yes" in screen
    pane.type("t")
    first = pane.wait(lambda s: "● live" in s and " msgs" in s and "temperature" in s, "live telemetry")
    metrics = metric_names(first)
    second = pane.wait(
        lambda s: "● live" in s and metric_lines(first, metrics) != metric_lines(s, metrics),
        "the values to change",
    )
    assert "● live" in second
    pane.type("q")
