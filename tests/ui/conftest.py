"""Shared UI fixtures: the real app against the simulator, a private data dir, frozen clock and cursor.

``make_app`` builds :class:`FieldApp` over the real service (``open_session``: FleetService,
outbox, sync engine) for the session simulator, with its outbox in ``tmp_path``.

``frozen_sim`` is a second simulator for screenshots: its fleet is generated at a fixed instant
and its clock stands still, so every timestamp and age on screen is the same on every run; the UI
clock (``fieldtui.ui.text.now``) is frozen to the same instant.

``make_fake_app`` builds the app over :class:`fakes.fake_service.FakeService` (the port in
memory: no network, no threads) with the UI clock frozen at the fake's own instant: screens and
snapshots run on it, fast and the same on every date.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fakes.fake_service import FIXED_NOW, FakeService
from textual.widgets import Input

import fieldtui.sim.runner as sim_runner
from fieldtui.config import LoadedConfig, load_config
from fieldtui.service.session import AppSession, open_session
from fieldtui.sim.fleet import generate_fleet
from fieldtui.sim.runner import Simulator
from fieldtui.sim.thread import SimulatorThread
from fieldtui.ui import text
from fieldtui.ui.app import FieldApp

#: The frozen simulator's fleet is generated at this instant (2026-01-05 08:00 UTC) ...
FROZEN_EPOCH = 1_767_600_000.0
#: ... and its clock, and the UI's, stand still this many seconds later.
FROZEN_AFTER = 600.0
FROZEN_SEED = 11
FROZEN_FLEET_SIZE = 60


def frozen_now() -> datetime:
    return datetime.fromtimestamp(FROZEN_EPOCH + FROZEN_AFTER, UTC)


@pytest.fixture(autouse=True)
def _quick_pilot(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulator's thread keeps this process busy (and a loaded machine makes any process
    look busy), so Textual's idle heuristic would wait its full second after every key: a short
    pause instead. Tests wait for what they expect to see (``wait_for``), and snapshots for the
    screen to stop changing (``settle``), never for the process to look idle."""

    async def short_idle(min_sleep: float = 0.0, max_sleep: float = 1.0) -> None:
        await asyncio.sleep(0.02)

    monkeypatch.setattr("textual.app.wait_for_idle", short_idle)
    monkeypatch.setattr("textual.pilot.wait_for_idle", short_idle)


@pytest.fixture(autouse=True)
def _steady_cursor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The text cursor stays drawn: a blinking one would make screenshots differ run to run."""
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


@pytest.fixture
def frozen_clock() -> Iterator[datetime]:
    text.set_clock(frozen_now)
    try:
        yield frozen_now()
    finally:
        text.set_clock(None)


@pytest.fixture
def frozen_monotonic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Message rates on the telemetry screen are measured on ``time.monotonic``: hold it still."""
    import fieldtui.ui.screens.telemetry as telemetry_screen
    import fieldtui.ui.widgets.metric_panel as metric_panel

    still = SimpleNamespace(monotonic=lambda: 1_000.0, time=time.time, perf_counter=time.perf_counter)
    monkeypatch.setattr(metric_panel, "time", still)
    monkeypatch.setattr(telemetry_screen, "time", still)


def _config(sim: Any, directory: Path, monkeypatch: pytest.MonkeyPatch) -> LoadedConfig:
    config_path, _ = sim.write_config(directory / "config.toml")
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FIELDTUI_DATA_DIR", str(directory / "data"))
    return load_config(str(config_path), None)


AppFactory = Callable[..., FieldApp]


def _factory(loaded: LoadedConfig, directory: Path, sessions: list[AppSession]) -> AppFactory:
    def make_app(*, offline: bool = False, read_only: bool = False, probe_interval: float = 0.3) -> FieldApp:
        async def service() -> AppSession:
            session = await open_session(
                loaded,
                offline=offline,
                read_only=read_only,
                path=directory / "outbox.db",
                probe_interval=probe_interval,
            )
            sessions.append(session)
            return session

        return _ClosingApp(service, profile=loaded.profile_name, read_only=read_only, offline=offline)

    return make_app


class _ClosingApp(FieldApp):
    """Closes its service when the test's app stops (``q`` does that in the real app), and keeps
    every notification's text (toasts expire) for the tests to read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notified: list[str] = []

    def notify(self, message: str, **kwargs: Any) -> None:  # type: ignore[override]
        self.notified.append(str(message))
        super().notify(message, **kwargs)

    async def on_unmount(self) -> None:
        service, self.service = self.service, None
        if service is not None:
            await service.aclose()


@pytest.fixture
def make_app(sim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppFactory]:
    """``make_app(offline=False, read_only=False)``: the app over the session simulator."""
    sessions: list[AppSession] = []
    yield _factory(_config(sim, tmp_path, monkeypatch), tmp_path, sessions)
    _close_all(sessions)


@pytest.fixture
def make_clean_app(sim_clean: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppFactory]:
    """Like ``make_app``, for tests that change the simulator (faults, moves, groups)."""
    sessions: list[AppSession] = []
    yield _factory(_config(sim_clean, tmp_path, monkeypatch), tmp_path, sessions)
    _close_all(sessions)


def _close_all(sessions: list[AppSession]) -> None:
    """A session whose app never unmounted (a failed test) still releases its SQLite thread."""
    for session in sessions:
        if not session.store._closed:
            try:
                asyncio.run(session.store.close())
            except Exception:
                pass


class FrozenSim:
    """The frozen simulator, with the same surface as the session ``sim`` for config writing."""

    def __init__(self, thread: SimulatorThread) -> None:
        self.thread = thread
        self.simulator: Simulator = thread.simulator

    @property
    def fleet(self) -> Any:
        return self.simulator.fleet

    def write_config(self, path: Any) -> tuple[Path, Path]:
        return self.simulator.write_config(path)

    def env(self) -> dict[str, str]:
        return self.simulator.env()


def start_frozen_sim(seed: int = FROZEN_SEED, fleet_size: int = FROZEN_FLEET_SIZE) -> FrozenSim:
    """A simulator whose fleet and clock are pinned to :data:`FROZEN_EPOCH` (stop its ``thread``)."""
    original = sim_runner.generate_fleet
    sim_runner.generate_fleet = partial(generate_fleet, now=FROZEN_EPOCH)  # type: ignore[assignment]
    try:
        simulator = Simulator(seed=seed, fleet_size=fleet_size, telemetry_interval=0.5)
        thread = SimulatorThread(simulator)
        thread.start()
    finally:
        sim_runner.generate_fleet = original  # type: ignore[assignment]
    assert simulator.server is not None
    simulator.server.ctx.clock = lambda: FROZEN_EPOCH + FROZEN_AFTER
    return FrozenSim(thread)


@pytest.fixture(scope="session")
def frozen_sim() -> Iterator[FrozenSim]:
    handle = start_frozen_sim()
    try:
        yield handle
    finally:
        handle.thread.stop()


@pytest.fixture
def make_frozen_app(
    frozen_sim: FrozenSim, frozen_clock: datetime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AppFactory]:
    """The app over the frozen simulator with the UI clock frozen: for snapshots."""
    sessions: list[AppSession] = []
    yield _factory(_config(frozen_sim, tmp_path, monkeypatch), tmp_path, sessions)
    _close_all(sessions)


FakeAppFactory = Callable[..., FieldApp]


@pytest.fixture
def fake_clock() -> Iterator[datetime]:
    """The UI clock stands at the fake's instant, so ages on screen never follow the real date."""
    text.set_clock(lambda: FIXED_NOW)
    try:
        yield FIXED_NOW
    finally:
        text.set_clock(None)


@pytest.fixture
def make_fake_app(fake_clock: datetime) -> FakeAppFactory:
    """``make_fake_app(fake, read_only=False, offline=False)``: the app over ``fake`` (the test
    keeps ``fake`` as the clouds' hands: apply, fail, push telemetry, set a cloud's state)."""

    def make(fake: FakeService, *, read_only: bool = False, offline: bool = False) -> FieldApp:
        async def service() -> FakeService:
            return fake

        return _ClosingApp(service, profile="sim", read_only=read_only, offline=offline)

    return make
