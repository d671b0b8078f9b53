"""Where fieldtui keeps its files (platformdirs), created private (0700 dirs, 0600 files)."""

from __future__ import annotations

import contextlib
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


def _app_roots() -> set[Path]:
    """fieldtui's own top directories (``.../fieldtui``) where platformdirs puts them."""
    return {
        platformdirs.user_data_path(APP_NAME),
        platformdirs.user_config_path(APP_NAME),
        platformdirs.user_state_path(APP_NAME),
        platformdirs.user_cache_path(APP_NAME),
        platformdirs.user_log_path(APP_NAME),
    }


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` and every missing parent 0700; make ``path`` 0700, and fieldtui's own
    top directory above it too.

    ``Path.mkdir(parents=True, mode=...)`` gives the mode to the last directory only: the log
    dir is ``$XDG_STATE_HOME/fieldtui/log``, and ``$XDG_STATE_HOME/fieldtui`` came out 0755.
    The XDG base directory spec asks for 0700 for every directory it makes, too.
    """
    missing: list[Path] = []
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            continue  # another process made it meanwhile (0700 too)
        os.chmod(directory, 0o700)  # mkdir's mode is narrowed by the umask, never widened
    os.chmod(path, 0o700)
    # A top directory an earlier version made 0755 is closed too; never a user's own folder.
    for root in _app_roots() & set(path.parents):
        with contextlib.suppress(OSError):
            if root.stat().st_mode & 0o077:
                os.chmod(root, 0o700)
    return path


def create_private_file(path: Path) -> Path:
    """Create ``path`` if missing, 0600 from the start (never briefly world-readable)."""
    ensure_private_dir(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)
    return path
