"""``fieldtui`` with no command: open the app over the configured profile.

Commands sit above the UI in the layer contract, so the app is imported here, in ``run``
(never at module import: the quick commands must not pay for Textual); the config is read
first, so a bad config is a usage error printed before the terminal is taken over.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from fieldtui.config import load_config

if TYPE_CHECKING:
    from fieldtui.service.api import FieldService


def run(args: argparse.Namespace, *, samples: Sequence[tuple[str, str]] = ()) -> int:
    """Open the app; ``samples`` (device id, what it is) are offered on the empty lookup."""
    loaded = load_config(args.config, args.profile)
    offline = bool(getattr(args, "offline", False))
    read_only = bool(getattr(args, "read_only", False))
    from fieldtui.ui.app import run_app

    async def service() -> FieldService:
        # Imported here, in the app's worker after its first frame: httpx, pydantic models and
        # SQLite are not needed to draw the lookup screen.
        from fieldtui.service.session import open_session

        return await open_session(loaded, offline=offline, read_only=read_only)

    return run_app(
        service,
        profile=loaded.profile_name,
        read_only=read_only,
        offline=offline,
        keymap=dict(loaded.config.keymap),
        samples=samples,
    )
