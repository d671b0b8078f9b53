"""``fieldtui demo``: the simulator in-process on free ports, and the app against it.

The simulator runs on its own loop in a background thread (Textual owns the main one); its
config and secrets go to a private temporary directory that is removed on exit.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from fieldtui.sim.runner import PROFILE, PortInUseError, Simulator
from fieldtui.sim.thread import SimulatorThread


def _open_app(args: argparse.Namespace, config_path: Path, env: dict[str, str]) -> int:
    """The app, as ``fieldtui`` opens it, against the simulator's config and secrets."""
    # Imported here: Textual is paid for only when the app opens.
    from fieldtui.commands import app

    # The app command reads the config and its secrets like any user's: point it at ours,
    # and keep the demo's outbox and cache out of the user's real data directory.
    os.environ.update(env)
    os.environ["FIELDTUI_DATA_DIR"] = str(config_path.parent / "data")
    app_args = argparse.Namespace(
        **{**vars(args), "command": "app", "config": str(config_path), "profile": PROFILE}
    )
    return app.run(app_args)


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
        return _open_app(args, config_path, simulator.env())
    finally:
        thread.stop()
        shutil.rmtree(workdir, ignore_errors=True)
