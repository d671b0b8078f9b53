"""``fieldtui outbox list|sync|retry ID|drop ID``: look at and act on queued changes.

Through the port only: ``sync`` opens a session that drains (``SyncMode.DRAIN``); ``list``,
``retry`` and ``drop`` open the outbox through the composition root, over a read session when
the config loads (``drop`` then asks the cloud about an action whose last attempt got no
answer) and alone when it does not (a broken config must not hide what is queued).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from datetime import datetime, timedelta

from fieldtui import paths
from fieldtui.commands._errors import EXIT_CONFLICT_OR_FAILED, EXIT_LEFT_QUEUED
from fieldtui.commands._output import clean_line, dumps
from fieldtui.config import LoadedConfig, load_config
from fieldtui.core.actions import ActionState
from fieldtui.core.errors import ConfigError
from fieldtui.service.api import (
    ActionEvent,
    ActionRecord,
    Outbox,
    StorageFault,
    StoreError,
    SyncMode,
    SyncSummary,
)
from fieldtui.service.session import open_outbox_session, open_service, salvage_listing

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
#: The outbox file cannot be used as it is (the message names it and the fix): as a config error.
EXIT_STORAGE = 2
#: How long `outbox sync` keeps retrying when not told (``--timeout``).
DEFAULT_SYNC_TIMEOUT = 120.0
#: States an action is still the technician's business in (listed whatever its age).
OPEN_STATES = (ActionState.QUEUED, ActionState.SENDING, ActionState.FAILED, ActionState.CONFLICT)


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


def _config_if_any(args: argparse.Namespace) -> LoadedConfig | None:
    """The profile's config, or None when there is none to be had: the outbox is still shown."""
    try:
        return load_config(args.config, args.profile)
    except ConfigError:
        return None


async def _list(args: argparse.Namespace) -> int:
    path = paths.outbox_path()
    fault: StorageFault | None = None
    note: str | None = None
    try:
        # Nothing here asks a cloud: the outbox alone, whatever the config says.
        async with open_outbox_session(None, path=path) as outbox:
            records = await outbox.list_recent()
            counts = await outbox.counts()
            damaged = await outbox.damaged()
            lost = await outbox.lost_actions()
        by_state = {
            ActionState.QUEUED: counts.queued,
            ActionState.SENDING: counts.sending,
            ActionState.DONE: counts.done,
            ActionState.FAILED: counts.failed,
            ActionState.CONFLICT: counts.conflict,
            ActionState.CANCELLED: counts.cancelled,
        }
    except StorageFault as exc:
        # The outbox cannot be opened as it should (read-only, damaged, a full disk): show what
        # can still be read, and say what is wrong.
        fault = exc
        found = await asyncio.to_thread(salvage_listing, path)
        if found is None:
            raise exc from None
        records, damaged, lost, note = found.records, found.damaged, found.losses, found.note
        by_state = Counter(r.state for r in records)
        finished = [r for r in records if r.state not in OPEN_STATES][-20:]
        records = sorted([r for r in records if r.state in OPEN_STATES] + finished, key=lambda r: r.seq)
    if args.json:
        payload: dict[str, object] = {
            "actions": [r.to_json() for r in records],
            "counts": {state.value: by_state.get(state, 0) for state in ActionState}
            | {"damaged": len(damaged)},
            "damaged": [d.to_json() for d in damaged],
            "lost": [loss.to_json() for loss in lost],
        }
        if fault is not None:
            payload["error"] = {"message": str(fault), "partial": True, "note": note}
        print(dumps(payload, indent=2))
        return EXIT_STORAGE if fault is not None else EXIT_OK
    for loss in lost:
        print(clean_line(loss.message()))
    if fault is not None:
        print(clean_line(f"fieldtui: {fault}"), file=sys.stderr)
        print(f"showing what could be read from {path}" + (f" ({note})" if note else ""), file=sys.stderr)
    if not records and not damaged and not lost:
        print("the outbox is empty")
        return EXIT_STORAGE if fault is not None else EXIT_OK
    for record in records:
        print(_line(record))
    for row in damaged:
        print(clean_line(row.line()))
    waiting = sum(by_state.get(s, 0) for s in (ActionState.QUEUED, ActionState.SENDING))
    held = sum(by_state.get(s, 0) for s in (ActionState.FAILED, ActionState.CONFLICT))
    summary = f"{waiting} waiting to sync, {held} failed or in conflict (need you)"
    if damaged:
        summary += f", {len(damaged)} damaged (set aside, never sent)"
    if lost:
        summary += f", {sum(loss.count for loss in lost)} lost"
    print(summary)
    return EXIT_STORAGE if fault is not None else EXIT_OK


def _print_summary(summary: SyncSummary) -> None:
    print(f"synced {len(summary.done)}")
    for record in summary.failed:
        print(f"failed   {_line(record)}", file=sys.stderr)
    for record in summary.conflicts:
        print(f"conflict {_line(record)}", file=sys.stderr)
    for record in summary.left:
        print(
            clean_line(
                f"left     {record.id[:8]}  {record.state.value:<9} {record.action.backend or '(any)':<10} "
                f"{record.describe()}  {summary.reason(record)}"
            )
        )
    for backend, error in sorted(summary.unreachable.items()):
        print(clean_line(f"unreachable: {error if error.startswith(backend) else f'{backend}: {error}'}"))
    left = {state.value: n for state, n in summary.remaining.items() if n}
    if left:
        print("left in the outbox: " + ", ".join(f"{n} {state}" for state, n in sorted(left.items())))


class _Progress:
    """Counts the engine's events and says, every few seconds on stderr, how the sync is going."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.retrying: set[str] = set()
        self._said = ""

    def hear(self, event: ActionEvent) -> None:
        if event.previous is not ActionState.SENDING:
            return
        match event.state:
            case ActionState.DONE:
                self.done += 1
                self.retrying.discard(event.record.id)
            case ActionState.FAILED | ActionState.CONFLICT:
                self.failed += 1
                self.retrying.discard(event.record.id)
            case ActionState.QUEUED:
                self.retrying.add(event.record.id)
            case _:
                pass

    def line(self) -> str:
        to_go = max(self.total - self.done - self.failed, 0)
        return (
            f"sync: {self.done} of {self.total} synced, {self.failed} failed or in conflict, "
            f"{to_go} to go ({len(self.retrying)} waiting to be tried again)"
        )

    async def report(self, every: float = 2.0) -> None:
        while True:
            await asyncio.sleep(every)
            self.say()

    def say(self) -> None:
        line = self.line()
        if line != self._said:
            print(line, file=sys.stderr, flush=True)
            self._said = line


async def _sync(args: argparse.Namespace) -> int:
    loaded = load_config(args.config, args.profile)
    timeout = float(getattr(args, "timeout", None) or DEFAULT_SYNC_TIMEOUT)
    if not 0 < timeout < 10**7:
        raise ConfigError(f"--timeout {timeout:g}: give a number of seconds above 0")
    service = await open_service(loaded, sync=SyncMode.DRAIN, path=paths.outbox_path())
    try:
        outbox = service.outbox
        lost = await outbox.lost_actions()
        damaged = await outbox.damaged()
        # Before anything else: changes the outbox lost are what the technician must redo.
        for loss in lost:
            print(clean_line(loss.message()), file=sys.stderr if args.json else sys.stdout, flush=True)
        if damaged:
            print(
                f"fieldtui: {len(damaged)} damaged action(s) set aside, never sent (see `fieldtui outbox list`)",
                file=sys.stderr,
            )
        total = (await outbox.counts()).pending
        until = (datetime.now() + timedelta(seconds=timeout)).strftime("%H:%M:%S")
        print(
            f"sync: {total} change(s) to send; retrying until {until} at the latest (--timeout {timeout:g})",
            file=sys.stderr,
            flush=True,
        )
        progress = _Progress(total)
        unsubscribe = outbox.on_change(progress.hear)
        reporter = asyncio.create_task(progress.report())
        try:
            # Asked for by hand: every queued action is tried now, not when its backoff ends.
            summary = await outbox.drain(timeout=timeout)
        finally:
            reporter.cancel()
            unsubscribe()
        progress.say()
    finally:
        await service.aclose()
    if args.json:
        document = summary.to_json()
        document["lost"] = [loss.to_json() for loss in lost]
        document["damaged"] = [row.to_json() for row in damaged]
        print(dumps(document, indent=2))
    else:
        _print_summary(summary)
        if summary.timed_out:
            print(
                f"stopped at the deadline ({timeout:g} s): run `fieldtui outbox sync` again, or --timeout longer"
            )
    if not summary.ok:
        return EXIT_CONFLICT_OR_FAILED
    return EXIT_OK if summary.drained else EXIT_LEFT_QUEUED


async def _retry(args: argparse.Namespace) -> int:
    async with open_outbox_session(None, path=paths.outbox_path()) as outbox:
        record = await outbox.retry(args.action_id)
    if args.json:
        print(dumps({"action": record.to_json()}, indent=2))
    else:
        print(f"queued again: {_line(record)}")
        print("it is sent by `fieldtui outbox sync` or by the app")
    return EXIT_OK


async def _drop(args: argparse.Namespace) -> int:
    loaded = _config_if_any(args)
    async with open_outbox_session(loaded, path=paths.outbox_path(), offline=args.offline) as outbox:
        record = await outbox.action(args.action_id)
        if not args.yes:
            if not sys.stdin.isatty():
                raise ConfigError(
                    "refusing to drop an action without a terminal to confirm on", hint="pass --yes"
                )
            answer = await asyncio.to_thread(
                input, f"Drop {record.id[:8]} ({record.describe()}, {record.state.value})? [y/N] "
            )
            if answer.strip().lower() not in ("y", "yes"):
                print("kept")
                return EXIT_OK
        found = await _check_before_drop(outbox, record, args)
        dropped = await outbox.drop(record.id)
    if args.json:
        print(dumps({"action": dropped.to_json(), "checked": found}, indent=2))
    else:
        print(f"dropped: {_line(dropped)}")
    return EXIT_OK


async def _check_before_drop(outbox: Outbox, record: ActionRecord, args: argparse.Namespace) -> str | None:
    """An action whose last attempt got no answer may have taken effect: ask its cloud first.

    Applied: not dropped (the next sync records it as done). Not applied: dropped, and said so.
    Cannot tell: not dropped unless ``--force``. None when no check was needed.
    """
    if record.attempts == 0 or not record.uncertain:
        return None
    where = record.action.backend or "its cloud"
    applied = await outbox.check_applied(record.id)
    if applied is True:
        raise StoreError(
            f"not dropped: {record.describe()} already took effect on {where} (checked just now)",
            hint="`fieldtui outbox sync` records it as done",
        )
    if applied is False:
        _say(args, f"checked {where}: {record.describe()} did not take effect; dropping it")
        return "not applied"
    if not args.force:
        raise StoreError(
            f"not dropped: its last attempt got no answer and {where} cannot tell now whether "
            f"{record.describe()} took effect",
            hint="try again when it answers (not with --offline), or pass --force to drop it anyway",
        )
    _say(
        args,
        f"could not check {where}: {record.describe()} may have taken effect; dropped as asked (--force)",
    )
    return "unknown"


def _say(args: argparse.Namespace, line: str) -> None:
    # Under --json stdout is the document alone.
    print(clean_line(line), file=sys.stderr if args.json else sys.stdout, flush=True)
