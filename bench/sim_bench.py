"""Simulator figures: start-up time by fleet size, and device GET throughput over loopback.

Run: ``python bench/sim_bench.py`` (about a minute). Prints one line per figure.

Throughput is measured against ``fieldtui sim`` running as its own process (as users run it,
MQTT devices included), so the load generator does not share its interpreter:
- ``httpx``: several concurrent ``httpx.AsyncClient``s, what the connectors use;
- ``raw``: a minimal keep-alive HTTP/1.1 client on asyncio streams, cheap enough per request
  that the figure is the server's ceiling rather than the client's.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import httpx

from fieldtui.sim.fleet import generate_fleet
from fieldtui.sim.runner import Simulator


async def _start_time(size: int) -> tuple[float, float, float]:
    """(generate_fleet s, Simulator.start s, first device GET s) at ``size`` devices."""
    began = time.perf_counter()
    generate_fleet(1, size)
    generate_s = time.perf_counter() - began
    sim = Simulator(seed=1, fleet_size=size)
    began = time.perf_counter()
    await sim.start()
    start_s = time.perf_counter() - began
    try:
        serial = next(iter(sim.fleet.of("mysensor")))
        headers = {"Authorization": f"Bearer {sim.credentials.mysensor_token}"}
        async with httpx.AsyncClient() as client:
            began = time.perf_counter()
            response = await client.get(f"{sim.urls['mysensor']}/sensors/{serial}", headers=headers)
            first_s = time.perf_counter() - began
            response.raise_for_status()
    finally:
        await sim.stop()
    return generate_s, start_s, first_s


async def _httpx_load(paths: list[str], headers: dict[str, str], clients: int, seconds: float) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        nonlocal done
        async with httpx.AsyncClient(headers=headers) as client:
            i = n
            while time.perf_counter() < deadline:
                response = await client.get(paths[i % len(paths)])
                assert response.status_code == 200
                done += 1
                i += clients

    began = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(clients)))
    return done / (time.perf_counter() - began)


async def _raw_load(base_url: str, paths: list[str], token: str, connections: int, seconds: float) -> float:
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(host, int(port))
        i = n
        while time.perf_counter() < deadline:
            path = paths[i % len(paths)].removeprefix(base_url)
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head[:40]
            length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            done += 1
            i += connections
        writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(connections)))
    return done / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each throughput run")
    parser.add_argument("--big", type=int, default=100_000, help="the large fleet size")
    args = parser.parse_args()

    for size in (200, args.big):
        generate_s, start_s, first_s = asyncio.run(_start_time(size))
        print(
            f"start  fleet_size={size:>7}: generate_fleet {generate_s:.2f} s, Simulator.start {start_s:.2f} s "
            f"(fleet + HTTP + broker + MQTT devices), first device GET {first_s * 1000:.1f} ms",
            flush=True,
        )

    _throughput(args.seconds)


def _spawn_sim(config: Path) -> tuple[subprocess.Popen[str], str]:
    """``fieldtui sim`` as a child process (its own core, as users run it) and its base URL."""
    command = [sys.executable, "-m", "fieldtui", "sim", "--port", "0", "--mqtt-port", "0"]
    process = subprocess.Popen(
        [*command, "--fleet-size", "200", "--write-config", str(config)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    base_url = ""
    for line in process.stdout:
        if match := re.search(r"serving (http://\S+)", line):
            base_url = match.group(1)
        if line.startswith("Press Ctrl-C"):
            return process, base_url
    raise RuntimeError("fieldtui sim did not start")


async def _run_loads(base_url: str, sensors_url: str, token: str, seconds: float) -> None:
    async with httpx.AsyncClient() as client:
        rows = (await client.get(f"{base_url}/_sim/fleet?kind=mysensor")).json()
    paths = [f"{sensors_url}/sensors/{row['id']}" for row in rows]
    headers = {"Authorization": f"Bearer {token}"}
    for clients in (1, 8, 32):
        rate = await _httpx_load(paths, headers, clients, seconds)
        print(f"GET /sensors/{{id}}  httpx, {clients:>2} concurrent clients: {rate:,.0f} req/s", flush=True)
    for connections in (1, 8, 32):
        rate = await _raw_load(base_url, paths, token, connections, seconds)
        print(
            f"GET /sensors/{{id}}  raw keep-alive, {connections:>2} connections: {rate:,.0f} req/s",
            flush=True,
        )


def _throughput(seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "sim.toml"
        process, base_url = _spawn_sim(config)
        try:
            urls = tomllib.loads(config.read_text())["profiles"]["sim"]["backends"]
            env = dict(line.split("=", 1) for line in Path(f"{config}.env").read_text().splitlines())
            asyncio.run(
                _run_loads(base_url, urls["sensors"]["url"], env["FIELDTUI_SECRET_SIM_SENSORS"], seconds)
            )
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
