"""Run the whole simulator in one event loop: the HTTP clouds (uvicorn), the MQTT broker and devices.

Used by ``fieldtui sim`` (foreground), ``fieldtui demo`` (in-process) and the tests (a thread).
Ports may be 0 (any free port); the real ones are known once :meth:`Simulator.start` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib
import json
import logging
import os
import random
import re
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import uvicorn

from fieldtui.sim.context import SimContext, SimCredentials
from fieldtui.sim.faults import parse_fault_spec
from fieldtui.sim.fleet import BACKEND_NAMES, Fleet, generate_fleet
from fieldtui.sim.mqtt.state import device_access_key
from fieldtui.sim.server import PREFIXES, SimServer

PROFILE = "sim"
_PART_STOP_TIMEOUT = 5.0

log = logging.getLogger(__name__)


class PortInUseError(OSError):
    """A port the simulator was asked to listen on is taken (the message says which and what to do)."""


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers: the caller owns SIGINT/SIGTERM (and re-raising them
    after shutdown, as uvicorn does, would turn a clean stop into death by signal)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _optional(module_name: str, attribute: str) -> Any | None:
    """An attribute of a simulator module that may not exist yet (a broken module still raises)."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return None
    return getattr(module, attribute)


def _bind(host: str, port: int, what: str, flag: str) -> socket.socket:
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and without
    # it every response waits ~40 ms for a delayed ACK between its header and body writes.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            reason = "already in use" if exc.errno == errno.EADDRINUSE else "not allowed for this user"
            raise PortInUseError(
                exc.errno,
                f"{what} port {port} on {host} is {reason}; choose another with {flag} PORT, or {flag} 0 for any free port",
            ) from None
        raise
    return sock


def env_var_name(profile: str, backend: str) -> str:
    """``FIELDTUI_SECRET_<PROFILE>_<BACKEND>``: upper-cased, every non-alphanumeric made ``_``."""
    return re.sub(r"[^A-Za-z0-9]", "_", f"FIELDTUI_SECRET_{profile}_{backend}").upper()


def _client_host(host: str) -> str:
    """Where a client on this machine reaches a server bound to ``host``."""
    return "127.0.0.1" if host in ("", "0.0.0.0") else ("::1" if host == "::" else host)


class Simulator:
    def __init__(
        self,
        seed: int = 1,
        fleet_size: int = 200,
        host: str = "127.0.0.1",
        port: int = 0,
        mqtt_port: int = 0,
        telemetry_interval: float = 1.0,
        faults: Sequence[str] = (),
        credentials: SimCredentials | None = None,
    ) -> None:
        if fleet_size < 1:
            raise ValueError(f"fleet size must be at least 1, not {fleet_size}")
        self.seed = seed
        self.fleet_size = fleet_size
        self.host = host
        self.telemetry_interval = telemetry_interval
        #: Parsed now, so a bad ``--fault`` is a usage error before anything starts.
        self.fault_specs = [parse_fault_spec(spec) for spec in faults]
        self.credentials = credentials or SimCredentials()
        self._port = port
        self._mqtt_port: int | None = mqtt_port
        self._mqtt_protocol: str | None = None
        self.server: SimServer | None = None
        self._uvicorn: _QuietServer | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self.broker: Any | None = None
        self.mqtt_devices: Any | None = None
        #: Seconds ``start()`` took, for the benchmark and the start-up message.
        self.start_seconds = 0.0
        #: The MQTT keys file the last ``write_config`` wrote (None: none written).
        self.keys_path: Path | None = None

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        began = time.perf_counter()
        sock = _bind(self.host, self._port, "HTTP", "--port")
        try:
            broker_cls = _optional("fieldtui.sim.mqtt.broker", "Broker")
            if broker_cls is not None:
                # Reserve-and-release: the broker binds the port itself a moment later.
                probe = _bind(self.host, self._mqtt_port or 0, "MQTT", "--mqtt-port")
                self._mqtt_port = probe.getsockname()[1]
                probe.close()
            else:
                self._mqtt_port = None
            fleet: Fleet = await asyncio.to_thread(generate_fleet, self.seed, self.fleet_size)
            ctx = SimContext(fleet=fleet, credentials=self.credentials, rng=random.Random(self.seed))
            self.server = SimServer(ctx)
            for backend, key, value in self.fault_specs:
                self.server.faults.update(backend, {key: value})
            await self._serve_http(sock)
        except BaseException:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        if broker_cls is not None and self._mqtt_port is not None:
            try:
                await self._start_mqtt(broker_cls, self._mqtt_port)
            except BaseException:
                await self.stop()
                raise
        self.server.info = {
            "urls": self.urls,
            "mqtt": {"port": self.mqtt_port, "protocol": self.mqtt_protocol},
        }
        self.start_seconds = time.perf_counter() - began

    async def _start_mqtt(self, broker_cls: Any, port: int) -> None:
        assert self.server is not None
        broker = broker_cls(self.host, port)
        self.broker = broker
        self._mqtt_protocol = await broker.start()
        self.server.broker = broker
        devices_cls = _optional("fieldtui.sim.mqtt.devices", "MqttDevices")
        if devices_cls is not None:
            self.mqtt_devices = devices_cls(
                self.server.ctx, _client_host(self.host), port, self._mqtt_protocol, self.telemetry_interval
            )
            await self.mqtt_devices.start()
            self.server.mqtt_devices = self.mqtt_devices

    async def _serve_http(self, sock: socket.socket) -> None:
        assert self.server is not None
        config = uvicorn.Config(
            self.server,
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._uvicorn = _QuietServer(config)
        self._serve_task = asyncio.create_task(self._uvicorn.serve(sockets=[sock]))
        while not self._uvicorn.started:
            if self._serve_task.done():
                self._serve_task.result()  # raises what stopped it
                raise RuntimeError("the simulator's HTTP server stopped during start-up")
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        """Stop everything that was started (safe to call after a failed or partial start)."""
        devices_stopping: asyncio.Future[None] | None = None
        if self.mqtt_devices is not None:
            devices, self.mqtt_devices = self.mqtt_devices, None
            if self.server is not None:
                self.server.mqtt_devices = None
            # Bounded, and never waited on past the bound (asyncio.wait_for would wait for the
            # cancellation too): on Python 3.11 a cancellation can be swallowed inside a client's
            # own wait_for, and stopping the broker next ends the connection anyway.
            devices_stopping = asyncio.ensure_future(devices.stop())
            done, _ = await asyncio.wait({devices_stopping}, timeout=_PART_STOP_TIMEOUT)
            if not done:
                log.warning("the simulated MQTT devices did not stop within %.0f s", _PART_STOP_TIMEOUT)
        if self.broker is not None:
            broker, self.broker = self.broker, None
            await broker.stop()
        if devices_stopping is not None and not devices_stopping.done():
            await asyncio.wait({devices_stopping}, timeout=_PART_STOP_TIMEOUT)
            devices_stopping.cancel()
        if self._uvicorn is not None and self._serve_task is not None:
            self._uvicorn.should_exit = True
            await self._serve_task
            self._uvicorn = None
            self._serve_task = None

    # -- what clients need ----------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        host = _client_host(self.host)
        return f"http://[{host}]:{self._port}" if ":" in host else f"http://{host}:{self._port}"

    @property
    def urls(self) -> dict[str, str]:
        """Kind -> the backend URL as it goes in the config."""
        return {kind: self.base_url + prefix for kind, prefix in PREFIXES.items()}

    @property
    def mqtt_port(self) -> int | None:
        return self._mqtt_port if self.broker is not None else None

    @property
    def mqtt_host(self) -> str:
        """Where MQTT clients connect (the broker listens on ``host``)."""
        return _client_host(self.host)

    @property
    def mqtt_protocol(self) -> str | None:
        return self._mqtt_protocol

    @property
    def fleet(self) -> Fleet:
        assert self.server is not None, "start() the simulator first"
        return self.server.ctx.fleet

    def env(self) -> dict[str, str]:
        """The secrets' environment variables for the written config's profile.

        MQTT's is the backend's shared key, fieldtui's fallback for a device with no key of its
        own. No simulated device takes it: document 003 gives every device its own key (see
        ``mqtt_keys``, written to the keys file) and names no shared one."""
        return {
            env_var_name(PROFILE, name): self.credentials.secret_for(kind)
            for kind, name in BACKEND_NAMES.items()
        }

    def mqtt_key(self, device_id: str) -> str:
        """The access key simulated MQTT device ``device_id`` was registered with."""
        return device_access_key(self.credentials.mqtt_access_key, device_id)

    def mqtt_keys(self) -> dict[str, str]:
        """Device id -> its own access key, for every MQTT device of the fleet."""
        return {device_id: self.mqtt_key(device_id) for device_id in self.fleet.of("mqtt")}

    def config_text(self, keys_file: str | os.PathLike[str] | None = None) -> str:
        def q(value: str) -> str:
            return json.dumps(value)  # a JSON string of ASCII text is a valid TOML basic string

        urls = self.urls
        lines = [
            "# Written by `fieldtui sim`: every backend points at the simulator.",
            "# Secrets are in the .env file beside this one (FIELDTUI_SECRET_* variables).",
            f"default_profile = {q(PROFILE)}",
            "",
        ]
        for kind in ("mysensor", "things", "devicehq", "fleet"):
            lines += [
                f"[profiles.{PROFILE}.backends.{BACKEND_NAMES[kind]}]",
                f"kind = {q(kind)}",
                f"url = {q(urls[kind])}",
            ]
            if kind == "things":
                lines.append(f"client_id = {q(self.credentials.things_client_id)}")
            lines.append("")
        if self.mqtt_port is not None:
            protocol = "5" if self.mqtt_protocol in (None, "5") else q("3.1.1")
            lines += [
                f"[profiles.{PROFILE}.backends.{BACKEND_NAMES['mqtt']}]",
                'kind = "mqtt"',
                f"host = {q(self.mqtt_host)}",
                f"port = {self.mqtt_port}",
                "tls = false",
                f"protocol = {protocol}",
            ]
            if keys_file is not None:
                lines += [
                    "# Every MQTT device has its own access key (document 003: from the Register",
                    "# Device API); fieldtui reads them from this file (mode 0600).",
                    f"keys_file = {q(str(keys_file))}",
                ]
            lines.append("")
        return "\n".join(lines)

    def write_config(self, path: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write the config TOML at ``path``, the secrets at ``path.env`` and, with a broker,
        every MQTT device's own key at ``<stem>-live-keys.toml`` (``keys_path``), the last two
        0600 from creation."""
        config_path = Path(path).expanduser()
        config_path.parent.mkdir(parents=True, exist_ok=True)
        keys_path: Path | None = None
        if self.mqtt_port is not None:
            keys_path = config_path.with_name(f"{config_path.stem}-{BACKEND_NAMES['mqtt']}-keys.toml")
            _write_private(
                keys_path,
                "# fieldtui sim: each MQTT device's own access key (user property access_key).\n"
                + "".join(f"{json.dumps(d)} = {json.dumps(k)}\n" for d, k in self.mqtt_keys().items()),
            )
        self.keys_path = keys_path
        config_path.write_text(self.config_text(keys_path), encoding="utf-8")
        env_path = Path(f"{config_path}.env")
        _write_private(env_path, "".join(f"{name}={value}\n" for name, value in self.env().items()))
        return config_path, env_path


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)  # an older file may have been created wider
        handle.write(text)
