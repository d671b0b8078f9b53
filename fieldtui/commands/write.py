"""``fieldtui set-status`` and ``fieldtui move``: queue the change, then try to send it now.

The change is on disk in the outbox before anything is sent; the command then waits a short
while for the first attempt and says whether it synced now or is queued, and why.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from fieldtui import paths
from fieldtui.commands._errors import EXIT_CONFLICT_OR_FAILED, EXIT_NOT_FOUND, EXIT_OK
from fieldtui.commands._output import clean_line, dumps
from fieldtui.config import load_config
from fieldtui.core.errors import DeviceNotFound
from fieldtui.service.api import ActionRecord, FieldService, SyncMode, WriteOutcome
from fieldtui.service.session import open_service

#: The longest the first attempt is waited for.
MAX_WAIT = 30.0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    loaded = load_config(args.config, args.profile)
    # Once: the session's engine sends what is queued until it closes (stopping with a grace
    # for a send still on its way); with --offline nothing is sent.
    service = await open_service(
        loaded, sync=SyncMode.ONCE, offline=args.offline, read_only=args.read_only, path=paths.outbox_path()
    )
    try:
        record = await _submit(service, args)
        wait = min(MAX_WAIT, max((b.timeout for b in loaded.backends.values()), default=10.0) + 5.0)
        outcome = await service.writes.first_outcome(record, timeout=wait)
    finally:
        await service.aclose()
    return _report(outcome, args.json)


async def _submit(service: FieldService, args: argparse.Namespace) -> ActionRecord:
    if args.command == "set-status":
        return await service.writes.set_installation_status(args.device, args.status, backend=args.backend)
    return await service.writes.move_to_group(args.device, args.group, backend=args.backend)


def _report(outcome: WriteOutcome, as_json: bool) -> int:
    record = outcome.record
    unknown = outcome.status == "failed" and outcome.reason.startswith("no cloud knows")
    if unknown and not as_json:
        print(
            clean_line(
                f"action {record.id}: {record.describe()} (failed; drop it with `fieldtui outbox drop "
                f"{record.id[:8]}`)"
            )
        )
        raise DeviceNotFound(outcome.reason)
    print_outcome(outcome, as_json)
    if unknown:
        return EXIT_NOT_FOUND
    # Not 1 (README keeps it for bugs): the change was refused or the device changed under it.
    return EXIT_CONFLICT_OR_FAILED if outcome.status in ("failed", "conflict") else EXIT_OK


def print_outcome(outcome: WriteOutcome, as_json: bool) -> None:
    """Where a queued change stands, for every writing command: the JSON document, or
    ``synced now`` / ``queued: why`` on stdout and a refusal with its fix on stderr."""
    record = outcome.record
    if as_json:
        print(dumps(outcome.to_json(), indent=2))
        return
    # The server's words and the typed names are shown without their control characters.
    reason = clean_line(outcome.reason)
    print(clean_line(f"action {record.id}: {record.describe()}"))
    match outcome.status:
        case "synced":
            print("synced now" if reason == "synced" else f"synced now ({reason})")
        case "queued" | "sending":
            print(f"queued: {reason}")
        case "failed" | "conflict":
            print(f"{outcome.status}: {reason}", file=sys.stderr)
            print(
                f"see `fieldtui outbox list`; `fieldtui outbox retry {record.id[:8]}` or "
                f"`fieldtui outbox drop {record.id[:8]}`",
                file=sys.stderr,
            )
        case _:
            print(f"{outcome.status}: {reason}")
