"""Numbers a float cannot hold, and Unicode format characters, as a technician meets them.

A loopback proxy sits between the CLI and the simulator's things cloud and rewrites its answers
the way a broken device or cloud would: ``1e999``, ``-1e999``, ``NaN`` and a 400-digit integer
as measurements and as a battery level, and messages stamped ``1e999`` or ``1e300`` seconds.
``status --json`` and every ``watch --json`` line stay strict JSON (``null``, with the text in
``raw``), and ``watch`` keeps streaming instead of reconnecting on ``OverflowError``.

A right-to-left override and zero-width characters planted in the clouds through their own
APIs never reach the terminal raw: human output drops them, ``--json`` keeps them encoded.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from fieldtui.config import DeviceHQBackend
from fieldtui.connectors.devicehq import DeviceHQConnector

HUGE_INT = "1" + "0" * 400
#: Placeholders the proxy swaps for bare JSON number text (json.dumps cannot write these).
_LITERALS = {
    '"@inf@"': "1e999",
    '"@-inf@"': "-1e999",
    '"@nan@"': "NaN",
    '"@huge@"': HUGE_INT,
    '"@1e300@"': "1e300",
}


def _strict_loads(text: str) -> Any:
    """JSON as RFC 8259 has it: ``NaN`` and ``Infinity`` are refused."""

    def refuse(name: str) -> None:
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def _hostile_body(path: str, body: Any) -> Any:
    if path.endswith("/messages") and isinstance(body, dict) and isinstance(body.get("data"), list):
        for message in body["data"]:
            message.update({"temp": "@inf@", "cold": "@-inf@", "hum": "@nan@", "count": "@huge@"})
        newest = body["data"][0]["tsmTs"] if body["data"] else 1_700_000_000
        body["data"][:0] = [
            {"tsmId": 12100, "tsmTs": "@inf@", "temp": 1.0},
            {"tsmId": 12100, "tsmTs": "@1e300@", "temp": 2.0},
            {"tsmId": 12100, "tsmTs": "@huge@", "temp": 3.0},
            {"tsmId": 12100, "tsmTs": newest, "airp": 99_000.5, "temp": "@inf@"},
        ]
    elif isinstance(body, dict) and isinstance(body.get("data"), dict) and "battery_level" in body["data"]:
        body["data"]["battery_level"] = "@inf@"
    return body


class _Proxy:
    """Forwards every request to the simulator; JSON answers pass through ``_hostile_body``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        client = httpx.Client(timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                answer = client.request(
                    self.command, proxy.upstream + self.path, headers=headers, content=body
                )
                content = answer.content
                if answer.headers.get("content-type", "").startswith("application/json"):
                    text = json.dumps(_hostile_body(self.path.split("?")[0], answer.json()))
                    for placeholder, literal in _LITERALS.items():
                        text = text.replace(placeholder, literal)
                    content = text.encode()
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "content-encoding",
                        "connection",
                    ):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._client = client
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._client.close()


def _env(sim: Any, tmp_path: Path, config: Path) -> dict[str, str]:
    return {
        **os.environ,
        **sim.env(),
        "FIELDTUI_CONFIG": str(config),
        "FIELDTUI_DATA_DIR": str(tmp_path / "data"),
        "FIELDTUI_LOG_DIR": str(tmp_path / "logs"),
    }


@pytest.fixture
def hostile_numbers(sim: Any, tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    """The CLI's environment with the things cloud behind the rewriting proxy, and a thing's id."""
    upstream = sim.base_url
    proxy = _Proxy(upstream)
    config, _ = sim.write_config(tmp_path / "config.toml")
    text = config.read_text()
    config.write_text(text.replace(sim.urls["things"], proxy.url + sim.urls["things"][len(upstream) :]))
    thing = next(
        tuid
        for tuid, dev in sorted(sim.fleet.of("things").items())
        if tuid not in sim.fleet.of("devicehq") and dev.online
    )
    try:
        yield _env(sim, tmp_path, config), thing
    finally:
        proxy.close()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fieldtui", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_status_json_prints_unholdable_numbers_as_null_with_their_text(
    hostile_numbers: tuple[dict[str, str], str],
) -> None:
    env, thing = hostile_numbers
    result = _cli(env, "status", thing, "--json")
    assert result.returncode == 0, result.stderr
    assert "Infinity" not in result.stdout.replace('"Infinity"', "")  # only as quoted text in raw
    document = _strict_loads(result.stdout)
    assert document["device"]["battery"] is None
    assert document["raw"]["/device/battery"] == "Infinity"
    human = _cli(env, "status", thing)
    assert human.returncode == 0, human.stderr
    assert "Traceback" not in human.stderr


def _read_lines(stream: Any, into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


def test_watch_json_lines_stay_strict_and_the_stream_never_loops_on_a_number(
    hostile_numbers: tuple[dict[str, str], str],
) -> None:
    env, thing = hostile_numbers
    proc = subprocess.Popen(
        [sys.executable, "-m", "fieldtui", "watch", thing, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True).start()
    samples: list[Any] = []
    deadline = time.monotonic() + 90
    try:
        while len(samples) < 5 and time.monotonic() < deadline and proc.poll() is None:
            try:
                samples.append(_strict_loads(lines.get(timeout=1)))
            except queue.Empty:
                continue
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert len(samples) >= 5, f"watch printed {len(samples)} samples; stderr: {err}"
    assert "OverflowError" not in err and "reconnecting" not in err, err
    for sample in samples:
        for name, value in sample["metrics"].items():
            assert name not in ("temp", "cold", "hum", "count"), sample  # unreadable: skipped
            assert isinstance(value, str | bool | int | float), sample
    # The readable measurements of the hostile messages still arrive.
    assert any("airp" in sample["metrics"] for sample in samples), samples


# -- format characters -----------------------------------------------------------------------
#: A right-to-left override, an isolate, a zero-width space and a BOM: invisible, reordering.
FORMAT = "\u202e\u2066\u200b\ufeff"


def _plant_format_characters(sim: Any) -> str:
    """A DeviceHQ-only gateway whose description and group carry format characters."""
    gateway = next(serial for serial, dev in sorted(sim.fleet.of("devicehq").items()) if not dev.also_in)

    async def go() -> None:
        dhq = DeviceHQConnector(
            "gateways",
            DeviceHQBackend(kind="devicehq", url=sim.urls["devicehq"]),
            sim.credentials.devicehq_api_key,
        )
        async with dhq:
            await dhq.update_device(
                gateway, {"description": f"Gate{FORMAT}way exe.txt", "group": f"g{FORMAT}1"}
            )

    asyncio.run(go())
    return str(gateway)


def test_format_characters_from_a_cloud_are_dropped_on_the_terminal_and_encoded_in_json(
    sim_clean: Any, tmp_path: Path
) -> None:
    gateway = _plant_format_characters(sim_clean)
    config, _ = sim_clean.write_config(tmp_path / "config.toml")
    env = _env(sim_clean, tmp_path, config)
    human = _cli(env, "status", gateway)
    assert human.returncode == 0, human.stderr
    assert "Gateway exe.txt" in human.stdout
    for char in FORMAT:
        assert char not in human.stdout + human.stderr, repr(char)
    as_json = _cli(env, "status", gateway, "--json")
    assert as_json.returncode == 0, as_json.stderr
    for char in FORMAT:
        assert char not in as_json.stdout, repr(char)
    assert "\\u202e" in as_json.stdout
    device = _strict_loads(as_json.stdout)["device"]
    assert device["name"] == f"Gate{FORMAT}way exe.txt"
    assert device["group"] == f"g{FORMAT}1"


def test_a_refused_move_with_an_override_in_the_group_is_listed_without_it(
    sim_clean: Any, tmp_path: Path
) -> None:
    thing = next(
        tuid for tuid in sorted(sim_clean.fleet.of("things")) if tuid not in sim_clean.fleet.of("devicehq")
    )
    config, _ = sim_clean.write_config(tmp_path / "config.toml")
    env = _env(sim_clean, tmp_path, config)
    move = _cli(env, "move", thing, f"nowhere{FORMAT}", "--backend", "things")
    listed = _cli(env, "outbox", "list")
    assert "nowhere" in listed.stdout + move.stdout + move.stderr
    for name, result in {"move": move, "outbox list": listed}.items():
        for char in FORMAT:
            assert char not in result.stdout + result.stderr, f"{name}: {char!r}"
