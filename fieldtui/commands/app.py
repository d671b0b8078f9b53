"""``fieldtui`` with no command: open the app over the configured profile.

The UI sits above the commands in the layer contract, so it is imported by name here, at run
time (as ``demo`` does); the config is read first, so a bad config is a usage error printed
before the terminal is taken over.
"""

from __future__ import annotations

import argparse
import importlib

from fieldtui.config import load_config


def run(args: argparse.Namespace) -> int:
    loaded = load_config(args.config, args.profile)
    offline = bool(getattr(args, "offline", False))
    read_only = bool(getattr(args, "read_only", False))
    ui_app = importlib.import_module("fieldtui.ui.app")

    async def service() -> object:
        # Imported here, in the app's worker after its first frame: httpx, pydantic models and
        # SQLite are not needed to draw the lookup screen.
        from fieldtui.service.session import open_session

        return await open_session(loaded, offline=offline, read_only=read_only)

    result: int = ui_app.run_app(
        service,
        profile=loaded.profile_name,
        read_only=read_only,
        offline=offline,
        keymap=dict(loaded.config.keymap),
    )
    return result
