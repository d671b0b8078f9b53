"""Shared fixtures: one simulator for the whole session, on real loopback HTTP and a real broker.

``sim`` runs :class:`fieldtui.sim.runner.Simulator` (seed 7, 200 devices) on its own event loop
in a background thread, so synchronous tests and tests with their own event loops share it.
A test that changes the simulator (faults, mutations, clock) asks for ``sim_clean``.
"""

from __future__ import annotations

import errno
import os
import select
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
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


def _sleep_is_broken() -> bool:
    """libfaketime 0.9.10 with FAKETIME_DONT_FAKE_MONOTONIC=1 fails every ``time.sleep`` with EINVAL.

    CPython 3.11 sleeps with ``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)``, whose deadline
    libfaketime shifts by the fake offset into an invalid time. ``subprocess.run(timeout=...)``
    sleeps that way while it waits, so every CLI test would fail under ``faketime -f '+90d'``
    without telling anything about fieldtui (which never calls ``time.sleep``).
    """
    try:
        time.sleep(0.0001)
    except OSError as exc:
        return exc.errno == errno.EINVAL
    return False


def _sleep_by_select(seconds: float) -> None:
    """``time.sleep`` through ``select``, whose relative timeout libfaketime leaves alone."""
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        select.select([], [], [], remaining)


if _sleep_is_broken():
    time.sleep = _sleep_by_select


def _steady_faketime() -> None:
    """Under ``faketime`` (libfaketime 0.9.10 as Debian ships it) the suite's processes are
    multi-threaded (the simulator's loop, the store's thread, MQTT clients), and the library
    the wrapper preloads by default is the one without locks: its shared state has data races
    (libfaketime #488 and #547, fixed upstream after 0.9.10; #547 was found on "a pytest-xdist
    suite where workers died at random on unrelated tests"). Workers died here the same way,
    SIGSEGV in the simulator's MQTT thread. The processes started from here (xdist workers,
    fieldtui, simulators) get the library's thread-safe build, ``libfaketimeMT`` (what
    ``faketime -m`` preloads), and parse ``FAKETIME`` once instead of every 10 s."""
    preload = os.environ.get("LD_PRELOAD", "")
    if "libfaketime.so.1" not in preload or "FAKETIME" not in os.environ:
        return
    os.environ.setdefault("FAKETIME_CACHE_DURATION", str(10 * 365 * 86_400))
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    for lib in (f"lib/{multiarch}", "lib64", "lib"):
        threaded = preload.replace("libfaketime.so.1", "libfaketimeMT.so.1")
        if Path(threaded.replace("$LIB", lib).split(":")[0].split()[0]).exists():
            os.environ["LD_PRELOAD"] = threaded
            return


_steady_faketime()

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
