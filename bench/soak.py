"""Chaos soak: a technician's session against the simulated clouds while everything goes wrong.

    python bench/soak.py              # short mode (CI): about a minute
    python bench/soak.py --long       # fifteen minutes of chaos
    python bench/soak.py --seed 42    # another fault schedule (the same seed replays the same one)

What runs:

* the simulator (``fieldtui sim``) in a subprocess, on free ports, its config written to a
  temporary directory;
* a *sync worker* subprocess (this file with ``--sync-worker``: the product's outbox and sync
  engine, run until killed) that is SIGKILLed at random moments and restarted, and now and then
  SIGSTOPped past its lease (shortened to ``LEASE_SECONDS`` through
  ``FIELDTUI_OUTBOX_LEASE_SECONDS``) while the app syncs, then SIGCONTed: it must send nothing
  the app took over;
* the app (``FieldApp``, headless, driven by Textual's pilot: this file with ``--app-worker``),
  whose background sync shares the outbox with the worker, SIGKILLed and restarted too;
* in this process, a scripted technician: device lookups and task lists through FleetService,
  status changes, group moves, description updates and task creation through OutboxWrites,
  and a telemetry watch on an MQTT device that runs the whole time;
* a seeded fault schedule: clouds unreachable, slow, answering 5xx, dropping connections,
  sending malformed bodies, applying a change and losing its answer (``answer_lost``) or
  answering after the client gave up (``lands_late``); client tokens and DeviceHQ sessions
  expired; the MQTT broker restarted or stopped for a while;
* storage faults: outbox rows whose stored data cannot be read (as bit rot or a broken writer
  leaves them) appear in the file while everything runs: each must be set aside as damaged,
  never sent, and stop nobody.

Every action type the clouds take is queued (``fieldtui.core.actions.ActionType``, all
thirteen): things status changes, moves and commands (``transactionId``), DeviceHQ moves and
description updates, fleet updates (checked against the value the technician saw), mysensor
tasks; and, queued by ``bench/soak_lifecycle.py`` and judged in ``bench/soak_effects.py`` (see
its docstring for each sequence and for which resends are idempotent and why): DeviceHQ task
creates and their
cancels (under the account's 25-task cap), mysensor task deletes, MQTT commands and cloud
settings, things group creates, renames and deletes, fleet device creates and deletes, DeviceHQ
registers and deletes.

At the end the faults are lifted, the worker drains the outbox, and everything is checked
against the simulator's OWN state (its mutation log and ``/_sim/inspect``), not against what
the client believes: each action applied exactly once and in per-device order (a cancel may
pass a create held by the task cap, as the engine allows), or visibly
failed / in conflict with its reason; nothing lost; no crash; telemetry back after every
broker restart. The counts are printed; the exit status is 1 on any violation.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from faketime_sleep import install as install_faketime_sleep
from soak_effects import (
    DEVICEHQ_PREFIX,
    FLEET_PREFIX,
    MYSENSOR_PREFIX,
    THINGS_PREFIX,
    Planned,
    count_lost_and_doubled,
    norm,
    same_order,
    without_resends,
)
from soak_lifecycle import FIRST_OPS, LIFECYCLE_OPS, OPS, LifecycleActions

install_faketime_sleep()

SHORT_CHAOS_SECONDS = 40.0
LONG_CHAOS_SECONDS = 900.0
SETTLE_SECONDS = 90.0
#: Telemetry must flow again within this long after the broker is back.
TELEMETRY_RESUME_SECONDS = 20.0
#: Broker restarts are spaced so each one's recovery can be seen on its own.
BROKER_SPACING = TELEMETRY_RESUME_SECONDS + 5.0
FAULT_BACKENDS = ("sensors", "things", "gateways", "fleet")
#: The outbox lease in the soak: a paused worker is taken over after this long.
LEASE_SECONDS = 4.0
#: The clients' request timeout in the soak: a late answer is given up after this long.
REQUEST_TIMEOUT = 3.0
THINGS_STATUSES = ("installed", "uninstalled", "quarantine", "retired", "new")


# -- the sync worker (a separate process, killed and restarted) ----------------------------------
def run_sync_worker() -> int:
    """Send the outbox until killed: the product's engine with a short backoff (config from env)."""
    from fieldtui.config import load_config
    from fieldtui.logging_setup import configure_logging
    from fieldtui.service.sync import Backoff
    from fieldtui.service.writes import open_outbox

    configure_logging()
    loaded = load_config(None, None)

    async def main() -> None:
        async with open_outbox(loaded, backoff=Backoff(base=0.3, cap=3.0, hold=2.0)) as outbox:
            engine = outbox.engine

            async def look_again() -> None:
                # Actions queued by another process send no in-process wake-up; the app's engine
                # looks again every few seconds through its connectivity check: so does this one.
                while True:
                    await asyncio.sleep(0.5)
                    engine.wake()

            poke = asyncio.create_task(look_again())
            try:
                await engine.run()
            finally:
                poke.cancel()

    asyncio.run(main())
    return 0


def run_app_worker() -> int:
    """The app, headless and driven by Textual's pilot, until killed: its background sync sends
    the outbox as the app does for a technician (config from env)."""
    from fieldtui.config import load_config
    from fieldtui.logging_setup import configure_logging
    from fieldtui.service.session import open_session
    from fieldtui.ui.app import FieldApp

    configure_logging()
    loaded = load_config(None, None)

    async def service() -> Any:
        return await open_session(loaded)

    async def main() -> None:
        app = FieldApp(service, profile=loaded.profile_name, keymap=dict(loaded.config.keymap))
        async with app.run_test(headless=True, size=(100, 30)):
            await asyncio.Event().wait()

    asyncio.run(main())
    return 0


def _insert_row(path: Path, row: tuple[Any, ...]) -> None:
    """Write an outbox row as a broken writer would (parameters that are not a JSON object)."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn, conn:
        conn.execute(
            "INSERT INTO actions (id, type, device, backend, queue_key, params, precondition,"
            " state, next_attempt_at, created_at, updated_at)"
            " VALUES (?, 'set_installation_status', ?, 'things', ?, ?, '{}', 'queued', ?, ?, ?)",
            row,
        )


# -- bookkeeping ---------------------------------------------------------------------------------
@dataclass
class Tally:
    actions: int = 0
    lookups: int = 0
    lookup_errors: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    worker_starts: int = 0
    app_kills: int = 0
    app_starts: int = 0
    pauses: int = 0
    damaged: int = 0
    broker_restarts: int = 0
    samples: int = 0
    violations: list[str] = field(default_factory=list)

    def violation(self, text: str) -> None:
        self.violations.append(text)


class Soak:
    def __init__(self, seed: int, chaos_seconds: float, workdir: Path, verbose: bool) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.chaos_seconds = chaos_seconds
        self.workdir = workdir
        self.verbose = verbose
        self.tally = Tally()
        self.planned: list[Planned] = []
        self.env: dict[str, str] = {}
        self.base_url = ""
        self.sim_proc: subprocess.Popen[str] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.worker_logs: list[Path] = []
        self.app: subprocess.Popen[bytes] | None = None
        #: Cleared while the sync worker is stopped (SIGSTOP): not killed then, so it does resume.
        self.not_paused = asyncio.Event()
        self.not_paused.set()
        #: Ids of the unreadable rows put into the outbox file.
        self.damaged_ids: list[str] = []
        self.broker_up = True
        #: (monotonic time the broker was back, or None while it is down)
        self.broker_events: list[float] = []
        self.sample_times: list[float] = []
        self.stop_chaos = asyncio.Event()
        self.external: dict[str, set[tuple[str, Any]]] = defaultdict(set)
        #: The action types queued by soak_lifecycle and judged in soak_effects (tasks, cancels,
        #: deletes, MQTT commands and settings, groups, device records).
        self.lifecycle = LifecycleActions(seed, self.plan_action, self.tally.violation)
        self.loaded: Any = None

    def say(self, text: str) -> None:
        if self.verbose:
            print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    # -- the simulator ------------------------------------------------------------------------
    def start_simulator(self) -> None:
        config = self.workdir / "config" / "config.toml"
        self.env = {
            **os.environ,
            "FIELDTUI_CONFIG": str(config),
            "FIELDTUI_DATA_DIR": str(self.workdir / "data"),
            "FIELDTUI_LOG_DIR": str(self.workdir / "logs"),
            "PYTHONUNBUFFERED": "1",
        }
        sim_log = (self.workdir / "sim.out").open("w", encoding="utf-8")
        self.sim_proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fieldtui",
                "sim",
                "--port",
                "0",
                "--mqtt-port",
                "0",
                "--fleet-size",
                "80",
                "--seed",
                str(self.seed),
                "--telemetry-interval",
                "0.3",
                "--write-config",
                str(config),
            ],
            env={**self.env, "FIELDTUI_LOG_DIR": str(self.workdir / "sim-logs")},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.sim_proc.stdout is not None
        deadline = time.monotonic() + 120
        lines: list[str] = []
        for line in self.sim_proc.stdout:
            lines.append(line)
            sim_log.write(line)
            match = re.match(r"fieldtui sim: serving (\S+)", line)
            if match:
                self.base_url = match.group(1)
            if line.startswith("Press Ctrl-C"):
                break
            if time.monotonic() > deadline:
                break
        if not self.base_url or self.sim_proc.poll() is not None:
            raise SystemExit("the simulator did not start:\n" + "".join(lines))
        stream = self.sim_proc.stdout

        def drain() -> None:  # keep reading so the simulator never blocks on a full pipe
            for line in stream:
                sim_log.write(line)
            sim_log.close()

        threading.Thread(target=drain, daemon=True).start()
        for line in Path(f"{config}.env").read_text(encoding="utf-8").splitlines():
            name, _, value = line.partition("=")
            if name:
                self.env[name] = value
        # A short request timeout, so late answers are given up (and checked) within the run.
        text = config.read_text(encoding="utf-8")
        config.write_text(
            re.sub(r'^(kind = "[a-z]+")$', rf"\1\ntimeout = {REQUEST_TIMEOUT}", text, flags=re.M),
            encoding="utf-8",
        )
        self.env["FIELDTUI_OUTBOX_LEASE_SECONDS"] = str(LEASE_SECONDS)
        os.environ.update(self.env)  # this process's FleetService and outbox read the same

    def stop_simulator(self) -> None:
        if self.sim_proc is not None and self.sim_proc.poll() is None:
            self.sim_proc.send_signal(signal.SIGTERM)
            try:
                self.sim_proc.wait(30)
            except subprocess.TimeoutExpired:
                self.sim_proc.kill()
                self.sim_proc.wait()

    # -- the sync worker ----------------------------------------------------------------------
    def start_worker(self) -> None:
        log_path = self.workdir / f"worker-{len(self.worker_logs):03d}.err"
        self.worker_logs.append(log_path)
        with log_path.open("wb") as err:
            self.worker = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--sync-worker"],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        self.tally.worker_starts += 1

    def kill_worker(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.send_signal(signal.SIGKILL)
            self.worker.wait()
            self.tally.kills += 1
        elif self.worker is not None and self.worker.returncode not in (None, 0, -signal.SIGKILL):
            self.tally.violation(f"the sync worker exited by itself with {self.worker.returncode}")
        self.worker = None

    def stop_worker(self) -> None:
        """The end of the run (not chaos: not counted as a kill)."""
        if self.worker is not None and self.worker.poll() is None:
            self.worker.kill()
            self.worker.wait()
        self.worker = None

    async def kill_loop(self) -> None:
        self.start_worker()
        while not self.stop_chaos.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_chaos.wait(), self.rng.uniform(0.8, 5.0))
            if self.stop_chaos.is_set():
                break
            await self.not_paused.wait()
            self.kill_worker()
            await asyncio.sleep(self.rng.uniform(0.0, 0.6))
            self.start_worker()

    # -- the app ------------------------------------------------------------------------------
    def start_app(self) -> None:
        log_path = self.workdir / f"app-{self.tally.app_starts:03d}.err"
        self.worker_logs.append(log_path)
        with log_path.open("wb") as err:
            self.app = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--app-worker"],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        self.tally.app_starts += 1

    def kill_app(self, *, chaos: bool = True) -> None:
        if self.app is not None and self.app.poll() is None:
            self.app.send_signal(signal.SIGKILL)
            self.app.wait()
            self.tally.app_kills += chaos
        elif self.app is not None and self.app.returncode not in (None, 0, -signal.SIGKILL):
            self.tally.violation(f"the app exited by itself with {self.app.returncode}")
        self.app = None

    async def app_loop(self) -> None:
        rng = random.Random(self.seed * 13 + 5)
        self.start_app()
        while not self.stop_chaos.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_chaos.wait(), rng.uniform(3.0, 9.0))
            if self.stop_chaos.is_set():
                break
            self.kill_app()
            await asyncio.sleep(rng.uniform(0.0, 1.0))
            self.start_app()
        self.kill_app(chaos=False)

    # -- SIGSTOP past the lease ---------------------------------------------------------------------
    async def pause_loop(self) -> None:
        """Ctrl-Z on the sync worker for longer than its lease while the app syncs, then SIGCONT:
        what the app took over meanwhile must not be sent again by the worker."""
        rng = random.Random(self.seed * 17 + 7)
        while not self.stop_chaos.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_chaos.wait(), rng.uniform(6.0, 16.0))
            worker = await self.running_worker(within=2.0)
            if self.stop_chaos.is_set() or worker is None:
                continue
            self.not_paused.clear()
            try:
                worker.send_signal(signal.SIGSTOP)
                self.say("sync worker stopped past its lease")
                await asyncio.sleep(LEASE_SECONDS + rng.uniform(1.0, 3.0))
                worker.send_signal(signal.SIGCONT)
                self.tally.pauses += 1
                await asyncio.sleep(rng.uniform(0.5, 2.0))  # it runs on (and sends nothing taken over)
            finally:
                self.not_paused.set()

    async def running_worker(self, within: float) -> subprocess.Popen[bytes] | None:
        """The running sync worker; one being restarted (killed a moment ago) is waited for up
        to ``within`` seconds, so a pause is not skipped for landing in that gap."""
        deadline = time.monotonic() + within
        while True:
            worker = self.worker
            if worker is not None and worker.poll() is None:
                return worker
            if time.monotonic() > deadline or self.stop_chaos.is_set():
                return None
            await asyncio.sleep(0.05)

    # -- storage faults -----------------------------------------------------------------------
    async def damage_loop(self, device: str) -> None:
        """Rows that cannot be read appear in the outbox file while everything runs."""
        import uuid

        rng = random.Random(self.seed * 19 + 11)
        path = self.workdir / "data" / "outbox.sqlite3"
        while not self.stop_chaos.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_chaos.wait(), rng.uniform(5.0, 15.0))
            if self.stop_chaos.is_set():
                break
            action_id = str(uuid.uuid4())
            now = time.time()
            params = rng.choice(['{"status": "retired"', "not json {", "[]"])

            row = (action_id, device, f"device:{device}", params, now, now, now)
            await asyncio.to_thread(_insert_row, path, row)
            self.damaged_ids.append(action_id)
            self.tally.damaged += 1

    # -- the fault schedule -------------------------------------------------------------------
    async def admin(self, client: httpx.AsyncClient, method: str, path: str, body: Any = None) -> Any:
        response = await client.request(method, path, json=body)
        if response.status_code >= 400:
            self.tally.violation(f"simulator admin {method} {path} answered {response.status_code}")
            return None
        return response.json()

    async def chaos(self, client: httpx.AsyncClient) -> None:
        rng = random.Random(self.seed * 7919 + 1)
        last_broker = time.monotonic()
        clearers: list[asyncio.Task[None]] = []

        async def lift(backend: str, key: str, value: Any, after: float) -> None:
            await asyncio.sleep(after)
            await self.admin(client, "PUT", f"/_sim/faults/{backend}", {key: value})

        while not self.stop_chaos.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_chaos.wait(), rng.uniform(0.4, 1.8))
            if self.stop_chaos.is_set():
                break
            kind = rng.choices(
                [
                    "unreachable",
                    "latency",
                    "error_rate",
                    "drop_rate",
                    "answer_lost",
                    "lands_late",
                    "malformed",
                    "expire",
                    "broker",
                ],
                weights=[3, 3, 3, 3, 3, 3, 2, 2, 4],
            )[0]
            backend = rng.choice(FAULT_BACKENDS)
            duration = rng.uniform(1.0, 4.0)
            if kind == "broker":
                if time.monotonic() - last_broker < BROKER_SPACING:
                    continue
                last_broker = time.monotonic()
                await self.bounce_broker(client, stop_for=rng.choice([0.0, rng.uniform(1.0, 4.0)]))
                continue
            if kind == "expire":
                target = rng.choice(["things", "gateways"])
                await self.admin(client, "POST", f"/_sim/expire-credentials?backend={target}")
                self.tally.faults[f"expire:{target}"] += 1
                continue
            value: Any
            reset: Any
            if kind in ("unreachable", "malformed"):
                value, reset = True, False
            elif kind == "latency":
                value, reset = round(rng.uniform(0.2, 1.5), 2), 0.0
            else:
                value, reset = round(rng.uniform(0.2, 0.7), 2), 0.0
            await self.admin(client, "PUT", f"/_sim/faults/{backend}", {kind: value})
            self.tally.faults[kind] += 1
            clearers.append(asyncio.create_task(lift(backend, kind, reset, duration)))
        for task in clearers:
            task.cancel()
        await asyncio.gather(*clearers, return_exceptions=True)
        await self.admin(client, "DELETE", "/_sim/faults")
        if not self.broker_up:
            await self.bounce_broker(client, stop_for=0.0, only_start=True)

    async def bounce_broker(
        self, client: httpx.AsyncClient, *, stop_for: float, only_start: bool = False
    ) -> None:
        if not only_start:
            if stop_for:
                await self.admin(client, "POST", "/_sim/broker/stop")
                self.broker_up = False
                self.say(f"broker stopped for {stop_for:.1f} s")
                await asyncio.sleep(stop_for)
            else:
                await self.admin(client, "POST", "/_sim/broker/restart")
                self.broker_up = True
                self.broker_events.append(time.monotonic())
                self.tally.broker_restarts += 1
                self.say("broker restarted")
                return
        await self.admin(client, "POST", "/_sim/broker/start")
        self.broker_up = True
        self.broker_events.append(time.monotonic())
        self.tally.broker_restarts += 1

    # -- the technician -----------------------------------------------------------------------
    async def technician(self, service: Any, writes: Any, plan: dict[str, Any]) -> None:
        from fieldtui.core.errors import FieldtuiError

        rng = random.Random(self.seed * 31 + 3)
        things: list[str] = plan["things"]
        gateways: list[str] = plan["gateways"]
        sensors: list[str] = plan["sensors"]
        groups: list[str] = plan["groups"]
        status = dict(plan["status"])
        group = dict(plan["group"])
        dhq_group = dict(plan["dhq_group"])
        owner = dict(plan["owner"])
        counter = 0
        ops = {"lookup": 3, "tasks": 1, "status": 3, "move": 3, "dhq_move": 2, "dhq_desc": 1, "task": 2}
        ops |= {"command": 2, "fleet": 2, **OPS}
        first = list(FIRST_OPS)
        while not self.stop_chaos.is_set():
            await asyncio.sleep(rng.uniform(0.15, 0.6))
            counter += 1
            op = first.pop(0) if first else rng.choices(list(ops), list(ops.values()))[0]
            try:
                # Cancels of DeviceHQ tasks whose create is done, deletes of finished mysensor tasks.
                await self.lifecycle.follow_ups(writes)
                if op in LIFECYCLE_OPS:
                    await self.lifecycle.queue(op, writes, counter)
                elif op == "lookup":
                    device = rng.choice(things + gateways + sensors + plan["mqtt"])
                    self.tally.lookups += 1
                    await service.device(device)
                elif op == "tasks":
                    self.tally.lookups += 1
                    await service.task_view(rng.choice(sensors + gateways))
                elif op == "status":
                    device = rng.choice(things)
                    now = status[device]
                    new = (
                        THINGS_STATUSES[(THINGS_STATUSES.index(now) + 1) % 5]
                        if now in THINGS_STATUSES
                        else "installed"
                    )
                    record = await writes.set_installation_status(
                        device, new, backend="things", precondition={"status": now}
                    )
                    status[device] = new
                    self.plan_action(record.id, "things", device, ("status", new))
                elif op == "move":
                    device = rng.choice(things)
                    new = rng.choice([g for g in groups if g != group[device]])
                    record = await writes.move_to_group(
                        device, new, backend="things", precondition={"group": group[device]}
                    )
                    group[device] = new
                    self.plan_action(record.id, "things", device, ("group", new))
                elif op == "dhq_move":
                    device = rng.choice(gateways)
                    new = f"soak-{counter}"
                    record = await writes.move_to_group(
                        device, new, backend="gateways", precondition={"group": dhq_group[device]}
                    )
                    dhq_group[device] = new
                    self.plan_action(record.id, "gateways", device, ("group", new))
                elif op == "dhq_desc":
                    device = rng.choice(gateways)
                    text = f"soak description {counter}"
                    record = await writes.update_device(device, {"description": text}, backend="gateways")
                    self.plan_action(record.id, "gateways", device, ("description", text))
                elif op == "command":
                    device = rng.choice(things)
                    record = await writes.send_command(
                        device, "1500", {"tsmEv": 1, "profileId": counter}, backend="things"
                    )
                    self.plan_action(
                        record.id, "things", device, ("command", record.action.params["correlation"])
                    )
                elif op == "fleet":
                    device = rng.choice(plan["fleet"])
                    new = f"soak-owner-{counter}"
                    record = await writes.update_device(
                        device,
                        {"owner_ref": new},
                        backend="fleet",
                        precondition={"fields": {"owner_ref": owner[device]}},
                    )
                    owner[device] = new
                    self.plan_action(record.id, "fleet", device, ("owner_ref", new))
                else:
                    device = rng.choice(sensors)
                    file_id = 1_600_000 + counter
                    record = await writes.create_task(
                        device, "update_firmware", {"file_id": file_id}, backend="sensors"
                    )
                    self.plan_action(record.id, "sensors", device, ("task", file_id))
                    self.lifecycle.track_sensor_task(record.id, device)
            except FieldtuiError as exc:
                if op in ("lookup", "tasks"):
                    self.tally.lookup_errors += 1
                else:
                    self.tally.violation(f"queuing {op} was refused: {exc}")
            except Exception as exc:
                self.tally.violation(f"{op} crashed: {type(exc).__name__}: {exc}")

    def plan_action(
        self, action_id: str, backend: str, device: str, effect: tuple[str, Any], expect: str | None = None
    ) -> None:
        self.planned.append(Planned(action_id, backend, device, effect, expect))
        self.tally.actions += 1

    async def watcher(self, service: Any, device: str) -> None:
        from fieldtui.core.models import TelemetrySample

        while not self.stop_chaos.is_set():
            try:
                async for item in service.telemetry(device):
                    if isinstance(item, TelemetrySample) and item.backend == "live":
                        self.sample_times.append(time.monotonic())
                        self.tally.samples += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.say(f"telemetry stream ended: {type(exc).__name__}: {exc}")
                await asyncio.sleep(1.0)

    # -- staged cases with a known outcome ------------------------------------------------------
    async def staged_cases(self, writes: Any, plan: dict[str, Any], loaded: Any) -> None:
        """A conflict (another tool moves the device first) and a refusal (a bad file id)."""
        from fieldtui.connectors.registry import build_connector
        from fieldtui.secrets import get_secret

        device, ext_group = plan["conflict_device"], plan["external_group"]
        seen = plan["group"][device]
        other = build_connector(
            "things", loaded.backends["things"], get_secret(loaded.profile_name, "things")
        )
        async with other:
            await other.move_to_group(device, ext_group)
        self.external[device].add(("group", ext_group))
        target = next(g for g in plan["groups"] if g not in (seen, ext_group))
        record = await writes.move_to_group(device, target, backend="things", precondition={"group": seen})
        self.plan_action(record.id, "things", device, ("group", target), expect="conflict")

        bad = plan["refused_device"]
        record = await writes.create_task(
            bad, "update_firmware", {"file_id": "not-a-number"}, backend="sensors"
        )
        self.plan_action(record.id, "sensors", bad, ("task", "not-a-number"), expect="failed")

    # -- the run ------------------------------------------------------------------------------
    async def run(self) -> int:
        from fieldtui.config import load_config
        from fieldtui.logging_setup import configure_logging
        from fieldtui.service.factory import build_fleet_service
        from fieldtui.service.writes import open_outbox

        configure_logging()
        async with httpx.AsyncClient(base_url=self.base_url, timeout=60) as client:
            plan = await self.make_plan(client)
            loaded = self.loaded = load_config(None, None)
            await self.lifecycle.prepare(client, plan, loaded)
            for device, effects in self.lifecycle.named.external.items():
                self.external[device] |= effects
            async with (
                open_outbox(loaded, offline=True) as outbox,
                build_fleet_service(loaded, cache=outbox.store) as service,
            ):
                await self.staged_cases(outbox.writes, plan, loaded)
                watcher = asyncio.create_task(self.watcher(service, plan["mqtt"][0]))
                await asyncio.sleep(2.0)  # the first samples arrive before the chaos begins
                tasks = [
                    asyncio.create_task(self.chaos(client)),
                    asyncio.create_task(self.kill_loop()),
                    asyncio.create_task(self.app_loop()),
                    asyncio.create_task(self.pause_loop()),
                    asyncio.create_task(self.damage_loop(plan["damaged_device"])),
                    asyncio.create_task(self.technician(service, outbox.writes, plan)),
                ]
                self.say(f"chaos for {self.chaos_seconds:.0f} s")
                await asyncio.sleep(self.chaos_seconds)
                self.stop_chaos.set()
                await asyncio.gather(*tasks)
                self.say("chaos over: settling")
                if not self.worker or self.worker.poll() is not None:
                    self.start_worker()
                await self.settle(outbox.writes)
                await asyncio.sleep(TELEMETRY_RESUME_SECONDS if self.recent_broker_event() else 0)
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
                self.stop_worker()
                records = {r.id: r for r in await outbox.store.list_actions()}
                damaged = {row.id for row in await outbox.store.damaged()}
            await self.verify(client, plan, records)
            for action_id in self.damaged_ids:
                if action_id not in damaged:
                    self.tally.violation(f"the unreadable row {action_id[:8]} was not set aside as damaged")
        self.check_cli()
        self.check_worker_logs()
        return self.report()

    def recent_broker_event(self) -> bool:
        return (
            bool(self.broker_events) and time.monotonic() - self.broker_events[-1] < TELEMETRY_RESUME_SECONDS
        )

    async def make_plan(self, client: httpx.AsyncClient) -> dict[str, Any]:
        rng = random.Random(self.seed)
        fleet = (await client.get("/_sim/fleet")).json()
        by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in fleet:
            by_kind[row["kind"]].append(row)
        things = sorted(by_kind["things"], key=lambda r: r["id"])
        groups = sorted({r["group"] for r in things if r["group"] and r["group"] != "unassigned"})
        if len(groups) < 4:
            raise SystemExit(f"the simulated fleet has too few things groups: {groups}")
        external_group = groups[-1]
        groups = groups[:-1]
        # Devices in a group the moves use, so what the technician saw is a group both sides name alike.
        things = [r for r in things if r["group"] in groups]
        rng.shuffle(things)
        chosen_things = [r["id"] for r in things[:6]]
        conflict_device = things[6]["id"]
        gateways = sorted(r["id"] for r in by_kind["devicehq"] if r["group"])[:4]
        sensors_all = sorted(r["id"] for r in by_kind["mysensor"])
        sensors, refused_device = sensors_all[:3], sensors_all[3]
        mqtt = sorted(r["id"] for r in by_kind["mqtt"] if r["online"])[:1]
        fleet_devices = sorted(r["id"] for r in by_kind["fleet"])[:3]
        damaged_device = things[7]["id"]
        plan: dict[str, Any] = {
            "things": chosen_things,
            "gateways": gateways,
            "sensors": sensors,
            "mqtt": mqtt,
            "groups": groups,
            "external_group": external_group,
            "conflict_device": conflict_device,
            "refused_device": refused_device,
            "fleet": fleet_devices,
            "damaged_device": damaged_device,
            "owner": {},
            "status": {},
            "group": {},
            "dhq_group": {},
            "before": {},
        }
        for device in [*chosen_things, conflict_device]:
            state = (await client.get(f"/_sim/inspect/things/{device}")).json()
            plan["status"][device] = state["installation_status"]
            plan["group"][device] = state["group"]
            # A device outside the move targets starts in one: a first move away from it is fine.
        for device in gateways:
            state = (await client.get(f"/_sim/inspect/gateways/{device}")).json()
            plan["dhq_group"][device] = state["group"]
        for device in [*sensors, refused_device]:
            state = (await client.get(f"/_sim/inspect/sensors/{device}")).json()
            plan["before"][device] = len(state["tasks"])
        for device in fleet_devices:
            shown = (await client.get(f"/_sim/inspect/fleet/{device}")).json()["device"]
            plan["owner"][device] = shown.get("owner_ref")
        return plan

    async def settle(self, writes: Any) -> None:
        """Let the worker send everything it can; stop when only held actions are left. The
        technician goes on cancelling the DeviceHQ tasks it made (they make room under the cap)."""
        from fieldtui.core.actions import ActionState

        store = writes.store
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            if self.worker is None or self.worker.poll() is not None:
                self.tally.violation("the sync worker died while settling")
                self.start_worker()
            await self.lifecycle.follow_ups(writes, settling=True)
            open_ = await store.list_actions(
                [ActionState.QUEUED, ActionState.SENDING, ActionState.FAILED, ActionState.CONFLICT]
            )
            blocked_keys = {
                r.queue_key for r in open_ if r.state in (ActionState.FAILED, ActionState.CONFLICT)
            }
            moving = [
                r
                for r in open_
                if r.state in (ActionState.QUEUED, ActionState.SENDING) and r.queue_key not in blocked_keys
            ]
            if not moving:
                return
            if time.monotonic() > deadline:
                for record in moving[:10]:
                    self.tally.violation(
                        f"still {record.state.value} after settling: {record.describe()} ({record.last_error})"
                    )
                return
            await asyncio.sleep(0.5)

    # -- checking -----------------------------------------------------------------------------
    async def verify(self, client: httpx.AsyncClient, plan: dict[str, Any], records: dict[str, Any]) -> None:
        from fieldtui.core.actions import ActionState

        self.lost = 0
        self.duplicates = 0
        self.resends = 0
        self.outcomes: Counter[str] = Counter()
        #: (backend, effect) -> {"applied": n, "lost": n, "doubled": n}, by the mutation logs.
        self.per_type: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        observed = await self.observed_effects(client)
        by_device: dict[tuple[str, str], list[Planned]] = defaultdict(list)
        for planned in self.planned:
            by_device[(planned.backend, planned.device)].append(planned)
            self.per_type[(planned.backend, planned.effect[0])]["applied"] += 0  # listed even if 0
        blocked: set[tuple[str, str]] = set()
        for key, actions in by_device.items():
            expected: list[tuple[str, Any]] = []
            for planned in actions:
                record = records.get(planned.id)
                if record is None:
                    self.lost += 1
                    self.per_type[(key[0], planned.effect[0])]["lost"] += 1
                    self.tally.violation(f"action {planned.id[:8]} ({planned.effect}) is not in the outbox")
                    continue
                state = record.state
                if key in blocked and state is ActionState.QUEUED:
                    self.outcomes["held behind a failure"] += 1
                    continue
                self.outcomes[state.value] += 1
                if planned.expect is not None and state.value != planned.expect:
                    self.tally.violation(f"{record.describe()}: {state.value}, expected {planned.expect}")
                if state in (ActionState.FAILED, ActionState.CONFLICT):
                    blocked.add(key)
                    if not record.last_error:
                        self.tally.violation(f"{record.describe()} is {state.value} without a reason")
                    elif planned.expect is None:
                        self.say(f"{state.value}: {record.describe()}: {record.last_error}")
                elif state is ActionState.DONE:
                    expected.append(planned.effect)
                else:
                    self.tally.violation(f"{record.describe()} ended {state.value} ({record.last_error})")
            seen = self.without_resends(
                key, [e for e in observed.get(key, []) if e not in self.external[key[1]]]
            )
            self.compare(key, expected, seen)
        for key, seen in observed.items():
            if key not in by_device and [e for e in seen if e not in self.external[key[1]]]:
                self.tally.violation(f"{key}: changes nobody asked for: {seen}")
        await self.check_final_state(client, plan, by_device, records)
        self.check_telemetry()

    def without_resends(self, key: tuple[str, str], seen: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        """Drop repeats of an idempotent change while its value holds (a description PUT sent
        again after an uncertain attempt, as designed: it changes nothing; the others are listed
        in soak_effects' docstring). Moves, statuses, commands and creates are never collapsed."""
        kept, resends = without_resends(key[0], seen)
        self.resends += resends
        if resends:
            for effect, n in (Counter(seen) - Counter(kept)).items():
                self.per_type[(key[0], effect[0])]["resent"] += n
        return kept

    def compare(
        self, key: tuple[str, str], expected: list[tuple[str, Any]], seen: list[tuple[str, Any]]
    ) -> None:
        for effect in expected:
            self.per_type[(key[0], effect[0])]["applied"] += 1
        if seen == expected:
            return
        extra, missing = count_lost_and_doubled(seen, expected)
        self.duplicates += sum(extra.values())
        self.lost += sum(missing.values())
        for effect, n in extra.items():
            self.per_type[(key[0], effect[0])]["doubled"] += n
        for effect, n in missing.items():
            self.per_type[(key[0], effect[0])]["lost"] += n
        if extra:
            self.tally.violation(f"{key}: applied more than once or unasked: {dict(extra)}")
        if missing:
            self.tally.violation(f"{key}: marked done but never applied: {dict(missing)}")
        if not extra and not missing and not same_order(seen, expected):
            self.tally.violation(f"{key}: applied out of order: {seen} instead of {expected}")

    async def observed_effects(
        self, client: httpx.AsyncClient
    ) -> dict[tuple[str, str], list[tuple[str, Any]]]:
        """What each cloud's mutation log says was changed, per (backend, device), in order."""
        out: dict[tuple[str, str], list[tuple[str, Any]]] = defaultdict(list)
        logs = {
            backend: (await client.get(f"/_sim/mutations?backend={backend}")).json()
            for backend in ("things", "gateways", "sensors", "fleet")
        }
        for m in logs["things"]:
            match = re.fullmatch(rf"{THINGS_PREFIX}/things/([^/]+)/(installations|group|commands)", m["path"])
            if not match or m["method"] != "POST":
                continue
            body = m["body"] or {}
            if match.group(2) == "commands":
                for command in body if isinstance(body, list) else []:
                    out[("things", match.group(1))].append(("command", command.get("transactionId")))
            elif match.group(2) == "installations":
                out[("things", match.group(1))].append(("status", body.get("installation_status")))
            else:
                out[("things", match.group(1))].append(("group", body.get("group_id")))
        gateways = {norm(d): d for d in await self._ids(client, "devicehq")}
        for m in logs["gateways"]:
            match = re.fullmatch(rf"{DEVICEHQ_PREFIX}/devices/([^/]+)", m["path"])
            if not match or m["method"] != "PUT":
                continue
            device = gateways.get(norm(match.group(1)), match.group(1))
            attributes = ((m["body"] or {}).get("data") or {}).get("attributes") or {}
            for name in ("group", "description"):
                if name in attributes:
                    out[("gateways", device)].append((name, attributes[name]))
        for m in logs["sensors"]:
            if m["path"] != f"{MYSENSOR_PREFIX}/tasks" or m["method"] != "PUT":
                continue
            body = m["body"] or {}
            out[("sensors", str(body.get("sensor_serial")))].append(("task", body.get("file_id")))
        for m in logs["fleet"]:
            match = re.fullmatch(rf"{FLEET_PREFIX}/projects/[^/]+/devices/([^/]+)", m["path"])
            if not match or m["method"] != "PATCH":
                continue
            body = m["body"] or {}
            if "owner_ref" in body:
                out[("fleet", match.group(1))].append(("owner_ref", body["owner_ref"]))
        await self.lifecycle.named.observe(client, logs, out)
        return out

    async def _ids(self, client: httpx.AsyncClient, kind: str) -> list[str]:
        return [r["id"] for r in (await client.get(f"/_sim/fleet?kind={kind}")).json()]

    async def check_final_state(
        self,
        client: httpx.AsyncClient,
        plan: dict[str, Any],
        by_device: dict[tuple[str, str], list[Planned]],
        records: dict[str, Any],
    ) -> None:
        """The clouds' state as /_sim/inspect shows it agrees with the last applied action."""
        from fieldtui.core.actions import ActionState

        def last_done(key: tuple[str, str], what: str) -> Any:
            value = None
            for planned in by_device.get(key, []):
                record = records.get(planned.id)
                if record is not None and record.state is ActionState.DONE and planned.effect[0] == what:
                    value = planned.effect[1]
            return value

        for device in plan["things"]:
            state = (await client.get(f"/_sim/inspect/things/{device}")).json()
            for what, field_name, start in (
                ("status", "installation_status", plan["status"][device]),
                ("group", "group", plan["group"][device]),
            ):
                want = last_done(("things", device), what) or start
                if state[field_name] != want:
                    self.tally.violation(
                        f"things {device}: {field_name} is {state[field_name]!r}, expected {want!r}"
                    )
        for device in plan["gateways"]:
            state = (await client.get(f"/_sim/inspect/gateways/{device}")).json()
            want = last_done(("gateways", device), "group") or plan["dhq_group"][device]
            if state["group"] != want:
                self.tally.violation(f"gateways {device}: group is {state['group']!r}, expected {want!r}")
            desc = last_done(("gateways", device), "description")
            if desc is not None and state["description"] != desc:
                self.tally.violation(
                    f"gateways {device}: description {state['description']!r}, expected {desc!r}"
                )
        for device in [*plan["sensors"], plan["refused_device"]]:
            state = (await client.get(f"/_sim/inspect/sensors/{device}")).json()
            # Tasks made, less those deleted (a delete is judged in soak_effects: its task is gone).
            done = sum(
                {"task": 1, "delete_task": -1}.get(planned.effect[0], 0)
                for planned in by_device.get(("sensors", device), [])
                if (r := records.get(planned.id)) is not None and r.state is ActionState.DONE
            )
            if len(state["tasks"]) != plan["before"][device] + done:
                self.tally.violation(
                    f"sensors {device}: {len(state['tasks'])} tasks, expected {plan['before'][device]} + {done}"
                )
        for device in plan["fleet"]:
            shown = (await client.get(f"/_sim/inspect/fleet/{device}")).json()["device"]
            want = last_done(("fleet", device), "owner_ref") or plan["owner"][device]
            if shown.get("owner_ref") != want:
                self.tally.violation(
                    f"fleet {device}: owner_ref {shown.get('owner_ref')!r}, expected {want!r}"
                )
        conflict = (await client.get(f"/_sim/inspect/things/{plan['conflict_device']}")).json()
        if conflict["group"] != plan["external_group"]:
            self.tally.violation(f"the conflicting move was applied anyway: group {conflict['group']!r}")
        await self.lifecycle.named.check_final_state(
            client, self.loaded, by_device, records, self.tally.violation
        )

    def check_telemetry(self) -> None:
        if not self.sample_times:
            self.tally.violation("no telemetry sample arrived at all")
            return
        for back in self.broker_events:
            if not any(back < t <= back + TELEMETRY_RESUME_SECONDS for t in self.sample_times):
                self.tally.violation(
                    f"telemetry did not resume within {TELEMETRY_RESUME_SECONDS:g} s of a broker restart"
                )

    def check_cli(self) -> None:
        """The product's own CLI agrees: `outbox list --json` parses and `outbox sync` runs clean."""
        listed = subprocess.run(
            [sys.executable, "-m", "fieldtui", "outbox", "list", "--json"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if listed.returncode != 0:
            self.tally.violation(f"`outbox list --json` exited {listed.returncode}: {listed.stderr.strip()}")
        else:
            counts = json.loads(listed.stdout)["counts"]
            if counts.get("sending"):
                self.tally.violation(f"`outbox list` still shows {counts['sending']} sending")
        synced = subprocess.run(
            [sys.executable, "-m", "fieldtui", "outbox", "sync", "--json"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        # 6: actions failed, in conflict or set aside as damaged (the soak stages all three).
        # 5 would mean actions left queued after settling.
        if "Traceback" in synced.stderr or synced.returncode not in (0, 1, 6):
            self.tally.violation(f"`outbox sync` exited {synced.returncode}: {synced.stderr.strip()[-500:]}")
        elif json.loads(synced.stdout)["done"]:
            self.tally.violation("`outbox sync` still found work after settling")

    def check_worker_logs(self) -> None:
        crashed = 0
        for path in self.worker_logs:
            text = path.read_text(encoding="utf-8", errors="replace")
            if "Traceback" in text:
                crashed += 1
                if crashed <= 3:
                    self.tally.violation(f"the sync worker crashed ({path.name}):\n{text[-1500:]}")
        log_dir = self.workdir / "logs"
        for log_file in sorted(log_dir.glob("*.log*")) if log_dir.exists() else []:
            text = log_file.read_text(encoding="utf-8", errors="replace")
            if "unexpected error" in text:
                self.tally.violation(f"{log_file.name} records an unexpected error")

    def report(self) -> int:
        t = self.tally
        outcomes = ", ".join(f"{n} {state}" for state, n in sorted(self.outcomes.items()))
        faults = sum(t.faults.values()) + t.broker_restarts
        print(f"soak seed {self.seed}: {self.chaos_seconds:.0f} s of chaos")
        print(f"  actions     {t.actions} ({outcomes})")
        print(f"  lookups     {t.lookups} ({t.lookup_errors} answered with an error)")
        print(
            f"  faults      {faults} ("
            + ", ".join(f"{n} {k}" for k, n in sorted(t.faults.items()))
            + f", {t.broker_restarts} broker restarts)"
        )
        print(f"  kills       {t.kills} (sync worker started {t.worker_starts} times)")
        print(f"  app kills   {t.app_kills} (app started {t.app_starts} times)")
        print(
            f"  pauses      {t.pauses} (sync worker stopped past its {LEASE_SECONDS:g} s lease, then resumed)"
        )
        print(f"  damaged     {t.damaged} unreadable rows put in the outbox file, each set aside")
        print(f"  telemetry   {t.samples} samples")
        print(
            f"  duplicates  {self.duplicates} (idempotent updates re-sent after an uncertain attempt: {self.resends})"
        )
        print(f"  lost        {self.lost}")
        for (backend, effect), n in sorted(self.per_type.items()):
            resent = f" ({n['resent']} idempotent resends)" if n["resent"] else ""
            print(
                f"    {backend + ' ' + effect:<24} {n['applied']:>4} done, by the simulator's record:"
                f" {n['lost']} lost, {n['doubled']} doubled{resent}"
            )
        held = len(self.lifecycle.named.held_by_cap)
        print(f"  task cap    {held} DeviceHQ task creates seen held by the account's 25-task cap")
        print(f"  violations  {len(t.violations)}")
        for violation in t.violations:
            print(f"    - {violation}")
        return 1 if t.violations else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--long", action="store_true", help=f"{LONG_CHAOS_SECONDS:.0f} s of chaos")
    parser.add_argument("--seconds", type=float, help="seconds of chaos (overrides --long)")
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    parser.add_argument("--verbose", "-v", action="store_true")
    parser.add_argument("--sync-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--app-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sync_worker:
        return run_sync_worker()
    if args.app_worker:
        return run_app_worker()
    seconds = args.seconds or (LONG_CHAOS_SECONDS if args.long else SHORT_CHAOS_SECONDS)
    workdir = Path(tempfile.mkdtemp(prefix="fieldtui-soak-"))
    soak = Soak(args.seed, seconds, workdir, args.verbose)
    try:
        soak.start_simulator()
        status = asyncio.run(soak.run())
    finally:
        for proc in (soak.worker, soak.app):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        soak.stop_simulator()
        if args.keep or (soak.tally.violations and args.verbose):
            print(f"  workdir     {workdir}")
        else:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
