"""The simulated MQTT devices of document 003, all behind one broker connection.

Every device of ``ctx.fleet.of("mqtt")`` lives here, but a fleet of thousands must not open
thousands of connections: ONE client connection publishes on behalf of every device, with the
user properties ``device_id`` / ``access_key`` each device would set, and answers the requests
a technician publishes to any device (``v1/device/+/...``).

Scale, the choice made:
* The *active set* is the first ``active_limit`` (200) online devices in fleet order, plus up
  to ``promoted_limit`` (64) devices that recently received a request (a technician working on
  a device far down the list sees it come alive). Only these publish telemetry every
  ``interval`` seconds, staggered evenly across the interval rather than in one burst.
* Every other online device publishes ONE retained telemetry message after each (re)connect,
  in paced batches, so a subscriber still learns at once that it exists and how it reads.
  Re-sent on reconnect because a restarted broker (persistence off) has lost it.
* Every online device publishes "Update Device" (``.../update``: ``firmware_version``,
  ``name``) RETAINED after each (re)connect and again after a firmware update, so a lookup
  learns what the device runs without asking it.
* Per-device state (config, commands, licences) is created on first use, so idle devices cost
  nothing beyond the fleet record itself.

Directions (document 003). A topic documented with ``userProperties`` is published BY the
device (telemetry, ``config/update``, ``commands/update``, ``license/update``, ``update``,
``cloud_settings/update``, ``get``); a topic documented with a ``responseTopic`` is a request TO
the device (``config``, ``commands``, ``license``); ``space_info`` and ``firmware`` go to the
device too. The simulator also plays the cloud's side of ``get`` ("request the latest
snapshot"): whoever publishes it with a device's credentials gets the snapshot on the device's
topics, as the cloud would send it. It never treats ``update`` as a request: that is the device's
own report.

Keys. Document 003 authenticates a device by "the same device ID and access key that you got
using the Register Device API": every device has its own key (:func:`device_access_key`) and
the document names no shared or fleet key, so none is accepted. ``fieldtui sim --write-config``
writes every device's key into a keys file (0600).

Requests, as the cloud and the device answer them:
* MQTT 5: a request counts only if its user property ``access_key`` is that device's own key
  (and ``device_id``, when given, names the device in the topic); anything else is refused
  silently, as document 003 defines no error answer, and counted (``refused_requests`` in
  :meth:`MqttDevices.inspect`, ``stats["refused"]``). MQTT 3.1.1 has no user properties:
  every request counts.
* Answers go to the request's MQTT 5 ``ResponseTopic`` (with its ``CorrelationData``) when set,
  else to the documented response topic (``.../config`` answers on ``.../config/update``).
* ``.../get`` is answered by the cloud, so for every registered device, online or not, and
  whether or not it ever published: space info, config, the next unfinished command, every
  licence and, when the firmware is not the latest, the firmware event.
* ``.../cloud_settings/update`` (``{property, value}``) is recorded by the cloud for any
  registered device (``cloud_settings`` in :meth:`MqttDevices.inspect`, and every message taken
  in order as ``cloud_settings_received``); it has no answer, and the device's configuration
  reports them (``cloud_settings`` in ``config/update``).
* Offline devices (``SimDevice.online`` false) publish nothing and answer no config or licence
  request; a command sent to one is held by the cloud as ``pending`` (announced in snapshots)
  and never run while the device stays offline.
* The device subscribes to ``.../commands`` and ``.../license`` and also publishes snapshots on
  them; on MQTT 5 the subscriptions are "no local" so it never hears itself, on 3.1.1 its own
  echoes are recognised (known command id, licence with no operation) and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from fieldtui.sim.context import SimContext
from fieldtui.sim.fleet import SimDevice
from fieldtui.sim.mqtt.broker import PROTOCOL_V5, PROTOCOL_V311, unwatch_broker_starts, watch_broker_starts
from fieldtui.sim.mqtt.state import (
    KNOWN_COMMANDS,
    LATEST_FIRMWARE,
    Command,
    DeviceState,
    License,
    MetricBaseline,
    device_access_key,
    device_rng,
    device_update_payload,
    firmware_payload,
    license_payload,
    space_info_payload,
    telemetry_payload,
)

log = logging.getLogger(__name__)

TOPIC_PREFIX = "v1/device/"
#: The topics answered (after ``v1/device/ID/``): the requests to the device (documented with a
#: ``responseTopic``), ``get``, the snapshot request the cloud side answers, and
#: ``cloud_settings/update``, which the cloud records.
REQUEST_TOPICS = ("get", "config", "commands", "license", "cloud_settings/update")
#: What the cloud itself handles for a registered device that is offline or never published.
CLOUD_TOPICS = ("get", "commands", "cloud_settings/update")
#: Batch size when the idle part of the fleet publishes its one retained message.
_SEED_BATCH = 50
_BACKLOG_LIMIT = 1_000
_BACKOFF_FIRST = 0.05
_BACKOFF_MAX = 1.0


@dataclass(slots=True)
class _Outgoing:
    topic: str
    payload: dict[str, Any]
    device_id: str
    qos: int
    correlation: bytes | None
    retain: bool = False


class MqttDevices:
    """Every simulated MQTT device, publishing and answering through one client connection."""

    def __init__(
        self,
        ctx: SimContext,
        host: str,
        port: int,
        protocol: str,
        interval: float = 1.0,
        *,
        active_limit: int = 200,
        promoted_limit: int = 64,
        command_step: float = 0.2,
        connect_timeout: float = 5.0,
    ) -> None:
        if protocol not in (PROTOCOL_V5, PROTOCOL_V311):
            raise ValueError(f"protocol must be {PROTOCOL_V5!r} or {PROTOCOL_V311!r}, not {protocol!r}")
        self.ctx = ctx
        self.host = host
        self.port = port
        self.protocol = protocol
        self.interval = interval
        self.active_limit = active_limit
        self.promoted_limit = promoted_limit
        #: Seconds per step of a command's progress (in_progress, then done a few steps later).
        self.command_step = command_step
        self.connect_timeout = connect_timeout
        self._v5 = protocol == PROTOCOL_V5
        #: The fleet the per-device state belongs to: the simulator's reset swaps ctx.fleet.
        self._fleet = ctx.fleet
        self._reseed = asyncio.Event()
        self._states: dict[str, DeviceState] = {}
        self._keys: dict[str, str] = {}
        self._promoted: OrderedDict[str, None] = OrderedDict()
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._run_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._jobs: set[asyncio.Task[None]] = set()
        #: Command and licence answers produced while disconnected, sent after reconnecting.
        self._backlog: deque[_Outgoing] = deque(maxlen=_BACKLOG_LIMIT)
        self._identifier = f"fieldtui-sim-devices-{secrets.token_hex(4)}"
        #: Counters for tests and the runner's status line.
        self.stats: dict[str, int] = {
            "telemetry": 0,
            "retained_seed": 0,
            "device_updates": 0,
            "responses": 0,
            "requests": 0,
            "ignored": 0,
            "refused": 0,
            "connects": 0,
        }

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def start(self) -> None:
        """Connect and subscribe; returns once ready, or after ``connect_timeout`` while the
        connection keeps being retried in the background (a broker may come up later)."""
        if self._run_task is not None:
            return
        self._run_task = asyncio.create_task(self._run(), name="sim-mqtt-devices")
        try:
            await asyncio.wait_for(self._connected.wait(), self.connect_timeout)
        except TimeoutError:
            log.warning(
                "simulated MQTT devices: no broker on %s:%d yet; retrying in the background",
                self.host,
                self.port,
            )

    async def stop(self) -> None:
        self._stopping = True
        task, self._run_task = self._run_task, None
        await _cancel_until_done([*self._jobs, *([task] if task is not None else [])])
        self._connected.clear()
        self._stopping = False

    async def wait_connected(self, timeout: float) -> None:
        """Wait until the devices are connected and subscribed (for tests and the runner)."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    # -- inspection ----------------------------------------------------------------------
    def inspect(self, device_id: str) -> dict[str, Any] | None:
        """A device's current state as plain data, or None when no such MQTT device exists."""
        device = self._devices().get(device_id)
        if device is None:
            return None
        state = self._state(device)
        return {
            "id": device.id,
            "name": device.name,
            "model": device.model,
            "firmware": device.firmware,
            "online": device.online,
            "config": state.config_payload(),
            "commands": [command.as_dict() for command in state.commands.values()],
            "licenses": [
                {"id": lic.id, "data": lic.data, "signature": lic.signature, "state": lic.state}
                for lic in state.licenses.values()
            ],
            "cloud_settings": json.loads(json.dumps(state.cloud_settings)),
            "cloud_settings_received": json.loads(json.dumps(state.cloud_settings_received)),
            "refused_requests": state.refused,
            "telemetries": dict(state.last_telemetries) if state.last_telemetries is not None else None,
            "messages_published": state.messages_published,
        }

    def active_ids(self) -> list[str]:
        """Ids of the devices currently publishing telemetry at the interval."""
        return [device.id for device in self._active_devices()]

    # -- connection ----------------------------------------------------------------------
    async def _run(self) -> None:
        broker_started = watch_broker_starts(self.port)
        try:
            await self._connect_forever(broker_started)
        finally:
            unwatch_broker_starts(self.port, broker_started)

    async def _connect_forever(self, broker_started: asyncio.Event) -> None:
        backoff = _BACKOFF_FIRST
        lost_since_logged = False
        while not self._stopping:
            broker_started.clear()
            try:
                async with aiomqtt.Client(
                    self.host,
                    self.port,
                    identifier=self._identifier,
                    protocol=aiomqtt.ProtocolVersion.V5 if self._v5 else aiomqtt.ProtocolVersion.V311,
                    keepalive=15,
                    timeout=5.0,
                ) as client:
                    # Seeding publishes a batch concurrently; aiomqtt warns above 10 pending.
                    client.pending_calls_threshold = _SEED_BATCH + 100
                    await self._subscribe(client)
                    self._client = client
                    self._connected.set()
                    self.stats["connects"] += 1
                    backoff = _BACKOFF_FIRST
                    if lost_since_logged:
                        log.info("simulated MQTT devices reconnected to %s:%d", self.host, self.port)
                        lost_since_logged = False
                    await self._flush_backlog(client)
                    async with asyncio.TaskGroup() as group:
                        group.create_task(self._receive(client))
                        group.create_task(self._telemetry_loop(client))
                        group.create_task(self._seed_loop(client))
            except* (aiomqtt.MqttError, OSError) as failure:
                # One line per outage, not one per attempt: a stopped broker is expected
                # during fault injection and must not flood the log.
                if not lost_since_logged and not self._stopping:
                    log.warning(
                        "simulated MQTT devices lost the broker at %s:%d (%s); reconnecting",
                        self.host,
                        self.port,
                        failure.exceptions[0],
                    )
                    lost_since_logged = True
            finally:
                self._client = None
                self._connected.clear()
            if self._stopping:
                # Disconnecting while being cancelled can fail too (an MqttError replacing
                # the CancelledError): that must not send this loop round again.
                return
            # Retry after the backoff, or at once when our broker reports it has (re)started.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(broker_started.wait(), backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        topics = [f"{TOPIC_PREFIX}+/{suffix}" for suffix in REQUEST_TOPICS]
        if self._v5:
            # noLocal: the device also publishes on .../commands and .../license (the snapshot)
            # and must not receive that as a request.
            options = SubscribeOptions(qos=1, noLocal=True)
            await client.subscribe([(topic, options) for topic in topics])
        else:
            await client.subscribe([(topic, 1) for topic in topics])

    def access_key(self, device_id: str) -> str:
        """The device's own access key (the one its registration gave it)."""
        key = self._keys.get(device_id)
        if key is None:
            key = self._keys[device_id] = device_access_key(self.ctx.credentials.mqtt_access_key, device_id)
        return key

    def _properties(self, device_id: str, correlation: bytes | None = None) -> Properties | None:
        if not self._v5:
            return None
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]  # paho leaves __init__ untyped
        props.UserProperty = [("device_id", device_id), ("access_key", self.access_key(device_id))]
        if correlation is not None:
            props.CorrelationData = correlation
        return props

    async def _send(
        self,
        topic: str,
        payload: dict[str, Any],
        device_id: str,
        *,
        qos: int = 1,
        correlation: bytes | None = None,
        retain: bool = False,
    ) -> None:
        """Publish an answer; kept for after the reconnect if the broker is away."""
        outgoing = _Outgoing(topic, payload, device_id, qos, correlation, retain)
        client = self._client
        if client is None:
            self._backlog.append(outgoing)
            return
        try:
            await self._publish(client, outgoing)
        except aiomqtt.MqttError:
            self._backlog.append(outgoing)

    async def _publish(self, client: aiomqtt.Client, outgoing: _Outgoing) -> None:
        await client.publish(
            outgoing.topic,
            json.dumps(outgoing.payload, separators=(",", ":")),
            qos=outgoing.qos,
            retain=outgoing.retain,
            properties=self._properties(outgoing.device_id, outgoing.correlation),
        )
        self.stats["responses"] += 1
        state = self._states.get(outgoing.device_id)
        if state is not None:
            state.messages_published += 1

    async def _flush_backlog(self, client: aiomqtt.Client) -> None:
        while self._backlog:
            outgoing = self._backlog[0]
            await self._publish(client, outgoing)
            self._backlog.popleft()

    # -- telemetry -----------------------------------------------------------------------
    def _state(self, device: SimDevice) -> DeviceState:
        state = self._states.get(device.id)
        if state is None:
            state = DeviceState.initial(self.ctx.fleet.seed, device, self.ctx.now(), self.interval)
            self._states[device.id] = state
        return state

    def _devices(self) -> dict[str, SimDevice]:
        """The MQTT devices of the current fleet; a new fleet (a reset) starts from scratch."""
        fleet = self.ctx.fleet
        if fleet is not self._fleet:
            self._fleet = fleet
            self._states.clear()
            self._promoted.clear()
            self._reseed.set()  # the broker's retained readings describe the old fleet
        return fleet.of("mqtt")

    def _active_devices(self) -> list[SimDevice]:
        devices = self._devices()
        active: list[SimDevice] = []
        for device in devices.values():
            if len(active) >= self.active_limit:
                break
            if device.online:
                active.append(device)
        chosen = {device.id for device in active}
        for device_id in self._promoted:
            promoted = devices.get(device_id)
            if promoted is not None and promoted.online and device_id not in chosen:
                active.append(promoted)
        return active

    def _promote(self, device_id: str) -> None:
        self._promoted[device_id] = None
        self._promoted.move_to_end(device_id)
        while len(self._promoted) > self.promoted_limit:
            self._promoted.popitem(last=False)

    async def _publish_telemetry(self, client: aiomqtt.Client, device: SimDevice) -> None:
        state = self._state(device)
        now = self.ctx.now()
        telemetries = state.baseline.sample(self.ctx.rng, device.rssi)
        # retain=True: the broker keeps each device's latest reading, so a technician's
        # subscriber (the connector's device lookup) learns immediately that the device exists
        # and what it last said, instead of waiting up to an interval for the next sample.
        await client.publish(
            f"{TOPIC_PREFIX}{device.id}/telemetry",
            json.dumps(telemetry_payload(telemetries, now), separators=(",", ":")),
            qos=0,
            retain=True,
            properties=self._properties(device.id),
        )
        state.last_telemetries = telemetries
        state.messages_published += 1
        device.last_seen = now
        self.stats["telemetry"] += 1

    async def _telemetry_loop(self, client: aiomqtt.Client) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            cycle_start = loop.time()
            active = self._active_devices()
            spacing = self.interval / max(1, len(active))
            for index, device in enumerate(active):
                if self._stopping:
                    return
                # Staggered: device i publishes at start + i * interval / n, not all at once.
                delay = cycle_start + index * spacing - loop.time()
                if delay > 0.002:
                    await asyncio.sleep(delay)
                if device.online:
                    await self._publish_telemetry(client, device)
            await asyncio.sleep(max(0.0, cycle_start + self.interval - loop.time()))

    async def _seed_loop(self, client: aiomqtt.Client) -> None:
        """Seed after every (re)connect, and again whenever the fleet is replaced."""
        while True:
            self._reseed.clear()
            await self._seed_retained(client)
            await self._reseed.wait()

    async def _seed_retained(self, client: aiomqtt.Client) -> None:
        """One retained reading for every online device outside the active set (the active
        ones publish theirs at the interval), then every online device's retained "Update
        Device"."""
        seed = self.ctx.fleet.seed
        rng = self.ctx.rng
        active = {device.id for device in self._active_devices()}
        online = [device for device in self._devices().values() if device.online]
        idle = [device for device in online if device.id not in active]
        for start in range(0, len(idle), _SEED_BATCH):
            if self._stopping:
                return
            batch = idle[start : start + _SEED_BATCH]
            await asyncio.gather(*(self._seed_one(client, seed, rng, d) for d in batch))
        for start in range(0, len(online), _SEED_BATCH):
            if self._stopping:
                return
            batch = online[start : start + _SEED_BATCH]
            await asyncio.gather(*(self._publish_device_update(client, d) for d in batch))

    async def _publish_device_update(self, client: aiomqtt.Client, device: SimDevice) -> None:
        """Document 003 "Update Device": what the device runs and what it is called, retained."""
        await client.publish(
            f"{TOPIC_PREFIX}{device.id}/update",
            json.dumps(device_update_payload(device), separators=(",", ":")),
            qos=1,
            retain=True,  # a lookup finds the device's firmware at once, as its telemetry
            properties=self._properties(device.id),
        )
        self.stats["device_updates"] += 1

    async def _seed_one(
        self, client: aiomqtt.Client, seed: int, rng: random.Random, device: SimDevice
    ) -> None:
        state = self._states.get(device.id)
        baseline = (
            state.baseline
            if state is not None
            else MetricBaseline.for_device(device_rng(seed, device.id), device.model)
        )
        await client.publish(
            f"{TOPIC_PREFIX}{device.id}/telemetry",
            json.dumps(
                telemetry_payload(baseline.sample(rng, device.rssi), self.ctx.now()), separators=(",", ":")
            ),
            qos=0,
            retain=True,  # see _publish_telemetry: a late subscriber finds every device at once
            properties=self._properties(device.id),
        )
        device.last_seen = self.ctx.now()
        self.stats["retained_seed"] += 1

    # -- requests ------------------------------------------------------------------------
    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self._dispatch(message)

    def _dispatch(self, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        if not topic.startswith(TOPIC_PREFIX):
            return
        device_id, _, action = topic[len(TOPIC_PREFIX) :].partition("/")
        device = self._devices().get(device_id)
        if device is None or action not in REQUEST_TOPICS:
            # Not a registered device: nobody is there to answer.
            self.stats["ignored"] += 1
            return
        response_topic: str | None = None
        correlation: bytes | None = None
        if self._v5:
            props = message.properties
            user = dict(getattr(props, "UserProperty", None) or [])
            claimed = user.get("device_id")
            if user.get("access_key") != self.access_key(device_id) or (
                claimed is not None and claimed != device_id
            ):
                self.stats["refused"] += 1
                self._state(device).refused += 1
                log.debug("refused %s: not this device's access_key/device_id", topic)
                return
            response_topic = getattr(props, "ResponseTopic", None) or None
            raw_correlation = getattr(props, "CorrelationData", None)
            correlation = bytes(raw_correlation) if raw_correlation else None
        if not device.online and action not in CLOUD_TOPICS:
            # Offline: the device is not there to answer a config or licence request.
            self.stats["ignored"] += 1
            return
        payload = _decode(message.payload)
        self.stats["requests"] += 1
        self._promote(device_id)
        self._spawn(self._handle(device, action, payload, response_topic, correlation))

    def _spawn(self, coro: Any) -> None:
        job: asyncio.Task[None] = asyncio.create_task(coro)
        self._jobs.add(job)
        job.add_done_callback(self._job_done)

    def _job_done(self, job: asyncio.Task[None]) -> None:
        self._jobs.discard(job)
        if not job.cancelled() and job.exception() is not None:
            log.error("simulated MQTT device request failed", exc_info=job.exception())

    async def _handle(
        self,
        device: SimDevice,
        action: str,
        payload: Any,
        response_topic: str | None,
        correlation: bytes | None,
    ) -> None:
        state = self._state(device)
        base = f"{TOPIC_PREFIX}{device.id}"
        if action == "get":
            await self._send_snapshot(device, state)
        elif action == "config":
            await self._send(
                response_topic or f"{base}/config/update",
                state.config_payload(),
                device.id,
                correlation=correlation,
            )
        elif action == "commands":
            await self._accept_command(device, state, payload, response_topic, correlation)
        elif action == "license":
            await self._apply_license(
                device, state, payload, response_topic or f"{base}/license/update", correlation
            )
        elif action == "cloud_settings/update":
            self._set_cloud_setting(state, payload)

    def _set_cloud_setting(self, state: DeviceState, payload: Any) -> None:
        """Document 003 "Set Cloud Settings": ``{"property": NAME, "value": VALUE}``, kept by the
        cloud. The document lists no properties, so any non-empty name is kept."""
        if not isinstance(payload, dict) or "value" not in payload:
            return
        name = payload.get("property")
        if isinstance(name, str) and name.strip():
            state.cloud_settings[name.strip()] = payload["value"]
            state.cloud_settings_received.append({"property": name.strip(), "value": payload["value"]})

    async def _send_snapshot(self, device: SimDevice, state: DeviceState) -> None:
        # A snapshot spans several topics, so a ResponseTopic (one topic) cannot apply to it.
        base = f"{TOPIC_PREFIX}{device.id}"
        now = self.ctx.now()
        await self._send(f"{base}/space_info", space_info_payload(device, state, now), device.id)
        await self._send(f"{base}/config/update", state.config_payload(), device.id)
        command = state.next_command()
        if command is not None:
            await self._send(f"{base}/commands", command.as_dict(), device.id)
        for lic in state.licenses.values():
            if lic.state == "inuse":
                await self._send(f"{base}/license", license_payload(lic), device.id)
        if device.firmware != LATEST_FIRMWARE:
            await self._send(f"{base}/firmware", firmware_payload(), device.id)

    # -- commands ------------------------------------------------------------------------
    async def _accept_command(
        self,
        device: SimDevice,
        state: DeviceState,
        payload: Any,
        response_topic: str | None,
        correlation: bytes | None,
    ) -> None:
        if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
            return  # not a command: nothing to report on, as there is no id to report against
        status = payload.get("status", "pending")
        command_id = payload.get("id")
        if status != "pending" or (isinstance(command_id, str) and command_id in state.commands):
            return  # a status echo or a duplicate delivery (QoS 1 may deliver twice)
        parameters = payload.get("parameters")
        command = Command(
            id=command_id if isinstance(command_id, str) and command_id else str(uuid.uuid4()),
            name=payload["name"],
            parameters=parameters if isinstance(parameters, dict) else {},
        )
        state.commands[command.id] = command
        if not device.online:
            return  # held by the cloud, pending, for when the device is back
        self._spawn(
            self._run_command(
                device,
                state,
                command,
                response_topic,
                correlation,
                parameters_ok=parameters is None or isinstance(parameters, dict),
            )
        )

    async def _run_command(
        self,
        device: SimDevice,
        state: DeviceState,
        command: Command,
        response_topic: str | None,
        correlation: bytes | None,
        *,
        parameters_ok: bool,
    ) -> None:
        topic = response_topic or f"{TOPIC_PREFIX}{device.id}/commands/update"

        async def report(status: str, message: str | None = None) -> None:
            command.status = status
            command.message = message
            body: dict[str, Any] = {"status": status, "id": command.id}
            if message is not None:
                body["message"] = message
            await self._send(topic, body, device.id, correlation=correlation)

        async with state.command_lock:
            await asyncio.sleep(self.command_step / 2)
            if command.name not in KNOWN_COMMANDS:
                # Rejected before starting: a device does not run what it does not know.
                await report(
                    "error",
                    f"unknown command {command.name!r}; this device supports {', '.join(KNOWN_COMMANDS)}",
                )
                return
            if not parameters_ok:
                await report("error", "parameters must be a JSON object")
                return
            await report("in_progress")
            outcome = await self._execute(device, state, command)
            if outcome.startswith("error:"):
                await report("error", outcome.removeprefix("error:").strip())
            else:
                await report("done", outcome)

    async def _execute(self, device: SimDevice, state: DeviceState, command: Command) -> str:
        """Carry the command out; return the done message, or ``error: why``."""
        params = command.parameters
        if command.name == "update_firmware":
            version = params.get("version")
            if not isinstance(version, str) or not version:
                return "error: update_firmware needs parameters.version"
            await asyncio.sleep(self.command_step * 4)  # download, flash, reboot
            device.firmware = version
            # Back from the reboot, the device announces what it now runs (retained), before
            # it reports the command done: whoever sees "done" finds the new version.
            await self._send(
                f"{TOPIC_PREFIX}{device.id}/update", device_update_payload(device), device.id, retain=True
            )
            self.stats["device_updates"] += 1
            return f"firmware updated to {version}"
        if command.name == "reboot":
            await asyncio.sleep(self.command_step * 2)
            return "rebooted"
        if command.name == "set_config":
            fields = {k: v for k, v in params.items() if k not in ("version", "last_updated")}
            if not fields:
                return "error: set_config needs at least one configuration field in parameters"
            await asyncio.sleep(self.command_step)
            state.apply_config(fields, self.ctx.now())
            await self._send(f"{TOPIC_PREFIX}{device.id}/config/update", state.config_payload(), device.id)
            return f"config version {state.config_version} applied"
        await asyncio.sleep(self.command_step)  # identify
        return "identifying: display flashing for 10 s"

    # -- licences ------------------------------------------------------------------------
    async def _apply_license(
        self,
        device: SimDevice,
        state: DeviceState,
        payload: Any,
        topic: str,
        correlation: bytes | None,
    ) -> None:
        if not isinstance(payload, dict) or not isinstance(payload.get("id"), str) or not payload["id"]:
            return  # no licence id to answer about
        license_id: str = payload["id"]
        operations = [op for op in ("add", "update", "remove") if payload.get(op) is True]
        if not operations:
            return  # a licence announcement (our own snapshot on 3.1.1), not an operation
        existing = state.licenses.get(license_id)

        async def answer(lic_state: str, error: str | None = None) -> None:
            body: dict[str, Any] = {"id": license_id, "state": lic_state}
            if error is not None:
                body["error"] = error
            await self._send(topic, body, device.id, correlation=correlation)

        if len(operations) > 1:
            await answer(
                "error", f"exactly one of add, update, remove may be true, got {', '.join(operations)}"
            )
            return
        operation = operations[0]
        if operation == "remove":
            if existing is None or existing.state == "removed":
                await answer("error", f"no licence {license_id} installed")
                return
            existing.state = "removed"
            await answer("removed")
            return
        data, signature = payload.get("data"), payload.get("signature")
        if not isinstance(data, str) or not data or not isinstance(signature, str) or not signature:
            await answer("error", "licence data and signature are required")
            return
        if operation == "update" and (existing is None or existing.state == "removed"):
            await answer("error", f"no licence {license_id} to update")
            return
        state.licenses[license_id] = License(id=license_id, data=data, signature=signature)
        await answer("inuse")


def _decode(payload: Any) -> Any:
    if isinstance(payload, bytes | bytearray):
        try:
            return json.loads(payload) if payload else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None
    return payload


async def _cancel_until_done(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the tasks and wait for them, cancelling again while any is still running.

    Python 3.11's ``asyncio.wait_for`` (inside every aiomqtt publish) can swallow a
    cancellation that lands as its inner future completes; one ``cancel()`` is then lost.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
    await asyncio.gather(*tasks, return_exceptions=True)
