"""``fieldtui status ID --json`` wall time against a bare httpx script making the same request.

Run: ``python bench/status_bench.py [--runs 15]``. Starts ``fieldtui sim`` as its own process,
then times, as fresh processes each time (median of ``--runs``, the four taking turns):

- ``bare (sync)``: ``python -c`` importing httpx and sending the one GET a fleet-only device
  needs with ``httpx.get``;
- ``bare (async)``: the same GET from an ``httpx.AsyncClient`` under ``asyncio.run`` (what
  fieldtui, async throughout, is built on: asyncio and anyio included);
- ``status (cold cache)``: ``fieldtui status ID --json`` with an empty read cache, so every
  configured cloud (the MQTT broker included) is asked;
- ``status (warm cache)``: the same once the cache knows which clouds hold the device: only
  those are asked and only their connectors are imported.

Before timing, fieldtui's modules are byte-compiled (as a wheel install does): with
``PYTHONDONTWRITEBYTECODE`` set, as on the shared machines, every module changed since its
``.pyc`` was written would otherwise be compiled again in every run.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BARE = """
import sys, httpx
r = httpx.get(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
r.raise_for_status()
sys.stdout.write(r.text)
"""

BARE_ASYNC = """
import asyncio, sys, httpx
async def main():
    async with httpx.AsyncClient() as client:
        r = await client.get(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
    r.raise_for_status()
    sys.stdout.write(r.text)
asyncio.run(main())
"""


def _wall(command: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - began
    if result.returncode != 0:
        raise SystemExit(f"{command} failed ({result.returncode}): {result.stderr}")
    return elapsed


def _interleaved(
    commands: dict[str, list[str]], env: dict[str, str], runs: int, data: Path
) -> dict[str, float]:
    """Median wall time of each command, run in turn round after round (so a machine whose load
    drifts weighs on every figure alike). ``cold`` starts from an empty cache; ``warm`` follows it,
    so the cache then knows where the device lives."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            if name == "cold":
                shutil.rmtree(data, ignore_errors=True)
            times[name].append(_wall(command, env))
    return {name: statistics.median(values) for name, values in times.items()}


def _read_env(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return {key.removeprefix("export ").strip(): value.strip().strip("'\"") for key, value in pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fieldtui-status-bench-"))
    config = work / "config.toml"
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
            "--write-config",
            str(config),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        env_file = Path(f"{config}.env")
        while not (config.exists() and env_file.exists()) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        secrets = _read_env(env_file)
        text = config.read_text()
        fleet_url = next(
            line.split('"')[1]
            for line in text.splitlines()
            if line.startswith("url") and "fleet" in line.lower()
        )
        base = fleet_url.split("/fleet")[0] if "/fleet" in fleet_url else fleet_url
        listing = httpx.get(f"{base.rstrip('/')}/_sim/fleet", timeout=30).json()
        devices = listing["devices"] if isinstance(listing, dict) else listing
        serial = next(d["id"] for d in devices if d["kind"] == "fleet" and not d.get("also_in"))
        token = next(value for key, value in secrets.items() if key.endswith("_FLEET"))

        env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDTUI_")}
        env.update(secrets)
        data = work / "data"
        env.update(
            FIELDTUI_CONFIG=str(config), FIELDTUI_DATA_DIR=str(data), FIELDTUI_LOG_DIR=str(work / "log")
        )
        url = f"{fleet_url}/devices/{serial}"
        bare = [sys.executable, "-c", BARE, url, token]
        bare_async = [sys.executable, "-c", BARE_ASYNC, url, token]
        status = [sys.executable, "-m", "fieldtui", "status", serial, "--json"]
        compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "fieldtui"), quiet=1)
        commands = {"bare": bare, "bare_async": bare_async, "cold": status, "warm": status}
        for command in commands.values():
            _wall(command, env)  # warm the OS caches
        medians = _interleaved(commands, env, args.runs, data)
        bare_s, bare_async_s, cold_s, warm_s = (medians[name] for name in commands)

        def line(label: str, seconds: float, ratios: bool = True) -> None:
            tail = f"  ({seconds / bare_s:.2f}x sync, {seconds / bare_async_s:.2f}x async)" if ratios else ""
            print(f"{label:<38} median {seconds * 1000:6.0f} ms{tail}")

        print(f"{args.runs} runs each, fresh processes, taking turns")
        line("bare httpx GET, sync (python -c)", bare_s, ratios=False)
        line("bare httpx GET, async (python -c)", bare_async_s)
        line("fieldtui status --json, cold cache", cold_s)
        line("fieldtui status --json, warm cache", warm_s)
    finally:
        sim.terminate()
        try:
            sim.wait(30)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
