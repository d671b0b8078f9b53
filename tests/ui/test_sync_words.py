"""Syncing says what happened: a cloud that comes back sends what waited for it at once, with
a notice; Ctrl+S names what each change still queued waits for."""

from __future__ import annotations

from fakes.fake_service import FakeService, Ids
from test_technician_navigation import SIZE, RecordingApp, ready
from ui_helpers import wait_for

from fieldtui.service.api import ActionState, BackendState


async def test_a_cloud_coming_back_syncs_at_once_with_a_notice() -> None:
    fake = FakeService()
    app = RecordingApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        fake.connectivity.set_state("things", BackendState.OFFLINE, "connection refused")
        await wait_for(pilot, lambda: app.bar.backends.get("things") == "offline", what="things offline")
        record = await fake.writes.move_to_group(Ids.THING, "tower-lobby")
        await wait_for(pilot, lambda: app.bar.pending == 1, what="one change queued")
        fake.connectivity.set_state("things", BackendState.ONLINE)
        await wait_for(
            pilot,
            lambda: any("things is reachable again: 1 synced" in n for n in app.notified),
            what="the back-online notice",
        )
        assert (await fake.outbox.action(record.id)).state is ActionState.DONE


async def test_ctrl_s_names_what_a_change_still_queued_waits_for() -> None:
    fake = FakeService()
    app = RecordingApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        first = await fake.writes.move_to_group(Ids.THING, "tower-lobby")
        await fake.writes.set_installation_status(Ids.THING, "uninstalled")
        fake.outbox.fail(first.id, "group is locked")
        await app.refresh_outbox_counts()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any(n.startswith("Sync: ") for n in app.notified), what="the summary")
        (summary,) = [n for n in app.notified if n.startswith("Sync: ")]
        assert "still queued" in summary
        assert "set TSPD04A1B00001234 status to uninstalled: Held: waits for" in summary
        assert "(failed)" in summary
