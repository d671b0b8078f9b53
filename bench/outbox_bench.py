"""Outbox benchmark: durable enqueues per second, and draining 10,000 actions vs a bare httpx loop.

Run: ``python bench/outbox_bench.py [--actions 10000] [--concurrency 8]``

* enqueue: actions committed to a fresh outbox (WAL, synchronous=FULL), one at a time (each
  caller waits for its own commit) and from 64 concurrent callers (group commit).
* drain: N installation-status changes over the simulator's ``things`` devices, sent by the sync
  engine (claims, leases, per-device order, results recorded durably) and, for comparison, the
  same POSTs from a bare ``httpx.AsyncClient`` loop at the same concurrency. Both runs send
  each device's changes in order, one at a time per device, as the outbox must.

The simulator runs as its own process (``fieldtui sim``), as a real cloud would: inside this
process it would compete with the client for the GIL and charge the client's CPU to the cloud.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

from fieldtui.config import load_config
from fieldtui.core.actions import Action, ActionType
from fieldtui.secrets import env_var_name
from fieldtui.service.store import OutboxStore
from fieldtui.service.writes import open_outbox

STATUSES = ("installed", "uninstalled", "quarantine", "retired")


def _plan(devices: list[str], n: int) -> list[tuple[str, str]]:
    return [(devices[i % len(devices)], STATUSES[(i // len(devices)) % len(STATUSES)]) for i in range(n)]


def _action(device: str, status: str) -> Action:
    return Action(
        type=ActionType.SET_INSTALLATION_STATUS, device=device, backend="things", params={"status": status}
    )


async def bench_enqueue(directory: Path, n: int) -> tuple[float, float]:
    async with await OutboxStore.open(directory / "enqueue.sqlite3") as store:
        start = time.perf_counter()
        for i in range(n):
            await store.enqueue(_action(f"D{i % 50}", "installed"))
        sequential = n / (time.perf_counter() - start)
        queue = [_action(f"D{i % 50}", "installed") for i in range(n * 4)]

        async def producer() -> None:
            while queue:
                await store.enqueue(queue.pop())

        start = time.perf_counter()
        await asyncio.gather(*(producer() for _ in range(64)))
        concurrent = n * 4 / (time.perf_counter() - start)
    return sequential, concurrent


async def bench_outbox(config: Path, data: Path, plan: list[tuple[str, str]], concurrency: int) -> float:
    loaded = load_config(str(config))
    async with open_outbox(loaded, path=data / "drain.sqlite3", concurrency=concurrency) as outbox:
        await outbox.store.enqueue_many([_action(d, s) for d, s in plan])
        await outbox.connectors["things"].probe()  # token fetched before the clock starts, as below
        start = time.perf_counter()
        summary = await outbox.engine.drain()
        elapsed = time.perf_counter() - start
    if len(summary.done) != len(plan):
        raise SystemExit(f"outbox drain: only {len(summary.done)} of {len(plan)} done: {summary.to_json()}")
    return len(plan) / elapsed


async def bench_bare(
    base: str, client_id: str, secret: str, plan: list[tuple[str, str]], concurrency: int
) -> float:
    per_device: dict[str, list[str]] = defaultdict(list)
    for device, status in plan:
        per_device[device].append(status)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        token = (
            await client.post("/auth/client-token", json={"client_id": client_id, "client_secret": secret})
        ).json()
        bearer = token.get("data", token).get("token")
        headers = {"Authorization": f"Bearer {bearer}"}
        devices = list(per_device)
        sem = asyncio.Semaphore(concurrency)

        async def one_device(device: str) -> None:
            for status in per_device[device]:
                async with sem:
                    response = await client.post(
                        f"/things/{device}/installations",
                        json={"installation_status": status},
                        headers=headers,
                    )
                    response.raise_for_status()
                    response.json()

        start = time.perf_counter()
        await asyncio.gather(*(one_device(d) for d in devices))
        elapsed = time.perf_counter() - start
    return len(plan) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--actions", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--enqueues", type=int, default=2_000)
    parser.add_argument("--fleet-size", type=int, default=400)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        config = directory / "config.toml"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        sim = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fieldtui",
                "sim",
                "--port",
                str(port),
                "--mqtt-port",
                "0",
                "--fleet-size",
                str(args.fleet_size),
                "--seed",
                "3",
                "--telemetry-interval",
                "60",
                "--write-config",
                str(config),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                try:
                    if config.with_name("config.toml.env").exists():
                        fleet = httpx.get(base_url + "/_sim/fleet", timeout=10).json()
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or sim.poll() is not None:
                    raise SystemExit("the simulator did not start")
                time.sleep(0.2)
            for line in config.with_name("config.toml.env").read_text().splitlines():
                name, sep, value = line.removeprefix("export ").partition("=")
                if sep and name.startswith("FIELDTUI_SECRET_"):
                    os.environ[name.strip()] = value.strip().strip("'\"")
            loaded = load_config(str(config))
            things_cfg = loaded.backends["things"]
            items = fleet if isinstance(fleet, list) else fleet.get("devices", fleet.get("data", []))
            devices = sorted(d["id"] for d in items if d["kind"] == "things")
            plan = _plan(devices, args.actions)
            secret = os.environ[env_var_name(loaded.profile_name, "things")]
            client_id = getattr(things_cfg, "client_id", "")
            things_url = getattr(things_cfg, "url", "")

            sequential, concurrent = asyncio.run(bench_enqueue(directory, args.enqueues))
            print(f"durable enqueues: {sequential:,.0f}/s one at a time, {concurrent:,.0f}/s from 64 callers")

            def reset() -> None:
                # The simulator slows as its logs grow: every run starts from a fresh one.
                httpx.post(base_url + "/_sim/reset", timeout=60).raise_for_status()

            def outbox_run(name: str) -> float:
                reset()
                return asyncio.run(bench_outbox(config, directory / name, plan, args.concurrency))

            def bare_run() -> float:
                reset()
                return asyncio.run(bench_bare(things_url, client_id, secret, plan, args.concurrency))

            outbox_rate, bare_rate = outbox_run("run1"), bare_run()
            bare_rate2, outbox_rate2 = bare_run(), outbox_run("run2")
            outbox_best, bare_best = max(outbox_rate, outbox_rate2), max(bare_rate, bare_rate2)
            print(
                f"drain {args.actions:,} actions over {len(devices)} devices at concurrency {args.concurrency}: "
                f"outbox {outbox_best:,.0f}/s, bare httpx {bare_best:,.0f}/s, "
                f"ratio {outbox_best / bare_best:.2f}x (runs: outbox {outbox_rate:,.0f}, {outbox_rate2:,.0f}; "
                f"bare {bare_rate:,.0f}, {bare_rate2:,.0f})"
            )
        finally:
            sim.terminate()
            sim.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
