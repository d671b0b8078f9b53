"""The live telemetry screen over the in-memory port (the test pushes the samples), and once
against the simulator's real MQTT broker (a restart shows reconnecting, then live)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fakes.fake_service import FakeService, Ids

from fieldtui.ui.app import FieldApp
from fieldtui.ui.screens.telemetry import TelemetryScreen
from fieldtui.ui.widgets.metric_panel import TelemetryBuffer

SIZE = (80, 24)


async def until(check: Callable[[], Any], timeout: float = 10.0, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(step)
    raise AssertionError(f"not true within {timeout} s: {check}")


def _mqtt_device(sim: Any) -> str:
    online = [d for d in sim.fleet.of("mqtt").values() if d.online]
    return online[0].id


def _state_line(screen: TelemetryScreen) -> str:
    return str(screen.query_one("#telemetry-state").content)


async def _open(app: FieldApp, pilot: Any, device: str) -> TelemetryScreen:
    await until(lambda: app.service is not None)
    screen = TelemetryScreen(device)
    await app.push_screen(screen)
    await pilot.pause()
    return screen


async def test_values_change_on_screen_for_an_mqtt_device(make_fake_app: Any) -> None:
    fake = FakeService()
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(app, pilot, Ids.MQTT_TWIN)
        fake.sample(Ids.MQTT_TWIN, "live", temperature=21, co2=600)
        await until(lambda: screen.displayed().get("temperature") == "21")
        fake.sample(Ids.MQTT_TWIN, "live", temperature=22, co2=610)
        await until(lambda: screen.displayed().get("temperature") == "22")
        assert screen.displayed().get("co2") == "610"
        assert "live" in _state_line(screen)
        assert "msg/s" in _state_line(screen)
        await pilot.press("l")
        log = screen.query_one("#telemetry-log")
        await until(lambda: log.line_count > 0)
        assert "temperature=" in log.lines[-1]
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, TelemetryScreen)
        assert screen._worker is not None and screen._worker.is_cancelled
        await until(lambda: fake.listening(Ids.MQTT_TWIN) == 0)


async def test_pause_holds_the_display_and_resume_catches_up(make_fake_app: Any) -> None:
    fake = FakeService()
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(app, pilot, Ids.MQTT_TWIN)
        for value in (1, 2):
            fake.sample(Ids.MQTT_TWIN, "live", temperature=20 + value)
        await until(lambda: screen.shown_total >= 2)
        await pilot.press("p")
        frozen_total, frozen_values = screen.shown_total, screen.displayed()
        for value in (3, 4, 5):
            fake.sample(Ids.MQTT_TWIN, "live", temperature=20 + value)
        await until(lambda: screen.buffer.total == frozen_total + 3)  # samples keep arriving while paused
        await pilot.pause(0.3)
        assert screen.shown_total == frozen_total
        assert screen.displayed() == frozen_values
        assert "PAUSED" in _state_line(screen)
        await pilot.press("p")
        await until(lambda: screen.shown_total == frozen_total + 3)
        assert screen.displayed().get("temperature") == "25"
        assert "PAUSED" not in _state_line(screen)


async def test_a_metric_first_seen_right_before_a_pause_holds_its_value_of_then(make_fake_app: Any) -> None:
    """Seen under load: a new metric's row is mounted, the technician pauses before it is drawn,
    and the row then showed the value that arrived while paused."""
    fake = FakeService()
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(app, pilot, Ids.MQTT_TWIN)
        screen.buffer.add(datetime.now(UTC), "live", {"pressure": 1001})  # the next tick mounts its row
        screen._redraw()
        screen.action_pause()  # before the new row was drawn
        screen.buffer.add(datetime.now(UTC), "live", {"pressure": 1009})
        await until(lambda: screen.displayed().get("pressure", "") != "")
        await pilot.pause(0.3)
        assert screen.displayed()["pressure"] == "1001"


async def test_broker_restart_shows_reconnecting_then_live(sim_clean: Any, make_clean_app: Any) -> None:
    app = make_clean_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(app, pilot, _mqtt_device(sim_clean))
        await until(lambda: "live" in _state_line(screen))
        response = await asyncio.to_thread(sim_clean.admin, "POST", "/_sim/broker/restart")
        assert response.status_code == 200, response.text
        await until(lambda: "reconnecting" in _state_line(screen), timeout=15, step=0.02)
        before = screen.buffer.total
        await until(lambda: "live" in _state_line(screen) and screen.buffer.total > before, timeout=30)


async def test_redraws_stay_capped_under_a_fast_stream(make_fake_app: Any) -> None:
    fake = FakeService()
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(app, pilot, Ids.MQTT_TWIN)
        fake.sample(Ids.MQTT_TWIN, "live", temperature=20)
        await until(lambda: "live" in _state_line(screen))
        start_total, start_redraws, started = screen.buffer.total, screen.redraws, time.monotonic()
        sent = 0
        while time.monotonic() - started < 2.0:
            for _ in range(50):
                sent += 1
                fake.sample(Ids.MQTT_TWIN, "live", temperature=20 + sent % 7, burst=sent)
            await asyncio.sleep(0.01)
        await until(lambda: screen.buffer.total - start_total == sent, timeout=20)
        elapsed = time.monotonic() - started
        redraws = screen.redraws - start_redraws
        assert redraws <= 10 * elapsed + 3, f"{redraws} redraws of {sent} samples in {elapsed:.1f} s"
        await until(lambda: screen.displayed().get("burst") == str(sent))
        assert len(screen.buffer.metrics["burst"].values) == screen.buffer.window


def test_buffer_keeps_a_bounded_window_and_a_ten_second_rate() -> None:
    buffer = TelemetryBuffer(window=5)
    when = datetime.now(UTC)
    for i in range(100):
        buffer.add(when, "live", {"v": i, "ok": i % 2 == 0, "mode": "eco"}, now=100.0 + i * 0.1)
    assert list(buffer.metrics["v"].values) == [95.0, 96.0, 97.0, 98.0, 99.0]
    assert buffer.metrics["mode"].latest == "eco" and not buffer.metrics["mode"].values
    assert buffer.rate(now=110.0) == pytest.approx(10.0, rel=0.05)
    assert buffer.rate(now=200.0) == 0.0
    assert [m.metrics["v"] for m in buffer.messages_since(97)] == [97, 98, 99]


async def test_device_without_telemetry_says_why_inline(make_fake_app: Any) -> None:
    app = make_fake_app(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(app, pilot, Ids.OFFLINE)
        await until(lambda: screen.stream_state == "error")
        await until(lambda: "offer no telemetry" in _state_line(screen))
        assert any("Telemetry:" in n for n in app.notified)
