"""``fieldtui demo``: the simulator in-process on free ports, and the app against it.

The simulator runs on its own loop in a background thread (Textual owns the main one); its
config and secrets go to a private temporary directory that is removed on exit.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from fieldtui.sim.runner import PROFILE, PortInUseError, Simulator
from fieldtui.sim.thread import SimulatorThread

#: The placeholder fleet table stops here: DataTable costs ~90 µs a row to first frame.
TABLE_ROWS = 500


def _optional_module(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None


def _open_app(args: argparse.Namespace, config_path: Path, env: dict[str, str], sim: Simulator) -> int:
    """Open the real app when this build has one, else the placeholder fleet screen."""
    ui_app = _optional_module("fieldtui.ui.app")
    run_app = getattr(ui_app, "run_app", None)
    if run_app is not None and list(inspect.signature(run_app).parameters)[:3] == [
        "config_path",
        "profile",
        "env",
    ]:
        result: Any = run_app(config_path, PROFILE, env)
        return int(result or 0)
    app_command = _optional_module("fieldtui.commands.app")
    if app_command is not None:
        # The app command reads the config and its secrets like any user's: point it at ours,
        # and keep the demo's outbox and cache out of the user's real data directory.
        os.environ.update(env)
        os.environ["FIELDTUI_DATA_DIR"] = str(config_path.parent / "data")
        app_args = argparse.Namespace(
            **{**vars(args), "command": "app", "config": str(config_path), "profile": PROFILE}
        )
        return int(app_command.run(app_args))
    return _placeholder(sim)


def _placeholder(sim: Simulator) -> int:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable, Footer, Header, Static

    devices = sim.fleet.devices
    urls = "  ".join(f"{kind}: {url}" for kind, url in sim.urls.items())
    mqtt = (
        f"mqtt: {sim.mqtt_host}:{sim.mqtt_port} (MQTT {sim.mqtt_protocol})" if sim.mqtt_port else "mqtt: none"
    )

    class FleetPreview(App[int]):
        TITLE = "fieldtui demo"
        SUB_TITLE = f"{len(devices)} simulated devices"
        BINDINGS: ClassVar = [("q", "quit", "Quit")]

        def compose(self) -> ComposeResult:
            yield Header()
            yield Static(f"{urls}\n{mqtt}\nShowing the first {min(TABLE_ROWS, len(devices))} devices.")
            yield DataTable(id="fleet", cursor_type="row", zebra_stripes=True)
            yield Footer()

        def on_mount(self) -> None:
            table: DataTable[str] = self.query_one(DataTable)
            table.add_columns("id", "kind", "backend", "name", "online", "group", "status")
            for device in devices[:TABLE_ROWS]:
                table.add_row(
                    device.id,
                    device.kind,
                    device.backend,
                    device.name,
                    "yes" if device.online else "no",
                    device.group or "",
                    device.installation_status or "",
                )

    result = FleetPreview().run()
    return int(result or 0)


def run(args: argparse.Namespace) -> int:
    try:
        simulator = Simulator(seed=args.seed, fleet_size=args.fleet_size)
    except ValueError as exc:
        print(f"fieldtui demo: {exc}", file=sys.stderr)
        return 2
    thread = SimulatorThread(simulator)
    workdir = Path(tempfile.mkdtemp(prefix="fieldtui-demo-"))  # 0700: it holds the secrets
    try:
        try:
            thread.start()
        except PortInUseError as exc:
            print(f"fieldtui demo: {exc.strerror}", file=sys.stderr)
            return 2
        config_path, _ = simulator.write_config(workdir / "config.toml")
        return _open_app(args, config_path, simulator.env(), simulator)
    finally:
        thread.stop()
        shutil.rmtree(workdir, ignore_errors=True)
