"""Secrets never leave the places they belong, and every file fieldtui writes is private.

A whole technician session runs as real ``fieldtui`` processes with every directory (data,
logs, config, XDG homes) under a temporary directory; afterwards every file written there and
everything printed is searched for each secret and for every session token the simulated
clouds handed out (read from the simulator's own state).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fieldtui.logging_setup import REDACTED, RedactingFormatter, configure_logging, redact
from fieldtui.service.store import OutboxStore


class Session:
    def __init__(self, sim: Any, root: Path) -> None:
        self.sim = sim
        self.root = root
        self.config_dir = root / "xdg-config" / "fieldtui"
        self.config, self.env_file = sim.write_config(self.config_dir / "config.toml")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(root / "home"),
            "XDG_CONFIG_HOME": str(root / "xdg-config"),
            "XDG_DATA_HOME": str(root / "xdg-data"),
            "XDG_STATE_HOME": str(root / "xdg-state"),
            "XDG_CACHE_HOME": str(root / "xdg-cache"),
            "FIELDTUI_DATA_DIR": str(root / "data"),
            "FIELDTUI_LOG_DIR": str(root / "logs"),
            "FIELDTUI_LOG_LEVEL": "DEBUG",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
            **sim.env(),
        }
        self.outputs: list[tuple[str, str]] = []
        self.tokens: set[str] = set()

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "fieldtui", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        self.outputs.append((" ".join(args), result.stdout + result.stderr))
        self.collect_tokens()
        return result

    def watch(self, device: str, seconds: float) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fieldtui", "watch", device, "--json"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(seconds)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        self.outputs.append((f"watch {device}", out + err))
        assert out.strip(), f"watch printed no sample: {err}"

    def collect_tokens(self) -> None:
        """Every session token the clouds handed out so far (things client tokens, DeviceHQ sessions)."""
        clouds = self.sim.simulator.server.clouds
        self.tokens.update(clouds["things"]._tokens)
        book = clouds["devicehq"]._sessions
        if book._open is not None:
            self.tokens.add(book._open.token)
        self.tokens.update(book._closed)


def _written_files(root: Path, skip: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p != skip]


def test_a_whole_session_leaves_no_secret_or_token_in_any_file_or_output(
    sim_clean: Any, tmp_path: Path
) -> None:
    session = Session(sim_clean, tmp_path)
    fleet = sim_clean.fleet
    thing = sorted(fleet.of("things"))[0]
    gateway = sorted(fleet.of("devicehq"))[0]
    live = sorted(d.id for d in fleet.of("mqtt").values() if d.online)[0]
    groups = sorted(fleet.groups)

    assert session.run("status", thing).returncode == 0
    assert session.run("status", gateway, "--json").returncode == 0
    assert session.run("tasks", gateway, "--json").returncode == 0
    session.watch(live, 3.0)
    assert session.run("set-status", thing, "quarantine", "--backend", "things").returncode == 0
    assert session.run("move", thing, groups[1], "--backend", "things", "--json").returncode == 0
    # Expired tokens and sessions: the renewal goes through the log too.
    sim_clean.admin("POST", "/_sim/expire-credentials?backend=things")
    sim_clean.admin("POST", "/_sim/expire-credentials?backend=gateways")
    assert session.run("move", gateway, "site-b", "--backend", "gateways").returncode == 0
    sim_clean.admin("PUT", "/_sim/faults/things", {"unreachable": True})
    assert session.run("set-status", thing, "installed", "--backend", "things").returncode == 0  # queued
    sim_clean.admin("DELETE", "/_sim/faults")
    assert session.run("outbox", "sync", "--json").returncode in (0, 1)
    assert session.run("outbox", "list").returncode == 0
    assert session.run("info").returncode == 0
    assert session.run("info", "--json").returncode == 0
    # Failing calls: a cloud answering 503 pages, an unknown device, a refused secret.
    sim_clean.admin("PUT", "/_sim/faults/gateways", {"error_rate": 1.0})
    session.run("status", gateway)
    sim_clean.admin("DELETE", "/_sim/faults")
    assert session.run("status", "NO-SUCH-DEVICE-0000").returncode == 3
    wrong = dict(session.env)
    wrong_key = "wrong-" + session.env[next(k for k in wrong if k.endswith("_GATEWAYS"))][::-1]
    wrong[next(k for k in wrong if k.endswith("_GATEWAYS"))] = wrong_key
    failed = subprocess.run(
        [sys.executable, "-m", "fieldtui", "status", gateway],
        env=wrong,
        capture_output=True,
        text=True,
        timeout=60,
    )
    session.outputs.append(("status with a wrong key", failed.stdout + failed.stderr))

    secrets = [*sim_clean.env().values(), wrong_key]
    tokens = sorted(session.tokens)
    assert len(tokens) >= 3, "the clouds handed out too few tokens for this test to mean anything"
    log_text = (tmp_path / "logs" / "fieldtui.log").read_text(encoding="utf-8")
    assert "HTTP Request" in log_text  # the log is really written, request lines included

    for path in _written_files(tmp_path, skip=session.env_file):
        data = path.read_bytes()
        for value in [*secrets, *tokens]:
            assert value.encode() not in data, f"{path.relative_to(tmp_path)} holds a secret or token"
    for command, output in session.outputs:
        for value in [*secrets, *tokens]:
            assert value not in output, f"`fieldtui {command}` printed a secret or token"


def test_every_file_and_directory_written_is_private(sim_clean: Any, tmp_path: Path) -> None:
    session = Session(sim_clean, tmp_path)
    thing = sorted(sim_clean.fleet.of("things"))[0]
    assert session.run("set-status", thing, "retired", "--backend", "things").returncode == 0
    assert session.run("status", thing).returncode == 0

    async def wal_and_shm_while_open() -> list[Path]:
        async with await OutboxStore.open(tmp_path / "data" / "outbox.sqlite3") as store:
            await store.counts()
            return [p for p in (tmp_path / "data").iterdir() if p.name.endswith(("-wal", "-shm"))]

    side_files = asyncio.run(wal_and_shm_while_open())
    assert side_files, "no -wal/-shm file to check"
    for directory in (tmp_path / "data", tmp_path / "logs"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
        for path in directory.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in side_files:
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_the_simulators_written_secrets_file_is_0600(tmp_path: Path) -> None:
    target = tmp_path / "cfg" / "sim.toml"
    proc = subprocess.Popen(
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
            "5",
            "--write-config",
            str(target),
        ],
        env={**os.environ, "FIELDTUI_LOG_DIR": str(tmp_path / "logs")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("Press Ctrl-C"):
                break
        env_file = Path(f"{target}.env")
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        assert "FIELDTUI_SECRET_" in env_file.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("HTTP Request: GET https://h/api/v2/devices?api_key=S3cr3tKey&limit=1 200", "S3cr3tKey"),
        ("POST /session?token=abcDEF123456 failed", "abcDEF123456"),
        ("headers {'Authorization': 'Bearer tok-987654321'}", "tok-987654321"),
        ("headers {'X-API-KEY': 'k3y-value-1'}", "k3y-value-1"),
        ("x-auth-token: sessiontok42", "sessiontok42"),
        ('body {"client_id": "installer-7", "client_secret": "th-0011223344"}', "th-0011223344"),
        ('{"meta": {"token": "Zx81Zx81Zx81"}}', "Zx81Zx81Zx81"),
    ],
)
def test_logs_redact_credentials_in_urls_headers_and_bodies(line: str, secret: str) -> None:
    redacted = redact(line, secrets=[])
    assert secret not in redacted and REDACTED in redacted, redacted


def test_the_log_file_redacts_what_libraries_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIELDTUI_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("FIELDTUI_SECRET_SITE_GATEWAYS", "verbatim-secret-value")
    root = logging.getLogger()
    level = root.level
    path = configure_logging("DEBUG")
    assert path is not None
    try:
        logging.getLogger("httpx").info(
            'HTTP Request: GET %s "HTTP/1.1 200 OK"', "https://h/x?api_key=abc123def"
        )
        logging.getLogger("fieldtui.test").warning("sent verbatim-secret-value in a %s", "message")
        try:
            raise RuntimeError("Authorization: Bearer in-a-traceback-9")
        except RuntimeError:
            logging.getLogger("fieldtui.test").exception("failed")
        text = path.read_text(encoding="utf-8")
        assert isinstance(root.handlers[-1].formatter, RedactingFormatter)
    finally:
        handler = root.handlers[-1]
        root.removeHandler(handler)
        handler.close()
        root.setLevel(level)
    for secret in ("abc123def", "verbatim-secret-value", "in-a-traceback-9"):
        assert secret not in text
    assert text.count(REDACTED) >= 3
