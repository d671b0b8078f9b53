"""Every directory fieldtui creates is 0700, at every level, where platformdirs puts it.

With no ``FIELDTUI_DATA_DIR`` / ``FIELDTUI_LOG_DIR`` override the log goes to
``$XDG_STATE_HOME/fieldtui/log``: ``$XDG_STATE_HOME/fieldtui`` used to come out 0755.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any


def _env(sim: Any, root: Path, config: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("FIELDTUI_DATA_DIR", "FIELDTUI_LOG_DIR") and not key.startswith("XDG_")
    }
    return {
        **env,
        **sim.env(),
        "HOME": str(root / "home"),
        "XDG_CONFIG_HOME": str(root / "xdg-config"),
        "XDG_DATA_HOME": str(root / "xdg-data"),
        "XDG_STATE_HOME": str(root / "xdg-state"),
        "XDG_CACHE_HOME": str(root / "xdg-cache"),
        "FIELDTUI_CONFIG": str(config),
        "FIELDTUI_LOG_LEVEL": "DEBUG",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_state_and_log_directories_are_created_0700_at_every_level(sim: Any, tmp_path: Path) -> None:
    config, _ = sim.write_config(tmp_path / "config" / "config.toml")
    env = _env(sim, tmp_path, config)
    thing = sorted(sim.fleet.of("things"))[0]
    result = subprocess.run(
        [sys.executable, "-m", "fieldtui", "status", thing],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    state, data = tmp_path / "xdg-state", tmp_path / "xdg-data"
    assert (state / "fieldtui" / "log").is_dir(), "no log written where platformdirs puts it"
    assert (data / "fieldtui").is_dir(), "no data dir where platformdirs puts it"
    created = [p for top in (state, data) for p in (top, *top.rglob("*")) if p.is_dir()]
    for directory in created:
        assert _mode(directory) == 0o700, f"{directory} is {_mode(directory):o}"
    for top in (state, data):
        for path in top.rglob("*"):
            if path.is_file():
                assert _mode(path) == 0o600, f"{path} is {_mode(path):o}"


def test_an_app_directory_left_0755_by_an_earlier_version_is_closed(sim: Any, tmp_path: Path) -> None:
    config, _ = sim.write_config(tmp_path / "config" / "config.toml")
    env = _env(sim, tmp_path, config)
    old = tmp_path / "xdg-state" / "fieldtui"
    old.mkdir(parents=True)
    os.chmod(old, 0o755)
    os.chmod(old.parent, 0o755)
    thing = sorted(sim.fleet.of("things"))[0]
    result = subprocess.run(
        [sys.executable, "-m", "fieldtui", "status", thing],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (old / "log").is_dir()
    assert _mode(old) == 0o700 and _mode(old / "log") == 0o700
    # A directory that is not fieldtui's own (the XDG home itself, the user's) keeps its mode.
    assert _mode(old.parent) == 0o755
