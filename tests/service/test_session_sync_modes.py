"""The composition root's sync modes, as the commands use them, over the simulator.

``once`` (``set-status``, ``move``): the session's engine sends what is queued and the session
closes once the change had its first attempt. ``drain`` (``outbox sync``): nothing is sent until
``outbox.drain()``. ``none`` (reads, ``outbox list``): nothing is ever sent, and a drain there is
refused at once instead of waiting for an engine that does not run. Writes are judged by the
simulator's own record.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fieldtui.config import LoadedConfig, load_config
from fieldtui.service.api import ActionState, StoreError, SyncMode
from fieldtui.service.session import open_service

#: A first attempt may wait for a loaded machine.
WAIT = 60.0


@pytest.fixture
async def loaded(
    sim_clean: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[LoadedConfig]:
    config_path, _ = sim_clean.write_config(tmp_path / "config.toml")
    for name, value in sim_clean.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FIELDTUI_DATA_DIR", str(tmp_path / "data"))
    yield load_config(str(config_path), None)


def _thing(sim: Any) -> tuple[str, str]:
    """A things device and a status it does not have yet."""
    device = sorted(sim.fleet.of("things").values(), key=lambda d: d.id)[1]
    return device.id, "retired" if device.installation_status != "retired" else "installed"


def _status(sim: Any, device_id: str) -> Any:
    return sim.admin("GET", f"/_sim/inspect/things/{device_id}").json()["installation_status"]


async def test_a_writing_session_sends_its_change_before_it_closes(
    loaded: LoadedConfig, sim_clean: Any, tmp_path: Path
) -> None:
    device_id, target = _thing(sim_clean)
    service = await open_service(loaded, sync=SyncMode.ONCE, path=tmp_path / "outbox.db")
    try:
        record = await service.writes.set_installation_status(device_id, target, backend="things")
        outcome = await service.writes.first_outcome(record, timeout=WAIT)
    finally:
        await service.aclose()
    assert outcome.status == "synced", outcome
    assert _status(sim_clean, device_id) == target


async def test_a_drain_session_sends_nothing_until_asked_then_drains(
    loaded: LoadedConfig, sim_clean: Any, tmp_path: Path
) -> None:
    device_id, target = _thing(sim_clean)
    service = await open_service(loaded, sync=SyncMode.DRAIN, path=tmp_path / "outbox.db")
    try:
        record = await service.writes.set_installation_status(device_id, target, backend="things")
        assert (await service.outbox.action(record.id[:8])).state is ActionState.QUEUED
        assert _status(sim_clean, device_id) != target
        summary = await service.outbox.drain(timeout=WAIT)
        assert summary.drained and summary.ok and [r.id for r in summary.done] == [record.id]
        recent = await service.outbox.list_recent()
        assert [(r.id, r.state) for r in recent] == [(record.id, ActionState.DONE)]
        assert (await service.outbox.counts()).done == 1
        assert await service.outbox.check_applied(record.id) is True
    finally:
        await service.aclose()
    assert _status(sim_clean, device_id) == target


async def test_a_read_session_refuses_to_drain_at_once(loaded: LoadedConfig, tmp_path: Path) -> None:
    service = await open_service(loaded, sync=SyncMode.NONE, path=tmp_path / "outbox.db")
    try:
        with pytest.raises(StoreError, match="DRAIN"):
            await service.outbox.drain(timeout=WAIT)
        with pytest.raises(StoreError):
            await service.outbox.action("abcdef12")
    finally:
        await service.aclose()
