"""Every row of the README's reachability table, driven through the CLI against the simulator.

Each route or topic of documents 000-004 is either reached by a ``fieldtui`` command (run here,
its placeholders made simulated devices; a write must show in the simulator's mutation log with
the row's method and path, an MQTT write in the MQTT cloud's own state) or says in words why a
technician does not need it.

Cost: most rows run the CLI in this process (``fieldtui.cli.main`` with the row's arguments, its
stdout and stderr captured, the environment a script would give it), one simulator for them all;
the first ``status`` and the first ``watch`` (stopped with Ctrl-C) run as real processes, so the
command a shell runs is still what is tested end to end. A watch in this process is stopped the
way Ctrl-C stops it (an interrupt of the main thread) once its first sample is printed.
"""

from __future__ import annotations

import _thread
import contextlib
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_read_commands import fieldtui

from fieldtui import cli

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Reachability: every documented route and topic"
#: The routes and topics each document has (000-004; 69 in all, as issue 11 counted them).
ROUTES_PER_DOCUMENT = {"000": 5, "001": 17, "002": 28, "003": 12, "004": 7}
#: Where each document's cloud is mounted on the simulator.
MOUNT = {"000": "/mysensor/", "001": "/things/", "002": "/devicehq/", "004": "/fleet/"}
WRITES = ("POST", "PUT", "PATCH", "DELETE")
#: Authentication routes: every command sends them, so they are not a command's own mark.
AUTH = ("/session", "/auth/client-token")
#: The first command of these verbs runs as a real process (the rest run in this process).
AS_PROCESS = ("status", "watch")
#: The MQTT topics a technician publishes, and what the MQTT cloud's state then shows.
MQTT_WRITES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "cloud_settings/update": lambda state: bool(state.get("cloud_settings")),
    "commands": lambda state: bool(state.get("commands")),
}


@dataclass(frozen=True, slots=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """``os.environ`` as ``env`` (what the process would get) for the length of one command."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_cli(env: dict[str, str], *args: str, until_line: bool = False) -> Ran:
    """``fieldtui ARGS`` in this process: the entry point a shell calls, its output captured.

    ``until_line``: interrupt it (as Ctrl-C does) once it printed a line, or after a minute."""
    out, err = io.StringIO(), io.StringIO()
    interrupter = _Interrupter(out) if until_line else None
    with _environment(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            if interrupter is not None:
                interrupter.start()
            try:
                code = cli.main(list(args))
            finally:  # however it ended, no interrupt may reach a later command
                if interrupter is not None:
                    interrupter.finish()
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code if isinstance(exit_.code, int) else 2
        except KeyboardInterrupt:  # the interrupt came after the command ended by itself
            code = 0
    return Ran(code, out.getvalue(), err.getvalue())


class _Interrupter(threading.Thread):
    """Interrupts the main thread once ``out`` holds a line (Ctrl-C after the first sample)."""

    def __init__(self, out: io.StringIO) -> None:
        super().__init__(daemon=True)
        self.out = out
        self.lock = threading.Lock()
        self.done = False

    def run(self) -> None:
        deadline = time.monotonic() + 60
        while "\n" not in self.out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
        with self.lock:
            if not self.done:
                _thread.interrupt_main()

    def finish(self) -> None:
        with self.lock:
            self.done = True
        time.sleep(0.01)  # an interrupt already on its way lands here, inside the caller's try


def table_rows() -> list[tuple[str, str, str, str]]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == 4 and re.fullmatch(r"00[0-4]", cells[0]):
            rows.append((cells[0], cells[1], cells[2], cells[3]))
    return rows


def _route(cell: str) -> tuple[tuple[str, ...], str] | None:
    """The methods and path pattern of a write route (None: a read or a topic)."""
    quoted = re.search(r"`([^`]+)`", cell)
    if quoted is None:
        return None
    method, _, path = quoted.group(1).partition(" ")
    methods = tuple(method.split("/"))
    if not path.startswith("/") or not set(methods) <= set(WRITES) or path in AUTH:
        return None
    path = path.split("?")[0].rstrip("/")
    pattern = re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(path))
    return methods, pattern + "$"


class Placeholders:
    """Simulated devices for ``{sensor}``, ``{thing}``... (each resolved once, when first used)."""

    def __init__(self, sim: Any, env: dict[str, str]) -> None:
        self.sim = sim
        self.env = env
        self.known: dict[str, str] = {}
        fleet = sim.fleet
        self.makers: dict[str, Callable[[], str]] = {
            "sensor": lambda: next(iter(fleet.of("mysensor"))),
            "thing": lambda: next(i for i, d in fleet.of("things").items() if not d.also_in),
            "thing_group": lambda: sorted({d.group for d in fleet.of("things").values() if d.group})[0],
            "new_group": lambda: "reach-test",
            "new_gateway": lambda: "REACH-GW-1",
            "new_fleet": lambda: "REACH-FLEET-1",
            "gateway": lambda: next(iter(fleet.of("devicehq"))),
            "mqtt": lambda: next(i for i, d in fleet.of("mqtt").items() if d.online),
            "fleet": lambda: next(iter(fleet.of("fleet"))),
            "sensor_task": lambda: self._open_task(self.fill("{sensor}")),
            "gateway_task": lambda: self._open_task(self.fill("{gateway}")),
            "gateway_firmware": self._firmware,
        }

    def fill(self, command: str) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.known:
                self.known[name] = self.makers[name]()
            return self.known[name]

        return re.sub(r"\{(\w+)\}", one, command)

    def _open_task(self, device: str) -> str:
        result = run_cli(self.env, "tasks", device, "--json")
        assert result.returncode == 0, result.stderr
        tasks = json.loads(result.stdout)["tasks"]
        open_ = [t for t in tasks if t["state"] in ("queued", "running")] or tasks
        assert open_, f"{device} has no task"
        return str(open_[0]["id"])

    def _firmware(self) -> str:
        gateway = self.fill("{gateway}")
        result = run_cli(self.env, "task", "create", gateway, "SOFTWARE_UPGRADE", "--json")
        assert result.returncode == 0, result.stderr
        return str(json.loads(result.stdout)["choices"][0]["id"])


def _watch_gets_a_sample(env: dict[str, str], args: list[str]) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "fieldtui", *args, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the first sample (or EOF if the watch ended)
        assert line.strip(), f"no sample from {args}: {process.stderr.read() if process.poll() else ''}"
        json.loads(line)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_table_holds_every_route_of_the_five_documents() -> None:
    rows = table_rows()
    counted = {doc: sum(1 for r in rows if r[0] == doc) for doc in ROUTES_PER_DOCUMENT}
    assert counted == ROUTES_PER_DOCUMENT
    for _doc, route, _screen, command in rows:
        assert command.startswith("`fieldtui ") or (command.startswith("*") and len(command) > 20), route


def test_every_rows_command_reaches_its_route_on_the_simulator(
    sim_clean: Any, cli_env: dict[str, str]
) -> None:
    places = Placeholders(sim_clean, cli_env)
    ran: dict[str, tuple[int, int]] = {}  # command -> mutation log span it made
    processes: set[str] = set()  # the verbs already run as a real process
    for doc, route, _screen, cell in table_rows():
        if not cell.startswith("`fieldtui "):
            continue
        command = places.fill(cell.strip("`"))
        if command not in ran:
            before = len(sim_clean.admin("GET", "/_sim/mutations").json())
            args = shlex.split(command)[1:]
            as_process = args[0] in AS_PROCESS and args[0] not in processes
            processes.add(args[0])
            if args[0] == "watch" and as_process:
                _watch_gets_a_sample(cli_env, args)
            elif args[0] == "watch":
                result = run_cli(cli_env, *args, "--json", until_line=True)
                assert result.returncode == 0, f"{command}: {result.stderr}"
                json.loads(result.stdout.splitlines()[0])
            else:
                result = fieldtui(cli_env, *args) if as_process else run_cli(cli_env, *args)
                assert result.returncode == 0, f"{command}: {result.stderr}"
                assert result.stdout.strip(), command
            ran[command] = (before, len(sim_clean.admin("GET", "/_sim/mutations").json()))
        if doc == "003":
            _mqtt_write_shows(sim_clean, route, command)
        write = _route(route)
        if write is None or doc not in MOUNT:
            continue
        methods, pattern = write
        start, end = ran[command]
        made = sim_clean.admin("GET", "/_sim/mutations").json()[start:end]
        assert any(
            m["method"] in methods and m["path"].startswith(MOUNT[doc]) and re.search(pattern, m["path"])
            for m in made
        ), f"{route}: {command} sent {[(m['method'], m['path']) for m in made]}"


def _mqtt_write_shows(sim: Any, route: str, command: str) -> None:
    """An MQTT topic a technician publishes is judged by the MQTT cloud's state of the device."""
    topic = re.search(r"`v1/device/\{id\}/([^`]+)`", route)
    if topic is None or topic.group(1) not in MQTT_WRITES:
        return
    devices = sim.simulator.mqtt_devices
    if devices is None:
        pytest.fail("the simulator runs no MQTT broker")
    device = shlex.split(command)[3]
    deadline = time.monotonic() + 10
    while not MQTT_WRITES[topic.group(1)](devices.inspect(device) or {}):
        assert time.monotonic() < deadline, f"{route}: {command} left no mark on {device}"
        time.sleep(0.05)
