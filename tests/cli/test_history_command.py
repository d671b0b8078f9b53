"""`fieldtui history DEVICE` as a technician runs it: real processes against the simulator."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from test_read_commands import fieldtui, gateway_also_in_things

from fieldtui.config import load_config
from fieldtui.core.models import TaskState
from fieldtui.service.api import SyncMode
from fieldtui.service.session import open_service


def test_history_shows_who_changed_the_installation_status_and_when(
    sim_clean: Any, cli_env: dict[str, str]
) -> None:
    device_id = gateway_also_in_things(sim_clean)
    changed = fieldtui(cli_env, "set-status", device_id, "quarantine", "--backend", "things")
    assert changed.returncode == 0, changed.stderr
    result = fieldtui(cli_env, "history", device_id, "--json")
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)["entries"]
    installs = [e for e in entries if e["kind"] == "installation"]
    assert installs[0]["summary"] == "quarantine" and installs[0]["who"] and installs[0]["timestamp"]
    assert len(installs) >= 2, "the earlier statuses are there too"
    # As instants, not as text: "…:57Z" is later than "…:56.9Z" and earlier than "…:57.4Z".
    stamps = [datetime.fromisoformat(e["timestamp"]) for e in entries if e["timestamp"]]
    assert stamps == sorted(stamps, reverse=True), "newest first"
    kinds = {e["kind"] for e in entries}
    assert "check-in" in kinds, "the DeviceHQ twin's check-ins join the things history"
    text = fieldtui(cli_env, "history", device_id)
    assert text.returncode == 0 and "quarantine" in text.stdout and "by " in text.stdout
    assert all(len(line) <= 80 for line in text.stdout.splitlines())


def test_a_reboot_sent_to_an_mqtt_device_is_followed_to_done_in_history(
    sim_clean: Any, cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    device_id = next(i for i, d in sim_clean.fleet.of("mqtt").items() if d.online)
    for name, value in cli_env.items():
        if name.startswith("FIELDTUI_SECRET_"):
            monkeypatch.setenv(name, value)

    async def send_and_follow() -> None:
        loaded = load_config(Path(cli_env["FIELDTUI_CONFIG"]), None)
        data = Path(cli_env["FIELDTUI_DATA_DIR"])
        session = await open_service(loaded, sync=SyncMode.BACKGROUND, path=data / "outbox.sqlite3")
        try:
            record = await session.writes.send_command(device_id, "reboot", {}, backend="live")
            outcome = await session.writes.first_outcome(record, timeout=30)
            assert outcome.status in ("synced", "queued", "sending"), outcome.reason
            async with asyncio.timeout(60):
                async for tasks in session.task_monitor("live", device_id):
                    if any(t.type == "reboot" and t.state is TaskState.DONE for t in tasks):
                        break
        finally:
            await session.aclose()

    asyncio.run(send_and_follow())
    result = fieldtui(cli_env, "history", device_id, "--json")
    assert result.returncode == 0, result.stderr
    reboots = [e for e in json.loads(result.stdout)["entries"] if e["summary"] == "reboot"]
    assert reboots and reboots[0]["state"].startswith("done"), reboots
    tasks = fieldtui(cli_env, "tasks", device_id)
    assert "reboot" in tasks.stdout and "done" in tasks.stdout, tasks.stdout


def test_history_of_an_unknown_device_is_not_found(cli_env: dict[str, str]) -> None:
    result = fieldtui(cli_env, "history", "NOSUCHDEVICE42")
    assert result.returncode == 3, result.stderr
