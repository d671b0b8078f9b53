"""Draining 10,000 actions under faults: one bounded outbox drain vs a bare httpx loop.

Run: ``python bench/drain_bench.py [--actions 10000] [--concurrency 8] [--runs 1]``

Both drain N installation-status changes over the simulator's ``things`` devices while the
simulator answers 20 % of requests with a 503 and drops 10 % of connections
(``PUT /_sim/faults/things {"error_rate": 0.2, "drop_rate": 0.1}``):

* **outbox**: the actions are queued in a fresh outbox, then ONE ``SyncEngine.drain(timeout=...)``
  sends them, as ``fieldtui outbox sync`` does: claims and leases, per-device order, a failed
  request retried within the run with the drain's bounded backoff, a check of the cloud before
  re-sending what a 503 may have applied, every result recorded durably.
* **bare**: the same POSTs from one ``httpx.AsyncClient`` at the same concurrency, each device's
  changes in order, a 503 or a dropped connection retried after the same bounded backoff; no
  durability, no checks (it knows this simulator applies nothing it answers 503 or drops).

The simulator runs as its own process (as a real cloud would) and is reset before every run;
runs alternate (outbox, bare, bare, outbox, ...) so load on the machine hits both alike. The
figure is actions per second until the last one is applied; both must end with every action
applied exactly once (checked by the simulator's mutation log).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

from fieldtui.config import load_config
from fieldtui.core.actions import Action, ActionType
from fieldtui.secrets import env_var_name
from fieldtui.service.sync import DRAIN_BACKOFF_CAP, Backoff
from fieldtui.service.writes import open_outbox

STATUSES = ("installed", "uninstalled", "quarantine", "retired")
FAULTS = {"error_rate": 0.2, "drop_rate": 0.1}
#: A bounded drain's deadline: far beyond what the run needs (it must end drained).
DRAIN_TIMEOUT = 3600.0


def _plan(current: dict[str, str], n: int) -> list[tuple[str, str]]:
    """``n`` status changes round the devices, each device's first one different from the
    status it has now: the outbox's check before re-sending rightly counts a status already set
    as applied, and the bare loop would send it anyway (the counts would differ)."""
    devices = sorted(current)
    plan = []
    for i in range(n):
        device = devices[i % len(devices)]
        offset = STATUSES.index(current[device]) + 1 if current[device] in STATUSES else 0
        plan.append((device, STATUSES[(offset + i // len(devices)) % len(STATUSES)]))
    return plan


def _retry_delay(backoff: Backoff, attempt: int, rng: random.Random) -> float:
    """The wait before try ``attempt + 1`` inside a bounded drain (``SyncEngine._defer``)."""
    return min(backoff.delay(attempt, rng), DRAIN_BACKOFF_CAP * (0.5 + rng.random() / 2))


async def run_outbox(
    config: Path, data: Path, plan: list[tuple[str, str]], concurrency: int
) -> dict[str, Any]:
    loaded = load_config(str(config))
    async with open_outbox(loaded, path=data / "drain.sqlite3", concurrency=concurrency) as outbox:
        await outbox.store.enqueue_many(
            [
                Action(
                    type=ActionType.SET_INSTALLATION_STATUS, device=d, backend="things", params={"status": s}
                )
                for d, s in plan
            ]
        )
        await outbox.connectors["things"].probe()  # its token fetched before the clock starts
        start = time.perf_counter()
        summary = await outbox.engine.drain(timeout=DRAIN_TIMEOUT)
        elapsed = time.perf_counter() - start
    if not summary.drained or len(summary.done) != len(plan):
        raise SystemExit(f"outbox: {len(summary.done)} of {len(plan)} done: {summary.remaining}")
    return {"rate": len(plan) / elapsed, "seconds": elapsed}


async def run_bare(
    base: str, client_id: str, secret: str, plan: list[tuple[str, str]], concurrency: int
) -> dict[str, Any]:
    per_device: dict[str, list[str]] = defaultdict(list)
    for device, status in plan:
        per_device[device].append(status)
    rng = random.Random(7)
    backoff = Backoff()
    retries = 0
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        token = None
        while token is None:  # the token request meets the faults too
            try:
                answer = await client.post(
                    "/auth/client-token", json={"client_id": client_id, "client_secret": secret}
                )
                if answer.status_code == 200:
                    body = answer.json()
                    token = body.get("data", body).get("token")
            except httpx.TransportError:
                pass
        headers = {"Authorization": f"Bearer {token}"}
        sem = asyncio.Semaphore(concurrency)

        async def one_device(device: str) -> None:
            nonlocal retries
            for status in per_device[device]:
                attempt = 0
                while True:
                    attempt += 1
                    async with sem:
                        try:
                            response = await client.post(
                                f"/things/{device}/installations",
                                json={"installation_status": status},
                                headers=headers,
                            )
                        except httpx.TransportError:
                            response = None
                        if response is not None and response.status_code < 500:
                            response.raise_for_status()
                            response.json()
                            break
                    retries += 1
                    await asyncio.sleep(_retry_delay(backoff, attempt, rng))

        start = time.perf_counter()
        await asyncio.gather(*(one_device(d) for d in per_device))
        elapsed = time.perf_counter() - start
    return {"rate": len(plan) / elapsed, "seconds": elapsed, "retries": retries}


def _start_sim(directory: Path, fleet_size: int) -> tuple[subprocess.Popen[bytes], str, Path]:
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
            str(fleet_size),
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
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if config.with_name("config.toml.env").exists():
                httpx.get(base_url + "/_sim/fleet", timeout=10).raise_for_status()
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or sim.poll() is not None:
            sim.kill()
            raise SystemExit("the simulator did not start")
        time.sleep(0.2)
    for line in config.with_name("config.toml.env").read_text().splitlines():
        name, sep, value = line.removeprefix("export ").partition("=")
        if sep and name.startswith("FIELDTUI_SECRET_"):
            os.environ[name.strip()] = value.strip().strip("'\"")
    return sim, base_url, config


def _check_applied_once(base_url: str, plan: list[tuple[str, str]], who: str) -> None:
    """Every change reached the simulator exactly once, in order per device (its mutation log)."""
    log = httpx.get(base_url + "/_sim/mutations?backend=things", timeout=120).json()
    seen: dict[str, list[str]] = defaultdict(list)
    for m in log:
        if m["method"] == "POST" and m["path"].endswith("/installations"):
            seen[m["path"].split("/")[-2]].append(m["body"]["installation_status"])
    wanted: dict[str, list[str]] = defaultdict(list)
    for device, status in plan:
        wanted[device].append(status)
    if seen != wanted:
        extra = sum((Counter(seen[d]) - Counter(wanted[d])).total() for d in wanted)
        missing = sum((Counter(wanted[d]) - Counter(seen[d])).total() for d in wanted)
        raise SystemExit(f"{who}: not applied exactly once in order ({extra} extra, {missing} missing)")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--actions", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--fleet-size", type=int, default=400)
    parser.add_argument("--runs", type=int, default=1, help="runs of each (alternating)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        sim, base_url, config = _start_sim(directory, args.fleet_size)
        try:
            loaded = load_config(str(config))
            things_cfg = loaded.backends["things"]
            fleet = httpx.get(base_url + "/_sim/fleet", timeout=60).json()
            devices = sorted(d["id"] for d in fleet if d["kind"] == "things")
            current = {
                d: httpx.get(f"{base_url}/_sim/inspect/things/{d}", timeout=30).json()["installation_status"]
                for d in devices
            }
            plan = _plan(current, args.actions)
            secret = os.environ[env_var_name(loaded.profile_name, "things")]
            client_id = str(getattr(things_cfg, "client_id", ""))
            things_url = str(getattr(things_cfg, "url", ""))

            def faulted() -> None:
                # A fresh simulator log (it slows as its logs grow) and its dice reseeded.
                httpx.post(base_url + "/_sim/reset", timeout=120).raise_for_status()
                httpx.put(base_url + "/_sim/faults/things", json=FAULTS, timeout=30).raise_for_status()

            results: dict[str, list[dict[str, Any]]] = {"outbox": [], "bare": []}
            order = [("outbox", "bare") if i % 2 == 0 else ("bare", "outbox") for i in range(args.runs)]
            for i, pair in enumerate(order):
                for who in pair:
                    faulted()
                    if who == "outbox":
                        result = asyncio.run(
                            run_outbox(config, directory / f"run{i}", plan, args.concurrency)
                        )
                    else:
                        result = asyncio.run(run_bare(things_url, client_id, secret, plan, args.concurrency))
                    _check_applied_once(base_url, plan, who)
                    results[who].append(result)
                    extra = f", {result['retries']} retries" if "retries" in result else ""
                    print(
                        f"  {who:<6} {result['rate']:7.1f} actions/s ({result['seconds']:.1f} s{extra})",
                        flush=True,
                    )
            best = {who: max(r["rate"] for r in runs) for who, runs in results.items()}
            print(
                f"drain {args.actions:,} actions over {len(devices)} devices under 20 % 503 + 10 % drops, "
                f"concurrency {args.concurrency}: outbox {best['outbox']:,.1f}/s, bare httpx {best['bare']:,.1f}/s, "
                f"ratio {best['outbox'] / best['bare']:.2f}x (best of {args.runs}; each applied once, in order)"
            )
        finally:
            sim.terminate()
            sim.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
