"""``fieldtui status ID --json`` wall time against a bare httpx script making the same request.

Run: ``python bench/status_bench.py [--runs 15]``. Starts ``fieldtui sim`` as its own process,
then times, as fresh processes each time (median of ``--runs``):

- ``bare``: ``python -c`` importing httpx and sending the one GET a fleet-only device needs;
- ``status (cold cache)``: ``fieldtui status ID --json`` with an empty read cache, so every
  configured cloud (the MQTT broker included) is asked;
- ``status (warm cache)``: the same once the cache knows which clouds hold the device: only
  those are asked and only their connectors are imported.
"""

from __future__ import annotations

import argparse
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


def _wall(command: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - began
    if result.returncode != 0:
        raise SystemExit(f"{command} failed ({result.returncode}): {result.stderr}")
    return elapsed


def _median(command: list[str], env: dict[str, str], runs: int, before: list[str] | None = None) -> float:
    times = []
    for _ in range(runs):
        if before is not None:
            shutil.rmtree(before[0], ignore_errors=True)
        times.append(_wall(command, env))
    return statistics.median(times)


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
        bare = [sys.executable, "-c", BARE, f"{fleet_url}/devices/{serial}", token]
        status = [sys.executable, "-m", "fieldtui", "status", serial, "--json"]
        _wall(bare, env)  # warm the OS caches for both
        bare_s = _median(bare, env, args.runs)
        cold_s = _median(status, env, args.runs, before=[str(data)])
        _wall(status, env)  # fill the cache: now it knows the device lives on `fleet` only
        warm_s = _median(status, env, args.runs)
        print(f"bare httpx GET (python -c)          median {bare_s * 1000:6.0f} ms  ({args.runs} runs)")
        print(
            f"fieldtui status --json, cold cache  median {cold_s * 1000:6.0f} ms  ({cold_s / bare_s:.2f}x bare)"
        )
        print(
            f"fieldtui status --json, warm cache  median {warm_s * 1000:6.0f} ms  ({warm_s / bare_s:.2f}x bare)"
        )
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
