"""The simulated MQTT side (document 003) against a real broker: no mocks.

A technician's client here is a plain aiomqtt subscriber/publisher, as the connector would be.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fieldtui.sim.context import SimContext, SimCredentials
from fieldtui.sim.fleet import SimDevice, generate_fleet
from fieldtui.sim.mqtt import Broker, BrokerError, MqttDevices
from fieldtui.sim.mqtt.state import LATEST_FIRMWARE, device_access_key

HOST = "127.0.0.1"
INTERVAL = 0.2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def make_ctx(size: int = 40) -> SimContext:
    return SimContext(fleet=generate_fleet(seed=3, size=size), credentials=SimCredentials())


def key_of(ctx: SimContext, device_id: str) -> str:
    """The device's own access key (document 003: from the Register Device API)."""
    return device_access_key(ctx.credentials.mqtt_access_key, device_id)


def online_devices(ctx: SimContext) -> list[SimDevice]:
    return [d for d in ctx.fleet.of("mqtt").values() if d.online]


def auth(
    ctx: SimContext,
    device_id: str,
    *,
    key: str | None = None,
    response_topic: str | None = None,
    correlation: bytes | None = None,
) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("device_id", device_id), ("access_key", key or key_of(ctx, device_id))]
    if response_topic is not None:
        props.ResponseTopic = response_topic
    if correlation is not None:
        props.CorrelationData = correlation
    return props


def user_properties(message: aiomqtt.Message) -> dict[str, str]:
    return dict(getattr(message.properties, "UserProperty", None) or [])


async def collect(
    client: aiomqtt.Client,
    until: Callable[[list[aiomqtt.Message]], bool],
    timeout: float = 5.0,
    keep: Callable[[aiomqtt.Message], bool] = lambda m: True,
) -> list[aiomqtt.Message]:
    """Messages (those ``keep`` accepts) until ``until`` holds; fails after ``timeout``."""
    seen: list[aiomqtt.Message] = []

    async def run() -> None:
        async for message in client.messages:
            if keep(message):
                seen.append(message)
                if until(seen):
                    return

    try:
        await asyncio.wait_for(run(), timeout)
    except TimeoutError:
        pytest.fail(f"timed out; got {[(m.topic.value, m.payload) for m in seen]}")
    return seen


async def quiet_for(
    client: aiomqtt.Client, seconds: float, keep: Callable[[aiomqtt.Message], bool]
) -> list[Any]:
    """Everything ``keep`` accepts within ``seconds`` (expected: nothing)."""
    seen: list[Any] = []

    async def run() -> None:
        async for message in client.messages:
            if keep(message):
                seen.append((message.topic.value, message.payload))

    try:
        await asyncio.wait_for(run(), seconds)
    except TimeoutError:
        pass
    return seen


def payload(message: aiomqtt.Message) -> Any:
    assert isinstance(message.payload, bytes)
    return json.loads(message.payload)


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    b = Broker(HOST, free_port())
    assert await b.start() == "5"
    yield b
    await b.stop()


@pytest.fixture
def ctx() -> SimContext:
    return make_ctx()


@pytest.fixture
async def devices(broker: Broker, ctx: SimContext) -> AsyncIterator[MqttDevices]:
    d = MqttDevices(ctx, HOST, broker.port, "5", INTERVAL, command_step=0.05)
    await d.start()
    assert d.connected
    yield d
    await d.stop()


@pytest.fixture
async def tech(broker: Broker) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(HOST, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        yield client


# -- the broker ---------------------------------------------------------------------------
async def test_broker_runs_mosquitto_on_mqtt5_and_stops_cleanly() -> None:
    port = free_port()
    b = Broker(HOST, port)
    assert await b.start() == "5"
    assert b.is_running and b.protocol == "5" and b.port == port
    await b.stop()
    assert not b.is_running
    with socket.socket() as sock:  # the port is free again
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))


@pytest.mark.parametrize("prefer_mosquitto", [True, False], ids=["mosquitto", "amqtt"])
async def test_port_already_taken_is_a_clear_broker_error(prefer_mosquitto: bool) -> None:
    with socket.socket() as squatter:
        squatter.bind((HOST, 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        b = Broker(HOST, port, prefer_mosquitto=prefer_mosquitto)
        with pytest.raises(BrokerError, match=rf"port {port} .*already in use"):
            await b.start()
        assert not b.is_running


# -- telemetry ----------------------------------------------------------------------------
async def test_telemetry_carries_user_properties_and_documented_payload(
    devices: MqttDevices, tech: aiomqtt.Client, ctx: SimContext
) -> None:
    await tech.subscribe("v1/device/+/telemetry")
    expected = {d.id for d in online_devices(ctx)}
    messages = await collect(
        tech, lambda seen: {m.topic.value.split("/")[2] for m in seen if not m.retain} >= expected
    )
    for message in messages:
        device_id = message.topic.value.split("/")[2]
        assert user_properties(message) == {
            "device_id": device_id,
            "access_key": key_of(ctx, device_id),
        }
        body = payload(message)
        assert body["status"] == "online"
        assert body["timestamp"].endswith("Z") and len(body["timestamp"]) == len("2021-08-04T07:45:44.122Z")
        metrics = body["telemetries"]
        assert metrics["connection"] in ("4g", "wifi")
        assert isinstance(metrics["usbc"], bool)
        assert -110 < metrics["rssi"] < -20
        assert 10 < metrics["temperature"] < 35 and 0 <= metrics["humidity"] <= 100
        assert metrics["co2"] >= 380 and 0 <= metrics["fan_speed"] <= 100
    offline = {d.id for d in ctx.fleet.of("mqtt").values() if not d.online}
    assert offline and not offline & {m.topic.value.split("/")[2] for m in messages}


async def test_late_subscriber_finds_every_online_device_retained_even_outside_active_set(
    broker: Broker, ctx: SimContext
) -> None:
    d = MqttDevices(ctx, HOST, broker.port, "5", INTERVAL, active_limit=2)
    await d.start()
    try:
        assert len(d.active_ids()) == 2
        await asyncio.sleep(0.5)  # the idle devices' single retained message is out
        async with aiomqtt.Client(HOST, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as late:
            await late.subscribe("v1/device/+/telemetry")
            expected = {dev.id for dev in online_devices(ctx)}
            retained = await collect(
                late,
                lambda seen: {m.topic.value.split("/")[2] for m in seen} >= expected,
                timeout=2.0,
                keep=lambda m: m.retain,
            )
            assert all(user_properties(m)["device_id"] == m.topic.value.split("/")[2] for m in retained)
        assert d.stats["retained_seed"] == len(expected) - 2
    finally:
        await d.stop()


async def test_large_fleet_publishes_for_a_bounded_active_set(broker: Broker) -> None:
    ctx = make_ctx(size=3_000)  # 450 MQTT devices
    d = MqttDevices(ctx, HOST, broker.port, "5", 1.0, active_limit=200)
    await d.start()
    try:
        online = online_devices(ctx)
        assert len(online) > 300
        assert d.active_ids() == [dev.id for dev in online[:200]]
        for _ in range(40):
            if d.stats["retained_seed"] == len(online) - 200:
                break
            await asyncio.sleep(0.05)
        assert d.stats["retained_seed"] == len(online) - 200
        start = d.stats["telemetry"]
        await asyncio.sleep(0.5)
        # Staggered over the interval: half an interval in, some of the active set has published
        # but not all of it at once (a loaded machine publishes fewer, never more).
        assert 0 < d.stats["telemetry"] - start < 200
        await asyncio.sleep(2.0)
        # Bounded: only the 200 active devices publish, at most once per interval each (about
        # 2.5 intervals here), however many of the 450 are online.
        assert d.stats["telemetry"] - start <= 3 * 200
        assert d.stats["connects"] == 1
    finally:
        await d.stop()


# -- requests -----------------------------------------------------------------------------
async def test_get_publishes_the_snapshot_topics(
    devices: MqttDevices, tech: aiomqtt.Client, ctx: SimContext
) -> None:
    device = online_devices(ctx)[0]
    device.firmware = "1.0.3"
    base = f"v1/device/{device.id}"
    await tech.subscribe(f"{base}/#")
    await tech.publish(f"{base}/get", b"", qos=1, properties=auth(ctx, device.id))
    wanted = {f"{base}/space_info", f"{base}/config/update", f"{base}/license", f"{base}/firmware"}
    messages = await collect(
        tech, lambda seen: {m.topic.value for m in seen} >= wanted, keep=lambda m: m.topic.value in wanted
    )
    by_topic = {m.topic.value: payload(m) for m in messages}
    space = by_topic[f"{base}/space_info"]
    assert space["location"]["coordinates"] == {"lat": device.lat, "lng": device.lon}
    assert isinstance(space["location"]["utc_offset"], int) and space["location"]["name"]
    assert space["name"] == device.name and space["temperature_units"] == "celsius"
    assert isinstance(space["maintenance"], bool) and space["local_time"][-6] in "+-"
    config = by_topic[f"{base}/config/update"]
    assert isinstance(config["version"], str) and config["last_updated"].endswith("Z")
    lic = by_topic[f"{base}/license"]
    assert {"data", "signature", "id", "add", "update", "remove"} <= set(lic)
    assert by_topic[f"{base}/firmware"]["latest_fw_version"] == LATEST_FIRMWARE
    assert by_topic[f"{base}/firmware"]["latest_fw_file_id"]
    assert all(user_properties(m)["device_id"] == device.id for m in messages)


async def test_get_includes_the_next_unfinished_command(
    devices: MqttDevices, tech: aiomqtt.Client, ctx: SimContext
) -> None:
    device = online_devices(ctx)[1]
    base = f"v1/device/{device.id}"
    await tech.subscribe(f"{base}/commands/update")
    await tech.subscribe(f"{base}/commands")
    command = {
        "id": "cmd-fw",
        "status": "pending",
        "name": "update_firmware",
        "parameters": {"version": "1.0.9"},
    }
    await tech.publish(f"{base}/commands", json.dumps(command), qos=1, properties=auth(ctx, device.id))
    await collect(tech, lambda s: bool(s), keep=lambda m: m.topic.value == f"{base}/commands/update")
    await tech.publish(f"{base}/get", b"", qos=1, properties=auth(ctx, device.id))
    [announced] = await collect(
        tech,
        lambda s: bool(s),
        keep=lambda m: m.topic.value == f"{base}/commands" and payload(m)["status"] != "pending",
    )
    assert payload(announced) == {**command, "status": "in_progress"}


async def test_config_request_is_answered_on_config_update(
    devices: MqttDevices, tech: aiomqtt.Client, ctx: SimContext
) -> None:
    device = online_devices(ctx)[0]
    base = f"v1/device/{device.id}"
    await tech.subscribe(f"{base}/config/update")
    await tech.publish(f"{base}/config", b"", qos=1, properties=auth(ctx, device.id))
    [answer] = await collect(tech, lambda s: bool(s))
    body = payload(answer)
    state = devices.inspect(device.id)
    assert state is not None
    assert body == state["config"]
    assert {"version", "last_updated", "telemetry_interval"} <= set(body)


async def test_config_request_honours_mqtt5_response_topic_and_correlation(
    devices: MqttDevices, tech: aiomqtt.Client, ctx: SimContext
) -> None:
    device = online_devices(ctx)[0]
    await tech.subscribe("tech/replies/7")
    props = auth(ctx, device.id, response_topic="tech/replies/7", correlation=b"req-42")
    await tech.publish(f"v1/device/{device.id}/config", b"", qos=1, properties=props)
    [answer] = await collect(tech, lambda s: bool(s))
    assert answer.properties is not None and answer.properties.CorrelationData == b"req-42"
    assert "version" in payload(answer)


async def test_command_progresses_pending_in_progress_done(
    devices: MqttDevices, tech: aiomqtt.Client, ctx: SimContext
) -> None:
    device = online_devices(ctx)[2]
    base = f"v1/device/{device.id}"
    await tech.subscribe(f"{base}/commands/update")
    command = {
        "id": "0b0e4f7c-8c39-4a43-9a53-1d8c2f1f0001",
        "status": "pending",
        "name": "update_firmware",
        "parameters": {"url": "https://s3.amazonaws.com/fw.zip", "version": "1.3.4"},
    }
    await tech.publish(f"{base}/commands", json.dumps(command), qos=1, properties=auth(ctx, device.id))
    updates = await collect(tech, lambda seen: payload(seen[-1])["status"] in ("done", "error"))
    assert [payload(m)["status"] for m in updates] == ["in_progress", "done"]
    assert all(payload(m)["id"] == command["id"] for m in updates)
    assert payload(updates[-1])["message"]
    state = devices.inspect(device.id)
    assert state is not None and state["firmware"] == "1.3.4"
    assert [(c["id"], c["status"]) for c in state["commands"]] == [(command["id"], "done")]


async def test_set_config_command_bumps_the_config_version(
    devices: MqttDevices, tech: aiomqtt.Client, ctx: SimContext
) -> None:
    device = online_devices(ctx)[3]
    base = f"v1/device/{device.id}"
    before = devices.inspect(device.id)
    assert before is not None
    await tech.subscribe(f"{base}/config/update")
    command = {
        "id": "cfg-1",
        "status": "pending",
        "name": "set_config",
        "parameters": {"display_brightness": 20},
    }
    await tech.publish(f"{base}/commands", json.dumps(command), qos=1, properties=auth(ctx, device.id))
    [pushed] = await collect(tech, lambda s: bool(s))
    assert payload(pushed)["display_brightness"] == 20
    assert int(payload(pushed)["version"]) == int(before["config"]["version"]) + 1


async def test_unknown_command_ends_in_error_with_a_message(
    devices: MqttDevices, tech: aiomqtt.Client, ctx: SimContext
) -> None:
    device = online_devices(ctx)[0]
    base = f"v1/device/{device.id}"
    await tech.subscribe(f"{base}/commands/update")
    command = {"id": "cmd-x", "status": "pending", "name": "self_destruct", "parameters": {}}
    await tech.publish(f"{base}/commands", json.dumps(command), qos=1, properties=auth(ctx, device.id))
    [update] = await collect(tech, lambda seen: payload(seen[-1])["status"] in ("done", "error"))
    body = payload(update)
    assert body["status"] == "error" and body["id"] == "cmd-x" and "self_destruct" in body["message"]


async def test_requests_with_a_wrong_or_missing_access_key_are_refused_on_mqtt5(
    devices: MqttDevices, tech: aiomqtt.Client, ctx: SimContext
) -> None:
    device, other = online_devices(ctx)[0], online_devices(ctx)[1]
    base = f"v1/device/{device.id}"
    await tech.subscribe(f"{base}/config/update")
    await tech.subscribe(f"{base}/commands/update")
    await tech.publish(f"{base}/config", b"", qos=1, properties=auth(ctx, device.id, key="mq-wrong"))
    await tech.publish(f"{base}/config", b"", qos=1)  # no user properties at all
    command = {"id": "sneaky", "status": "pending", "name": "reboot", "parameters": {}}
    await tech.publish(
        f"{base}/commands", json.dumps(command), qos=1, properties=auth(ctx, device.id, key="x")
    )
    # another device's key, or the simulator's fleet secret, is not this device's key
    for key in (key_of(ctx, other.id), ctx.credentials.mqtt_access_key):
        await tech.publish(
            f"{base}/commands", json.dumps(command), qos=1, properties=auth(ctx, device.id, key=key)
        )
    assert await quiet_for(tech, 0.6, keep=lambda m: True) == []
    state = devices.inspect(device.id)
    assert state is not None and state["commands"] == []
    assert state["refused_requests"] == 5 and devices.stats["refused"] >= 5
    # the right key on the same topic is answered
    await tech.publish(f"{base}/config", b"", qos=1, properties=auth(ctx, device.id))
    assert await collect(tech, lambda s: bool(s))


async def test_offline_devices_publish_nothing_but_the_cloud_answers_their_snapshot(
    devices: MqttDevices, tech: aiomqtt.Client, ctx: SimContext
) -> None:
    device = next(d for d in ctx.fleet.of("mqtt").values() if not d.online)
    base = f"v1/device/{device.id}"
    await tech.subscribe(f"{base}/#")
    # never published: nothing retained, nothing at the interval
    assert await quiet_for(tech, 3 * INTERVAL, keep=lambda m: True) == []
    # the device does not answer a config request ...
    await tech.publish(f"{base}/config", b"", qos=1, properties=auth(ctx, device.id))
    assert await quiet_for(tech, 0.6, keep=lambda m: m.topic.value != f"{base}/config") == []
    # ... but the cloud answers the snapshot request for it
    await tech.publish(f"{base}/get", b"", qos=1, properties=auth(ctx, device.id))
    snapshot = await collect(
        tech,
        lambda seen: {"space_info", "config/update"} <= {m.topic.value[len(base) + 1 :] for m in seen},
        keep=lambda m: m.topic.value != f"{base}/get",
    )
    space = next(payload(m) for m in snapshot if m.topic.value == f"{base}/space_info")
    assert space["name"] == device.name
    # a command is held by the cloud, pending, and announced in the next snapshot
    command = {"id": "held-1", "status": "pending", "name": "reboot", "parameters": {}}
    await tech.publish(f"{base}/commands", json.dumps(command), qos=1, properties=auth(ctx, device.id))
    await tech.publish(f"{base}/get", b"", qos=1, properties=auth(ctx, device.id))
    announced = await collect(
        tech,
        lambda seen: any(m.topic.value == f"{base}/commands" for m in seen),
        keep=lambda m: m.topic.value == f"{base}/commands" and payload(m).get("id") == "held-1",
    )
    assert payload(announced[0])["status"] == "pending"
    state = devices.inspect(device.id)
    assert state is not None and state["commands"] == [{**command}]


async def test_licences_change_device_state_and_device_reports_are_not_requests(
    devices: MqttDevices, tech: aiomqtt.Client, ctx: SimContext
) -> None:
    """``update`` carries userProperties: the device publishes it (document 003); someone else
    publishing it does not rename or reflash the device. ``cloud_settings/update`` is kept by
    the cloud."""
    device = online_devices(ctx)[0]
    name, firmware = device.name, device.firmware
    base = f"v1/device/{device.id}"
    props = auth(ctx, device.id)
    await tech.subscribe(f"{base}/license/update")
    await tech.publish(
        f"{base}/update", json.dumps({"firmware_version": "0.0.1", "name": "Lab 9"}), qos=1, properties=props
    )
    await tech.publish(
        f"{base}/cloud_settings/update",
        json.dumps({"property": "reporting", "value": "eco"}),
        qos=1,
        properties=props,
    )
    licence = {
        "data": "lic",
        "signature": "sig",
        "id": "lic-2",
        "add": True,
        "update": False,
        "remove": False,
    }
    await tech.publish(f"{base}/license", json.dumps(licence), qos=1, properties=props)
    await tech.publish(
        f"{base}/license",
        json.dumps({**licence, "id": "nope", "add": False, "remove": True}),
        qos=1,
        properties=props,
    )
    answers = await collect(tech, lambda seen: len(seen) == 2)
    assert [payload(m) for m in answers] == [
        {"id": "lic-2", "state": "inuse"},
        {"id": "nope", "state": "error", "error": "no licence nope installed"},
    ]
    state = devices.inspect(device.id)
    assert state is not None
    assert (state["name"], state["firmware"]) == (name, firmware)
    assert state["cloud_settings"] == {"reporting": "eco"}
    assert state["cloud_settings_received"] == [{"property": "reporting", "value": "eco"}]
    assert {lic["id"]: lic["state"] for lic in state["licenses"]}["lic-2"] == "inuse"
    assert devices.inspect("no-such-device") is None


# -- "Update Device": published by the device -------------------------------------------
async def test_every_online_device_publishes_its_update_retained_with_user_properties(
    broker: Broker, ctx: SimContext
) -> None:
    d = MqttDevices(ctx, HOST, broker.port, "5", INTERVAL, active_limit=2)
    await d.start()
    try:
        expected = {dev.id: dev for dev in online_devices(ctx)}
        await asyncio.sleep(0.3)  # the retained messages are out: a late subscriber finds them
        async with aiomqtt.Client(HOST, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as late:
            await late.subscribe("v1/device/+/update")
            retained = await collect(
                late,
                lambda seen: {m.topic.value.split("/")[2] for m in seen} >= set(expected),
                timeout=3.0,
                keep=lambda m: m.retain,
            )
        for message in retained:
            device = expected[message.topic.value.split("/")[2]]
            assert user_properties(message) == {
                "device_id": device.id,
                "access_key": key_of(ctx, device.id),
            }
            assert payload(message) == {"firmware_version": device.firmware, "name": device.name}
        offline = {dev.id for dev in ctx.fleet.of("mqtt").values() if not dev.online}
        assert not offline & {m.topic.value.split("/")[2] for m in retained}
        assert d.stats["device_updates"] >= len(expected)
    finally:
        await d.stop()


async def test_a_firmware_update_is_announced_on_update_before_the_command_is_done(
    devices: MqttDevices, tech: aiomqtt.Client, ctx: SimContext
) -> None:
    device = online_devices(ctx)[-1]
    base = f"v1/device/{device.id}"
    await tech.subscribe(f"{base}/commands/update")
    await tech.subscribe(f"{base}/update")
    command = {
        "id": "fw-2",
        "status": "pending",
        "name": "update_firmware",
        "parameters": {"version": "2.0.1"},
    }
    await tech.publish(f"{base}/commands", json.dumps(command), qos=1, properties=auth(ctx, device.id))
    seen = await collect(
        tech,
        lambda s: s[-1].topic.value == f"{base}/commands/update" and payload(s[-1])["status"] == "done",
        keep=lambda m: not m.retain,
    )
    # (the device's (re)connect announcement may land here too, with the old version)
    announced = [m for m in seen if m.topic.value == f"{base}/update"][-1]
    assert payload(announced) == {"firmware_version": "2.0.1", "name": device.name}
    assert user_properties(announced)["device_id"] == device.id
    # retained: a later lookup finds the new version without asking the device
    async with aiomqtt.Client(HOST, devices.port, protocol=aiomqtt.ProtocolVersion.V5) as late:
        await late.subscribe(f"{base}/update")
        [kept] = await collect(late, lambda s: bool(s))
        assert kept.retain and payload(kept)["firmware_version"] == "2.0.1"


async def test_the_update_is_published_again_after_a_broker_restart(
    broker: Broker, devices: MqttDevices, ctx: SimContext
) -> None:
    device = online_devices(ctx)[0]
    await broker.restart()  # no persistence: the retained messages are gone
    await devices.wait_connected(5.0)
    async with aiomqtt.Client(HOST, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(f"v1/device/{device.id}/update")
        [message] = await collect(client, lambda s: bool(s))
    assert payload(message)["firmware_version"] == device.firmware


async def test_devices_follow_a_device_going_offline_and_a_fleet_reset(
    devices: MqttDevices, tech: aiomqtt.Client, ctx: SimContext
) -> None:
    device = online_devices(ctx)[0]
    topic = f"v1/device/{device.id}/telemetry"
    await tech.subscribe(f"v1/device/{device.id}/license/update")
    licence = {"data": "d", "signature": "s", "id": "lic-r", "add": True, "update": False, "remove": False}
    await tech.publish(
        f"v1/device/{device.id}/license", json.dumps(licence), qos=1, properties=auth(ctx, device.id)
    )
    await collect(tech, lambda s: bool(s))
    await tech.unsubscribe(f"v1/device/{device.id}/license/update")
    device.name = "Renamed"
    await tech.subscribe(topic)
    await collect(tech, lambda s: bool(s), keep=lambda m: not m.retain)
    renamed = devices.inspect(device.id)
    assert renamed is not None and renamed["name"] == "Renamed"
    assert "lic-r" in {lic["id"] for lic in renamed["licenses"]}
    device.online = False
    await asyncio.sleep(INTERVAL)  # a reading already on its way may still land
    assert await quiet_for(tech, 2.5 * INTERVAL, keep=lambda m: not m.retain) == []
    # the simulator's reset swaps in a freshly generated fleet: the devices follow it
    ctx.fleet = generate_fleet(seed=3, size=40)
    await collect(tech, lambda s: bool(s), keep=lambda m: not m.retain)
    state = devices.inspect(device.id)
    assert state is not None and state["name"] != "Renamed" and state["online"]
    assert "lic-r" not in {lic["id"] for lic in state["licenses"]}


# -- faults -------------------------------------------------------------------------------
async def test_telemetry_resumes_after_a_broker_restart(
    broker: Broker, devices: MqttDevices, ctx: SimContext
) -> None:
    await broker.restart()
    assert broker.is_running
    began = asyncio.get_running_loop().time()
    async with aiomqtt.Client(HOST, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe("v1/device/+/telemetry")
        fresh = await collect(client, lambda seen: len(seen) >= 3, keep=lambda m: not m.retain)
    # the broker wakes its devices when it is back: no waiting out a reconnect backoff
    assert asyncio.get_running_loop().time() - began < 1.0
    assert all(user_properties(m)["access_key"] == key_of(ctx, m.topic.value.split("/")[2]) for m in fresh)
    assert devices.connected and devices.stats["connects"] >= 2
    # and a stop/start pair, as the runner also does it
    await broker.stop()
    await asyncio.sleep(0.3)
    await broker.start()
    await devices.wait_connected(5.0)


# -- the amqtt fallback -------------------------------------------------------------------
async def test_amqtt_fallback_speaks_mqtt311_and_telemetry_has_no_user_properties() -> None:
    ctx = make_ctx()
    b = Broker(HOST, free_port(), prefer_mosquitto=False)
    assert await b.start() == "3.1.1"
    d = MqttDevices(ctx, HOST, b.port, "3.1.1", INTERVAL, command_step=0.05)
    try:
        await d.start()
        assert d.connected
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(HOST, b.port, protocol=aiomqtt.ProtocolVersion.V5):
                pass
        async with aiomqtt.Client(HOST, b.port, protocol=aiomqtt.ProtocolVersion.V311) as client:
            await client.subscribe("v1/device/+/telemetry")
            [message] = await collect(client, lambda s: bool(s))
            assert message.properties is None
            assert payload(message)["status"] == "online"
            # 3.1.1 has no user properties: requests are accepted without a key
            device = online_devices(ctx)[0]
            base = f"v1/device/{device.id}"
            await client.subscribe(f"{base}/commands/update")
            command = {"id": "c-311", "status": "pending", "name": "identify", "parameters": {}}
            await client.publish(f"{base}/commands", json.dumps(command), qos=1)
            updates = await collect(
                client,
                lambda seen: payload(seen[-1])["status"] == "done",
                keep=lambda m: m.topic.value.endswith("/commands/update"),
            )
            assert [payload(m)["status"] for m in updates] == ["in_progress", "done"]
            # the snapshot's own command and licence echoes are not taken as requests
            firmware = {
                "id": "c-fw",
                "status": "pending",
                "name": "update_firmware",
                "parameters": {"version": "2"},
            }
            await client.publish(f"{base}/commands", json.dumps(firmware), qos=1)
            await client.publish(f"{base}/get", b"", qos=1)
            await collect(
                client,
                lambda seen: (
                    payload(seen[-1]) == {"status": "done", "id": "c-fw", "message": "firmware updated to 2"}
                ),
                keep=lambda m: m.topic.value.endswith("/commands/update"),
            )
        state = d.inspect(device.id)
        assert state is not None
        assert [(c["id"], c["status"]) for c in state["commands"]] == [("c-311", "done"), ("c-fw", "done")]
        assert [lic["state"] for lic in state["licenses"]] == ["inuse"]
    finally:
        await d.stop()
        await b.stop()
    assert not b.is_running
