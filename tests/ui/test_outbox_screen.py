"""The outbox screen against the simulated clouds: queued while unreachable, synced, dropped,
and conflicts settled by the technician."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from fieldtui.core.actions import ActionState
from fieldtui.service.session import outcome_summary
from fieldtui.ui.app import FieldApp
from fieldtui.ui.screens.outbox import OutboxScreen
from fieldtui.ui.widgets.confirm import ConfirmModal

SIZE = (80, 24)


async def until(check: Callable[[], Any], timeout: float = 20.0, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(step)
    raise AssertionError(f"not true within {timeout} s")


def rows(screen: OutboxScreen) -> list[list[str]]:
    table = screen.query_one("#outbox-table")
    return [[str(getattr(c, "plain", c)) for c in table.get_row_at(i)] for i in range(table.row_count)]


def row_for(screen: OutboxScreen, device: str) -> list[str] | None:
    return next((r for r in rows(screen) if r[3] == device), None)


def select(screen: OutboxScreen, device: str) -> None:
    table = screen.query_one("#outbox-table")
    table.focus()
    table.move_cursor(row=next(i for i, r in enumerate(rows(screen)) if r[3] == device))


def things_devices(sim: Any, count: int, start: int = 0) -> list[str]:
    return sorted(sim.fleet.of("things"))[start : start + count]


def sim_group(sim: Any, tuid: str) -> str:
    return str(sim.admin("GET", f"/_sim/inspect/things/{tuid}").json()["group"])


def other_group(sim: Any, *not_these: str) -> str:
    return next(g for g in sorted(sim.fleet.groups) if g not in not_these)


async def open_outbox(app: FieldApp, pilot: Any) -> OutboxScreen:
    app.action_outbox()
    screen = await until(lambda: app.screen if isinstance(app.screen, OutboxScreen) else None)
    await until(lambda: screen.loaded)
    return screen


async def service_up(app: FieldApp) -> Any:
    return await until(lambda: app.service)


async def test_queued_while_unreachable_then_synced_by_sync_now(sim_clean: Any, make_clean_app: Any) -> None:
    (device,) = things_devices(sim_clean, 1)
    app = make_clean_app()
    async with app.run_test(size=SIZE) as pilot:
        service = await service_up(app)
        sim_clean.admin("PUT", "/_sim/faults/things", {"unreachable": True})
        record = await service.writes.set_installation_status(device, "quarantine", backend="things")
        outcome = await service.writes.first_outcome(record, timeout=10)
        assert outcome.status == "queued"
        screen = await open_outbox(app, pilot)
        row = await until(lambda: (r := row_for(screen, device)) and r[0] == "queued" and r[6] and r)
        assert row[2] == "1" and row[5] == "things"
        assert "quarantine" in row[4]
        summary = str(screen.query_one("#outbox-summary").content)
        assert "1 queued" in summary

        sim_clean.admin("DELETE", "/_sim/faults")
        await pilot.press("s")
        await until(lambda: (r := row_for(screen, device)) and r[0] == "done", timeout=15)
        assert any("Sync: 1 synced" in n for n in app.notified)
        inspected = sim_clean.admin("GET", f"/_sim/inspect/things/{device}").json()
        assert inspected["installation_status"] == "quarantine"
        assert app.bar.pending == 0


async def test_drop_asks_first_and_the_change_is_never_sent(sim_clean: Any, make_clean_app: Any) -> None:
    (device,) = things_devices(sim_clean, 1, start=1)
    before = sim_group(sim_clean, device)
    target = other_group(sim_clean, before)
    app = make_clean_app()
    async with app.run_test(size=SIZE) as pilot:
        service = await service_up(app)
        sim_clean.admin("PUT", "/_sim/faults/things", {"unreachable": True})
        await service.writes.move_to_group(device, target, backend="things")
        screen = await open_outbox(app, pilot)
        await until(lambda: (r := row_for(screen, device)) and r[0] == "queued")
        select(screen, device)
        await pilot.press("d")
        confirm = await until(lambda: app.screen if isinstance(app.screen, ConfirmModal) else None)
        assert "Drop this change?" in str(confirm.query_one(".modal-title").content)
        await pilot.press("n")
        await pilot.pause()
        assert row_for(screen, device)[0] == "queued"
        await pilot.press("d")
        await until(lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await until(lambda: (r := row_for(screen, device)) and r[0] == "cancelled")
        sim_clean.admin("DELETE", "/_sim/faults")
        await pilot.press("s")
        await until(lambda: any(n.startswith("Sync:") for n in app.notified))
        assert sim_group(sim_clean, device) == before
        # `/` filters the table by any of its words.
        await pilot.press("slash")
        screen.query_one("#outbox-filter").value = "no-such-device"
        await until(lambda: screen.query_one("#outbox-table").row_count == 0)
        screen.query_one("#outbox-filter").value = device
        await until(lambda: screen.query_one("#outbox-table").row_count == 1)


async def test_conflict_applied_anyway_or_discarded(sim_clean: Any, make_clean_app: Any) -> None:
    applied, discarded = things_devices(sim_clean, 2, start=2)
    groups = {d: sim_group(sim_clean, d) for d in (applied, discarded)}
    seen = other_group(sim_clean, *groups.values())
    target = other_group(sim_clean, *groups.values(), seen)
    app = make_clean_app()
    async with app.run_test(size=SIZE) as pilot:
        service = await service_up(app)
        # The technician saw each device in `seen`; they are elsewhere now: a conflict.
        for device in (applied, discarded):
            record = await service.writes.move_to_group(
                device, target, backend="things", precondition={"group": seen}
            )
            assert (await service.writes.first_outcome(record, timeout=10)).status == "conflict"
        screen = await open_outbox(app, pilot)
        await until(
            lambda: all((r := row_for(screen, d)) and r[0] == "conflict" for d in (applied, discarded))
        )
        assert app.bar.conflicts == 2

        select(screen, applied)
        await pilot.pause()
        assert "a: apply anyway" in str(screen.query_one("#outbox-detail").content)
        await pilot.press("a")
        confirm = await until(lambda: app.screen if isinstance(app.screen, ConfirmModal) else None)
        assert "Apply anyway?" in str(confirm.query_one(".modal-title").content)
        await pilot.press("y")
        await until(lambda: (r := row_for(screen, applied)) and r[0] == "done", timeout=15)
        assert sim_group(sim_clean, applied) == target

        select(screen, discarded)
        await pilot.press("x")
        await until(lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await until(lambda: (r := row_for(screen, discarded)) and r[0] == "cancelled")
        assert sim_group(sim_clean, discarded) == groups[discarded]
        await until(lambda: app.bar.conflicts == 0)
        records = await service.store.list_actions()
        assert {r.action.device: r.state for r in records} == {
            applied: ActionState.DONE,
            discarded: ActionState.CANCELLED,
        }


def test_sync_summary_in_words() -> None:
    assert outcome_summary([]) == "nothing was waiting"
    assert outcome_summary(["done", "done", "queued", "failed"]) == "2 synced, 1 still queued, 1 failed"
