"""Outbox fixtures: a real SQLite file per test, a test double of a vendor, the simulator's config.

``FakeCloud`` is a small in-memory connector for state-machine tests (what a cloud answers is
scripted); everything that claims "synced exactly once" is also tested against the simulator.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from outbox_doubles import FakeCloud, FakeDevice

from fieldtui.config import LoadedConfig, load_config
from fieldtui.service.store import OutboxStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[OutboxStore]:
    async with await OutboxStore.open(tmp_path / "data" / "outbox.sqlite3") as opened:
        yield opened


@pytest.fixture
def cloud() -> FakeCloud:
    return FakeCloud("cloud", {f"D{i}": FakeDevice() for i in range(10)})


@dataclass
class SimSetup:
    """The simulator's config written to disk, and the environment a fieldtui process needs."""

    config: Path
    data_dir: Path
    env: dict[str, str]
    env_secrets: list[str]

    def loaded(self) -> LoadedConfig:
        return load_config(str(self.config))

    def cli(self) -> list[str]:
        return [sys.executable, "-m", "fieldtui"]


@pytest.fixture
def sim_setup(sim_clean: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimSetup]:
    config, _env_file = sim_clean.write_config(tmp_path / "config.toml")
    data_dir = tmp_path / "data"
    env = dict(sim_clean.env())
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FIELDTUI_DATA_DIR", str(data_dir))
    monkeypatch.setenv("FIELDTUI_CONFIG", str(config))
    full_env = {**os.environ, **env, "FIELDTUI_DATA_DIR": str(data_dir), "FIELDTUI_CONFIG": str(config)}
    yield SimSetup(config=config, data_dir=data_dir, env=full_env, env_secrets=list(env.values()))
