"""Walk every workflow of issue 12 as a technician would: the app in tmux at 80x24, then the CLI.

    .venv/bin/python scripts/tmux_walk.py [--keep DIR] [--fieldtui PATH] [--only WORD]...

It starts ``fieldtui sim --port 0 --mqtt-port 0`` in a temporary directory (its own config,
outbox and log directory), then ``fieldtui`` in a detached tmux session of 80x24 against it, and
walks: a scan during start-up; lookup by typing, by name, by pasting (``paste-buffer``) and by
scanning (a fast burst ending in Enter, from another screen); the device; its telemetry; the
installation status; a group move of one device and of several; a task created, cancelled and
deleted; commands; the outbox offline -> online (``:offline``, a cloud made unreachable through
the simulator's fault controls, ``:online``, the cloud back); the guided installation; help
(``?``, F1, scrolling); the palette; ``:`` commands. Every capture of the pane is kept
(``captures/NNN-step.txt`` in the work directory, printed at the end) and checked: no traceback,
no key hint cut in the footer, the expected words on screen and, for every change, the
simulator's own record (``GET /_sim/mutations``). Then the same list through the CLI: exit
codes as README documents them, ``--json`` always valid JSON, ``| head -1`` not an error.

It prints a table (workflow, pass/fail, what was seen) and exits 1 when any workflow failed.
Waits are for text on screen (with a timeout), never fixed sleeps, so it holds on a loaded
machine. Needs tmux and mosquitto on PATH.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import select
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WIDTH, HEIGHT = 80, 24
#: tmux on a server of the walk's own (``-L``): other sessions on the machine neither see nor end it.
TMUX = ("tmux", "-L", f"fieldtui-walk-{os.getpid()}")
ROOT = Path(__file__).resolve().parent.parent
#: The time a person leaves between two keys: well above the scan detector's burst gap.
KEY_GAP = 0.06
#: Words that show a screen or a line cut short, from issue 12's "What was seen".
CUT_WORDS = ("uninstalle ", "check_in_duratio ", "not reachedthings")


def pause(seconds: float) -> None:
    # select, not time.sleep: the walk may run under libfaketime, whose sleep can fail with EINVAL.
    select.select([], [], [], seconds)


class StepFailed(Exception):
    """A workflow did not do what a technician expects: the message says what was seen."""


# --------------------------------------------------------------------------------------------
# The simulator


class Sim:
    def __init__(self, fieldtui: list[str], workdir: Path) -> None:
        self.workdir = workdir
        self.config = workdir / "config.toml"
        self.log = (workdir / "sim.out").open("w")
        self.process = subprocess.Popen(
            [*fieldtui, "sim", "--port", "0", "--mqtt-port", "0", "--write-config", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "FIELDTUI_LOG_DIR": str(workdir / "sim-log")},
        )
        self.base_url = ""
        assert self.process.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.log.write(line)
            match = re.match(r"fieldtui sim: serving (\S+)", line)
            if match:
                self.base_url = match.group(1)
            if line.startswith("Press Ctrl-C"):
                break
        self.log.flush()
        if not self.base_url or not self.config.exists():
            raise SystemExit(f"fieldtui sim did not start; see {workdir / 'sim.out'}")

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read() or b"null")

    def mutations(self) -> list[dict[str, Any]]:
        return [
            m
            for m in self.request("GET", "/_sim/mutations")
            if not m["path"].endswith(("/session", "/client-token"))
        ]

    def fleet(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/_sim/fleet"))

    def fault(self, backend: str, **faults: Any) -> None:
        self.request("PUT", f"/_sim/faults/{backend}", faults)

    def clear_faults(self) -> None:
        self.request("DELETE", "/_sim/faults")

    def env(self) -> dict[str, str]:
        env_file = self.config.with_name(self.config.name + ".env")
        pairs = (line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
        return {key: value for key, value in pairs}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


# --------------------------------------------------------------------------------------------
# The pane


def known_descriptions() -> set[str]:
    """Every key description a footer may show, from the app's own bindings."""
    pattern = re.compile(r'Binding\(\s*"[^"]*",\s*"[^"]*",\s*"([^"]+)"')
    words = {"palette"}
    for source in (ROOT / "fieldtui" / "ui").rglob("*.py"):
        words.update(pattern.findall(source.read_text()))
    return words


class Pane:
    def __init__(self, session: str, captures: Path) -> None:
        self.session = session
        self.captures = captures
        self.count = 0
        self.step = "start"
        self.descriptions = known_descriptions()

    def tmux(self, *args: str) -> str:
        return subprocess.run([*TMUX, *args], check=True, capture_output=True, text=True).stdout

    def start(self, command: str) -> None:
        # The app's exit (and any traceback) stays on the pane: the shell says how it ended.
        wrapped = f'{command}; echo "[fieldtui exited: $?]"; sleep 100000'
        subprocess.run(
            [*TMUX, "new-session", "-d", "-s", self.session, "-x", str(WIDTH), "-y", str(HEIGHT), wrapped],
            check=True,
            env={**os.environ, "TMUX": ""},
        )

    def alive(self) -> bool:
        return subprocess.run([*TMUX, "has-session", "-t", self.session], capture_output=True).returncode == 0

    def kill(self) -> None:
        subprocess.run([*TMUX, "kill-server"], check=False, capture_output=True)  # our own server only

    def capture(self) -> str:
        screen = self.tmux("capture-pane", "-p", "-t", self.session)
        if "[fieldtui exited" in screen:
            # The whole traceback, not only its last screenful.
            history = self.tmux("capture-pane", "-p", "-S", "-2000", "-t", self.session)
            (self.captures / "exit.txt").write_text(history)
        return screen

    def keep(self, screen: str) -> Path:
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", self.step.lower()).strip("-")
        path = self.captures / f"{self.count:03d}-{slug}.txt"
        path.write_text(screen)
        return path

    def key(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.session, *keys)
        if keys[-1] == "Escape":
            # A key right after Escape reads as Alt+key to a terminal app: leave a person's gap.
            pause(0.25)

    def burst(self, text: str, enter: bool = False) -> None:
        """Characters as a scanner types them: all at once (and Enter right after)."""
        args = ["send-keys", "-t", self.session, "-l", text]
        if enter:
            args += [";", "send-keys", "-t", self.session, "Enter"]
        self.tmux(*args)

    def type(self, text: str) -> None:
        """Characters as a person types them, one at a time."""
        for character in text:
            self.tmux("send-keys", "-t", self.session, "-l", character)
            pause(KEY_GAP)

    def paste(self, text: str) -> None:
        self.tmux("set-buffer", "-b", "walk", text)
        self.tmux("paste-buffer", "-p", "-d", "-b", "walk", "-t", self.session)

    def problems(self, screen: str) -> list[str]:
        """What a technician must never see, whatever the step."""
        found = []
        if "Traceback" in screen or re.search(r'File ".*", line \d+', screen):
            found.append("a traceback")
        if "[fieldtui exited" in screen and not self.step.startswith(":q"):
            found.append("the app exited")
        repeated = re.search(r"\b([a-z]+): \1:", screen)
        if repeated:
            found.append(f"a repeated prefix {repeated.group(0)!r}")
        found.extend(f"a cut word {word.strip()!r}" for word in CUT_WORDS if word in screen)
        footer = self.footer_problem(screen)
        if footer:
            found.append(footer)
        return found

    def footer_problem(self, screen: str) -> str | None:
        lines = screen.splitlines()
        if len(lines) < HEIGHT or "[fieldtui exited" in screen:
            return None
        footer = lines[HEIGHT - 1]
        if "▏" not in footer:
            # A modal covers the footer (a blank or border line), or the footer overflowed.
            if len(footer.rstrip()) >= WIDTH and re.match(r"^ \S+ [A-Z]", footer):
                return f"a footer that overflows: {footer.strip()!r}"
            return None
        keys = footer.split("▏", 1)[0]
        for item in re.split(r"\s{2,}", keys.strip()):
            if not item:
                continue
            parts = item.split(" ", 1)
            if len(parts) != 2 or parts[1] not in self.descriptions:
                return f"a cut key hint in the footer: {item!r} (footer: {keys.strip()!r})"
        return None

    def wait(
        self,
        want: Callable[[str], bool] | tuple[str, ...] | str,
        what: str = "",
        timeout: float = 30.0,
    ) -> str:
        """The screen once ``want`` holds (a test, or words that must all be on it), kept and checked."""
        if isinstance(want, str):
            want = (want,)
        words = want if isinstance(want, tuple) else ()
        test: Callable[[str], bool] = (lambda s: all(w in s for w in words)) if words else want  # type: ignore[assignment]
        what = what or " and ".join(repr(w) for w in words)
        deadline = time.monotonic() + timeout
        screen = ""
        while True:
            screen = self.capture()
            bad = self.problems(screen)
            if bad:
                path = self.keep(screen)
                raise StepFailed(f"{'; '.join(bad)} (waiting for {what}; {path.name})")
            if test(screen):
                self.keep(screen)
                return screen
            if time.monotonic() > deadline:
                path = self.keep(screen)
                raise StepFailed(f"no {what} within {timeout:.0f} s ({path.name})")
            pause(0.15)


# --------------------------------------------------------------------------------------------
# The walk


@dataclass
class Result:
    workflow: str
    ok: bool
    seen: str


@dataclass
class Devices:
    """The devices the walk uses, chosen from the simulator's fleet (``/_sim/fleet``)."""

    mqtt: str
    mqtt_name: str
    things: str
    things_status: str
    things_command: str
    gateway: str
    gateway_group: str
    gateways_marked: list[str]
    sensor: str
    fleet: str
    installable: str
    offline_target: str
    #: (serial, name) of devices of each cloud that has names, not yet seen by the app
    names: list[tuple[str, str]]

    @classmethod
    def choose(cls, fleet: list[dict[str, Any]]) -> Devices:
        def pick(kind: str, count: int = 1, **want: Any) -> list[dict[str, Any]]:
            rows = [
                d
                for d in fleet
                if d["kind"] == kind and not d["also_in"] and all(d.get(k) == v for k, v in want.items())
            ]
            if len(rows) < count:
                raise SystemExit(f"the simulated fleet has fewer than {count} {kind} devices like {want}")
            return rows[:count]

        mqtt = pick("mqtt", online=True, alerting=False)[0]
        things = pick("things", 4, online=True)
        gateways = pick("devicehq", 3, online=True)
        return cls(
            mqtt=mqtt["id"],
            mqtt_name=mqtt["name"],
            things=things[0]["id"],
            things_status=things[0]["installation_status"] or "",
            things_command=things[1]["id"],
            gateway=gateways[0]["id"],
            gateway_group=gateways[0]["group"],
            gateways_marked=[gateways[1]["id"], gateways[2]["id"]],
            sensor=pick("mysensor", online=True)[0]["id"],
            fleet=pick("fleet", online=True)[0]["id"],
            installable=things[2]["id"],
            offline_target=things[3]["id"],
            names=[
                (row["id"], row["name"])
                for row in (
                    pick("devicehq", 5)[4],
                    pick("mqtt", 4)[3],
                )
            ],
        )


@dataclass
class Walk:
    fieldtui: list[str]
    workdir: Path
    only: list[str]
    results: list[Result] = field(default_factory=list)
    #: Keys the app did not take the first time (the walk pressed them again): reported.
    retries: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.captures = self.workdir / "captures"
        for old in ("captures", "data", "log", "sim-log"):  # a kept directory starts clean
            shutil.rmtree(self.workdir / old, ignore_errors=True)
        self.captures.mkdir(parents=True, exist_ok=True)
        self.sim = Sim(self.fieldtui, self.workdir)
        self.devices = Devices.choose(self.sim.fleet())
        self.env = {
            **self.sim.env(),
            "FIELDTUI_CONFIG": str(self.sim.config),
            "FIELDTUI_DATA_DIR": str(self.workdir / "data"),
            "FIELDTUI_LOG_DIR": str(self.workdir / "log"),
            "TERM": "xterm-256color",
            "COLUMNS": str(WIDTH),
        }
        self.pane = Pane(f"walk-{os.getpid()}", self.captures)

    # ---- bookkeeping

    def wanted(self, workflow: str) -> bool:
        return not self.only or any(word in workflow for word in self.only)

    @contextlib.contextmanager
    def workflow(self, name: str) -> Iterator[list[str]]:
        """Run one workflow: what it saw goes into the table; a failure is recorded, not raised."""
        seen: list[str] = []
        self.pane.step = name
        started = time.monotonic()
        try:
            yield seen
        except StepFailed as exc:
            self.results.append(Result(name, False, str(exc)))
            self.recover()
        except Exception as exc:  # noqa: BLE001 -- the walk itself broke: say where, and walk on
            detail = traceback.format_exception_only(exc)[-1].strip()
            self.results.append(Result(name, False, f"the walk broke: {detail}"))
            self.recover()
        else:
            seen.append(f"{time.monotonic() - started:.1f} s")
            self.results.append(Result(name, True, "; ".join(seen)))
        print(f"{'PASS' if self.results[-1].ok else 'FAIL'}  {name}: {self.results[-1].seen}", flush=True)

    def recover(self) -> None:
        """After a failed workflow: close what it left open, so the next one starts clean."""
        self.sim.clear_faults()
        if self.pane.alive():
            for _ in range(4):
                self.pane.key("Escape")

    def mark(self) -> int:
        return len(self.sim.mutations())

    def wait_mutation(
        self, since: int, test: Callable[[dict[str, Any]], bool], what: str, timeout: float = 30.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for mutation in self.sim.mutations()[since:]:
                if test(mutation):
                    return mutation
            if time.monotonic() > deadline:
                raise StepFailed(f"the simulator recorded no {what} within {timeout:.0f} s")
            pause(0.25)

    def no_mutation(self, since: int, device: str, what: str) -> None:
        applied = [m for m in self.sim.mutations()[since:] if device in m["path"]]
        if applied:
            raise StepFailed(f"{what}, yet the simulator applied {applied[0]['method']} {applied[0]['path']}")

    # ---- moving around the app

    def home(self) -> str:
        """Back to the lookup screen with an empty box."""
        self.command_line("lookup")
        self.pane.wait(lambda s: "Lookup ›" not in s and "match" in s, "the lookup screen")
        return self.clear_lookup_box()

    def clear_lookup_box(self) -> str:
        self.pane.key("C-u")
        pause(0.3)
        if "Serial, tuid or name" not in self.pane.capture():
            self.pane.key("/")  # the list had the focus: back to the box
            self.pane.key("C-u")
        return self.pane.wait("Serial, tuid or name", "an empty lookup box")

    def command_line(self, line: str) -> None:
        lines = self.pane.capture().splitlines()
        if len(lines) > 2 and lines[2].startswith("▊") and "Lookup ›" not in lines[1]:
            self.clear_lookup_box()  # on the lookup, ':' opens the command line only from an empty box
        self.pane.key(":")
        opened = lambda s: "outbox groups" in s or "▊ :" in s or " :▊" in s  # noqa: E731
        try:
            self.pane.wait(opened, "the : command line", 8)
        except StepFailed:
            # Seen once on a loaded machine: say so in the table, and press it again.
            self.retries.append(f"':' ignored before {line!r}")
            self.pane.key(":")
            self.pane.wait(opened, "the : command line after a second ':'")
        self.pane.type(line)
        self.pane.key("Enter")

    def open_device(self, serial: str) -> str:
        self.command_line(f"device {serial}")
        return self.pane.wait(
            lambda s: f"Lookup › {serial}" in s and "Clouds" in s, f"the device screen of {serial}"
        )

    # ---- the workflows, in the order a technician meets them

    def run(self) -> None:
        d = self.devices
        program = " ".join(shlex.quote(part) for part in self.fieldtui)
        command = "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items()) + f" {program}"
        self.pane.start(command)
        try:
            steps: list[tuple[str, Callable[[list[str]], None]]] = [
                ("lookup: scan during start-up", self.scan_at_start),
                ("lookup: typing", self.lookup_typing),
                ("lookup: by name", self.lookup_name),
                ("lookup: pasting", self.lookup_paste),
                ("lookup: scan on another screen", self.scan_elsewhere),
                ("device", self.device),
                ("telemetry", self.telemetry),
                ("installation status", self.installation_status),
                ("group move: one device", self.move_one),
                ("group move: several devices", self.move_several),
                ("task create, cancel, delete", self.tasks),
                ("commands", self.commands),
                ("outbox: offline -> online", self.offline_online),
                ("guided installation", self.install),
                ("help", self.help),
                ("palette", self.palette),
                (": commands", self.colon_commands),
            ]
            for name, step in steps:
                if name == "lookup: scan during start-up" or self.wanted(name):
                    with self.workflow(name) as seen:
                        step(seen)
                    if "[fieldtui exited" in self.pane.capture():
                        break
            with self.workflow(":q quits") as seen:
                self.quit(seen)
        finally:
            self.pane.kill()
        del d

    def scan_at_start(self, seen: list[str]) -> None:
        serial = self.devices.mqtt
        self.pane.burst(serial, enter=True)  # while the app is still starting
        self.pane.wait(lambda s: f"Lookup › {serial}" in s and "Firmware" in s, "the scanned device", 60)
        seen.append(f"a scan sent before the app was up opened {serial}")

    def lookup_typing(self, seen: list[str]) -> None:
        serial = self.devices.things
        self.home()
        self.pane.type(serial)
        screen = self.pane.wait(lambda s: f"  {serial}" in s and "1 match" in s, f"{serial} as the one match")
        seen.append("typed serial listed as 1 match")
        self.pane.key("Enter")
        screen = self.pane.wait(("Lookup › " + serial, "Firmware"), "the device screen")
        del screen
        seen.append("Enter opened it")

    def lookup_name(self, seen: list[str]) -> None:
        for serial, name in self.devices.names:
            self.home()
            self.pane.type(name)
            self.pane.wait(lambda s, d=serial: d in s and "match" in s, f"{serial} listed for {name!r}", 20)
            seen.append(f"{name!r} lists {serial}")

    def lookup_paste(self, seen: list[str]) -> None:
        serial = self.devices.gateway
        self.home()
        self.pane.paste(serial)
        self.pane.wait(lambda s: f"  {serial}" in s and "match" in s, f"the pasted {serial} listed")
        seen.append("pasted serial listed")
        self.pane.key("Enter")
        self.pane.wait(("Lookup › " + serial, "Firmware"), "the device screen")
        seen.append("Enter opened it")

    def scan_elsewhere(self, seen: list[str]) -> None:
        serial = self.devices.sensor
        self.pane.key("C-o")
        self.pane.wait(
            lambda s: "Outbox" in s.splitlines()[1] and "Reading the outbox" not in s, "the outbox screen"
        )
        self.pane.burst(serial, enter=True)
        self.pane.wait(lambda s: f"› {serial}" in s and "Clouds" in s, f"the scanned {serial}")
        seen.append(f"a scan on the outbox screen opened {serial}")

    def device(self, seen: list[str]) -> None:
        serial = self.devices.things
        screen = self.open_device(serial)
        for word in ("Firmware", "Online", "Last seen", "Group", "Install"):
            if word not in screen:
                raise StepFailed(f"the device screen lacks {word!r}")
        seen.append("overview with firmware, online, last seen, group, install")
        self.pane.key("h")
        self.pane.wait(lambda s: "History" in s and ("ago" in s or "No history" in s), "the history tab")
        seen.append("history tab")

    def telemetry(self, seen: list[str]) -> None:
        serial = self.devices.mqtt
        self.open_device(serial)
        self.pane.key("t")
        screen = self.pane.wait(
            lambda s: "● live" in s and "last" in s and "ago" in s and "°C" in s, "live telemetry with units"
        )
        freshness = re.search(r"last \S+ ago \w+", screen)
        seen.append(f"live, units, {freshness.group(0) if freshness else 'last message age'}")
        self.pane.key("l")
        self.pane.wait(lambda s: re.search(r"\d\d:\d\d:\d\d", s) is not None, "the message log")
        self.pane.key("v")
        self.pane.wait(("last", "Esc closes", "temperature="), "a whole message")
        seen.append("log opened whole")
        self.pane.key("Escape")

    def installation_status(self, seen: list[str]) -> None:
        serial = self.devices.things
        target = "quarantine" if self.devices.things_status != "quarantine" else "retired"
        digit = {"quarantine": "4", "retired": "5"}[target]
        self.open_device(serial)
        self.pane.key("s")
        self.pane.wait(("Installation status of " + serial, "Enter chooses"), "the status modal")
        since = self.mark()
        self.pane.key(digit)
        self.pane.key("Enter")
        self.pane.wait((f"Mark {serial} {target}?", "[y]", "[n]"), "the confirmation with its keys")
        self.pane.key("y")
        self.pane.wait(lambda s: f"{serial} → {target}" in s and "synced" in s, "the synced notice")
        mutation = self.wait_mutation(
            since,
            lambda m: serial in m["path"] and (m.get("body") or {}).get("installation_status") == target,
            f"installation status {target} for {serial}",
        )
        seen.append(f"sim: {mutation['method']} {mutation['path'].split('/')[-1]} = {target}")

    def pick_group(self, avoid: frozenset[str] = frozenset()) -> str:
        """In the open group picker: search a group the device is not in, and pick it from the list."""
        screen = self.pane.wait(
            lambda s: (
                "Search, or type a new group id" in s and re.search(r"▊ [ ●] Group \d{3}", s) is not None
            ),
            "the group picker's list",
        )
        # Not the current one (marked ●), nor one the devices are in already.
        groups = [g for g in re.findall(r"▊   (Group \d{3})", screen) if g not in avoid]
        if not groups:
            raise StepFailed("the group picker lists no other group")
        target = groups[0]
        self.pane.type(target)
        self.pane.wait(
            lambda s: len(re.findall(r"▊ [ ●] Group \d{3}", s)) == 1, f"{target} alone in the list"
        )
        self.pane.key("Down")
        pause(0.3)
        self.pane.key("Enter")
        return target

    def confirm_if_asked(self, done: Callable[[str], bool], what: str) -> str:
        """A change asks for a confirmation (with its keys) or goes at once: answer yes, wait for ``done``."""
        screen = self.pane.wait(lambda s: "[y]" in s or done(s), what)
        if "[y]" in screen and not done(screen):
            if "[n]" not in screen:
                raise StepFailed("a confirmation without its [n] key")
            self.pane.key("y")
            screen = self.pane.wait(done, what)
        return screen

    def move_one(self, seen: list[str]) -> None:
        serial = self.devices.gateway
        self.open_device(serial)
        self.pane.key("m")
        since = self.mark()
        target = self.pick_group()
        self.confirm_if_asked(lambda s: "synced" in s and target in s, f"the move to {target} synced")
        mutation = self.wait_mutation(
            since,
            lambda m: serial in m["path"] or serial in json.dumps(m.get("body")),
            f"the move of {serial}",
        )
        seen.append(f"sim: {mutation['method']} {mutation['path'].split('/api/v2')[-1]} -> {target}")

    def move_several(self, seen: list[str]) -> None:
        self.home()
        self.pane.type("Gateway 99")
        self.pane.wait(lambda s: len(re.findall(r"^    (99\d{7}) ", s, re.M)) >= 3, "gateways listed")
        pause(1.5)  # the clouds' answers settle (the table is refilled as each cloud answers)
        self.pane.key("Tab")  # from the box to the list
        self.pane.wait("space Mark", "the list focused (its keys in the footer)")
        self.pane.key("Space")
        self.pane.wait("marked: 1", "one device marked")
        self.pane.key("Space")
        screen = self.pane.wait(
            lambda s: "marked: 2" in s and len(re.findall(r"^ ✓\s+(\S+)", s, re.M)) == 2,
            "two devices marked ✓",
        )
        first, second = re.findall(r"^ ✓\s+(\S+)", screen, re.M)
        since = self.mark()
        self.pane.key("m")
        self.pane.wait("Move 2 devices to a group", "the group picker for 2 devices")
        avoid = frozenset(
            self.sim.request("GET", f"/_sim/inspect/gateways/{d}")["group"] for d in (first, second)
        )
        target = self.pick_group(avoid)
        self.confirm_if_asked(
            lambda s: f"Move 2 devices to {target}" in s and "synced" in s, f"the moves to {target} synced"
        )
        for serial in (first, second):
            self.wait_mutation(
                since,
                lambda m, s=serial: s in m["path"] or s in json.dumps(m.get("body")),
                f"the move of {serial}",
            )
        seen.append(f"sim: {first} and {second} moved to {target}")

    def tasks(self, seen: list[str]) -> None:
        serial = self.devices.gateway
        self.open_device(serial)
        self.pane.key("k")
        self.pane.wait(lambda s: "tasks and commands" in s and "New task" in s, "the task list")
        since = self.mark()
        self.pane.key("n")
        self.pane.wait(("New task for " + serial, "What to do?"), "the new task modal")
        self.pane.key("Enter")
        self.pane.wait("Choose from the cloud's list", "the cloud's choices")
        self.pane.key("Enter")
        self.pane.wait("Enter creates it", "the ready task")
        self.pane.key("Enter")
        created = self.wait_mutation(
            since, lambda m: m["method"] == "POST" and serial in json.dumps(m), "the task's creation"
        )
        self.pane.wait(lambda s: "queued" in s and "synced" in s, "the created task listed")
        seen.append(f"created ({created['method']} {created['path']})")
        since = self.mark()
        self.pane.key("c")
        self.pane.wait(
            ("Cancel this task?", "Keep [n]", "Cancel [y]"), "the cancel confirmation with its keys"
        )
        self.pane.key("y")
        cancelled = self.wait_mutation(
            since, lambda m: "cancel" in m["path"] or m["method"] in ("PUT", "PATCH", "POST"), "the cancel"
        )
        seen.append(f"cancelled ({cancelled['method']} {cancelled['path'].split('/')[-1]})")
        self.pane.wait(lambda s: "cancel" in s.lower(), "the cancelled task")
        since = self.mark()
        self.pane.key("d")
        self.pane.wait(lambda s: "Delete this task?" in s and "[y]" in s, "the delete confirmation")
        self.pane.key("y")
        deleted = self.wait_mutation(since, lambda m: m["method"] == "DELETE", "the delete")
        seen.append(f"deleted ({deleted['method']})")

    def commands(self, seen: list[str]) -> None:
        serial = self.devices.things_command
        self.open_device(serial)
        self.pane.key("x")
        screen = self.pane.wait(
            ("Send a command to " + serial, "Takes:", "command name, e.g."), "the command modal"
        )
        takes = re.search(r"Takes: ([^█]*)", screen)
        choice = re.search(r"\b(\d{4,5})\b", takes.group(1) if takes else "")
        if choice is None:
            raise StepFailed(f"the command modal names no command: {takes.group(0) if takes else screen!r}")
        since = self.mark()
        self.pane.type(choice.group(1))
        self.pane.wait(f"▊  {choice.group(1)} ", "the command typed")
        self.pane.key("Enter")
        screen = self.pane.wait(f"(message {choice.group(1)})", "the parameters the command takes")
        parameter = re.search(r"▊  (\w+)=…", screen)
        self.pane.type(f"{parameter.group(1) if parameter else 'value'}=1")
        self.pane.key("Enter")
        self.pane.wait(lambda s: f"{choice.group(1)} → {serial}" in s and "synced" in s, "the command synced")
        mutation = self.wait_mutation(
            since, lambda m: serial in m["path"] and m["method"] == "POST", "the command"
        )
        seen.append(f"things {choice.group(1)}: sim {mutation['method']} {mutation['path'].split('/')[-1]}")
        serial = self.devices.mqtt
        self.open_device(serial)
        self.pane.key("x")
        self.pane.wait(("Send a command to " + serial, "command name, e.g."), "the MQTT command modal")
        self.pane.type("identify")
        self.pane.wait("▊  identify ", "the command typed")
        self.pane.key("Enter")
        pause(0.3)
        if "Send a command" in self.pane.capture():
            self.pane.key("Enter")
        self.pane.wait(lambda s: "identify" in s and "synced" in s, "the MQTT command synced")
        self.pane.key("k")
        self.pane.wait(lambda s: "Commands" in s and "identify" in s, "the command in the device's Commands")
        seen.append("mqtt identify sent and listed")

    def offline_online(self, seen: list[str]) -> None:
        serial = self.devices.offline_target
        self.open_device(serial)  # known to the cache before going offline
        self.pane.wait(lambda s: "Install" in s and "asking the others" not in s, "the device read")
        self.command_line("offline")
        self.pane.wait(lambda s: "offline" in s.splitlines()[0].lower(), "offline in the header")
        seen.append(":offline")
        since = self.mark()
        self.pane.key("s")
        self.pane.wait("Enter chooses", "the status modal")
        self.pane.key("5")
        self.pane.key("Enter")
        self.pane.wait("[y]", "the confirmation")
        self.pane.key("y")
        self.pane.wait(lambda s: "queued" in s and "outbox 1" in s, "the change queued")
        self.no_mutation(since, serial, "offline")
        seen.append("status queued, nothing sent")
        self.sim.fault("things", unreachable=True)
        self.command_line("online")
        self.pane.wait(
            lambda s: "outbox 1" in s,
            "things still down, the change waiting",
            20,
        )
        pause(2)
        self.no_mutation(since, serial, "things unreachable")
        seen.append(":online with things down: still queued")
        self.sim.clear_faults()
        back = time.monotonic()
        mutation = self.wait_mutation(
            since,
            lambda m: serial in m["path"] and (m.get("body") or {}).get("installation_status") == "retired",
            "the queued status",
            30,
        )
        seen.append(f"things back: synced in {time.monotonic() - back:.1f} s ({mutation['method']})")
        self.pane.wait(lambda s: "synced" in s.lower() or "sent" in s.lower(), "a notice of what was synced")
        self.pane.key("C-o")
        self.pane.wait(lambda s: "Outbox" in s.splitlines()[1], "the outbox screen")

    def install(self, seen: list[str]) -> None:
        serial = self.devices.installable
        self.home()
        self.pane.key("C-n")
        self.pane.wait(("Guided installation", "Scan the serial"), "the guided installation")
        since = self.mark()
        self.pane.burst(serial, enter=True)
        self.pane.wait(lambda s: "✓ 2" in s or "Found" in s, "the device found")
        picked = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            screen = self.pane.wait(
                lambda s: (
                    "Search, or type a new group id" in s
                    or "[y]" in s
                    or "installed and confirmed" in s
                    or re.search(r"▶ [2-7] .*", s) is not None
                ),
                "the next installation step",
            )
            if "Search, or type a new group id" in screen:
                picked = self.pick_group_by_name()
                continue
            if "[y]" in screen:
                self.pane.key("y")
                pause(0.5)
                continue
            step = re.search(r"▶ (\d) (.*)", screen)
            if "installed and confirmed" in screen or step is None or step.group(1) == "7":
                break
            if "Waiting for" in screen and "telemetry" in step.group(2).lower():
                pause(1)  # the step moves on by itself when a live message arrives
                continue
            self.pane.key("Enter")
            pause(0.5)
        else:
            raise StepFailed("the guided installation did not reach its summary in 120 s")
        self.wait_mutation(
            since,
            lambda m: serial in m["path"] and (m.get("body") or {}).get("installation_status") == "installed",
            f"{serial} marked installed",
        )
        seen.append(f"{serial}: group {picked or 'kept'}, marked installed (sim), summary shown")

    def pick_group_by_name(self) -> str:
        screen = self.pane.wait(lambda s: re.search(r"▊   (\S+)", s) is not None, "a group to pick")
        names = [n for n in re.findall(r"▊   (\S[^▎]*?)\s{2,}", screen) if not n.startswith("+")]
        if not names:
            raise StepFailed("the group picker lists no group")
        self.pane.type(names[0])
        pause(0.5)
        self.pane.key("Down")
        pause(0.3)
        self.pane.key("Enter")
        return names[0]

    def help(self, seen: list[str]) -> None:
        self.home()
        self.pane.key("?")
        screen = self.pane.wait(lambda s: "this screen" in s or "Every screen" in s, "help over the lookup")
        if "?" in screen.splitlines()[3]:
            raise StepFailed("? was typed into the search box")
        seen.append("? opens help on the lookup")
        self.pane.key("End")
        self.pane.wait("Remapping keys", "the end of help after End")
        self.pane.key("Home")
        self.pane.key("Escape")
        self.pane.wait(lambda s: "this screen" not in s and "match" in s, "help closed, the lookup again")
        self.open_device(self.devices.gateway)
        self.pane.key("F1")
        first = self.pane.wait("Device: this screen", "help on the device screen, its own keys first")
        for _ in range(3):
            self.pane.key("j")
        self.pane.key("PageDown")
        self.pane.wait(lambda s: "Device: this screen" not in s and "█" in s, "help to scroll down")
        del first
        seen.append("F1 on the device: its keys first; j/PgDn scroll")
        self.pane.key("Escape")
        self.pane.wait(lambda s: "this screen" not in s and "Firmware" in s, "back to the device")

    def palette(self, seen: list[str]) -> None:
        for word, crumb in (("Outbox", "Outbox"), ("Groups", "Groups"), ("Lookup", "")):
            self.pane.key("C-p")
            self.pane.wait("Search for commands", "the palette")
            self.pane.type(word)
            pause(0.5)
            self.pane.key("Enter")
            if crumb:
                self.pane.wait(lambda s, c=crumb: c in s.splitlines()[1], f"the {crumb} screen")  # type: ignore[misc]
            else:
                self.pane.wait(lambda s: "Lookup ›" not in s and "match" in s, "the lookup screen")
            seen.append(f"{word} -> {crumb or 'lookup'}")

    def colon_commands(self, seen: list[str]) -> None:
        for line, crumb in (
            ("outbox", "Outbox"),
            ("groups", "Groups"),
            ("alerts", "Alerts"),
            ("tasks", "Fleet tasks"),
        ):
            self.command_line(line)
            self.pane.wait(lambda s, c=crumb: c in s.splitlines()[1], f"the {crumb} screen")  # type: ignore[misc]
            seen.append(f":{line}")
        self.command_line("bogus")
        self.pane.wait("No command :bogus", "the unknown command named")
        seen.append(":bogus named")
        self.pane.key("Escape")

    def quit(self, seen: list[str]) -> None:
        self.pane.step = ":q quits"
        self.command_line("q")
        self.pane.wait("[fieldtui exited: 0]", "the app to exit with 0", 30)
        seen.append("exit 0")

    # ---- the CLI

    def cli(self, *args: str, json_out: bool = False, head: bool = False) -> tuple[int, str, str]:
        """``fieldtui ARGS`` as a shell runs it (``| head -1`` when ``head``): exit code, stdout, stderr."""
        command = " ".join(
            shlex.quote(part) for part in (*self.fieldtui, *args, *(["--json"] if json_out else []))
        )
        if head:
            command = f"{command} | head -1; exit ${{PIPESTATUS[0]}}"
        done = subprocess.run(
            ["bash", "-c", command],
            capture_output=True,
            text=True,
            env={**os.environ, **self.env},
            timeout=180,
        )
        label = " ".join(args) + (" --json" if json_out else "") + (" | head -1" if head else "")
        (
            self.captures
            / f"cli-{len(self.results):02d}-{re.sub(r'[^a-z0-9]+', '-', label.lower())[:60]}.txt"
        ).write_text(
            f"$ fieldtui {label}\n[exit {done.returncode}]\n--- stdout\n{done.stdout}--- stderr\n{done.stderr}"
        )
        problems = []
        if "Traceback" in done.stderr or "Traceback" in done.stdout:
            problems.append("a traceback")
        if "unexpected error" in done.stderr or "BrokenPipe" in done.stderr:
            problems.append(f"stderr: {done.stderr.strip()[:120]!r}")
        if json_out:
            try:
                for line in done.stdout.strip().splitlines() if "\n{" in done.stdout else [done.stdout]:
                    json.loads(line)
            except ValueError:
                problems.append(f"--json output that is not JSON: {done.stdout[:120]!r}")
        repeated = re.search(r"\b([a-z]+): \1:", done.stdout + done.stderr)
        if repeated:
            problems.append(f"a repeated prefix {repeated.group(0)!r}")
        if problems:
            raise StepFailed(f"fieldtui {label}: {'; '.join(problems)}")
        return done.returncode, done.stdout, done.stderr

    def expect(self, code: int, *args: str, json_out: bool = False, head: bool = False) -> str:
        got, out, err = self.cli(*args, json_out=json_out, head=head)
        if got != code:
            label = " ".join(args) + (" --json" if json_out else "") + (" | head -1" if head else "")
            raise StepFailed(
                f"fieldtui {label}: exit {got}, README says {code} ({(err or out).strip()[:150]!r})"
            )
        return out

    def run_cli(self) -> None:
        d = self.devices
        checks: list[tuple[str, Callable[[list[str]], None]]] = [
            ("cli: status", self.cli_status),
            ("cli: set-status", self.cli_set_status),
            ("cli: move", self.cli_move),
            ("cli: task create, cancel, delete", self.cli_tasks),
            ("cli: command", self.cli_command),
            ("cli: outbox list, sync (offline -> online)", self.cli_outbox),
            ("cli: history, groups, alerts, devices", self.cli_reads),
        ]
        del d
        for name, check in checks:
            if self.wanted(name):
                with self.workflow(name) as seen:
                    check(seen)

    def cli_status(self, seen: list[str]) -> None:
        serial = self.devices.things
        out = self.expect(0, "status", serial)
        if serial not in out:
            raise StepFailed(f"status does not name {serial}")
        self.expect(0, "status", serial, json_out=True)
        self.expect(0, "status", serial, head=True)
        self.expect(0, "status", serial, "--offline")
        seen.append("0, --json, | head -1, --offline after the command")
        out = self.expect(3, "status", "NO-SUCH-SERIAL-42", json_out=True)
        if json.loads(out).get("error", {}).get("code") is None:
            raise StepFailed(f"an unknown device's --json error has no code: {out!r}")
        seen.append("unknown: 3 with a JSON error")
        self.expect(2, "status", serial, "--bogus-option")
        seen.append("bad option: 2")

    def cli_set_status(self, seen: list[str]) -> None:
        serial = self.devices.things
        since = self.mark()
        out = self.expect(0, "set-status", serial, "uninstalled")
        self.wait_mutation(
            since,
            lambda m: (
                serial in m["path"] and (m.get("body") or {}).get("installation_status") == "uninstalled"
            ),
            "the CLI's status change",
        )
        seen.append(f"sim applied uninstalled ({out.strip().splitlines()[-1][:50]!r})")
        self.expect(0, "set-status", serial, "installed", json_out=True)
        self.expect(2, "set-status", serial, "installd")
        seen.append("--json valid; a typo is 2")

    def cli_move(self, seen: list[str]) -> None:
        serial = self.devices.gateway
        since = self.mark()
        self.expect(0, "move", serial, "Group 004")
        self.wait_mutation(since, lambda m: serial in m["path"] and m["method"] == "PUT", "the CLI's move")
        self.expect(0, "move", serial, "Group 003", json_out=True)
        seen.append("sim applied both moves; --json valid")

    def cli_tasks(self, seen: list[str]) -> None:
        serial = self.devices.gateway
        out = self.expect(0, "task", "create", serial, "SOFTWARE_UPGRADE")
        item = re.search(r"^\s+([0-9a-f]{24})\s", out, re.M)
        if item is None:
            raise StepFailed(f"task create without an item lists no choice: {out[:200]!r}")
        since = self.mark()
        self.expect(0, "task", "create", serial, "SOFTWARE_UPGRADE", item.group(1))
        created = self.wait_mutation(
            since, lambda m: m["method"] == "POST" and serial in m["path"], "the task"
        )
        del created
        listed = self.expect(0, "tasks", serial, json_out=True)
        tasks = [t for t in json.loads(listed)["tasks"] if t["state"] not in ("done", "cancelled", "failed")]
        if not tasks:
            raise StepFailed("the created task is not in `tasks --json`")
        task_id = tasks[0]["id"]
        table = self.expect(0, "tasks", serial)
        if task_id not in table:
            raise StepFailed(f"`tasks` does not show the whole task id {task_id} (needed by task cancel)")
        self.expect(0, "tasks", serial, head=True)
        since = self.mark()
        self.expect(0, "task", "cancel", serial, task_id)
        self.wait_mutation(since, lambda m: task_id in m["path"], "the cancel")
        since = self.mark()
        self.expect(0, "task", "delete", serial, task_id, json_out=True)
        self.wait_mutation(since, lambda m: m["method"] == "DELETE" and task_id in m["path"], "the delete")
        seen.append("created, listed whole, cancelled, deleted (sim)")

    def cli_command(self, seen: list[str]) -> None:
        serial = self.devices.things_command
        since = self.mark()
        self.expect(0, "command", "send", serial, "1501", "tsmEv=2")
        self.wait_mutation(since, lambda m: serial in m["path"] and m["method"] == "POST", "the command")
        refused = json.loads(self.expect(6, "command", "send", serial, "bogus", json_out=True))
        action = (refused.get("action") or {}).get("id") or refused.get("id")
        if not action:
            raise StepFailed(f"the refused command's --json names no action id: {refused!r}")
        self.expect(0, "outbox", "drop", action[:8], "--yes")
        seen.append("sent (sim); a command the cloud refuses is 6 with JSON, then dropped (0)")

    def cli_outbox(self, seen: list[str]) -> None:
        serial = self.devices.offline_target
        since = self.mark()
        self.expect(0, "set-status", serial, "quarantine", "--offline")
        self.no_mutation(since, serial, "--offline")
        out = self.expect(0, "outbox", "list")
        if "quarantine" not in out:
            raise StepFailed("outbox list does not show the queued change")
        self.expect(0, "outbox", "list", json_out=True)
        self.expect(0, "outbox", "list", head=True)
        self.sim.fault("things", unreachable=True)
        self.expect(5, "outbox", "sync", "--timeout", "5")
        self.no_mutation(since, serial, "things unreachable")
        seen.append("queued offline; sync with things down: 5")
        self.sim.clear_faults()
        self.cli("outbox", "sync", "--timeout", "60", json_out=True)
        self.wait_mutation(
            since,
            lambda m: (
                serial in m["path"] and (m.get("body") or {}).get("installation_status") == "quarantine"
            ),
            "the synced change",
        )
        seen.append("things back: synced (sim)")
        self.expect(2, "outbox", "retry", "nosuchid")
        seen.append("unknown outbox id: 2")

    def cli_reads(self, seen: list[str]) -> None:
        for args in (
            ("history", self.devices.gateway),
            ("groups", "--cloud", "gateways"),
            ("groups", "Group 001", "--cloud", "gateways"),
            ("alerts",),
            ("devices", "--cloud", "gateways"),
            ("tasks", self.devices.sensor),
        ):
            self.expect(0, *args)
            self.expect(0, *args, json_out=True)
            self.expect(0, *args, head=True)
        seen.append("history, groups, group members, alerts, devices, tasks: 0, JSON, | head -1")

    # ---- the report

    def report(self) -> int:
        width = max(len(r.workflow) for r in self.results)
        print()
        print(f"{'workflow':<{width}}  result  what was seen")
        print(f"{'-' * width}  ------  {'-' * 40}")
        for result in self.results:
            print(f"{result.workflow:<{width}}  {'pass' if result.ok else 'FAIL':<6}  {result.seen}")
        failed = sum(not r.ok for r in self.results)
        for retry in self.retries:
            print(f"note: {retry} (pressed again)")
        print(f"\n{len(self.results) - failed} passed, {failed} failed; captures in {self.captures}")
        return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", metavar="DIR", help="work directory to keep (default: a temporary one)")
    parser.add_argument("--fieldtui", metavar="PATH", help="the fieldtui program (default: this venv's)")
    parser.add_argument("--only", action="append", default=[], help="only the workflows whose name has WORD")
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI part")
    args = parser.parse_args()
    for tool in ("tmux",):
        if shutil.which(tool) is None:
            print(f"tmux_walk: {tool} is not on PATH (apt-get install {tool})", file=sys.stderr)
            return 2
    script = Path(sys.executable).with_name("fieldtui")
    fieldtui = [args.fieldtui] if args.fieldtui else [str(script) if script.exists() else "fieldtui"]
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="walk-"))
    workdir.mkdir(parents=True, exist_ok=True)
    walk = Walk(fieldtui, workdir, args.only)
    try:
        walk.run()
        if not args.no_cli:
            walk.run_cli()
    finally:
        walk.sim.stop()
    return walk.report()


if __name__ == "__main__":
    sys.exit(main())
