"""Shared fixtures: one simulator for the whole session, on real loopback HTTP and a real broker.

``sim`` runs :class:`fieldtui.sim.runner.Simulator` (seed 7, 200 devices) on its own event loop
in a background thread, so synchronous tests and tests with their own event loops share it.
A test that changes the simulator (faults, mutations, clock) asks for ``sim_clean``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from faketime_guards import survive_faketime
from hypothesis import HealthCheck, settings

from fieldtui.sim.context import SimCredentials
from fieldtui.sim.fleet import Fleet
from fieldtui.sim.runner import Simulator
from fieldtui.sim.thread import SimulatorThread

# A loaded 2-core machine makes any example slow: time is no failure here (each property test
# bounds its own examples), and the data-generation health checks would fail on speed alone.
settings.register_profile(
    "fieldtui", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example]
)
settings.load_profile("fieldtui")


# The suite runs under `faketime -f +90d` too: what libfaketime 0.9.10 breaks is mended first.
survive_faketime()

# Some shells export PYTHONDONTWRITEBYTECODE=1: every `fieldtui` the tests start (hundreds) would
# then compile the package from source (~0.1 s of CPU each) and pytest would rewrite every test
# module again in each worker. An installed fieldtui has its bytecode, so the tests use it too.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

SIM_SEED = 7
SIM_FLEET_SIZE = 200
SIM_TELEMETRY_INTERVAL = 0.2


class SimHandle:
    """What tests see of the running simulator."""

    def __init__(self, thread: SimulatorThread) -> None:
        self.thread = thread
        self.simulator: Simulator = thread.simulator
        self._client = httpx.Client(base_url=self.simulator.base_url, timeout=30)

    @property
    def base_url(self) -> str:
        return self.simulator.base_url

    @property
    def urls(self) -> dict[str, str]:
        return self.simulator.urls

    @property
    def credentials(self) -> SimCredentials:
        return self.simulator.credentials

    @property
    def mqtt_port(self) -> int | None:
        return self.simulator.mqtt_port

    @property
    def mqtt_protocol(self) -> str | None:
        return self.simulator.mqtt_protocol

    @property
    def fleet(self) -> Fleet:
        """The current fleet (a reset regenerates it: read this again after ``reset()``)."""
        return self.simulator.fleet

    def admin(self, method: str, path: str, json: Any = None) -> httpx.Response:
        try:
            return self._client.request(method, path, json=json)
        except httpx.RemoteProtocolError:
            # The simulator closed this idle keep-alive connection (uvicorn's 5 s) just as it was
            # reused: the request was never read. Seen after a test spent long on 10 MB bodies.
            return self._client.request(method, path, json=json)

    def reset(self) -> None:
        response = self.admin("POST", "/_sim/reset")
        assert response.status_code == 200, response.text

    def write_config(self, path: str | os.PathLike[str]) -> tuple[Path, Path]:
        return self.simulator.write_config(path)

    def env(self) -> dict[str, str]:
        return self.simulator.env()

    def close(self) -> None:
        self._client.close()


@pytest.fixture(scope="session")
def sim() -> Iterator[SimHandle]:
    simulator = Simulator(seed=SIM_SEED, fleet_size=SIM_FLEET_SIZE, telemetry_interval=SIM_TELEMETRY_INTERVAL)
    thread = SimulatorThread(simulator)
    thread.start()
    handle = SimHandle(thread)
    try:
        yield handle
    finally:
        handle.close()
        thread.stop()


@pytest.fixture
def sim_clean(sim: SimHandle) -> Iterator[SimHandle]:
    """The simulator as it started (no faults, empty mutation log, fresh clouds, real time)."""
    sim.reset()
    yield sim
    # Reset again so a test that left faults behind cannot break the next one's plain ``sim``.
    sim.reset()
