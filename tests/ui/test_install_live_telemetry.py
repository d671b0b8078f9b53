"""The guided installation's "telemetry seen" step waits for the device reporting now: a
17-minute-old message a cloud replays when the stream opens is history, not a sign of life."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fakes.fake_service import FakeService, Ids
from test_install_screen import open_install, scan, step
from textual.widgets import Static
from ui_helpers import wait_for

from fieldtui.core.models import TelemetrySample

SIZE = (80, 24)


async def test_a_backfilled_old_message_does_not_pass_the_telemetry_step(make_fake_app: Any) -> None:
    fake = FakeService()
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_install(pilot)
        await scan(pilot, Ids.THING)
        await wait_for(pilot, lambda: screen.walk.current == "telemetry", what="the telemetry step")
        await wait_for(pilot, lambda: fake.listening(Ids.THING) > 0, what="the stream")
        old = TelemetrySample(
            device=Ids.THING,
            backend="things",
            timestamp=fake.now() - timedelta(minutes=17),
            metrics={"temperature": 3.9},
        )
        fake.push_telemetry(old)
        wait = screen.query_one("#install-wait", Static)
        await wait_for(pilot, lambda: "older message(s) seen" in str(wait.content), what="the old one named")
        assert "17m ago" in str(wait.content)
        assert step(screen, "telemetry") != "done"
        fake.sample(Ids.THING, "things", temperature=4.5)
        await wait_for(pilot, lambda: step(screen, "telemetry") == "done", what="a live message")
        assert "temperature=4.5" in screen.walk.results["telemetry"].note
