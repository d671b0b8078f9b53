"""Going offline and back from inside the app (`:offline`, `:online`), without a restart."""

from __future__ import annotations

from fakes.fake_service import FakeService
from test_technician_navigation import SIZE, RecordingApp, command, ready
from ui_helpers import wait_for

from fieldtui.ui.widgets.status_bar import StatusBar


async def test_colon_offline_then_online_switches_the_session_and_the_header() -> None:
    fake = FakeService()
    app = RecordingApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await command(pilot, "offline")
        await wait_for(pilot, lambda: fake.offline and app.bar.offline_mode, what="offline")
        bar = app.screen.query_one(StatusBar)
        assert "OFFLINE" in str(bar.render())
        await command(pilot, "online")
        await wait_for(pilot, lambda: not fake.offline and not app.bar.offline_mode, what="online")
        assert "OFFLINE" not in str(app.screen.query_one(StatusBar).render())
        assert any("Online" in n for n in app.notified)
