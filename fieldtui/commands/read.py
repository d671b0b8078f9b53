"""``fieldtui status|watch|tasks|history DEVICE [--json]``: the quick reads, for a shell or a script.

These must answer in about a second over a slow link on a jump host: they import neither
Textual nor (when the secret is in the environment) keyring, and open a read session through
the one composition root (no sync engine; every configured cloud that could hold the device is
asked, the read cache answering for the ones that cannot be reached). Errors propagate to
``fieldtui.cli``, which maps them to the exit codes (2 config, 3 device not found, 4 nothing
reachable and nothing cached).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator

from fieldtui import paths
from fieldtui.commands import _device_output as device_out
from fieldtui.commands import _output as out
from fieldtui.config import LoadedConfig, load_config
from fieldtui.core.models import StreamEvent
from fieldtui.service.api import FieldService, SyncMode
from fieldtui.service.session import open_service


def run(args: argparse.Namespace) -> int:
    loaded = load_config(args.config, args.profile)
    offline = bool(args.offline)
    if args.command == "watch":
        try:
            return asyncio.run(_watch(loaded, offline, args.device, json_output=args.json))
        except KeyboardInterrupt:
            return 0  # Ctrl-C is how a watch ends
    if args.command == "tasks":
        return asyncio.run(_tasks(loaded, offline, args.device, json_output=args.json))
    if args.command == "history":
        return asyncio.run(_history(loaded, offline, args.device, json_output=args.json))
    return asyncio.run(_status(loaded, offline, args.device, json_output=args.json))


@contextlib.asynccontextmanager
async def _service(loaded: LoadedConfig, offline: bool) -> AsyncIterator[FieldService]:
    """A read session over the profile's backends (the read cache when it can be opened)."""
    session = await open_service(
        loaded, sync=SyncMode.NONE, offline=offline, path=paths.outbox_path(), on_cache_error=_warn
    )
    try:
        yield session
    finally:
        await session.aclose()


def _warn(message: str) -> None:
    print(f"fieldtui: {out.clean_line(message)}", file=sys.stderr)


def _emit(line: str) -> None:
    print(line, flush=True)


async def _status(loaded: LoadedConfig, offline: bool, device_id: str, *, json_output: bool) -> int:
    async with _service(loaded, offline) as service:
        view = await service.device(device_id)
    if json_output:
        _emit(out.status_json(view))
        for backend, reason in view.errors.items():
            _warn(f"{backend}: {reason}")
    else:
        for line in out.status_lines(view) + device_out.extra_status_lines(view):
            _emit(line)
    return 0


async def _history(loaded: LoadedConfig, offline: bool, device_id: str, *, json_output: bool) -> int:
    async with _service(loaded, offline) as service:
        if not offline:
            await service.device(device_id)  # not found anywhere: exit 3, not an empty history
        history = await service.history(device_id)
    if json_output:
        _emit(device_out.history_json(history))
    else:
        for line in device_out.history_lines(history):
            _emit(line)
    for backend, reason in history.errors.items():
        _warn(f"{backend}: {reason}")
    return 0


async def _tasks(loaded: LoadedConfig, offline: bool, device_id: str, *, json_output: bool) -> int:
    async with _service(loaded, offline) as service:
        view = await service.task_view(device_id)
    if json_output:
        _emit(out.tasks_json(device_id, view.tasks, view.sources))
    else:
        for line in out.tasks_lines(view.tasks, view.sources):
            _emit(line)
    for backend, reason in view.errors.items():
        _warn(f"{backend}: {reason}")
    return 0


async def _watch(loaded: LoadedConfig, offline: bool, device_id: str, *, json_output: bool) -> int:
    async with _service(loaded, offline) as service:
        try:
            async for item in service.telemetry(device_id):
                if isinstance(item, StreamEvent):
                    # Stream news goes to stderr: stdout carries samples only (one JSON per line).
                    print(out.event_line(item), file=sys.stderr, flush=True)
                elif json_output:
                    _emit(out.sample_json(item))
                else:
                    _emit(out.sample_line(item))
        except BrokenPipeError:
            # `fieldtui watch X --json | head`: the reader is gone, which ends the watch.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
