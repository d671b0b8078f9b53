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

from fieldtui.sim.fleet import Fleet
from fieldtui.sim.runner import PROFILE, PortInUseError, Simulator
from fieldtui.sim.thread import SimulatorThread


def sample_devices(fleet: Fleet) -> list[tuple[str, str]]:
    """Devices worth trying first: one per cloud, the twins two clouds know, an offline one."""
    samples: list[tuple[str, str]] = []
    for kind in ("mysensor", "things", "devicehq", "fleet", "mqtt"):
        online = [d for d in fleet.of(kind).values() if d.online and not d.also_in]
        if online:
            first = min(online, key=lambda d: d.id)
            samples.append((first.id, f"{kind} device"))
    for kind, other, what in (
        ("devicehq", "things", "gateway in DeviceHQ and things"),
        ("mqtt", "fleet", "MQTT device also in the fleet cloud"),
    ):
        twins = [d for d in fleet.of(kind).values() if any(k == other for k, _ in d.also_in)]
        if twins:
            samples.append((min(twins, key=lambda d: d.id).id, what))
    offline = [d for d in fleet.of("mqtt").values() if not d.online]
    if offline:
        samples.append((min(offline, key=lambda d: d.id).id, "offline MQTT device"))
    return samples


def _point_at(simulator: Simulator, workdir: Path) -> None:
    """The app command reads the config's secrets like any user's: from the environment. Ours
    go there, and the demo's outbox and cache stay out of the user's real data directory. Set
    before the simulator's thread starts: glibc's ``setenv`` of a new name is not safe while
    another thread may read the environment."""
    os.environ.update(simulator.env())
    os.environ["FIELDTUI_DATA_DIR"] = str(workdir / "data")


def _open_app(args: argparse.Namespace, config_path: Path, samples: list[tuple[str, str]]) -> int:
    """The app, as ``fieldtui`` opens it, against the simulator's config and secrets."""
    # Imported here: Textual is paid for only when the app opens.
    from fieldtui.commands import app

    app_args = argparse.Namespace(
        **{**vars(args), "command": "app", "config": str(config_path), "profile": PROFILE}
    )
    return app.run(app_args, samples=samples)


def run(args: argparse.Namespace) -> int:
    try:
        simulator = Simulator(seed=args.seed, fleet_size=args.fleet_size)
    except ValueError as exc:
        print(f"fieldtui demo: {exc}", file=sys.stderr)
        return 2
    thread = SimulatorThread(simulator)
    workdir = Path(tempfile.mkdtemp(prefix="fieldtui-demo-"))  # 0700: it holds the secrets
    _point_at(simulator, workdir)
    try:
        try:
            thread.start()
        except PortInUseError as exc:
            print(f"fieldtui demo: {exc.strerror}", file=sys.stderr)
            return 2
        config_path, _ = simulator.write_config(workdir / "config.toml")
        return _open_app(args, config_path, sample_devices(simulator.fleet))
    finally:
        thread.stop()
        shutil.rmtree(workdir, ignore_errors=True)
