"""Telemetry as a technician reads it: units by metric name, "last N ago" with a freshness word,
a rate over live messages only (history replayed at the start is not counted), and yes/no
values without a sparkline."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fakes.fake_service import FakeService, Ids
from test_technician_navigation import SIZE, RecordingApp, ready
from textual.widgets import Static
from ui_helpers import wait_for

from fieldtui.core.models import TelemetrySample
from fieldtui.ui import text
from fieldtui.ui.screens.telemetry import TelemetryScreen, freshness
from fieldtui.ui.widgets.metric_panel import RunSparkline, TelemetryBuffer, unit_of


@pytest.fixture
def fake() -> Iterator[FakeService]:
    service = FakeService()
    text.set_clock(service.now)  # the UI's "now" is the fake cloud's
    try:
        yield service
    finally:
        text.set_clock(None)


def state_line(screen: TelemetryScreen) -> str:
    return str(screen.query_one("#telemetry-state", Static).content)


async def test_backfill_is_shown_but_not_counted_and_freshness_is_said(fake: FakeService) -> None:
    app = RecordingApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        app.go_to_device(Ids.THING)
        await pilot.pause(0.3)
        app.push_screen(TelemetryScreen(Ids.THING))
        await wait_for(pilot, lambda: isinstance(app.screen, TelemetryScreen), what="telemetry")
        screen = app.screen
        assert isinstance(screen, TelemetryScreen)
        await wait_for(pilot, lambda: fake.listening(Ids.THING) > 0, what="the stream")
        old = fake.now() - timedelta(minutes=17)
        for minute in range(30):
            fake.push_telemetry(
                TelemetrySample(
                    device=Ids.THING,
                    backend="things",
                    timestamp=old + timedelta(seconds=minute),
                    metrics={"temperature": 20.0 + minute, "door_open": minute % 2 == 0},
                )
            )
        await wait_for(pilot, lambda: screen.shown_total == 30, what="the backfill shown")
        await wait_for(pilot, lambda: "stale" in state_line(screen), what="the freshness")
        assert "0.0 msg/s" in state_line(screen)
        assert "last 16m ago" in state_line(screen)
        fake.sample(Ids.THING, "things", temperature=21.5, door_open=True)
        await wait_for(pilot, lambda: "fresh" in state_line(screen), what="a live message")
        assert screen.buffer.rate() > 0
        # A yes/no has no sparkline; a temperature has one, and its unit by its name.
        rows = {row.metric: row for row in screen.query("MetricRow")}
        assert not rows["door_open"].query_one(RunSparkline).display
        assert rows["temperature"].query_one(RunSparkline).display
        assert "°C" in str(rows["temperature"].query_one(".metric-name", Static).content)


def test_units_and_freshness_words() -> None:
    assert unit_of("temperature") == "°C" and unit_of("temp_c") == "°C"
    assert unit_of("rssi") == "dBm" and unit_of("battery_level") == "%"
    assert unit_of("door_open") == ""
    assert freshness(5)[0] == "fresh" and freshness(600)[0] == "late" and freshness(3600)[0] == "stale"


def test_history_replayed_at_start_is_not_in_the_rate() -> None:
    buffer = TelemetryBuffer()
    when = text.now()
    for i in range(31):
        buffer.add(when, "things", {"t": i}, now=100.0 + i * 0.01, live=False)
    assert buffer.total == 31
    assert buffer.rate(now=101.0) == 0.0
    buffer.add(when, "things", {"t": 1}, now=105.0)
    assert 0 < buffer.rate(now=105.0) <= 1.0


async def test_a_long_message_can_be_read_whole(fake: FakeService) -> None:
    from fieldtui.ui.modals.message_view import MessageViewModal

    app = RecordingApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        app.go_to_device(Ids.THING)
        await pilot.pause(0.3)
        app.push_screen(TelemetryScreen(Ids.THING))
        await wait_for(pilot, lambda: isinstance(app.screen, TelemetryScreen), what="telemetry")
        screen = app.screen
        assert isinstance(screen, TelemetryScreen)
        await wait_for(pilot, lambda: fake.listening(Ids.THING) > 0, what="the stream")
        metrics: dict[str, float | int | str | bool] = {f"metric_{i:02d}": i * 1.5 for i in range(20)}
        fake.sample(Ids.THING, "things", **metrics)
        await wait_for(pilot, lambda: screen.shown_total == 1, what="the message")
        await pilot.press("v")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, MessageViewModal) and bool(app.screen.query("#message-view-text")),
            what="the message whole",
        )
        shown = str(app.screen.query_one("#message-view-text", Static).content)
        assert "metric_00=0" in shown and "metric_19=28.5" in shown
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, what="back on telemetry")
