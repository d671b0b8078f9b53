"""The CLI as a script runs it: a private data directory, the simulator's config and secrets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def cli_env(sim: Any, tmp_path: Path) -> dict[str, str]:
    config, _ = sim.write_config(tmp_path / "config.toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDTUI_")}
    env.update(sim.env())
    env.update(
        FIELDTUI_CONFIG=str(config),
        FIELDTUI_DATA_DIR=str(tmp_path / "data"),
        FIELDTUI_LOG_DIR=str(tmp_path / "log"),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    return env
