"""``fieldtui devices`` finds what the lookup finds, with the lookup's filter words as options."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fieldtui.config import load_config
from fieldtui.service.api import FindMatch, SyncMode
from fieldtui.service.session import open_service


def fieldtui(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fieldtui", *args], env=env, capture_output=True, text=True, timeout=120
    )


async def lookup_finds(env: dict[str, str], query: str, tmp_path: Path) -> set[str]:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        service = await open_service(
            load_config(env["FIELDTUI_CONFIG"], None), sync=SyncMode.NONE, path=tmp_path / "lookup.db"
        )
        try:
            return {item.key async for item in service.find(query) if isinstance(item, FindMatch)}
        finally:
            await service.aclose()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_devices_with_a_name_finds_what_the_lookup_finds(
    sim: Any, cli_env: dict[str, str], tmp_path: Path
) -> None:
    named = {d.id for d in sim.fleet.of("mqtt").values() if "lab" in d.name.lower() and d.online}
    deadline = time.monotonic() + 30
    while True:  # the simulator retains each online device's name shortly after it starts
        found = asyncio.run(lookup_finds(cli_env, "Lab", tmp_path))
        if named <= found or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert named and named <= found
    result = fieldtui(cli_env, "devices", "-q", "Lab", "--limit", "0", "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert {d["id"] for d in listed["devices"]} == found
    assert listed["errors"] == {}


@pytest.mark.parametrize("typo", ["installd"])
def test_an_unknown_status_is_refused_with_the_valid_ones(cli_env: dict[str, str], typo: str) -> None:
    result = fieldtui(cli_env, "devices", "--status", typo)
    assert result.returncode == 2
    assert "installed" in result.stderr and "quarantine" in result.stderr
    assert "Traceback" not in result.stderr
