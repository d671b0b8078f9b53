"""The simulator's MQTT broker: mosquitto as a child process, else amqtt in-process.

Mosquitto (when it is on PATH) speaks MQTT 5, so the user properties document 003 relies on
(``device_id``, ``access_key``) travel end to end. Without it an embedded amqtt broker takes
the same port, but amqtt speaks MQTT 3.1.1 only: clients must then connect with 3.1.1 and
there are no user properties. :meth:`Broker.start` says which one it got.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PROTOCOL_V5 = "5"
PROTOCOL_V311 = "3.1.1"

#: How long a starting broker may take before it counts as failed.
START_TIMEOUT = 10.0
#: How long a stopping mosquitto gets after SIGTERM before SIGKILL.
STOP_GRACE = 3.0
#: Broker output lines kept for error messages (mosquitto's stdout is never printed).
_OUTPUT_LINES = 200


#: Runs mosquitto under a watchdog shell: the shell's stdin is a pipe from this process, and
#: when it reaches EOF (stop() closes it, or this process dies, however it dies) mosquitto gets
#: SIGTERM. A killed simulator thus never leaves a broker holding its port. (PR_SET_PDEATHSIG
#: would not do: mosquitto started as root drops privileges, which clears it.)
#: The shell's own exit status is mosquitto's.
_WATCHDOG_SCRIPT = """
exec 3<&0 </dev/null
"$1" -c "$2" 3<&- &
broker=$!
{ read -r _ <&3; kill -TERM "$broker"; } >/dev/null 2>&1 &
exec 3<&-
wait "$broker"
"""


#: Events of the simulated devices waiting to reconnect, by broker port. A Broker in this
#: process sets them the moment it has (re)started on that port, so the devices are back at
#: once instead of at their next backoff tick (a lookup right after a restart must find them).
_start_watchers: dict[int, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}


def watch_broker_starts(port: int) -> asyncio.Event:
    """An event set whenever a :class:`Broker` of this process starts on ``port``."""
    event = asyncio.Event()
    _start_watchers.setdefault(port, set()).add((asyncio.get_running_loop(), event))
    return event


def unwatch_broker_starts(port: int, event: asyncio.Event) -> None:
    watchers = _start_watchers.get(port, set())
    for entry in [w for w in watchers if w[1] is event]:
        watchers.discard(entry)
    if not watchers:
        _start_watchers.pop(port, None)


def _announce_start(port: int) -> None:
    for loop, event in list(_start_watchers.get(port, ())):
        with contextlib.suppress(RuntimeError):  # that loop has closed meanwhile
            loop.call_soon_threadsafe(event.set)


def _close_stdin(process: asyncio.subprocess.Process) -> None:
    if process.stdin is not None and not process.stdin.is_closing():
        process.stdin.close()


class BrokerError(RuntimeError):
    """The broker could not start (port in use, mosquitto exited, no answer in time)."""


class Broker:
    """One MQTT broker on ``host:port`` that can be stopped, started and restarted.

    ``prefer_mosquitto=False`` forces the amqtt fallback (as if mosquitto were not installed);
    ``mosquitto`` names the executable to use instead of looking it up on PATH.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        prefer_mosquitto: bool = True,
        mosquitto: str | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.host = host
        self.port = port
        self.start_timeout = start_timeout
        self._mosquitto_path = (mosquitto or shutil.which("mosquitto")) if prefer_mosquitto else None
        #: "5" while mosquitto runs, "3.1.1" while amqtt runs, None when stopped.
        self.protocol: str | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._amqtt: Any = None  # amqtt.broker.Broker, imported only when needed
        self._output: deque[str] = deque(maxlen=_OUTPUT_LINES)

    # -- public interface ----------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        if self._process is not None:
            return self._process.returncode is None
        return self._amqtt is not None

    @property
    def output(self) -> list[str]:
        """The last lines the broker wrote (mosquitto's stdout and stderr), oldest first."""
        return list(self._output)

    async def start(self) -> str:
        """Start the broker and wait until it accepts connections; return its MQTT protocol."""
        if self.is_running:
            assert self.protocol is not None
            return self.protocol
        self._check_port_free()
        if self._mosquitto_path is not None:
            await self._start_mosquitto(self._mosquitto_path)
            self.protocol = PROTOCOL_V5
        else:
            await self._start_amqtt()
            self.protocol = PROTOCOL_V311
        log.info("MQTT broker (%s) listening on %s:%d", self.protocol, self.host, self.port)
        _announce_start(self.port)
        return self.protocol

    async def stop(self) -> None:
        """Stop the broker (idempotent). Clients see their connections drop."""
        if self._process is not None:
            await self._stop_mosquitto()
        if self._amqtt is not None:
            broker, self._amqtt = self._amqtt, None
            with contextlib.suppress(Exception):  # a broken amqtt shutdown must not block a stop
                await broker.shutdown()
        self.protocol = None

    async def restart(self) -> str:
        """Stop, then start again on the same port (fault injection: "restart the broker")."""
        await self.stop()
        return await self.start()

    async def __aenter__(self) -> Broker:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- port handling -------------------------------------------------------------------
    def _check_port_free(self) -> None:
        """Fail early and clearly when something already listens on the port.

        Waiting for the port to accept connections is no proof that *our* broker answers when
        another server holds it, so the port is probed before starting. SO_REUSEADDR, as both
        brokers set it, so a socket of our own previous run in TIME_WAIT does not count.
        """
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise BrokerError(f"cannot resolve broker host {self.host!r}: {exc}") from exc
        family, _, _, _, address = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise BrokerError(
                        f"cannot start the MQTT broker: port {self.port} on {self.host} is already in use "
                        "(another broker or program listens there; pick another port, e.g. --mqtt-port)"
                    ) from exc
                raise BrokerError(f"cannot start the MQTT broker on {self.host}:{self.port}: {exc}") from exc

    async def _port_accepts(self) -> bool:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 0.5)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    # -- mosquitto -----------------------------------------------------------------------
    def _write_config(self) -> Path:
        self._tmpdir = tempfile.TemporaryDirectory(prefix="fieldtui-mosquitto-")
        conf = Path(self._tmpdir.name) / "mosquitto.conf"
        # As root, mosquitto reads this file and then drops to the `mosquitto` user, which
        # could not write a log file in this root-owned directory: log to stdout (captured).
        conf.write_text(
            "\n".join(
                (
                    "per_listener_settings false",
                    "allow_anonymous true",
                    "persistence false",
                    "log_dest stdout",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "connection_messages false",
                    "log_timestamp false",
                    "set_tcp_nodelay true",
                    f"listener {self.port} {self.host}",
                    "",
                )
            )
        )
        return conf

    async def _start_mosquitto(self, executable: str) -> None:
        conf = self._write_config()
        self._output.clear()
        try:
            self._process = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                _WATCHDOG_SCRIPT,
                "fieldtui-mosquitto",
                executable,
                str(conf),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                # Its own process group: a Ctrl-C in the terminal is ours to handle (stop()
                # ends the broker in order), and the group is what a last-resort kill targets.
                start_new_session=True,
            )
        except OSError as exc:
            self._cleanup_tmpdir()
            raise BrokerError(f"cannot run {executable}: {exc}") from exc
        self._reader = asyncio.create_task(self._read_output(self._process), name="mosquitto-output")
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._process.returncode is not None:
                await self._reap_after_failure()
                raise BrokerError(self._failure_message("mosquitto exited while starting"))
            if await self._port_accepts():
                # The port answers; make sure it is still our process that holds it.
                await asyncio.sleep(0.02)
                if self._process.returncode is None:
                    return
                continue
            if time.monotonic() > deadline:
                await self._stop_mosquitto()
                raise BrokerError(
                    self._failure_message(
                        f"mosquitto did not accept connections on {self.host}:{self.port} "
                        f"within {self.start_timeout:.0f} s"
                    )
                )
            await asyncio.sleep(0.05)

    def _failure_message(self, what: str) -> str:
        lines = [line for line in self._output if line.strip()]
        text = " | ".join(lines[-5:])
        if "Address already in use" in text:
            return f"cannot start the MQTT broker: port {self.port} on {self.host} is already in use"
        return f"{what}: {text}" if text else what

    async def _read_output(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while True:
            line = await process.stdout.readline()
            if not line:
                return
            self._output.append(line.decode(errors="replace").rstrip())

    async def _reap_after_failure(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            _close_stdin(process)  # lets the watchdog's reader exit too
            await process.wait()
        if self._reader is not None:
            # The pipe closes when the process exits: this returns once the last line is read.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reader, 1.0)
        self._reader = None
        self._cleanup_tmpdir()

    async def _stop_mosquitto(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            _close_stdin(process)  # the watchdog sends mosquitto SIGTERM
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE)
            except TimeoutError:
                log.warning("mosquitto did not stop within %.0f s of SIGTERM; killing it", STOP_GRACE)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        if self._reader is not None:
            reader, self._reader = self._reader, None
            try:
                await asyncio.wait_for(reader, 1.0)
            except TimeoutError:
                reader.cancel()
        self._cleanup_tmpdir()

    def _cleanup_tmpdir(self) -> None:
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    # -- amqtt fallback ------------------------------------------------------------------
    async def _start_amqtt(self) -> None:
        # Imported here: amqtt is heavy and only the fallback needs it.
        from amqtt.broker import Broker as AmqttBroker

        config: dict[str, Any] = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            # No $SYS plugin, no packet logger: only anonymous access, like the mosquitto config.
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        broker = AmqttBroker(config)
        try:
            await broker.start()
        except Exception as exc:
            raise BrokerError(
                f"cannot start the embedded amqtt broker on {self.host}:{self.port}: {exc}"
            ) from exc
        # amqtt.start() returns once its listening socket is open: no need to probe (a probe
        # connection that sends nothing makes amqtt log an error).
        self._amqtt = broker
