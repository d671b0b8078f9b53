"""The guided installation, driven by keys against the simulator: online, offline then synced, skips."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input, Static
from ui_helpers import notifications, press_from_lookup, service_ready, wait_for, wait_until

from fieldtui.core.actions import ActionState
from fieldtui.ui.modals.group_picker import GroupPickerModal
from fieldtui.ui.screens.install import InstallScreen, SkipReasonModal


def online_thing(sim: Any) -> str:
    return next(d.id for d in sim.fleet.of("things").values() if d.online and not d.also_in)


def inspect(sim: Any, tuid: str) -> dict[str, Any]:
    return sim.admin("GET", f"/_sim/inspect/things/{tuid}").json()


def step(screen: InstallScreen, key: str) -> str:
    return screen.walk.results[key].state


async def open_install(pilot: Any) -> InstallScreen:
    await service_ready(pilot)
    await press_from_lookup(pilot, "i")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, InstallScreen), what="the install screen")
    return pilot.app.screen


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


async def test_install_walk_online_checks_every_step(make_clean_app: Any, sim_clean: Any) -> None:
    tuid = online_thing(sim_clean)
    target = next(g for g in sorted(sim_clean.fleet.groups) if g != inspect(sim_clean, tuid)["group"])
    app = make_clean_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_install(pilot)
        await scan(pilot, tuid)
        await wait_for(pilot, lambda: step(screen, "found") == "done", what="found and reachable")
        await wait_for(pilot, lambda: step(screen, "telemetry") == "done", timeout=20, what="telemetry")
        assert screen.walk.current == "group"
        await pick_group(pilot, target)
        await wait_for(pilot, lambda: step(screen, "group") == "done", what="the move synced")
        assert inspect(sim_clean, tuid)["group"] == target
        await pilot.press("enter")
        await wait_for(pilot, lambda: step(screen, "install") == "done", what="installed synced")
        assert inspect(sim_clean, tuid)["installation_status"] == "installed"
        # The device reports again a minute later (simulated time): that confirms the installation.
        sim_clean.admin("POST", "/_sim/clock", json={"advance": 60})
        await wait_for(pilot, lambda: step(screen, "confirm") == "done", timeout=30, what="confirmation")
        assert screen.walk.current == "summary"
        assert "installed and confirmed" in str(screen.query_one("#install-wait", Static).content)


async def test_install_offline_queues_then_syncs_when_back_online(
    make_clean_app: Any, sim_clean: Any
) -> None:
    tuid = online_thing(sim_clean)
    target = next(g for g in sorted(sim_clean.fleet.groups) if g != inspect(sim_clean, tuid)["group"])
    # Once online, the device and the groups are looked at (and so cached) ...
    app = make_clean_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await service_ready(pilot)
        await app.service.device(tuid)
        await app.service.groups("things")
    # ... then in the basement: no signal.
    app = make_clean_app(offline=True)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_install(pilot)
        await scan(pilot, tuid)
        await wait_for(pilot, lambda: screen.walk.current == "group", what="the group step")
        assert step(screen, "found") == "unchecked"
        assert "offline" in screen.walk.results["found"].note
        assert step(screen, "telemetry") == "unchecked"
        assert "offline" in screen.walk.results["telemetry"].note
        await pick_group(pilot, target)
        await wait_for(pilot, lambda: step(screen, "group") == "queued", what="the move queued")
        await pilot.press("enter")
        await wait_for(pilot, lambda: step(screen, "install") == "queued", what="installed queued")
        await wait_for(pilot, lambda: screen.walk.current == "summary", what="the summary")
        assert step(screen, "confirm") == "unchecked"
        assert "2 change(s) queued" in str(screen.query_one("#install-wait", Static).content)
        assert (await app.service.outbox.counts()).queued == 2
        assert inspect(sim_clean, tuid)["group"] != target
    # Back online: the app sends what was queued.
    app = make_clean_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await service_ready(pilot)

        async def synced() -> bool:
            records = await app.service.outbox.list_actions()
            return sum(r.state is ActionState.DONE for r in records) == 2

        await wait_until(pilot, synced, timeout=30, what="the queued changes to sync")
    state = inspect(sim_clean, tuid)
    assert state["group"] == target
    assert state["installation_status"] == "installed"


async def test_install_step_skipped_with_a_reason(make_app: Any, sim: Any) -> None:
    tuid = online_thing(sim)
    app = make_app(read_only=True)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_install(pilot)
        await scan(pilot, tuid)
        await wait_for(
            pilot, lambda: screen.walk.current in ("telemetry", "group"), what="the telemetry step"
        )
        # No signal in the basement: no telemetry will come, so the step's listener is stopped
        # (otherwise a message arriving while the reason is typed completes the step first).
        screen.workers.cancel_group(screen, "install-step")
        screen.walk.current = "telemetry"
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


async def test_install_unknown_serial_says_so(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_install(pilot)
        await scan(pilot, "NOPE0000")
        await wait_for(pilot, lambda: step(screen, "found") == "failed", timeout=30, what="not found")
        assert "NOPE0000" in str(screen.query_one("#install-wait", Static).content)
        await pilot.press("n")
        assert screen.walk.current == "scan"
        assert screen.query_one("#install-serial", Input).value == ""
        assert not [n for n in notifications(app) if "Traceback" in n]
