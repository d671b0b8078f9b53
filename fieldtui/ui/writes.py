"""Queue a change through the outbox and tell the technician how it went, in one voice.

Every screen that changes something (a task, a command, a move, a group) goes through here:
the change is queued (or refused, said in words), its first attempt is awaited a bounded
while, and one that is still queued is tracked by the app, which says "synced" (or why not)
when it ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence

from fieldtui.service.api import ActionRecord, WriteOutcome, Writes
from fieldtui.ui.app import FieldApp
from fieldtui.ui.text import clean

#: How long an action's first attempt is waited for before saying "queued".
OUTCOME_WAIT = 8.0


def outcome_words(outcome: WriteOutcome | ActionRecord) -> tuple[str, str]:
    """(status, reason) of an outcome, or of a bare record (its state and last error)."""
    if isinstance(outcome, WriteOutcome):
        return outcome.status, outcome.reason or ""
    return outcome.state.value, outcome.last_error or ""


def describe(status: str, reason: str) -> str:
    """``synced``, ``queued (why)``, ``failed: the server's words``."""
    if status in ("synced", "done"):
        return "synced" + (f" ({clean(reason)})" if reason and reason not in ("synced", "done") else "")
    if status in ("failed", "conflict"):
        return f"{status}: {clean(reason) or 'no reason given'}"
    return status + (f" ({clean(reason)})" if reason else "")


def outcome_text(outcome: WriteOutcome | ActionRecord) -> str:
    return describe(*outcome_words(outcome))


async def first_outcomes(
    writes: Writes, records: Sequence[ActionRecord], timeout: float = OUTCOME_WAIT
) -> list[tuple[str, str]]:
    """(status, reason) of each record's first attempt, awaited together, bounded."""

    async def one(record: ActionRecord) -> tuple[str, str]:
        try:
            return outcome_words(await writes.first_outcome(record, timeout=timeout))
        except Exception as exc:  # noqa: BLE001 - queued; only the wait failed
            return "queued", clean(exc)

    return list(await asyncio.gather(*(one(r) for r in records)))


def summarise(what: str, outcomes: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """One line for a batch: ``Move 3 to roof: 2 synced, 1 queued (offline)``, and a severity."""
    counts: dict[str, int] = {}
    reasons: dict[str, str] = {}
    for status, reason in outcomes:
        counts[status] = counts.get(status, 0) + 1
        if reason and status != "synced":
            reasons.setdefault(status, reason)
    parts = []
    for status in ("synced", "queued", "sending", "conflict", "failed", "cancelled"):
        if counts.get(status):
            why = reasons.get(status)
            parts.append(f"{counts[status]} {status}" + (f" ({clean(why, 120)})" if why else ""))
    severity = "error" if counts.get("failed") or counts.get("conflict") else "information"
    return f"{what}: " + (", ".join(parts) or "nothing to do"), severity


async def queue_batch(
    app: FieldApp,
    device_ids: Sequence[str],
    seen: Mapping[str, str | None],
    target: str,
    queue_one: Callable[[str, str | None], Awaitable[ActionRecord]],
    what: Callable[[int, str], str],
) -> tuple[list[ActionRecord], list[tuple[str, str]]]:
    """Queue one change per device (``queue_one(device, value it was seen with)``; a device
    already at ``target`` counts as synced), then say in one line how the first attempts went;
    those still on their way are followed, and one more line says how the last of them ends.
    ``what(count, first device)`` names the batch (``Move 3 devices to roof``)."""
    records: list[ActionRecord] = []
    outcomes: list[tuple[str, str]] = []
    for device_id in device_ids:
        before = seen.get(device_id)
        if before == target:
            outcomes.append(("synced", ""))
            continue
        try:
            records.append(await queue_one(device_id, before))
        except Exception as exc:  # noqa: BLE001 - refused before queuing: said per device
            outcomes.append(("failed", f"{clean(device_id, 30)}: {clean(exc)}"))
    await app.refresh_outbox_counts()
    if app.service is not None:
        firsts = await first_outcomes(app.service.writes, records)
    else:
        firsts = [("queued", "") for _ in records]
    outcomes += firsts
    still = [r for r, (state, _) in zip(records, firsts, strict=True) if state in ("queued", "sending")]
    if still:
        app.track_writes(still, what(len(still), still[0].action.device or ""))
    text, severity = summarise(what(len(device_ids), device_ids[0] if device_ids else ""), outcomes)
    failed = severity == "error"
    app.notify(text, severity="error" if failed else "information", timeout=10 if failed else 6)
    await app.refresh_outbox_counts()
    return records, outcomes


async def report(app: FieldApp, what: str, record: ActionRecord) -> str:
    """Tell how ``record``'s first attempt went; one still queued is followed by the app, which
    says how it ends. Returns the status."""
    if app.service is None:
        return "queued"
    ((status, reason),) = await first_outcomes(app.service.writes, [record])
    if status in ("queued", "sending"):
        app.track_write(record, what)
    failed = status in ("failed", "conflict")
    app.notify(
        f"{what}: {describe(status, reason)}",
        severity="error" if failed else "information",
        timeout=10 if failed else 5,
    )
    await app.refresh_outbox_counts()
    return status


async def submit_write(
    app: FieldApp,
    what: str,
    call: Callable[[Writes], Awaitable[ActionRecord]],
    after: Callable[[], object] | None = None,
) -> ActionRecord | None:
    """Queue one change through the outbox and tell the technician how its first attempt went.

    ``call`` gets the port's writes and returns the queued record. A change refused before it
    is queued (read-only, an unsupported action, a bad id) becomes a notification.
    """
    if app.service is None:
        app.notify("Not connected to the service yet; try again in a moment.", severity="warning")
        return None
    try:
        record = await call(app.service.writes)
    except Exception as exc:  # noqa: BLE001 - refused before queuing: said, never a traceback
        app.notify(f"{what}: not queued: {clean(exc)}", severity="error", timeout=10)
        return None
    await app.refresh_outbox_counts()
    if after is not None:
        after()
    await report(app, what, record)
    if after is not None:
        after()
    return record
