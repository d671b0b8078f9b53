"""A read or write session for one command, opened through the one composition root."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator

from fieldtui import paths
from fieldtui.commands import _output as out
from fieldtui.config import LoadedConfig
from fieldtui.service.api import FieldService, SyncMode
from fieldtui.service.session import open_service


def warn(message: str) -> None:
    """One line on stderr (stdout carries the answer only), without control characters."""
    print(f"fieldtui: {out.clean_line(message)}", file=sys.stderr)


@contextlib.asynccontextmanager
async def session(
    loaded: LoadedConfig, *, offline: bool, sync: SyncMode = SyncMode.NONE, read_only: bool = False
) -> AsyncIterator[FieldService]:
    """A session over the profile's backends; a read one still answers over a broken cache."""
    service = await open_service(
        loaded,
        sync=sync,
        offline=offline,
        read_only=read_only,
        path=paths.outbox_path(),
        on_cache_error=warn if sync is SyncMode.NONE else None,
    )
    try:
        yield service
    finally:
        await service.aclose()
