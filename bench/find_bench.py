"""``FleetService.find()`` over a 100,000-device simulated fleet: time to first result and to last.

Run: ``python bench/find_bench.py [--fleet-size 100000]``. Starts ``fieldtui sim`` as its own
process (so the clouds do not share this interpreter), then searches every configured backend
concurrently through the real connectors, for an exact id held by two clouds (DeviceHQ and
things, not fleet: fleet scans for it as a substring), for an exact fleet serial and for a
substring matching many devices, and prints when the first and the last result arrived (and
any backend whose answer was partial). Each query builds a fresh service; the first one also
pays for importing the connector modules, as a fresh ``fieldtui`` process would.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from fieldtui.config import load_config
from fieldtui.service.factory import build_fleet_service
from fieldtui.service.fleet import BackendFinished, FindMatch


async def _find(config: Path, query: str) -> tuple[float, float, int, dict[str, float]]:
    loaded = load_config(str(config), None)
    async with build_fleet_service(loaded) as service:
        began = time.perf_counter()
        first = 0.0
        rows: set[str] = set()
        finished: dict[str, float] = {}
        async for event in service.find(query):
            now = time.perf_counter() - began
            if isinstance(event, FindMatch):
                first = first or now
                rows.add(event.key)
            elif isinstance(event, BackendFinished):
                finished[event.backend] = now
                if event.error:
                    print(f"  {event.backend}: {event.error}")
                if event.partial:
                    print(f"  {event.backend}: {event.partial}")
        last = time.perf_counter() - began
    return first, last, len(rows), finished


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleet-size", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fieldtui-find-bench-"))
    config = work / "config.toml"
    began = time.perf_counter()
    sim = subprocess.Popen(
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
            str(args.fleet_size),
            "--write-config",
            str(config),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        env_file = Path(f"{config}.env")
        while not (config.exists() and env_file.exists()):
            if sim.poll() is not None or time.perf_counter() - began > 600:
                raise SystemExit("the simulator did not start")
            time.sleep(0.2)
        for line in env_file.read_text().splitlines():
            key, sep, value = line.removeprefix("export ").partition("=")
            if sep and key.startswith("FIELDTUI_SECRET_"):
                os.environ[key.strip()] = value.strip().strip("'\"")
        base = re.search(r'url = "(http://[^/"]+)', config.read_text())
        assert base is not None
        listing = httpx.get(f"{base.group(1)}/_sim/fleet", timeout=120).json()
        devices = listing["devices"] if isinstance(listing, dict) else listing
        shared = next(
            d["id"] for d in devices if d["kind"] == "devicehq" and "things" in d.get("also_in", [])
        )
        serial = next(d["id"] for d in devices if d["kind"] == "fleet" and not d.get("also_in"))
        print(
            f"simulated fleet: {len(devices):,} device records ({time.perf_counter() - began:.1f} s to start)"
        )
        queries = (
            ("exact id in two clouds", shared),
            ("exact fleet serial", serial),
            ("substring 'Gateway 99'", "Gateway 99"),
        )
        for label, query in queries:
            first, last, rows, finished = asyncio.run(_find(config, query))
            per_backend = ", ".join(
                f"{name} {t * 1000:.0f}" for name, t in sorted(finished.items(), key=lambda x: x[1])
            )
            print(
                f"find({label!s}): first result {first * 1000:.0f} ms, last {last * 1000:.0f} ms, "
                f"{rows} rows; backends done (ms): {per_backend}"
            )
    finally:
        sim.terminate()
        try:
            sim.wait(60)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
