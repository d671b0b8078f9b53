"""Where fieldtui keeps its files (platformdirs), created private (0700 dirs, 0600 files)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "fieldtui"


def config_path() -> Path:
    """The config file: ``--config`` / ``FIELDTUI_CONFIG`` override this default."""
    return platformdirs.user_config_path(APP_NAME) / "config.toml"


def data_dir() -> Path:
    override = os.environ.get("FIELDTUI_DATA_DIR")
    return Path(override) if override else platformdirs.user_data_path(APP_NAME)


def log_dir() -> Path:
    override = os.environ.get("FIELDTUI_LOG_DIR")
    return Path(override) if override else platformdirs.user_log_path(APP_NAME)


def outbox_path() -> Path:
    return data_dir() / "outbox.sqlite3"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def create_private_file(path: Path) -> Path:
    """Create ``path`` if missing, 0600 from the start (never briefly world-readable)."""
    ensure_private_dir(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)
    return path
