"""UI figures: first frame, keystroke to lookup results, peak memory at 100k devices, terminal bytes/s.

    python bench/ui_bench.py [--quick]

1. Time to first frame: a fresh process from start to the first screen drawn (headless), for
   the app and for a bare Textual app showing one static screen.
2. Keystroke to updated lookup results with 1,000 and 100,000 devices in the index: the
   median of 10 key presses, each from the key event to the results table redrawn.
3. Peak memory (max RSS) of the app with 100,000 devices preloaded from its read cache.
4. Bytes written to the terminal per second while one device streams 10 samples/s: the real
   ``fieldtui`` in tmux against the simulator, the pane's output counted with ``pipe-pane``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FIRST_FRAME_BARE = """
import time, sys
from textual.app import App
from textual.widgets import Static
class Bare(App):
    def compose(self):
        yield Static("fieldtui")
    def on_mount(self):
        self.call_after_refresh(self.done)
    def done(self):
        print("FRAME", flush=True)
        self.exit()
Bare().run(headless=True, size=(80, 24))
"""

FIRST_FRAME_APP = """
import asyncio, sys
from fieldtui.ui.app import FieldApp
from fieldtui.ui.screens.lookup import LookupScreen
async def never():
    await asyncio.Event().wait()
class Timed(FieldApp):
    # Textual calls FieldApp.on_mount itself (handlers run for every class in the MRO): calling
    # super() here as well pushed a second lookup screen, which the first frame paid for.
    def on_mount(self):
        self.call_after_refresh(self.done)
    def done(self):
        if isinstance(self.screen, LookupScreen):
            print("FRAME", flush=True)
            self.exit()
        else:
            self.call_after_refresh(self.done)
Timed(never, profile="bench").run(headless=True, size=(80, 24))
"""


def first_frame(codes: list[str], runs: int, bytecode_dir: Path | None = None) -> list[float]:
    """Median seconds from process start to the first frame, for each script in ``codes``.

    The scripts run in turn (a, b, a, b, ...) so a change in machine load hits them alike. With
    ``bytecode_dir``, every process reads compiled bytecode from there (one unmeasured warm-up run
    each fills it), as an installed package does: this tree's environment sets
    ``PYTHONDONTWRITEBYTECODE=1``, which made fieldtui's own modules compile from source on every
    run while Textual's came from its installed ``.pyc`` files.
    """
    env = dict(os.environ)
    if bytecode_dir is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(bytecode_dir)
        for code in codes:
            subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, check=True)
    times: list[list[float]] = [[] for _ in codes]
    for _ in range(runs):
        for code, timings in zip(codes, times, strict=True):
            began = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
            )
            assert "FRAME" in out.stdout, out
            timings.append(time.perf_counter() - began)
    return [statistics.median(t) for t in times]


def synthetic_rows(count: int) -> list[object]:
    from fieldtui.ui.index import DeviceRow

    now = datetime.now(UTC)
    return [
        DeviceRow(
            id=f"{chr(65 + i % 26)}{chr(65 + i // 26 % 26)}{i:012d}",
            name=f"Sensor {i:06d}",
            clouds=("things",),
            group=f"site-{i % 97:02d}",
            installation_status="installed",
            online=i % 7 != 0,
            last_seen=now,
        )
        for i in range(count)
    ]


async def keystroke_latency(count: int, presses: int = 10) -> tuple[float, float]:
    """(handler, round trip) medians: the lookup's own work per key (search and table refill),
    and the whole key press through Textual's pilot to the screen redrawn (it adds ~45 ms)."""
    from textual.widgets import Input

    from fieldtui.ui.app import FieldApp

    async def never() -> None:
        await asyncio.Event().wait()

    app = FieldApp(never, profile="bench")
    app.index.upsert_many(synthetic_rows(count))  # type: ignore[arg-type]
    handler: list[float] = []
    trips: list[float] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        original = screen.refresh_results

        def timed() -> None:
            began = time.perf_counter()
            original()
            handler.append(time.perf_counter() - began)

        screen.refresh_results = timed  # type: ignore[method-assign]
        query = screen.query_one("#query", Input)
        query.focus()
        for key in "1234567890"[:presses]:
            began = time.perf_counter()
            await pilot.press(key)
            trips.append(time.perf_counter() - began)
            await pilot.press("backspace")
        assert len(handler) == 2 * presses, "the lookup did not refresh on every key"
    return statistics.median(handler), statistics.median(trips)


PEAK_MEMORY = """
import asyncio, os, resource, sys
from pathlib import Path
from fieldtui.config import load_config
from fieldtui.ui.app import FieldApp
from fieldtui.service.session import open_session
from fieldtui.ui.screens.lookup import LookupScreen
loaded = load_config(sys.argv[1], None)
db = Path(sys.argv[2])
class Timed(FieldApp):
    async def on_service_ready(self):
        await super().on_service_ready()
        self.set_timer(0.5, self.done)
    async def done(self):
        print("DEVICES", len(self.index), flush=True)
        await self.service.aclose()
        self.service = None
        self.exit()
async def service():
    return await open_session(loaded, offline=True, path=db)
Timed(service, profile=loaded.profile_name, offline=True).run(headless=True, size=(80, 24))
# This process's own peak. Not ru_maxrss: Linux carries it over from the parent across fork and
# exec, so it reported the bench process's peak (the generated 100k-device fleet), not the app's.
try:
    peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("MAXRSS_KB", peak, flush=True)
"""


def peak_memory(count: int, workdir: Path) -> tuple[float, int]:
    """Max RSS (MB) of the app with ``count`` devices in its read cache, and how many it indexed."""
    from fieldtui.core.models import BackendKind, Device
    from fieldtui.service.store import OutboxStore
    from fieldtui.sim.fleet import generate_fleet

    config = workdir / "config.toml"
    config.write_text(
        'default_profile = "bench"\n[profiles.bench.backends.things]\nkind = "things"\n'
        'url = "http://127.0.0.1:9/v1"\nclient_id = "bench"\n'
    )
    db = workdir / "outbox.db"
    fleet = generate_fleet(3, count)
    devices = [
        Device(
            id=d.id,
            backend="things",
            kind=BackendKind.THINGS,
            name=d.name,
            firmware=d.firmware,
            online=d.online,
            last_seen=datetime.fromtimestamp(d.last_seen, UTC),
            group=d.group,
        )
        for d in fleet.devices[:count]
    ]

    async def fill() -> None:
        store = await OutboxStore.open(db)
        try:
            await store.store_devices(devices, datetime.now(UTC))
        finally:
            await store.close()

    asyncio.run(fill())
    env = {**os.environ, "FIELDTUI_SECRET_BENCH_THINGS": "x", "FIELDTUI_DATA_DIR": str(workdir)}
    out = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY, str(config), str(db)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    values = dict(
        line.split() for line in out.stdout.splitlines() if line.split()[:1] in (["DEVICES"], ["MAXRSS_KB"])
    )
    return int(values["MAXRSS_KB"]) / 1024, int(values["DEVICES"])


def terminal_bytes(seconds: float, workdir: Path) -> float:
    """Bytes/s the real app writes to its terminal while one MQTT device streams 10 samples/s."""
    from fieldtui.sim.runner import Simulator
    from fieldtui.sim.thread import SimulatorThread

    sim = Simulator(seed=5, fleet_size=50, telemetry_interval=0.1)
    thread = SimulatorThread(sim)
    thread.start()
    session = f"fieldtui-bench-{uuid.uuid4().hex[:8]}"
    log = workdir / "pane.bytes"
    try:
        config, env_file = sim.write_config(workdir / "sim.toml")
        env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if line)
        env |= {
            "FIELDTUI_CONFIG": str(config),
            "FIELDTUI_DATA_DIR": str(workdir / "data"),
            "TERM": "xterm-256color",
        }
        command = "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " fieldtui"
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", command], check=True
        )

        def screen() -> str:
            return subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=True
            ).stdout

        def wait(text: str) -> None:
            deadline = time.monotonic() + 30
            while text not in screen():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no {text!r} on screen:\n{screen()}")
                time.sleep(0.2)

        device = next(d for d in sim.fleet.of("mqtt").values() if d.online and not d.also_in)
        wait("Serial, tuid or name")
        subprocess.run(["tmux", "send-keys", "-t", session, "-l", device.id], check=True)
        subprocess.run(["tmux", "send-keys", "-t", session, "Enter"], check=True)
        wait("Firmware")
        subprocess.run(["tmux", "send-keys", "-t", session, "-l", "t"], check=True)
        wait("● live")
        time.sleep(2.0)  # every metric row mounted: measure the steady state
        subprocess.run(
            ["tmux", "pipe-pane", "-o", "-t", session, f"cat >> {shlex.quote(str(log))}"], check=True
        )
        time.sleep(seconds)
        subprocess.run(["tmux", "pipe-pane", "-t", session], check=True)
        return log.stat().st_size / seconds if log.exists() else 0.0
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False, capture_output=True)
        thread.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (a smoke test of the bench)")
    parser.add_argument(
        "--source",
        action="store_true",
        help="also time the first frame without a bytecode cache (as PYTHONDONTWRITEBYTECODE=1 runs it)",
    )
    parser.add_argument("--only", choices=["frame", "keys", "memory", "terminal"], help="one figure only")
    args = parser.parse_args()
    runs = 3 if args.quick else int(os.environ.get("RUNS", "9"))
    sys.path.insert(0, str(ROOT))

    def wanted(name: str) -> bool:
        return args.only in (None, name)

    if wanted("frame"):
        scripts = [textwrap.dedent(FIRST_FRAME_BARE), textwrap.dedent(FIRST_FRAME_APP)]
        with tempfile.TemporaryDirectory(prefix="fieldtui-pyc-") as pyc:
            bare, ours = first_frame(scripts, runs, Path(pyc))
        print(
            f"first frame: bare Textual {bare * 1000:.0f} ms, fieldtui {ours * 1000:.0f} ms "
            f"({ours / bare:.2f}x; aim <= 1.3x)"
        )
        if args.source:
            bare, ours = first_frame(scripts, runs)
            print(
                f"first frame, fieldtui compiled from source each run: bare Textual {bare * 1000:.0f} ms, "
                f"fieldtui {ours * 1000:.0f} ms ({ours / bare:.2f}x)"
            )

    if wanted("keys"):
        for count in (1_000, 100_000):
            handler, trip = asyncio.run(keystroke_latency(count))
            print(
                f"keystroke -> lookup results, {count:,} devices: {handler * 1000:.1f} ms in the app "
                f"(search + table refill), {trip * 1000:.0f} ms pilot round trip incl. redraw (aim <= 50 ms)"
            )

    with tempfile.TemporaryDirectory(prefix="fieldtui-bench-") as tmp:
        if wanted("memory"):
            rss, indexed = peak_memory(100_000, Path(tmp))
            print(
                f"peak memory, {indexed:,} devices preloaded from the cache: {rss:.0f} MB max RSS"
                " (aim <= 250 MB)"
            )
        if wanted("terminal"):
            if shutil.which("tmux"):
                rate = terminal_bytes(5.0 if args.quick else 10.0, Path(tmp))
                print(
                    f"terminal output, one device at 10 samples/s: {rate / 1024:.1f} KiB/s ({rate:.0f} B/s)"
                )
            else:
                print("terminal output: tmux not installed, not measured")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(bench process itself peaked at {own:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
