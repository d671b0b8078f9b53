"""The app's session notices a cloud that comes back within seconds, and sends what waited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fieldtui.config import LoadedConfig, load_config
from fieldtui.service.api import BackendState, SyncMode
from fieldtui.service.session import BACK_WITHIN, open_service

#: Slack for a loaded 2-core machine on top of the promised interval.
SLACK = 10.0


@pytest.fixture
async def loaded(
    sim_clean: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[LoadedConfig]:
    config_path, _ = sim_clean.write_config(tmp_path / "config.toml")
    for name, value in sim_clean.env().items():
        monkeypatch.setenv(name, value)
    yield load_config(str(config_path), None)


async def _until(predicate: Any, timeout: float) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError("not within the time")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def test_a_cloud_that_comes_back_is_noticed_within_seconds_and_the_outbox_syncs(
    loaded: LoadedConfig, sim_clean: Any, tmp_path: Path
) -> None:
    device = sorted(sim_clean.fleet.of("things").values(), key=lambda d: d.id)[2]
    target = "retired" if device.installation_status != "retired" else "installed"
    sim_clean.admin("PUT", "/_sim/faults/things", json={"unreachable": True})
    service = await open_service(loaded, sync=SyncMode.BACKGROUND, path=tmp_path / "outbox.db")
    try:
        state = lambda: service.connectivity.snapshot()["things"].state  # noqa: E731
        await _until(lambda: state() is BackendState.OFFLINE, 30)
        record = await service.writes.set_installation_status(device.id, target, backend="things")
        await asyncio.sleep(3 * BACK_WITHIN)  # long enough for the prober to back off to its cap
        sim_clean.admin("PUT", "/_sim/faults/things", json={"unreachable": False})
        noticed = await _until(lambda: state() is BackendState.ONLINE, BACK_WITHIN + SLACK)
        outcome = await service.writes.first_outcome(record, timeout=30)
    finally:
        await service.aclose()
        sim_clean.admin("PUT", "/_sim/faults/things", json={"unreachable": False})
    assert noticed <= BACK_WITHIN + SLACK
    assert outcome.status == "synced", outcome
    inspect = sim_clean.admin("GET", f"/_sim/inspect/things/{device.id}").json()
    assert inspect["installation_status"] == target


async def test_going_offline_in_the_app_queues_and_going_online_sends_without_a_restart(
    loaded: LoadedConfig, sim_clean: Any, tmp_path: Path
) -> None:
    device = sorted(sim_clean.fleet.of("things").values(), key=lambda d: d.id)[3]
    target = "quarantine" if device.installation_status != "quarantine" else "installed"
    service = await open_service(loaded, sync=SyncMode.BACKGROUND, path=tmp_path / "outbox.db")
    try:
        await service.set_offline(True)
        record = await service.writes.set_installation_status(device.id, target, backend="things")
        outcome = await service.writes.first_outcome(record, timeout=3)
        assert outcome.status == "queued", outcome
        await asyncio.sleep(2)
        before = sim_clean.admin("GET", f"/_sim/inspect/things/{device.id}").json()
        assert before["installation_status"] != target, "nothing is sent while offline"
        await service.set_offline(False)
        await _until(lambda: service.connectivity.snapshot()["things"].state is BackendState.ONLINE, 30)
        synced = await service.writes.first_outcome(record, timeout=30)
    finally:
        await service.aclose()
    assert synced.status == "synced", synced
    after = sim_clean.admin("GET", f"/_sim/inspect/things/{device.id}").json()
    assert after["installation_status"] == target
