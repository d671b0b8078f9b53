"""Resilience fixtures: the simulator's config on disk and the environment a fieldtui run needs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fieldtui.config import LoadedConfig, load_config
from fieldtui.connectors.devicehq import forget_sessions


@pytest.fixture(autouse=True)
def _no_shared_devicehq_session() -> None:
    # Earlier tests expire sessions on purpose; their count of takeovers must not carry over.
    forget_sessions()


@pytest.fixture
def loaded(sim_clean: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoadedConfig]:
    """The simulator's profile, its secrets in the environment, data and logs under ``tmp_path``."""
    config, _env = sim_clean.write_config(tmp_path / "config.toml")
    for name, value in sim_clean.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FIELDTUI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FIELDTUI_LOG_DIR", str(tmp_path / "logs"))
    yield load_config(str(config))
