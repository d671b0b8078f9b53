"""The outbox screen over the in-memory port: queued while a cloud is unreachable, synced by
Sync now, dropped, and conflicts settled by the technician (the test plays the clouds)."""

from __future__ import annotations

from typing import Any

from fakes.fake_service import FakeService, Ids
from ui_helpers import service_ready, wait_for

from fieldtui.core.actions import ActionState
from fieldtui.service.api import BackendState
from fieldtui.service.session import outcome_summary
from fieldtui.ui.screens.outbox import OutboxScreen
from fieldtui.ui.widgets.confirm import ConfirmModal

SIZE = (80, 24)


def rows(screen: OutboxScreen) -> list[list[str]]:
    table = screen.query_one("#outbox-table")
    return [[str(getattr(c, "plain", c)) for c in table.get_row_at(i)] for i in range(table.row_count)]


def row_for(screen: OutboxScreen, device: str) -> list[str] | None:
    """The row of ``device`` (its Device column may be shortened at 80 columns)."""
    return next((r for r in rows(screen) if r[3] and device.startswith(r[3].rstrip("…"))), None)


def state_of(screen: OutboxScreen, device: str) -> str | None:
    row = row_for(screen, device)
    return row[0] if row else None


def select(screen: OutboxScreen, device: str) -> None:
    table = screen.query_one("#outbox-table")
    table.focus()
    table.move_cursor(row=rows(screen).index(row_for(screen, device)))


def group_of(fake: FakeService, device: str) -> str | None:
    return fake.cloud.copies[device]["things"].group


async def open_outbox(pilot: Any) -> OutboxScreen:
    app = pilot.app
    await service_ready(pilot)
    app.action_outbox()
    await wait_for(pilot, lambda: isinstance(app.screen, OutboxScreen) and app.screen.loaded, what="outbox")
    screen = app.screen
    assert isinstance(screen, OutboxScreen)
    return screen


async def test_queued_while_unreachable_then_synced_by_sync_now(make_fake_app: Any) -> None:
    fake = FakeService()
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await service_ready(pilot)
        fake.connectivity.set_state("things", BackendState.OFFLINE)
        record = await fake.writes.set_installation_status(Ids.THING, "quarantine", backend="things")
        fake.apply_pending()  # the cloud cannot be reached: it waits, with why
        assert (await fake.writes.first_outcome(record)).status == "queued"
        screen = await open_outbox(pilot)
        await wait_for(pilot, lambda: state_of(screen, Ids.THING) == "queued", what="queued")
        row = row_for(screen, Ids.THING)
        assert row is not None and row[5] == "things" and "quarantine" in row[4]
        assert "1 queued" in str(screen.query_one("#outbox-summary").content)

        fake.connectivity.set_state("things", BackendState.ONLINE)
        await pilot.press("s")
        await wait_for(pilot, lambda: state_of(screen, Ids.THING) == "done", what="synced")
        # The cloud's return alone sends it (the app syncs at once); s finds it sent or sends it.
        assert any("1 synced" in n for n in app.notified)
        assert fake.cloud.copies[Ids.THING]["things"].installation_status == "quarantine"
        await wait_for(pilot, lambda: app.bar.pending == 0, what="the bar's count")


async def test_drop_asks_first_and_the_change_is_never_sent(make_fake_app: Any) -> None:
    fake = FakeService()
    before = group_of(fake, Ids.THING)
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await service_ready(pilot)
        await fake.writes.move_to_group(Ids.THING, "tower-lobby", backend="things")
        screen = await open_outbox(pilot)
        await wait_for(pilot, lambda: state_of(screen, Ids.THING) == "queued", what="queued")
        select(screen, Ids.THING)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the confirmation")
        assert "Drop this change?" in str(app.screen.query_one(".modal-title").content)
        await pilot.press("n")
        await pilot.pause()
        assert state_of(screen, Ids.THING) == "queued"
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: state_of(screen, Ids.THING) == "cancelled", what="dropped")
        await pilot.press("s")
        await wait_for(pilot, lambda: any(n.startswith("Sync:") for n in app.notified), what="the sync")
        assert group_of(fake, Ids.THING) == before
        # `/` filters the table by any of its words.
        await pilot.press("slash")
        screen.query_one("#outbox-filter").value = "no-such-device"
        await wait_for(pilot, lambda: screen.query_one("#outbox-table").row_count == 0, what="no rows")
        screen.query_one("#outbox-filter").value = Ids.THING
        await wait_for(pilot, lambda: screen.query_one("#outbox-table").row_count == 1, what="one row")


async def test_conflict_applied_anyway_or_discarded(make_fake_app: Any) -> None:
    fake = FakeService()
    applied, discarded = Ids.THING, Ids.ALERTING
    before = {d: group_of(fake, d) for d in (applied, discarded)}
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await service_ready(pilot)
        # The technician saw each device elsewhere: the cloud finds it moved, a conflict.
        for device in (applied, discarded):
            record = await fake.writes.move_to_group(
                device, "tower-lobby", backend="things", precondition={"group": "old-place"}
            )
            fake.conflict(record.id)
        screen = await open_outbox(pilot)
        await wait_for(
            pilot,
            lambda: all(state_of(screen, d) == "conflict" for d in (applied, discarded)),
            what="two conflicts",
        )
        await wait_for(pilot, lambda: app.bar.conflicts == 2, what="the bar's count")

        select(screen, applied)
        await pilot.pause()
        assert "a: apply anyway" in str(screen.query_one("#outbox-detail").content)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the confirmation")
        assert "Apply anyway?" in str(app.screen.query_one(".modal-title").content)
        await pilot.press("y")
        await wait_for(pilot, lambda: state_of(screen, applied) == "queued", what="queued again")
        fake.apply_pending()
        await wait_for(pilot, lambda: state_of(screen, applied) == "done", what="applied")
        assert group_of(fake, applied) == "tower-lobby"

        select(screen, discarded)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: state_of(screen, discarded) == "cancelled", what="discarded")
        assert group_of(fake, discarded) == before[discarded]
        await wait_for(pilot, lambda: app.bar.conflicts == 0, what="no conflicts")
        assert {r.action.device: r.state for r in fake.outbox.records()} == {
            applied: ActionState.DONE,
            discarded: ActionState.CANCELLED,
        }


def test_sync_summary_in_words() -> None:
    assert outcome_summary([]) == "nothing was waiting"
    assert outcome_summary(["done", "done", "queued", "failed"]) == "2 synced, 1 still queued, 1 failed"
