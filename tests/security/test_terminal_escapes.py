"""Text from a cloud carrying terminal escapes never reaches the terminal raw.

A DeviceHQ description and group (set with PUT) and a things group description (POST) carry
an OSC title change and a screen clear; a refused move carries them into the outbox's last
error. The CLI's human output drops them, ``--json`` keeps them encoded (valid JSON, inert on a
terminal), and the app's device screen renders without a single ESC.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fieldtui.config import DeviceHQBackend, ThingsBackend, load_config
from fieldtui.connectors.devicehq import DeviceHQConnector
from fieldtui.connectors.things import ThingsConnector

HOSTILE = "\x1b]0;pwned\x07\x1b[2J"
C1_CSI = "\x9b31m"
RAW_CONTROLS = ("\x1b", "\x07", "\x9b")


def _plant(sim: Any) -> tuple[str, str]:
    """Put the escapes into the clouds through their own APIs; returns (gateway, thing) ids."""
    # A gateway known to DeviceHQ only (a twin in things would lend its group to the merged
    # view) and a thing that is not a gateway: two different physical devices.
    gateway = next(serial for serial, dev in sorted(sim.fleet.of("devicehq").items()) if not dev.also_in)
    thing = next(tuid for tuid in sorted(sim.fleet.of("things")) if tuid not in sim.fleet.of("devicehq"))

    async def go() -> None:
        dhq = DeviceHQConnector(
            "gateways",
            DeviceHQBackend(kind="devicehq", url=sim.urls["devicehq"]),
            sim.credentials.devicehq_api_key,
        )
        async with dhq:
            await dhq.update_device(
                gateway, {"description": f"Gateway {HOSTILE} {C1_CSI}", "group": f"g{HOSTILE}"}
            )
        things = ThingsConnector(
            "things",
            ThingsBackend(kind="things", url=sim.urls["things"], client_id=sim.credentials.things_client_id),
            sim.credentials.things_client_secret,
        )
        async with things:
            await things.create_group("escape-group", f"roof {HOSTILE}")
            await things.move_to_group(thing, "escape-group")

    asyncio.run(go())
    return gateway, thing


def _assert_inert(text: str, where: str) -> None:
    for control in RAW_CONTROLS:
        assert control not in text, f"{where} carries {control!r}: {text!r}"


@pytest.fixture
def hostile(sim_clean: Any, tmp_path: Path) -> tuple[dict[str, str], str, str]:
    config, _ = sim_clean.write_config(tmp_path / "config.toml")
    env = {
        **os.environ,
        **sim_clean.env(),
        "FIELDTUI_CONFIG": str(config),
        "FIELDTUI_DATA_DIR": str(tmp_path / "data"),
        "FIELDTUI_LOG_DIR": str(tmp_path / "logs"),
    }
    gateway, thing = _plant(sim_clean)
    return env, gateway, thing


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fieldtui", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_the_cli_shows_cloud_text_without_its_escapes(hostile: tuple[dict[str, str], str, str]) -> None:
    env, gateway, thing = hostile
    status = _cli(env, "status", gateway)
    assert status.returncode == 0, status.stderr
    assert "Gateway" in status.stdout and "pwned" in status.stdout  # the words stay, the escapes go
    tasks = _cli(env, "tasks", gateway)
    thing_status = _cli(env, "status", thing)
    # A move to a group whose name carries the escapes: refused before it is queued (an id is
    # data: control characters never reach the outbox or a URL), the refusal itself inert.
    move = _cli(env, "move", thing, f"nowhere{HOSTILE}", "--backend", "things")
    assert move.returncode == 2, (move.returncode, move.stderr)
    assert "nowhere" in move.stderr
    listed = _cli(env, "outbox", "list")
    assert "nowhere" not in listed.stdout, listed.stdout
    for name, result in {
        "status": status,
        "tasks": tasks,
        "status (things)": thing_status,
        "move": move,
        "outbox list": listed,
    }.items():
        _assert_inert(result.stdout, f"`{name}` stdout")
        _assert_inert(result.stderr, f"`{name}` stderr")


def test_json_output_keeps_the_text_encoded_and_valid(hostile: tuple[dict[str, str], str, str]) -> None:
    env, gateway, _thing = hostile
    status = _cli(env, "status", gateway, "--json")
    assert status.returncode == 0, status.stderr
    _assert_inert(status.stdout, "status --json")
    device = json.loads(status.stdout)["device"]
    assert HOSTILE in device["name"] and C1_CSI in device["name"]
    assert device["group"] == f"g{HOSTILE}"
    tasks = _cli(env, "tasks", gateway, "--json")
    _assert_inert(tasks.stdout, "tasks --json")
    json.loads(tasks.stdout)
    listed = _cli(env, "outbox", "list", "--json")
    _assert_inert(listed.stdout, "outbox list --json")
    json.loads(listed.stdout)


async def test_the_device_screen_renders_cloud_text_without_escapes(
    hostile: tuple[dict[str, str], str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from textual.widgets import Static

    from fieldtui.service.session import open_session
    from fieldtui.ui.app import FieldApp

    env, gateway, _thing = hostile
    for name in (
        "FIELDTUI_DATA_DIR",
        "FIELDTUI_LOG_DIR",
        *(k for k in env if k.startswith("FIELDTUI_SECRET_")),
    ):
        monkeypatch.setenv(name, env[name])
    loaded = load_config(env["FIELDTUI_CONFIG"])
    sessions: list[Any] = []

    async def service() -> Any:
        session = await open_session(loaded, path=tmp_path / "app.db")
        sessions.append(session)
        return session

    app = FieldApp(service, profile=loaded.profile_name)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(100):
                await pilot.pause(0.05)
                if app.service is not None:
                    break
            app.open_device(gateway)
            facts = ""
            for _ in range(200):
                await pilot.pause(0.05)
                facts = str(app.screen.query_one("#device-facts", Static).render())
                if "Gateway" in facts:
                    break
            assert "Gateway" in facts, facts
            await pilot.pause(0.2)
            svg = app.export_screenshot()
            assert "pwned" in svg
            _assert_inert(svg, "the exported screenshot")
            for strip in app.screen._compositor.render_strips():
                for segment in strip:
                    _assert_inert(segment.text, "a rendered segment")
    finally:
        for session in sessions:
            await session.aclose()
