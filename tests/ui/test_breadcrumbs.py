"""Each screen below the lookup says where it is: Lookup › device › Tasks."""

from __future__ import annotations

from fakes.fake_service import FakeService, Ids
from test_footer_and_outbox import open_device
from test_technician_navigation import SIZE, RecordingApp, ready
from ui_helpers import wait_for

from fieldtui.ui.widgets.status_bar import StatusBar


def bar_text(app: RecordingApp) -> str:
    return app.screen.query_one(StatusBar).render().plain


async def test_breadcrumbs_follow_the_technician_down_and_back() -> None:
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert "›" not in bar_text(app)  # the lookup is home: no path to show
        await open_device(pilot, Ids.GATEWAY)
        await wait_for(pilot, lambda: f"Lookup › {Ids.GATEWAY}" in bar_text(app), what="the device crumb")
        await pilot.press("k")
        await wait_for(
            pilot, lambda: f"Lookup › {Ids.GATEWAY} › Tasks" in bar_text(app), what="the tasks crumb"
        )
        await pilot.press("escape")
        await wait_for(pilot, lambda: bar_text(app).endswith(f"Lookup › {Ids.GATEWAY}"), what="back")
        await pilot.pause(0.3)


async def test_the_demo_opens_with_devices_to_try_until_one_is_typed() -> None:
    samples = [
        (Ids.SENSOR, "mysensor"),
        (Ids.GATEWAY, "a twin: devicehq and things"),
        (Ids.OFFLINE, "offline"),
    ]
    app = RecordingApp(FakeService(), samples=samples)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        hint = app.screen.query_one("#lookup-samples")
        await wait_for(pilot, lambda: hint.display, what="the samples")
        shown = str(hint.render())
        assert all(device in shown for device, _ in samples) and "a twin" in shown
        await pilot.press(*Ids.SENSOR[:4])
        await wait_for(pilot, lambda: not hint.display, what="the samples to make room")
