"""MQTT device protocol (document 003): devices under ``v1/device/DEVICE_ID/...`` on a broker.

Connections. Each operation opens its own short connection (a telemetry stream keeps its
own for as long as it is iterated): operations never share a message queue, and a broken
connection breaks only the stream that used it. MQTT 5 by default, 3.1.1 when configured;
TLS with verification when ``tls`` is set; username/password (the password is the secret)
when ``username`` is set. Client ids are ``<client_id or "fieldtui">-<random>`` because a
broker disconnects the older of two clients with the same id.

Authentication of publishes. On MQTT 5 every request and command carries the user
properties ``device_id`` and ``access_key``, as document 003 requires. The key is the device's
own ("the same device ID and access key that you got using the Register Device API"): looked
up in the backend's ``keys_file`` (``"DEVICE_ID" = "KEY"``, mode 0600), then, with
``keys_in_keyring``, in the secret ``<profile>/<backend>/<device>`` (environment variable
``FIELDTUI_SECRET_<PROFILE>_<BACKEND>_<DEVICE>`` or that keyring entry), and last the backend's
one shared secret. MQTT 3.1.1 has no user properties, so requests go without them. Document
003 defines no answer to a refused key: a request with a wrong key is simply not answered, so
a key is judged by behaviour, by whether the cloud answers a snapshot request made with it.

Lookup without a device list, and without relying on retained messages (document 003 never
promises them). One connection subscribes to the device's topics and a private *fence* topic,
publishes the fence (a broker handles a connection's packets in order, so when the fence comes
back every retained message is in), then publishes the snapshot request ``.../get``. The
snapshot is the CLOUD's answer (space info, config, next command, licences, a firmware event),
so it comes for a device that is offline or never published: any of these answers, or a
retained telemetry or "Update Device" message, proves the device exists. A device with no
telemetry is shown known and offline. Only when nothing is retained and the snapshot request
goes unanswered (``SNAPSHOT_WAIT`` seconds at most) is the id "not found". A lookup asks only
for a device with a key of its own, or with the shared key when the backend keeps no per-device
keys: an id that is in no keys file is then judged by what is retained, at once, so a lookup
of another cloud's device never waits out the snapshot.

Search without a device list. Document 003 lists no devices, so a search (and a listing) is
matched on this side over what is known: one subscription to ``v1/device/+/update`` and
``v1/device/+/telemetry`` reads what the broker retains up to a fence ("Update Device" carries
the device's name), plus the ids of the keys file (devices with a key of their own, matched by
id and looked up by snapshot, a few of them); the exact id is looked up as before. Bounded by a
time budget and a message cap; an answer cut short says so. A broker that refuses the wildcard
subscription leaves the keys file and the exact id (the read cache keeps names seen before).

Fast ingest. ``aiomqtt.Client.messages`` wraps each paho message in an ``aiomqtt.Message``
(validating its topic) and creates an asyncio task per message. :class:`_Link` overrides the
private ``_on_message`` hook (aiomqtt is pinned) to queue the raw paho message in a deque, and
the telemetry loop drains it in batches with one ``json.loads`` per payload and no pydantic
validation per sample (the values are checked by hand, which is what validation would do).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import secrets
import ssl
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import BaseModel, ConfigDict

from fieldtui.config import MqttBackend, read_keys_file
from fieldtui.connectors.base import Connector
from fieldtui.connectors.search import SearchPage
from fieldtui.core.capabilities import Capabilities, TelemetryMode
from fieldtui.core.errors import (
    AuthError,
    BackendError,
    ConfigError,
    ConnectionError_,
    NotFound,
    Rejected,
    TimeoutError_,
)
from fieldtui.core.filters import DeviceFilter
from fieldtui.core.models import (
    BackendKind,
    Command,
    Device,
    Location,
    MetricValue,
    TaskState,
    TelemetrySample,
)
from fieldtui.core.send_window import check_send_window
from fieldtui.secrets import env_var_name, get_secret, keyring_user

log = logging.getLogger(__name__)

TOPIC_PREFIX = "v1/device/"
#: Payloads above this size are skipped unread (a telemetry message is a few hundred bytes).
MAX_PAYLOAD = 256 * 1024
#: A device whose latest telemetry is older than this counts as offline.
ONLINE_WINDOW = timedelta(minutes=15)
#: How long a lookup (or a key check) waits for the cloud's answer to a snapshot request, at
#: most (the backend's ``timeout`` when smaller); then, once it answered, how long it lingers
#: for the rest of the snapshot (licences, a firmware event that may never come: it is sent only
#: when the device runs an older firmware than the latest).
SNAPSHOT_WAIT = 3.0
FIRMWARE_LINGER = 0.2
#: A search reads at most this many retained messages (two a device at most)...
RETAINED_CAP = 200_000
#: ...within this many seconds (unless its caller gives its own budget).
SEARCH_SECONDS = 3.0
#: Devices with a key but nothing retained that a search looks up by id (a snapshot each).
QUIET_READ_CAP = 20
#: list_commands listens this long for the snapshot's "next command".
COMMANDS_LINGER = 0.5
#: MQTT 5 reason codes (and 3.1.1 return codes 4, 5) that mean "your credentials were refused".
_AUTH_CODES = {4, 5, 134, 135, 140}
_SCALARS = (bool, int, float, str)
_COMMAND_STATES: dict[str, TaskState] = {
    "pending": TaskState.QUEUED,
    "in_progress": TaskState.RUNNING,
    "done": TaskState.DONE,
    "error": TaskState.FAILED,
}


def command_state(status: str) -> TaskState:
    """Document 003's command statuses as core task states (unknown words: still running)."""
    return _COMMAND_STATES.get(status.strip().lower().replace(" ", "_"), TaskState.RUNNING)


class SpaceInfo(BaseModel):
    """``v1/device/ID/space_info``: where the device is and what it is called."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str | None = None
    location_name: str | None = None
    lat: float | None = None
    lon: float | None = None
    utc_offset: int | None = None
    temperature_units: str | None = None
    maintenance: bool | None = None
    local_time: str | None = None


class DeviceLicense(BaseModel):
    """``v1/device/ID/license``: a licence the cloud holds for the device (snapshot)."""

    model_config = ConfigDict(frozen=True)

    id: str
    data: str | None = None
    signature: str | None = None
    add: bool = False
    update: bool = False
    remove: bool = False

    @property
    def operation(self) -> str | None:
        """What the device is asked to do with it (``add``, ``update``, ``remove``), if anything."""
        return next((op for op in ("add", "update", "remove") if getattr(self, op)), None)


class FirmwareInfo(BaseModel):
    """What the device runs (from ``.../update``) and the latest firmware (``.../firmware``)."""

    model_config = ConfigDict(frozen=True)

    current: str | None = None
    latest: str | None = None
    latest_file_id: str | None = None

    @property
    def update_available(self) -> bool | None:
        if self.latest is None:
            return None if self.current is None else False
        return self.current != self.latest


@dataclass(slots=True)
class IngestStats:
    """Counts of what a connector's telemetry streams received and skipped (and why)."""

    received: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


# -- the connection -------------------------------------------------------------------------------
class _Link(aiomqtt.Client):
    """An aiomqtt client whose incoming messages go, unwrapped, into a deque (see module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inbox: deque[paho.MQTTMessage] = deque()
        self._wakeup: asyncio.Future[None] | None = None

    async def publish(self, *args: Any, **kwargs: Any) -> None:
        """Publish, unless the outbox's lease window for this change has closed (see
        ``fieldtui.core.send_window``): then nothing leaves."""
        check_send_window()
        await super().publish(*args, **kwargs)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self.inbox.append(message)
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    @property
    def lost(self) -> bool:
        return self._disconnected.done()

    def lost_error(self) -> BaseException | None:
        if not self._disconnected.done() or self._disconnected.cancelled():
            return None
        return self._disconnected.exception()

    async def wait_inbox(self, timeout: float | None) -> bool:
        """True once a message is queued, False after ``timeout``; MqttError when disconnected."""
        if self.inbox:
            return True
        if self._disconnected.done():
            raise aiomqtt.MqttError("the broker connection was lost") from self.lost_error()
        wakeup: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_lost(_: object) -> None:
            if not wakeup.done():
                wakeup.set_result(None)

        self._wakeup = wakeup
        disconnected = self._disconnected
        disconnected.add_done_callback(on_lost)
        try:
            if timeout is None:
                await wakeup
            else:
                try:
                    await asyncio.wait_for(wakeup, timeout)
                except TimeoutError:
                    return False
        finally:
            self._wakeup = None
            disconnected.remove_done_callback(on_lost)
        if not self.inbox and self._disconnected.done():
            raise aiomqtt.MqttError("the broker connection was lost") from self.lost_error()
        return True


@dataclass(slots=True)
class _Seen:
    """The latest payload received on one topic suffix of one device."""

    payload: dict[str, Any]
    retained: bool
    correlation: bytes | None


class _SeenMap(dict[str, _Seen]):
    """Topic suffix -> latest payload, plus every licence (a snapshot sends one message each)."""

    def __init__(self) -> None:
        super().__init__()
        self.licenses: dict[str, dict[str, Any]] = {}


#: Snapshot answers: the cloud sends them for a registered device whatever its state.
_SNAPSHOT_SUFFIXES = ("space_info", "config/update", "firmware", "license")


# -- the connector ---------------------------------------------------------------------------
class MqttConnector(Connector):
    kind: ClassVar[BackendKind] = BackendKind.MQTT
    capabilities: ClassVar[Capabilities] = Capabilities(
        lookup=True,
        search=True,
        telemetry=TelemetryMode.PUSH,
        commands=True,
        cloud_settings=True,
    )
    #: Maintenance (space info) and a firmware update waiting show in a device's ``alerts``.
    alerts_on_devices: ClassVar[bool] = True
    #: An outbox command's id carries its correlation (:func:`outbox_command_id`).
    echoes_command_correlation: ClassVar[bool] = True
    #: No listing in document 003: the query is matched here (:meth:`search_pages`).
    device_filters: ClassVar[frozenset[str]] = frozenset({"query"})
    search_scope: ClassVar[str | None] = "retained names, ids"

    def __init__(
        self, name: str, config: MqttBackend, secret: str | None, *, profile: str | None = None
    ) -> None:
        super().__init__(name)
        self._config = config
        self._secret = secret
        self._profile = profile
        #: The keys file as last read, and the (mtime, size) it was read at: a key added while
        #: the app runs is picked up at the next request.
        self._file_keys: dict[str, str] = {}
        self._file_stamp: tuple[int, int] | None = None
        self._v5 = config.protocol_version == "5"
        #: Commands this process sent or saw, per device, by id (MQTT keeps no command history).
        self._commands: dict[str, dict[str, Command]] = {}
        self.stats = IngestStats()

    async def aclose(self) -> None:
        """Nothing stays open between operations."""

    # -- connection plumbing ---------------------------------------------------------------
    def _new_link(self) -> _Link:
        config = self._config
        tls_context: ssl.SSLContext | None = None
        if config.tls:
            tls_context = ssl.create_default_context(cafile=config.ca_bundle)
        prefix = config.client_id or "fieldtui"
        return _Link(
            config.host,
            config.port,
            username=config.username,
            password=self._secret if config.username else None,
            identifier=f"{prefix}-{secrets.token_hex(4)}",
            protocol=aiomqtt.ProtocolVersion.V5 if self._v5 else aiomqtt.ProtocolVersion.V311,
            tls_context=tls_context,
            timeout=config.timeout,
            keepalive=30,
            clean_session=None if self._v5 else True,
        )

    @asynccontextmanager
    async def _connected(self) -> AsyncIterator[_Link]:
        link = self._new_link()
        try:
            await link.__aenter__()
        except aiomqtt.MqttError as exc:
            raise self._connect_error(exc) from None
        try:
            yield link
        except aiomqtt.MqttError as exc:
            raise self._lost_error(exc) from None
        finally:
            if not link.lost:
                try:
                    await asyncio.wait_for(link.__aexit__(None, None, None), self._config.timeout)
                except (aiomqtt.MqttError, TimeoutError, OSError):
                    log.debug("%s: unclean MQTT disconnect", self.name)
            else:
                await link.__aexit__(None, None, None)

    def _connect_error(self, exc: aiomqtt.MqttError) -> BackendError:
        rc = getattr(exc, "rc", None)
        code = getattr(rc, "value", rc)
        where = f"{self._config.host}:{self._config.port}"
        if isinstance(code, int) and code in _AUTH_CODES:
            return AuthError(
                f"the MQTT broker at {where} refused the credentials ({exc})",
                backend=self.name,
                hint="check username and the secret with `fieldtui login`",
            )
        text = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text or isinstance(exc.__cause__, ssl.SSLCertVerificationError):
            return ConnectionError_(
                f"the MQTT broker's TLS certificate at {where} is not trusted",
                backend=self.name,
                hint="set ca_bundle for this backend if the broker uses a private CA",
            )
        if "timed out" in text.lower():
            return TimeoutError_(f"no answer from the MQTT broker at {where} in time", backend=self.name)
        return ConnectionError_(f"cannot reach the MQTT broker at {where}: {text or type(exc).__name__}",
                                backend=self.name)  # fmt: skip

    def _lost_error(self, exc: aiomqtt.MqttError) -> BackendError:
        if "timed out" in str(exc).lower():
            return TimeoutError_(f"the MQTT broker did not answer in time ({exc})", backend=self.name)
        return ConnectionError_(
            f"lost the connection to the MQTT broker at {self._config.host}:{self._config.port} ({exc})",
            backend=self.name,
        )

    def _properties(
        self,
        device_id: str,
        key: str | None,
        *,
        response_topic: str | None = None,
        correlation: bytes | None = None,
    ) -> Properties | None:
        """User properties ``device_id`` and ``access_key`` (MQTT 5 only), plus the response topic."""
        if not self._v5:
            return None
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        user = [("device_id", device_id)]
        if key:
            user.append(("access_key", key))
        props.UserProperty = user
        if response_topic is not None:
            props.ResponseTopic = response_topic
        if correlation is not None:
            props.CorrelationData = correlation
        return props

    # -- access keys -------------------------------------------------------------------------
    def _key_source(self, device_id: str) -> tuple[str | None, str]:
        """The device's access key and where it came from (module doc: file, keyring, shared)."""
        own = self._own_key(device_id)
        if own is not None:
            return own
        if self._secret:
            return self._secret, f"the shared key of {self.name}"
        return None, "nowhere"

    def _own_key(self, device_id: str) -> tuple[str, str] | None:
        """The device's own key (keys file, else per-device secret) and its source, if filed."""
        keys_file = self._config.keys_file
        if keys_file is not None:
            self._read_keys_file(keys_file)
            key = self._file_keys.get(device_id)
            if key:
                return key, f"the keys file {keys_file}"
        if self._config.keys_in_keyring and self._profile is not None:
            key = get_secret(self._profile, f"{self.name}/{device_id}")
            if key:
                return key, f"the secret {keyring_user(self._profile, f'{self.name}/{device_id}')}"
        return None

    def _lookup_asks(self, device_id: str) -> bool:
        """Whether a lookup asks the cloud for the device's snapshot (module doc): always for a
        device with a key of its own; with the shared key only when the backend keeps no
        per-device keys, so a backend that does never waits on ids that are not its devices."""
        if self._own_key(device_id) is not None:
            return True
        per_device = self._config.keys_file is not None or self._config.keys_in_keyring
        return not per_device and self._can_ask(device_id)

    def _read_keys_file(self, keys_file: str) -> None:
        try:
            info = os.stat(keys_file)
            stamp = (info.st_mtime_ns, info.st_size)
        except OSError:
            stamp = None
        if stamp is not None and stamp == self._file_stamp:
            return
        try:
            self._file_keys = read_keys_file(keys_file)
        except ConfigError as exc:
            raise AuthError(exc.message, backend=self.name, hint=exc.hint) from None
        self._file_stamp = stamp

    def _key_for(self, device_id: str) -> str | None:
        return self._key_source(device_id)[0] if self._v5 else None

    def _can_ask(self, device_id: str) -> bool:
        """True when a request for the device can be made (MQTT 3.1.1 needs no key)."""
        return not self._v5 or self._key_for(device_id) is not None

    def _key_hint(self, device_id: str) -> str:
        ways = []
        if self._config.keys_file and device_id in self._file_keys:
            ways.append(f"replace the key of {device_id} in {self._config.keys_file} with its own")
        elif self._config.keys_file:
            ways.append(f'add "{device_id}" = "ACCESS_KEY" to {self._config.keys_file}')
        else:
            ways.append("name a keys file (keys_file = PATH, mode 0600) for this backend")
        if self._config.keys_in_keyring and self._profile is not None:
            user = keyring_user(self._profile, f"{self.name}/{device_id}")
            env = env_var_name(self._profile, f"{self.name}/{device_id}")
            ways.append(f"store it as the keyring entry {user} or in {env}")
        return "the device's own access key comes from the Register Device API: " + "; or ".join(ways)

    def _require_key(self, device_id: str) -> str | None:
        """The key to send (None on MQTT 3.1.1); AuthError when MQTT 5 has none for the device."""
        if not self._v5:
            return None
        key = self._key_for(device_id)
        if not key:
            raise AuthError(
                f"no MQTT access key for device {device_id}: the cloud ignores requests without one",
                backend=self.name,
                hint=self._key_hint(device_id),
            )
        return key

    def _key_refused(self, device_id: str) -> Rejected:
        source = self._key_source(device_id)[1] if self._v5 else "no key (MQTT 3.1.1)"
        return Rejected(
            f"device {device_id} did not accept the access key from {source}: the cloud answered no "
            f"snapshot request made with it within {self._snapshot_wait():g} s (a key that is not "
            "this device's, or an id nobody registered)",
            backend=self.name,
            hint=self._key_hint(device_id),
        )

    def _snapshot_wait(self) -> float:
        return min(SNAPSHOT_WAIT, self._config.timeout)

    def _base(self, device_id: str) -> str:
        if not _plain_id(device_id):
            raise NotFound(f"{device_id!r} is not an MQTT device id", backend=self.name)
        return f"{TOPIC_PREFIX}{device_id}"

    async def _fence(self, link: _Link) -> str:
        """Subscribe-and-publish marker: when it comes back, every retained message has (module doc)."""
        topic = f"fieldtui/fence/{link.identifier}/{secrets.token_hex(4)}"
        await link.subscribe(topic, qos=1)
        await link.publish(topic, b"fence", qos=1)
        return topic

    async def _exchange(
        self,
        device_id: str,
        suffixes: Iterable[str],
        *,
        request: tuple[str, dict[str, Any], str | None] | None = None,
        until: Callable[[_SeenMap], bool],
        wait: float,
        linger: float = 0.0,
    ) -> _SeenMap:
        """Subscribe to ``telemetry``, ``update`` and ``suffixes``; take what is retained (up to
        the fence); publish ``request`` (suffix, payload, response suffix) with the device's key
        and collect until ``until(seen)`` holds or ``wait`` runs out (then ``linger`` more
        seconds, once ``until`` held). Existence is the caller's to judge from what was seen."""
        base = self._base(device_id)
        key = self._key_for(device_id)
        wanted = list(dict.fromkeys(["telemetry", "update", *suffixes]))
        correlation = secrets.token_bytes(8) if request is not None and self._v5 else None
        seen = _SeenMap()
        async with self._connected() as link:
            fence = f"fieldtui/fence/{link.identifier}/{secrets.token_hex(4)}"
            topics = [(f"{base}/{suffix}", 1) for suffix in wanted] + [(fence, 1)]
            await link.subscribe(topics)
            await link.publish(fence, b"fence", qos=1)
            fenced = False
            deadline = time.monotonic() + self._config.timeout
            while not fenced:
                if not await link.wait_inbox(deadline - time.monotonic()):
                    raise TimeoutError_(
                        "the MQTT broker did not echo the lookup fence in time", backend=self.name
                    )
                fenced = self._absorb(link, base, fence, seen)
            if request is None:
                return seen
            suffix, payload, response = request
            await link.publish(
                f"{base}/{suffix}",
                json.dumps(payload, separators=(",", ":")),
                qos=1,
                properties=self._properties(
                    device_id,
                    key,
                    response_topic=f"{base}/{response}" if response else None,
                    correlation=correlation,
                ),
            )
            end = time.monotonic() + wait
            while not until(seen) and (left := end - time.monotonic()) > 0:
                if await link.wait_inbox(left):
                    self._absorb(link, base, fence, seen)
            if linger > 0 and until(seen):
                end = time.monotonic() + linger
                while (left := end - time.monotonic()) > 0:
                    if await link.wait_inbox(left):
                        self._absorb(link, base, fence, seen)
        return seen

    def _absorb(self, link: _Link, base: str, fence: str, seen: _SeenMap) -> bool:
        """Move queued messages into ``seen`` (by topic suffix); True when the fence was among them."""
        fenced = False
        prefix = base + "/"
        while link.inbox:
            message = link.inbox.popleft()
            topic = message.topic
            if topic == fence:
                fenced = True
                continue
            if not topic.startswith(prefix):
                continue
            payload = _json_object(message.payload)
            if payload is None:
                continue
            props = getattr(message, "properties", None)
            raw_corr = getattr(props, "CorrelationData", None) if props is not None else None
            suffix = topic[len(prefix) :]
            seen[suffix] = _Seen(payload, bool(message.retain), bytes(raw_corr) if raw_corr else None)
            if suffix == "license" and isinstance(payload.get("id"), str):
                seen.licenses[payload["id"]] = payload
            if suffix in ("commands", "commands/update"):
                self._note_command(base[len(TOPIC_PREFIX) :], payload)
        return fenced

    async def _snapshot(self, device_id: str, suffixes: Iterable[str] = ()) -> _SeenMap:
        """Ask the cloud for the device's snapshot (``.../get``) and collect its answers.

        Rejected when the snapshot does not come: with the cloud answering for every registered
        device, silence means the key was refused or the id is nobody's."""
        self._require_key(device_id)
        seen = await self._exchange(
            device_id,
            (*_SNAPSHOT_SUFFIXES, "commands", *suffixes),
            request=("get", {}, None),
            until=_answered,
            wait=self._snapshot_wait(),
            linger=FIRMWARE_LINGER,
        )
        if not _answered(seen):
            raise self._key_refused(device_id)
        return seen

    # -- lookup ----------------------------------------------------------------------------
    async def probe(self) -> None:
        """Connect, subscribe and see our own fence come back: the broker is usable."""
        async with self._connected() as link:
            await self._fence_round_trip(link)

    async def _fence_round_trip(self, link: _Link) -> None:
        fence = await self._fence(link)
        deadline = time.monotonic() + self._config.timeout
        while True:
            if not await link.wait_inbox(deadline - time.monotonic()):
                raise TimeoutError_("the MQTT broker did not echo a message in time", backend=self.name)
            while link.inbox:
                if link.inbox.popleft().topic == fence:
                    return

    async def get_device(self, device_id: str) -> Device:
        """The device from its snapshot (the cloud answers for offline devices too) and whatever
        the broker retained (telemetry, "Update Device"); NotFound only when neither came."""
        asked = self._lookup_asks(device_id)
        seen = await self._exchange(
            device_id,
            (*_SNAPSHOT_SUFFIXES, "commands"),
            request=("get", {}, None) if asked else None,
            until=_answered,
            wait=self._snapshot_wait(),
            linger=FIRMWARE_LINGER,
        )
        retained = "telemetry" in seen or "update" in seen
        if not retained and not _answered(seen):
            if asked:
                raise NotFound(
                    f"no MQTT device {device_id}: nothing retained for it, and the cloud answered no "
                    f"snapshot request for it within {self._snapshot_wait():g} s",
                    backend=self.name,
                    hint="check the id; if it is right, its access key is not this device's "
                    f"({self._key_hint(device_id)})",
                )
            raise NotFound(
                f"no MQTT device {device_id}: nothing retained for it, and no access key of its own "
                "to ask the cloud with",
                backend=self.name,
                hint=self._key_hint(device_id),
            )
        if asked and not _answered(seen):
            log.warning(
                "%s: %s did not answer a snapshot request; its key may be wrong", self.name, device_id
            )
        return self._device_from(device_id, seen)

    def _device_from(self, device_id: str, seen: _SeenMap) -> Device:
        telemetry = seen["telemetry"].payload if "telemetry" in seen else {}
        values = telemetry.get("telemetries")
        metrics = values if isinstance(values, dict) else {}
        timestamp = _parse_time(telemetry.get("timestamp"))
        status = telemetry.get("status") if isinstance(telemetry.get("status"), str) else None
        online: bool | None = None
        if "telemetry" not in seen:
            online = False  # known (the cloud answered for it) but silent: offline, or never on
        elif status is not None and status.lower() != "online":
            online = False
        elif timestamp is not None:
            online = datetime.now(UTC) - timestamp < ONLINE_WINDOW
        elif status is not None:
            online = True
        space = _space_info(seen["space_info"].payload) if "space_info" in seen else None
        update = seen["update"].payload if "update" in seen else {}
        firmware = _firmware_info(seen)
        alerts: list[str] = []
        if firmware.update_available and firmware.latest:
            alerts.append(f"firmware {firmware.latest} available")
        if space is not None and space.maintenance:
            alerts.append("in maintenance")
        location = None
        if space is not None and space.lat is not None and space.lon is not None:
            location = Location(lat=space.lat, lon=space.lon)
        # The device's own name (its retained "Update Device"), else the name of its space.
        name = _str(update.get("name")) or (space.name if space else None)
        raw: dict[str, Any] = {suffix: item.payload for suffix, item in seen.items()}
        if seen.licenses:
            raw["license"] = list(seen.licenses.values())
        if status is None and "telemetry" not in seen:
            status = "offline (never published)" if "update" not in seen else "offline"
        return Device(
            id=device_id,
            backend=self.name,
            kind=BackendKind.MQTT,
            name=name or device_id,
            firmware=firmware.current,
            online=online,
            last_seen=timestamp,
            battery=_number(metrics, ("battery", "battery_level", "battery_percent")),
            rssi=_number(metrics, ("rssi", "signal_strength", "signal", "wifi_rssi")),
            location=location,
            alerts=tuple(alerts),
            status=status,
            raw=raw,
        )

    # -- search and listing (no listing in document 003: what the broker retains) ------------
    async def search(self, query: str, *, limit: int | None = None) -> list[Device]:
        found: list[Device] = []
        async for page in self.search_pages(query, limit=limit):
            found += page.devices
        return found

    async def list_devices(self, filter: DeviceFilter) -> list[Device]:
        """The devices this broker knows of (see :meth:`search_pages`), those matching a query."""
        self._check_filters(filter)
        found: list[Device] = []
        async for page in self._known_pages(filter.query or "", filter.limit, None):
            found += page.devices
        return found

    async def list_pages(
        self, filter: DeviceFilter, *, budget: float | None = None
    ) -> AsyncGenerator[SearchPage, None]:
        self._check_filters(filter)
        async for page in self._known_pages(filter.query or "", filter.limit, budget):
            yield page

    def search_pages(
        self, query: str, *, limit: int | None = None, budget: float | None = None
    ) -> AsyncGenerator[SearchPage, None]:
        """Devices whose id or name holds ``query`` (ignoring case), matched on this side.

        Document 003 lists no devices. The known ones are those the broker retains an "Update
        Device" (it carries the name) or a telemetry message for, read in one subscription to
        ``v1/device/+/update`` and ``+/telemetry`` up to a fence, plus the ids of the keys file
        (devices with a key of their own), whose names are known only from a snapshot each: they
        are matched by id and then looked up (at most ``QUIET_READ_CAP``). The exact id is
        looked up as well, as before. The read cache remembers the rest (the lookup shows it).
        """
        return self._known_pages(query, limit, budget)

    async def _known_pages(
        self, query: str, limit: int | None, budget: float | None
    ) -> AsyncGenerator[SearchPage, None]:
        raw = query.strip()
        needle = raw.lower()
        if limit == 0:
            return
        deadline = time.monotonic() + (SEARCH_SECONDS if budget is None else max(0.0, budget))
        exact: asyncio.Future[Device] | None = None
        if raw and not any(ch.isspace() for ch in raw):
            exact = asyncio.ensure_future(self.get_device(raw))
        handed: set[str] = set()
        try:
            retained, partial = await self._retained_devices(deadline)
            matches = [
                self._device_from(device_id, seen)
                for device_id, seen in sorted(retained.items())
                if needle in device_id.lower() or needle in _retained_name(seen).lower()
            ]
            matches = matches if limit is None else matches[:limit]
            handed.update(d.id for d in matches)
            if matches:
                yield SearchPage(matches)
            if exact is not None:
                left = max(0.1, deadline - time.monotonic())
                with contextlib.suppress(NotFound, Rejected, TimeoutError):
                    device = await asyncio.wait_for(asyncio.shield(exact), left)
                    if device.id not in handed:
                        handed.add(device.id)
                        yield SearchPage([device])
            quiet = [
                d
                for d in sorted(self._filed_ids())
                if d not in retained and d not in handed and needle in d.lower()
            ]
            room = QUIET_READ_CAP if limit is None else min(QUIET_READ_CAP, max(0, limit - len(handed)))
            read = 0
            for start in range(0, min(room, len(quiet)), 4):
                if time.monotonic() >= deadline:
                    break
                batch = quiet[start : min(room, start + 4)]
                results = await asyncio.gather(*(self.get_device(d) for d in batch), return_exceptions=True)
                read += len(batch)
                devices = [r for r in results if isinstance(r, Device)]
                for failure in results:
                    if isinstance(failure, BaseException) and not isinstance(failure, NotFound | Rejected):
                        raise failure
                if devices:
                    yield SearchPage(devices)
            if read < len(quiet):
                rest = f"{len(quiet) - read} devices with a key but nothing retained were not asked"
                partial = f"{partial}; {rest}" if partial else rest
            if partial:
                yield SearchPage(partial=f"partial: MQTT lists no devices; {partial}")
        finally:
            if exact is not None:
                exact.cancel()
                with contextlib.suppress(BaseException):
                    await exact

    def _filed_ids(self) -> list[str]:
        """The ids of the keys file (devices registered with a key of their own)."""
        keys_file = self._config.keys_file
        if keys_file is None:
            return []
        self._read_keys_file(keys_file)
        return list(self._file_keys)

    async def _retained_devices(self, deadline: float) -> tuple[dict[str, _SeenMap], str | None]:
        """Every device the broker retains an "Update Device" or telemetry message for, read up
        to a fence (a broker sends a subscription's retained messages before the fence's echo);
        and why it stopped short (None: it did not)."""
        found: dict[str, _SeenMap] = {}
        count = 0
        async with self._connected() as link:
            fence = f"fieldtui/fence/{link.identifier}/{secrets.token_hex(4)}"
            topics = [(f"{TOPIC_PREFIX}+/{suffix}", 1) for suffix in ("update", "telemetry")]
            subscribed = False
            while True:
                try:
                    if not subscribed:
                        await link.subscribe([*topics, (fence, 1)])
                        await link.publish(fence, b"fence", qos=1)
                        subscribed = True
                    left = deadline - time.monotonic()
                    arrived = left > 0 and await link.wait_inbox(left)
                except aiomqtt.MqttError:
                    # Some brokers end the connection on a wildcard subscription they do not
                    # allow: that is no broken cloud, only no list of what it retains.
                    return found, "the broker ended the connection when asked what it retains"
                if not arrived:
                    return found, f"the broker was still sending what it retains ({len(found)} devices seen)"
                while link.inbox:
                    message = link.inbox.popleft()
                    if message.topic == fence:
                        return found, None
                    device_id, _, suffix = message.topic.removeprefix(TOPIC_PREFIX).partition("/")
                    payload = _json_object(message.payload)
                    if not message.retain or payload is None or not _plain_id(device_id):
                        continue  # a live message, no JSON object, or no id a lookup could use
                    found.setdefault(device_id, _SeenMap())[suffix] = _Seen(payload, True, None)
                    count += 1
                    if count >= RETAINED_CAP:
                        return found, f"looked at the first {RETAINED_CAP:,} retained messages"

    async def space_info(self, device_id: str) -> SpaceInfo:
        """Space info, from the snapshot the request ``v1/device/ID/get`` makes the cloud send."""
        seen = await self._snapshot(device_id)
        if "space_info" not in seen:
            raise TimeoutError_(f"the cloud sent no space info for {device_id}", backend=self.name)
        return _space_info(seen["space_info"].payload)

    async def firmware_info(self, device_id: str) -> FirmwareInfo:
        """Current firmware (``.../update``, when the device published it) and the latest one.

        The snapshot sends the firmware event only when the device is not on the latest
        firmware, so its absence after the snapshot's other answers leaves ``latest`` unknown.
        """
        return _firmware_info(await self._snapshot(device_id))

    async def licenses(self, device_id: str) -> list[DeviceLicense]:
        """The licences the cloud holds for the device (every ``.../license`` of its snapshot)."""
        seen = await self._snapshot(device_id)
        return [_license(payload) for payload in seen.licenses.values()]

    async def snapshot(self, device_id: str) -> dict[str, Any]:
        """Ask for the latest snapshot and return what arrived, by topic suffix (``license``: a
        list, one per licence)."""
        seen = await self._snapshot(device_id)
        out: dict[str, Any] = {suffix: item.payload for suffix, item in seen.items()}
        if seen.licenses:
            out["license"] = list(seen.licenses.values())
        return out

    async def details(self, device_id: str) -> dict[str, Any]:
        """One snapshot, by section: ``config`` (as the cloud holds it), ``licenses``,
        ``space_info``, ``firmware`` (current and latest) and ``next_command`` (when one waits)."""
        seen = await self._snapshot(device_id)
        out: dict[str, Any] = {
            "config": seen["config/update"].payload if "config/update" in seen else None,
            "licenses": [_license(p).model_dump() for p in seen.licenses.values()],
            "space_info": _space_info(seen["space_info"].payload).model_dump()
            if "space_info" in seen
            else None,
            "firmware": _firmware_info(seen).model_dump(),
        }
        if "commands" in seen:
            out["next_command"] = seen["commands"].payload
        return out

    async def config(self, device_id: str) -> dict[str, Any]:
        """The configuration the cloud holds for the device (the snapshot's ``config/update``),
        offline or not; ``request_config`` asks the device itself."""
        seen = await self._snapshot(device_id)
        if "config/update" not in seen:
            raise TimeoutError_(f"the cloud sent no configuration for {device_id}", backend=self.name)
        return seen["config/update"].payload

    async def request_config(self, device_id: str) -> dict[str, Any]:
        """Publish ``.../config``; the device answers on ``.../config/update`` (its response topic)."""
        self._require_key(device_id)

        def answered(seen: _SeenMap) -> bool:
            item = seen.get("config/update")
            return item is not None and not item.retained

        seen = await self._exchange(
            device_id,
            ("config/update",),
            request=("config", {}, "config/update"),
            until=answered,
            wait=self._config.timeout,
        )
        if not answered(seen):
            raise TimeoutError_(
                f"{device_id} did not answer the config request (offline, or its access key was refused)",
                backend=self.name,
            )
        return seen["config/update"].payload

    async def set_cloud_setting(self, device_id: str, prop: str, value: Any) -> None:
        """Document 003 "Set Cloud Settings": publish ``{"property", "value"}`` on
        ``.../cloud_settings/update`` with the device's key (QoS 1). The document defines no
        answer, so the key is checked first by a snapshot request (Rejected when refused)."""
        if not isinstance(prop, str) or not prop.strip():
            raise Rejected("a cloud setting needs a property name", backend=self.name)
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise Rejected(f"the value of {prop!r} is not plain JSON", backend=self.name) from None
        await self._snapshot(device_id)
        base = self._base(device_id)
        async with self._connected() as link:
            await link.publish(
                f"{base}/cloud_settings/update",
                json.dumps({"property": prop.strip(), "value": value}, separators=(",", ":")),
                qos=1,
                properties=self._properties(device_id, self._key_for(device_id)),
            )

    async def cloud_settings(self, device_id: str) -> dict[str, Any] | None:
        """The cloud settings the device's configuration reports (``cloud_settings`` in its
        snapshot's ``config/update``); None when it reports none. Document 003 defines no read
        of them, so a cloud that does not report them leaves a setting unchecked."""
        seen = await self._snapshot(device_id)
        config = seen["config/update"].payload if "config/update" in seen else None
        settings = config.get("cloud_settings") if isinstance(config, dict) else None
        return dict(settings) if isinstance(settings, dict) else None

    # -- telemetry -------------------------------------------------------------------------
    def telemetry(self, device_id: str, *, since: datetime | None = None) -> AsyncIterator[TelemetrySample]:
        """One sample per telemetry message (the retained one first), until the connection breaks.

        Malformed, non-JSON, binary and oversized payloads are skipped and counted in
        ``stats.skipped`` with a warning; a lost broker raises :class:`ConnectionError_`.
        """
        return self._stream(device_id, since)

    async def _stream(self, device_id: str, since: datetime | None) -> AsyncIterator[TelemetrySample]:
        topic = f"{self._base(device_id)}/telemetry"
        backend = self.name
        stats = self.stats
        construct = TelemetrySample.model_construct
        async with self._connected() as link:
            await link.subscribe(topic, qos=0)
            inbox = link.inbox
            while True:
                if not inbox:
                    await link.wait_inbox(None)
                while inbox:
                    message = inbox.popleft()
                    parsed = _telemetry(message.payload)
                    if isinstance(parsed, str):
                        self._skip(device_id, parsed)
                        continue
                    timestamp, metrics = parsed
                    if since is not None and timestamp <= since:
                        continue
                    stats.received += 1
                    yield construct(device=device_id, backend=backend, timestamp=timestamp, metrics=metrics)

    def _skip(self, device_id: str, reason: str) -> None:
        self.stats.skipped[reason] += 1
        count = self.stats.skipped[reason]
        if count == 1 or count % 1000 == 0:
            log.warning(
                "%s: skipped a telemetry message from %s (%s; %d so far)", self.name, device_id, reason, count
            )

    # -- commands --------------------------------------------------------------------------
    async def send_command(
        self, device_id: str, name: str, params: dict[str, Any], *, correlation: int | None = None
    ) -> Command:
        """Publish ``{id, status: pending, name, parameters}`` on ``v1/device/ID/commands`` (QoS 1).

        ``correlation`` (the outbox's, the same on every try of one action) becomes the command's
        id (:func:`outbox_command_id`): document 003 has no other field for it, and an extra
        parameter would reach the device's command handler. Every try of one action is then the
        same command to the device, which drops an id it already has (a QoS 1 redelivery looks
        the same): a try after one whose outcome was not seen cannot run it twice, even when the
        device has finished it and no longer announces it. Without one, a fresh random id.

        The device's key is checked first by a snapshot request (document 003 gives a refused
        key no answer, so a command sent with one would look sent): Rejected when refused."""
        base = self._base(device_id)
        self._check_name(name)
        await self._snapshot(device_id)
        command_id = outbox_command_id(correlation) if correlation is not None else None
        command = self._new_command(device_id, name, params, command_id)
        async with self._connected() as link:
            await self._publish_command(link, base, command)
        return command

    def command_correlation(self, command: Command) -> int | None:
        """The outbox's correlation a command's id carries (None: not an outbox command's id)."""
        return outbox_correlation(command.id)

    def run_command(
        self, device_id: str, name: str, params: dict[str, Any], *, timeout: float | None = None
    ) -> AsyncIterator[Command]:
        """Send a command and follow it: yields it as sent, then each status update, ending
        with ``done`` or ``error`` (TimeoutError_ after ``timeout`` seconds without an update)."""
        return self._run_command(device_id, name, params, timeout)

    async def _run_command(
        self, device_id: str, name: str, params: dict[str, Any], timeout: float | None
    ) -> AsyncIterator[Command]:
        base = self._base(device_id)
        self._check_name(name)
        await self._snapshot(device_id)
        command = self._new_command(device_id, name, params)
        async with self._connected() as link:
            await link.subscribe(f"{base}/commands/update", qos=1)
            await self._publish_command(link, base, command)
            yield command
            async for update in self._updates(link, device_id, command.id, timeout):
                yield update
                if update.state.finished:
                    return

    def command_updates(
        self, device_id: str, *, command_id: str | None = None, timeout: float | None = None
    ) -> AsyncIterator[Command]:
        """Status updates from ``v1/device/ID/commands/update`` as they come (of one command when
        ``command_id`` is given, ending once it finishes)."""
        return self._follow(device_id, command_id, timeout)

    async def _follow(
        self, device_id: str, command_id: str | None, timeout: float | None
    ) -> AsyncIterator[Command]:
        base = self._base(device_id)
        async with self._connected() as link:
            await link.subscribe(f"{base}/commands/update", qos=1)
            async for update in self._updates(link, device_id, command_id, timeout):
                yield update
                if command_id is not None and update.state.finished:
                    return

    async def _updates(
        self, link: _Link, device_id: str, command_id: str | None, timeout: float | None
    ) -> AsyncIterator[Command]:
        while True:
            if not await link.wait_inbox(timeout):
                raise TimeoutError_(f"no command update from {device_id} in {timeout:g} s", backend=self.name)
            while link.inbox:
                payload = _json_object(link.inbox.popleft().payload)
                if payload is None:
                    continue
                update = self._note_command(device_id, payload)
                if update is not None and (command_id is None or update.id == command_id):
                    yield update

    async def list_commands(self, device_id: str) -> list[Command]:
        """Commands known for the device: those this process sent or saw updated, plus the
        unfinished one the device announces in its snapshot. MQTT keeps no command history."""
        if self._can_ask(device_id):
            await self._exchange(
                device_id,
                ("commands", "commands/update"),
                request=("get", {}, None),
                until=lambda s: False,
                wait=COMMANDS_LINGER,
            )
        known = self._commands.get(device_id, {})
        epoch = datetime.min.replace(tzinfo=UTC)
        return sorted(known.values(), key=lambda c: c.timestamp or epoch, reverse=True)

    def _check_name(self, name: str) -> None:
        if not name or not isinstance(name, str):
            raise Rejected("a command needs a name", backend=self.name)

    def _new_command(
        self, device_id: str, name: str, params: dict[str, Any], command_id: str | None = None
    ) -> Command:
        self._check_name(name)
        command = Command(
            backend=self.name,
            device=device_id,
            id=command_id or str(uuid.uuid4()),
            name=name,
            status="pending",
            state=TaskState.QUEUED,
            timestamp=datetime.now(UTC),
            parameters=dict(params),
        )
        self._commands.setdefault(device_id, {})[command.id] = command
        return command

    async def _publish_command(self, link: _Link, base: str, command: Command) -> None:
        body = {"id": command.id, "status": "pending", "name": command.name, "parameters": command.parameters}
        await link.publish(
            f"{base}/commands",
            json.dumps(body, separators=(",", ":")),
            qos=1,
            properties=self._properties(
                command.device, self._key_for(command.device), response_topic=f"{base}/commands/update"
            ),
        )

    def _note_command(self, device_id: str, payload: dict[str, Any]) -> Command | None:
        """Record a command (as announced) or a status update of one; the updated Command."""
        command_id, status = payload.get("id"), payload.get("status")
        if not isinstance(command_id, str) or not command_id or not isinstance(status, str):
            return None
        known = self._commands.setdefault(device_id, {})
        previous = known.get(command_id)
        name = _str(payload.get("name")) or (previous.name if previous else "unknown")
        parameters = payload.get("parameters")
        message = _str(payload.get("message")) or _str(payload.get("error"))
        command = Command(
            backend=self.name,
            device=device_id,
            id=command_id,
            name=name,
            status=status,
            state=command_state(status),
            timestamp=datetime.now(UTC),
            message=message or (previous.message if previous else None),
            parameters=parameters
            if isinstance(parameters, dict)
            else (previous.parameters if previous else {}),
        )
        known[command_id] = command
        return command


# -- outbox command ids --------------------------------------------------------------------------
#: The upper 64 bits of an outbox command's id (before the version bits are set): "fieldtui"
#: in ASCII. The lowest 62 bits hold the correlation (the two above them are the UUID variant).
_OUTBOX_ID_TAG = int.from_bytes(b"fieldtui", "big")
_CORRELATION_BITS = (1 << 62) - 1


def outbox_command_id(correlation: int) -> str:
    """The command id (a version 4 UUID, as document 003 shows ids) an outbox action's
    ``correlation`` (1 .. 2**62-1) is sent with: the same on every try, so the device takes the
    command once."""
    if not 0 < correlation <= _CORRELATION_BITS:
        raise ValueError(f"a command correlation is a positive number below 2**62, not {correlation}")
    return str(uuid.UUID(int=(_OUTBOX_ID_TAG << 64) | correlation, version=4))


def outbox_correlation(command_id: str) -> int | None:
    """The correlation an outbox command's id carries; None for any other id."""
    try:
        parsed = uuid.UUID(command_id)
    except (ValueError, AttributeError, TypeError):
        return None
    correlation = parsed.int & _CORRELATION_BITS
    if correlation == 0 or outbox_command_id(correlation) != str(parsed):
        return None
    return correlation


# -- payload helpers ----------------------------------------------------------------------------
def _json_object(payload: bytes | bytearray) -> dict[str, Any] | None:
    if len(payload) > MAX_PAYLOAD:
        return None
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return body if isinstance(body, dict) else None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _telemetry(payload: bytes | bytearray) -> tuple[datetime, dict[str, MetricValue]] | str:
    """(timestamp, metrics) of one telemetry payload, or why it was skipped."""
    if len(payload) > MAX_PAYLOAD:
        return "too large"
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return "not JSON"
    if type(body) is not dict:
        return "not a JSON object"
    values = body.get("telemetries")
    if type(values) is not dict:
        return "no telemetries object"
    metrics: dict[str, MetricValue] = {}
    for key, value in values.items():
        kind = type(value)
        if kind in _SCALARS and (kind is not float or math.isfinite(value)):
            metrics[key] = value
    status = body.get("status")
    if type(status) is str and "status" not in metrics:
        metrics["status"] = status
    timestamp = _parse_time(body.get("timestamp")) or datetime.now(UTC)
    return timestamp, metrics


def _plain_id(device_id: str) -> bool:
    """One topic level, never published or subscribed otherwise: "/" would add levels, "+" and
    "#" are wildcards (a subscription would take other devices' messages), and MQTT strings must
    not carry control characters."""
    return (
        bool(device_id)
        and not any(ch in "/+#" or ch < " " or "\x7f" <= ch <= "\x9f" for ch in device_id)
        and len(device_id) <= 200
    )


def _retained_name(seen: _SeenMap) -> str:
    """The name a device's retained "Update Device" gives it ("" when none)."""
    return _str(seen["update"].payload.get("name")) or "" if "update" in seen else ""


def _str(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _number(metrics: dict[str, Any], names: tuple[str, ...]) -> float | None:
    for name in names:
        value = metrics.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def _space_info(payload: dict[str, Any]) -> SpaceInfo:
    location = payload.get("location")
    location = location if isinstance(location, dict) else {}
    coordinates = location.get("coordinates")
    coordinates = coordinates if isinstance(coordinates, dict) else {}
    lat, lon = _number(coordinates, ("lat",)), _number(coordinates, ("lng", "lon"))
    offset = location.get("utc_offset")
    maintenance = payload.get("maintenance")
    return SpaceInfo(
        name=_str(payload.get("name")),
        location_name=_str(location.get("name")),
        lat=lat if lat is not None and lon is not None else None,
        lon=lon if lat is not None and lon is not None else None,
        utc_offset=offset if isinstance(offset, int) and not isinstance(offset, bool) else None,
        temperature_units=_str(payload.get("temperature_units")),
        maintenance=maintenance if isinstance(maintenance, bool) else None,
        local_time=_str(payload.get("local_time")),
    )


def _answered(seen: _SeenMap) -> bool:
    """Did the cloud answer a snapshot request (anything but a retained message counts)?"""
    return any(suffix in seen and not seen[suffix].retained for suffix in _SNAPSHOT_SUFFIXES)


def _license(payload: dict[str, Any]) -> DeviceLicense:
    def flag(name: str) -> bool:
        return payload.get(name) is True

    return DeviceLicense(
        id=str(payload.get("id")),
        data=_str(payload.get("data")),
        signature=_str(payload.get("signature")),
        add=flag("add"),
        update=flag("update"),
        remove=flag("remove"),
    )


def _firmware_info(seen: dict[str, _Seen]) -> FirmwareInfo:
    update = seen["update"].payload if "update" in seen else {}
    firmware = seen["firmware"].payload if "firmware" in seen else {}
    return FirmwareInfo(
        current=_str(update.get("firmware_version")),
        latest=_str(firmware.get("latest_fw_version")),
        latest_file_id=_str(firmware.get("latest_fw_file_id")),
    )


__all__ = ["DeviceLicense", "FirmwareInfo", "IngestStats", "MqttConnector", "SpaceInfo", "command_state"]
