"""``fieldtui outbox list|sync|retry ID|drop ID``: look at and act on queued changes."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime

from fieldtui.commands._output import clean_line
from fieldtui.config import load_config
from fieldtui.core.actions import ActionState
from fieldtui.core.errors import ConfigError
from fieldtui.service.store import ActionRecord, OutboxStore
from fieldtui.service.sync import SyncSummary
from fieldtui.service.writes import open_outbox

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def run(args: argparse.Namespace) -> int:
    command = getattr(args, "outbox_command", None) or "list"
    if command != "list" and args.read_only:
        raise ConfigError(f"read-only mode: `outbox {command}` is refused", hint="run without --read-only")
    if command == "sync" and args.offline:
        raise ConfigError("`outbox sync` sends the queued changes: it cannot run with --offline")
    handler = {"list": _list, "sync": _sync, "retry": _retry, "drop": _drop}[command]
    return asyncio.run(handler(args))


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def _line(record: ActionRecord) -> str:
    where = record.action.backend or "(any)"
    detail = ""
    if record.state is ActionState.QUEUED and record.attempts:
        detail = f"  next try {_when(record.next_attempt_at)}"
    if record.last_error:
        detail += f"  {record.last_error}"
    # The description holds what was typed and the error the server's words: neither may reach
    # the terminal with its control characters.
    return clean_line(
        f"{record.id[:8]}  {record.state.value:<9} {where:<10} {record.describe()}"
        f"  (attempts {record.attempts}){detail}"
    )


async def _list(args: argparse.Namespace) -> int:
    async with await OutboxStore.open() as store:
        records = await store.list_recent()
        counts = await store.counts()
    if args.json:
        payload = {
            "actions": [r.to_json() for r in records],
            "counts": {state.value: counts.get(state, 0) for state in ActionState},
        }
        print(json.dumps(payload, indent=2))
        return EXIT_OK
    if not records:
        print("the outbox is empty")
        return EXIT_OK
    for record in records:
        print(_line(record))
    waiting = sum(counts.get(s, 0) for s in (ActionState.QUEUED, ActionState.SENDING))
    held = sum(counts.get(s, 0) for s in (ActionState.FAILED, ActionState.CONFLICT))
    print(f"{waiting} waiting to sync, {held} failed or in conflict (need you)")
    return EXIT_OK


def _print_summary(summary: SyncSummary) -> None:
    print(f"synced {len(summary.done)}")
    for record in summary.failed:
        print(f"failed   {_line(record)}", file=sys.stderr)
    for record in summary.conflicts:
        print(f"conflict {_line(record)}", file=sys.stderr)
    for record in summary.deferred:
        print(f"later    {_line(record)}")
    for backend, error in sorted(summary.unreachable.items()):
        print(clean_line(f"unreachable: {error if error.startswith(backend) else f'{backend}: {error}'}"))
    left = {state.value: n for state, n in summary.remaining.items() if n}
    if left:
        print("left in the outbox: " + ", ".join(f"{n} {state}" for state, n in sorted(left.items())))


async def _sync(args: argparse.Namespace) -> int:
    loaded = load_config(args.config, args.profile)
    async with open_outbox(loaded) as outbox:
        # Asked for by hand: every queued action is tried now, not when its backoff ends.
        await outbox.store.make_due()
        summary = await outbox.engine.drain()
    if args.json:
        print(json.dumps(summary.to_json(), indent=2))
    else:
        _print_summary(summary)
    return EXIT_OK if summary.ok else EXIT_FAILURE


async def _retry(args: argparse.Namespace) -> int:
    async with await OutboxStore.open() as store:
        record = await store.retry(args.action_id)
    if args.json:
        print(json.dumps({"action": record.to_json()}, indent=2))
    else:
        print(f"queued again: {_line(record)}")
        print("it is sent by `fieldtui outbox sync` or by the app")
    return EXIT_OK


async def _drop(args: argparse.Namespace) -> int:
    async with await OutboxStore.open() as store:
        full = await store.resolve_id(args.action_id)
        record = await store.get(full)
        assert record is not None
        if not args.yes:
            if not sys.stdin.isatty():
                print(
                    "fieldtui: refusing to drop an action without a terminal to confirm on; pass --yes",
                    file=sys.stderr,
                )
                return EXIT_USAGE
            answer = await asyncio.to_thread(
                input, f"Drop {record.id[:8]} ({record.describe()}, {record.state.value})? [y/N] "
            )
            if answer.strip().lower() not in ("y", "yes"):
                print("kept")
                return EXIT_OK
        dropped = await store.drop(full)
    if args.json:
        print(json.dumps({"action": dropped.to_json()}, indent=2))
    else:
        print(f"dropped: {_line(dropped)}")
    return EXIT_OK
