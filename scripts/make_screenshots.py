"""Write screenshots/*.svg: each screen of a real run of the app against the simulator.

    python scripts/make_screenshots.py [--size 100x30] [--out screenshots]

The simulator runs in a background thread (seed 7, 200 devices), the app headless over the
real service (HTTP on loopback, the MQTT broker, an outbox in a temporary directory); each
screen is reached by key presses and saved with ``App.save_screenshot``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fieldtui.config import load_config
from fieldtui.service.session import open_session
from fieldtui.sim.runner import Simulator
from fieldtui.sim.thread import SimulatorThread
from fieldtui.ui.app import FieldApp


async def until(pilot: Any, test: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            raise TimeoutError("the screen did not get there in time")
        await pilot.pause(0.1)


async def shoot(sim: Simulator, workdir: Path, out: Path, size: tuple[int, int]) -> list[Path]:
    config_path, _ = sim.write_config(workdir / "config.toml")
    os.environ.update(sim.env())
    loaded = load_config(str(config_path), None)

    async def service() -> Any:
        return await open_session(loaded, path=workdir / "outbox.db")

    app = FieldApp(service, profile=loaded.profile_name)
    saved: list[Path] = []
    things = [d for d in sim.fleet.of("things").values() if d.online and not d.also_in]
    live = next(d for d in sim.fleet.of("mqtt").values() if d.online and not d.also_in)

    def save(name: str) -> None:
        path = out / f"{name}.svg"
        app.save_screenshot(filename=path.name, path=str(out))
        saved.append(path)

    async with app.run_test(size=size, notifications=True) as pilot:
        await until(pilot, lambda: app.service is not None)
        for device in things[:6]:
            app.absorb_find_update(await app.service.device(device.id))
        app._refresh_lookup()
        lookup = app.screen
        lookup.query_one("#results").focus()
        await pilot.press("space", "space")
        await pilot.pause(0.3)
        save("lookup")

        thing = things[0]
        app.open_device(thing.id)
        await until(pilot, lambda: getattr(app.screen, "view", None) is not None)
        await pilot.pause(0.5)
        save("device")
        await pilot.press("s")
        await pilot.pause(0.3)
        save("status-modal")
        await pilot.press("5", "enter")
        await pilot.pause(0.3)
        save("confirm")
        await pilot.press("n", "escape")  # no to the confirmation, then close the status list
        await pilot.press("m")
        await until(pilot, lambda: getattr(app.screen, "loaded", False))
        await pilot.press(*"roof")
        await pilot.pause(0.2)
        save("group-picker")
        await pilot.press("escape", "escape")

        twin = next(d for d in sim.fleet.of("devicehq").values() if any(k == "things" for k, _ in d.also_in))
        app.open_device(twin.id)
        await until(pilot, lambda: getattr(app.screen, "complete", False))
        await pilot.pause(0.5)
        save("device-twin")
        await pilot.press("h")
        await pilot.pause(2.0)
        save("history")
        await pilot.press("escape")

        gateway = next(d for d in sim.fleet.of("devicehq").values() if d.online)
        app.open_device(gateway.id)
        await until(pilot, lambda: getattr(app.screen, "view", None) is not None)
        await pilot.press("k")
        await pilot.pause(3.0)
        save("tasks")
        await pilot.press("escape")
        await pilot.press("d")
        await until(
            pilot,
            lambda: any(line.text == "Apps" for line in app.screen.query_one("#diagnostics-table").objects),
        )
        await pilot.pause(0.5)
        save("diagnostics")
        await pilot.press("escape")

        app.open_device(live.id)
        await until(pilot, lambda: getattr(app.screen, "view", None) is not None)
        await pilot.press("t")
        await pilot.pause(3.0)
        save("telemetry")
        await pilot.press("escape", "escape")

        app.action_groups()
        await until(pilot, lambda: bool(getattr(app.screen, "rows", None)))
        await pilot.press("enter")
        await pilot.pause(1.5)
        save("groups")
        await pilot.press("escape", "escape")

        app.action_fleet_tasks()
        await pilot.pause(3.0)
        save("fleet-tasks")
        await pilot.press("escape")

        app.action_install()
        await pilot.pause(0.2)
        await pilot.press(*things[1].id, "enter")
        await until(pilot, lambda: app.screen.walk.current == "group", timeout=40)
        save("install-group-step")
        await pilot.press("enter")
        await until(pilot, lambda: getattr(app.screen, "loaded", False))
        await pilot.press("enter")
        await until(
            pilot, lambda: getattr(getattr(app.screen, "walk", None), "current", "") == "install", timeout=30
        )
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.walk.results["install"].state != "active", timeout=30)
        await pilot.pause(0.5)
        save("install-marked")
        await pilot.press("escape")

        app.action_outbox()
        await pilot.pause(1.0)
        save("outbox")
        await pilot.press("escape")

        app.action_help()
        await pilot.pause(0.5)
        save("help")
        await pilot.press("escape")
        await app.service.aclose()
        app.service = None
    return saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="100x30", help="terminal size, COLUMNSxROWS")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "screenshots"))
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sim = Simulator(seed=7, fleet_size=200, telemetry_interval=0.5)
    thread = SimulatorThread(sim)
    thread.start()
    try:
        with tempfile.TemporaryDirectory(prefix="fieldtui-shots-") as workdir:
            os.environ["FIELDTUI_DATA_DIR"] = workdir
            saved = asyncio.run(shoot(sim, Path(workdir), out, (width, height)))
    finally:
        thread.stop()
    for path in saved:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
