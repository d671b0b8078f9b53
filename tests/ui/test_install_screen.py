"""The guided installation, driven by keys over the in-memory port: online, offline, skips.

The test plays the clouds and the device: a sample pushed is the device reporting, and
``auto_apply`` is a cloud that takes each change at once.
"""

from __future__ import annotations

from typing import Any

from fakes.fake_service import FakeService, Ids
from textual.widgets import Input, Static
from ui_helpers import notifications, press_from_lookup, service_ready, wait_for

from fieldtui.core.models import InstallationStatus
from fieldtui.ui.modals.group_picker import GroupPickerModal
from fieldtui.ui.screens.install import NOTE_COLUMN, InstallScreen, SkipReasonModal

SIZE = (100, 30)


def step(screen: InstallScreen, key: str) -> str:
    return screen.walk.results[key].state


def thing(fake: FakeService) -> Any:
    return fake.cloud.copies[Ids.THING]["things"]


async def open_install(pilot: Any) -> InstallScreen:
    await service_ready(pilot)
    await press_from_lookup(pilot, "i")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, InstallScreen), what="the install screen")
    screen = pilot.app.screen
    assert isinstance(screen, InstallScreen)
    return screen


async def scan(pilot: Any, serial: str) -> None:
    """A scanner: the serial typed fast, then Enter."""
    await pilot.press(*serial, "enter")


async def pick_group(pilot: Any, group: str) -> None:
    app = pilot.app
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, GroupPickerModal), what="the group picker")
    picker = app.screen
    await wait_for(pilot, lambda: picker.loaded, what="the group list")
    await pilot.press(*group, "enter")


async def test_install_walk_online_checks_every_step(make_fake_app: Any) -> None:
    fake = FakeService(auto_apply=True)
    fake.set_device(thing(fake).model_copy(update={"installation_status": InstallationStatus.NEW}))
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_install(pilot)
        await scan(pilot, Ids.THING)
        await wait_for(pilot, lambda: step(screen, "found") == "done", what="found and reachable")
        assert screen.walk.current == "telemetry"
        fake.sample(Ids.THING, "things", temperature=4.5)
        await wait_for(pilot, lambda: step(screen, "telemetry") == "done", what="telemetry")
        assert "temperature=4.5" in screen.walk.results["telemetry"].note
        assert screen.walk.current == "group"
        await pick_group(pilot, "tower-lobby")
        await wait_for(pilot, lambda: step(screen, "group") == "done", what="the move synced")
        assert thing(fake).group == "tower-lobby"
        await pilot.press("enter")
        await wait_for(pilot, lambda: step(screen, "install") == "done", what="installed synced")
        assert thing(fake).installation_status is InstallationStatus.INSTALLED
        # The device reports again after the installation was marked: that confirms it.
        await wait_for(pilot, lambda: screen.walk.current == "confirm", what="the confirmation step")
        fake.sample(Ids.THING, "things", temperature=4.6)
        await wait_for(pilot, lambda: step(screen, "confirm") == "done", what="confirmation")
        assert screen.walk.current == "summary"
        assert "installed and confirmed" in str(screen.query_one("#install-wait", Static).content)


async def test_install_offline_queues_every_change(make_fake_app: Any) -> None:
    """In the basement (--offline): the device is found in the cache an earlier session left,
    nothing can be checked, and the move and the installation are queued for later."""
    fake = FakeService(offline=True)
    app = make_fake_app(fake, offline=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_install(pilot)
        await scan(pilot, Ids.THING)
        await wait_for(pilot, lambda: screen.walk.current == "group", what="the group step")
        assert step(screen, "found") == "unchecked"
        assert "offline" in screen.walk.results["found"].note
        assert step(screen, "telemetry") == "unchecked"
        assert "offline" in screen.walk.results["telemetry"].note
        await pick_group(pilot, "tower-lobby")
        await wait_for(pilot, lambda: step(screen, "group") == "queued", what="the move queued")
        await pilot.press("enter")
        await wait_for(pilot, lambda: step(screen, "install") == "queued", what="installed queued")
        await wait_for(pilot, lambda: screen.walk.current == "summary", what="the summary")
        assert step(screen, "confirm") == "unchecked"
        assert "2 change(s) queued" in str(screen.query_one("#install-wait", Static).content)
        assert (await app.service.outbox.counts()).queued == 2
        assert thing(fake).group == "plant-roof"


async def test_install_step_skipped_with_a_reason(make_fake_app: Any) -> None:
    fake = FakeService(read_only=True)
    app = make_fake_app(fake, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_install(pilot)
        await scan(pilot, Ids.THING)
        # No signal in the basement: no telemetry comes.
        await wait_for(pilot, lambda: screen.walk.current == "telemetry", what="the telemetry step")
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SkipReasonModal), what="the reason prompt")
        await pilot.press("enter")
        assert "reason is needed" in str(app.screen.query_one("#skip-reason-message", Static).content)
        await pilot.press(*"no signal in basement", "enter")
        await wait_for(pilot, lambda: step(screen, "telemetry") == "skipped", what="the skip")
        assert screen.walk.results["telemetry"].note == "no signal in basement"
        # Read-only: nothing can be marked, the screen says so and the step can be skipped.
        screen._enter("install")
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: "Read-only" in str(screen.query_one("#install-wait", Static).content),
            what="the read-only note",
        )
        assert fake.outbox.records() == []


async def test_install_unknown_serial_says_so(make_fake_app: Any) -> None:
    app = make_fake_app(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_install(pilot)
        await scan(pilot, "NOPE0000")
        await wait_for(pilot, lambda: step(screen, "found") == "failed", what="not found")
        assert "NOPE0000" in str(screen.query_one("#install-wait", Static).content)
        await pilot.press("n")
        assert screen.walk.current == "scan"
        assert screen.query_one("#install-serial", Input).value == ""
        assert not [n for n in notifications(app) if "Traceback" in n]


async def test_a_long_step_note_wraps_under_its_own_column_at_80x24(make_fake_app: Any) -> None:
    fake = FakeService(auto_apply=True)
    fake.set_device(thing(fake).model_copy(update={"installation_status": InstallationStatus.NEW}))
    app = make_fake_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_install(pilot)
        await scan(pilot, Ids.THING)
        await wait_for(pilot, lambda: screen.walk.current == "telemetry", what="the telemetry step")
        fake.sample(Ids.THING, "things", temperature=19.56, humidity=51.1, air_pressure=100536.0)
        await wait_for(pilot, lambda: step(screen, "telemetry") == "done", what="telemetry")
        await pilot.pause()
        lines = str(screen.query_one("#install-steps", Static).content).splitlines()
        at = next(i for i, line in enumerate(lines) if "Telemetry seen" in line)
        assert lines[at][NOTE_COLUMN - 1] == " " and lines[at][NOTE_COLUMN] != " "  # where the note starts
        follow = lines[at + 1]
        assert follow[:NOTE_COLUMN].strip() == "", f"the wrapped note restarts at the left: {follow!r}"
        assert "pressure" in follow[NOTE_COLUMN:], "the note did not wrap (make it longer)"
