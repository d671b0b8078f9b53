"""``fieldtui sim``: the simulated clouds in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from fieldtui.sim.fleet import BACKEND_NAMES
from fieldtui.sim.runner import PortInUseError, Simulator

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def _say(line: str = "") -> None:
    # Flushed line by line: scripts and tests read the URLs while the simulator keeps running.
    print(line, flush=True)


def _describe(sim: Simulator, config: tuple[str, str] | None) -> None:
    fleet = sim.fleet
    _say(f"fieldtui sim: serving {sim.base_url}")
    _say(
        f"  {len(fleet.devices)} devices (seed {fleet.seed}, fleet size {fleet.size}), "
        f"started in {sim.start_seconds:.2f} s"
    )
    for kind, url in sim.urls.items():
        _say(f"  {BACKEND_NAMES[kind]:<9} {kind:<9} {url}")
    if sim.mqtt_port is None:
        _say(f"  {BACKEND_NAMES['mqtt']:<9} mqtt      not available (no MQTT broker in this build)")
    else:
        _say(
            f"  {BACKEND_NAMES['mqtt']:<9} mqtt      {sim.mqtt_host}:{sim.mqtt_port}  (MQTT {sim.mqtt_protocol})"
        )
        if sim.mqtt_protocol == "3.1.1":
            _say(
                "  note: mosquitto was not found, so the broker is amqtt: MQTT 3.1.1 only, no user properties"
            )
            _say(
                '        (the live backend is configured with protocol "3.1.1"; install mosquitto for MQTT 5)'
            )
    _say(f"  admin     {sim.base_url}/_sim/fleet  /_sim/faults  /_sim/mutations  /_sim/reset")
    for backend, key, value in sim.fault_specs:
        _say(f"  fault     {backend}: {key} = {value}")
    if config is not None:
        _say(f"  config    {config[0]}")
        _say(f"  secrets   {config[1]} (source it, or: fieldtui --config {config[0]} ...)")
        if sim.keys_path is not None:
            _say(f"  mqtt keys {sim.keys_path} (each device's own access key; the config's keys_file)")
    _say("Press Ctrl-C to stop.")


async def _serve(sim: Simulator, write_config: str | None) -> int:
    try:
        await sim.start()
    except PortInUseError as exc:
        print(f"fieldtui sim: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeError as exc:  # the broker could not start: its message says why
        print(f"fieldtui sim: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        config = None
        if write_config:
            try:
                config_path, env_path = sim.write_config(write_config)
            except OSError as exc:
                print(f"fieldtui sim: cannot write the config {write_config}: {exc}", file=sys.stderr)
                return EXIT_FAILURE
            config = (str(config_path), str(env_path))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        _describe(sim, config)
        await stop.wait()
        _say("fieldtui sim: stopping")
    finally:
        await sim.stop()
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    try:
        sim = Simulator(
            seed=args.seed,
            fleet_size=args.fleet_size,
            host=args.host,
            port=args.port,
            mqtt_port=args.mqtt_port,
            telemetry_interval=args.telemetry_interval,
            faults=args.fault,
        )
    except ValueError as exc:
        print(f"fieldtui sim: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_serve(sim, args.write_config))
