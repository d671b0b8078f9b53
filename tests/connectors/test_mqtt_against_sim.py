"""MQTT connector against the simulator's broker and simulated devices (document 003)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from fieldtui.config import MqttBackend
from fieldtui.connectors.mqtt import MqttConnector
from fieldtui.core.errors import ConnectionError_, NotFound, TimeoutError_
from fieldtui.core.models import TaskState, TelemetrySample
from fieldtui.core.send_window import SendWindowClosed, send_window


def config_for(sim: Any, **overrides: Any) -> MqttBackend:
    protocol = "3.1.1" if sim.mqtt_protocol == "3.1.1" else 5
    values: dict[str, Any] = {
        "kind": "mqtt",
        "host": "127.0.0.1",
        "port": sim.mqtt_port,
        "protocol": protocol,
    }
    values.update(overrides)
    return MqttBackend(**values)


def keys_file(sim: Any, directory: Path) -> str:
    """Every simulated device's own access key, in a 0600 keys file as fieldtui reads it."""
    path = directory / "live-keys.toml"
    path.write_text(
        "".join(f"{json.dumps(d)} = {json.dumps(k)}\n" for d, k in sim.simulator.mqtt_keys().items())
    )
    path.chmod(0o600)
    return str(path)


def keyed(sim: Any, directory: Path, **overrides: Any) -> MqttConnector:
    """A connector holding one key per device (and no shared key: the simulator takes none)."""
    return MqttConnector(
        "live", config_for(sim, timeout=5, keys_file=keys_file(sim, directory), **overrides), None
    )


@pytest.fixture
def live(sim: Any, tmp_path: Path) -> MqttConnector:
    if sim.mqtt_port is None:
        pytest.fail("the simulator runs no MQTT broker")
    return keyed(sim, tmp_path)


def active_device(sim: Any) -> Any:
    """An online device that publishes telemetry at the interval (the first ones in fleet order)."""
    return next(d for d in sim.fleet.of("mqtt").values() if d.online)


async def first_samples(stream: AsyncIterator[TelemetrySample], count: int) -> list[TelemetrySample]:
    samples: list[TelemetrySample] = []
    async for sample in stream:
        samples.append(sample)
        if len(samples) == count:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    return samples


async def test_probe(live: MqttConnector) -> None:
    await live.probe()


async def test_lookup_finds_a_device_with_its_snapshot(live: MqttConnector, sim: Any) -> None:
    expected = active_device(sim)
    began = time.perf_counter()
    device = await live.get_device(expected.id)
    assert time.perf_counter() - began < 2.0
    assert device.id == expected.id and device.backend == "live"
    assert device.online is True and device.status == "online"
    assert device.rssi is not None
    assert device.last_seen is not None
    if sim.mqtt_protocol == "5":
        assert device.name == expected.name  # from space_info, answered to our snapshot request
        assert device.location is not None and device.location.lat == pytest.approx(expected.lat)


async def test_lookup_shows_the_firmware_the_device_announced(live: MqttConnector, sim: Any) -> None:
    """Document 003 "Update Device": the device publishes ``.../update`` (retained)."""
    online = [d for d in sim.fleet.of("mqtt").values() if d.online]
    for expected in (online[0], online[-1]):  # an active device and one outside the active set
        device = await live.get_device(expected.id)
        assert device.firmware == expected.firmware
        assert device.name == expected.name
    # Even without an access key (no snapshot request), the retained announcement is there.
    keyless = MqttConnector("live", config_for(sim, timeout=5), None)
    device = await keyless.get_device(online[0].id)
    assert device.firmware == online[0].firmware and device.name == online[0].name


async def test_after_a_firmware_update_the_lookup_shows_the_new_version(
    sim_clean: Any, tmp_path: Path
) -> None:
    live = keyed(sim_clean, tmp_path)
    target = active_device(sim_clean)
    before = await live.get_device(target.id)
    assert before.firmware == target.firmware != "9.9.9"
    updates = [
        c async for c in live.run_command(target.id, "update_firmware", {"version": "9.9.9"}, timeout=10)
    ]
    assert updates[-1].state is TaskState.DONE
    after = await live.get_device(target.id)
    assert after.firmware == "9.9.9"
    firmware = await live.firmware_info(target.id)
    assert firmware.current == "9.9.9" and firmware.latest in (None, "1.0.8")


async def test_unknown_device_is_not_found_at_once(live: MqttConnector) -> None:
    began = time.perf_counter()
    with pytest.raises(NotFound):
        await live.get_device("dev-" + secrets.token_hex(6))
    assert time.perf_counter() - began < 0.5


async def test_telemetry_arrives(live: MqttConnector, sim: Any) -> None:
    device = active_device(sim)
    samples = await first_samples(live.telemetry(device.id), 4)
    assert all(s.device == device.id and s.backend == "live" for s in samples)
    assert all({"temperature", "co2", "rssi"} <= set(s.metrics) for s in samples)
    assert samples[-1].timestamp >= samples[0].timestamp


async def _publisher(sim: Any) -> aiomqtt.Client:
    version = aiomqtt.ProtocolVersion.V311 if sim.mqtt_protocol == "3.1.1" else aiomqtt.ProtocolVersion.V5
    return aiomqtt.Client("127.0.0.1", sim.mqtt_port, protocol=version)


async def test_bad_payloads_are_skipped_and_counted_never_fatal(live: MqttConnector, sim: Any) -> None:
    device_id = "dev-test" + secrets.token_hex(4)
    topic = f"v1/device/{device_id}/telemetry"
    good = {"status": "online", "timestamp": "2030-01-01T00:00:00Z", "telemetries": {"n": 1}}
    async with await _publisher(sim) as publisher:
        await publisher.publish(topic, json.dumps(good), qos=1, retain=True)
        stream = live.telemetry(device_id)
        try:
            first = await asyncio.wait_for(anext(stream), 5)  # the retained one: we are subscribed
            assert first.metrics == {"n": 1, "status": "online"}
            for bad in (b"not json", bytes(range(256)), b"[]", b'{"telemetries": "x"}', b"x" * (1024 * 1024)):
                await publisher.publish(topic, bad, qos=1)
            await publisher.publish(topic, json.dumps({**good, "telemetries": {"n": 2}}), qos=1)
            second = await asyncio.wait_for(anext(stream), 5)
            assert second.metrics["n"] == 2
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
            await publisher.publish(topic, b"", qos=1, retain=True)  # clear the retained message
    assert sum(live.stats.skipped.values()) == 5
    assert live.stats.skipped["too large"] == 1 and live.stats.skipped["not JSON"] == 2


async def test_a_command_progresses_to_done(live: MqttConnector, sim: Any) -> None:
    device = active_device(sim)
    updates = [c async for c in live.run_command(device.id, "reboot", {}, timeout=10)]
    assert [c.status for c in updates] == ["pending", "in_progress", "done"]
    assert updates[-1].state is TaskState.DONE and updates[-1].message == "rebooted"
    listed = await live.list_commands(device.id)
    assert listed[0].id == updates[0].id and listed[0].state is TaskState.DONE


async def test_send_command_then_follow_its_updates(live: MqttConnector, sim: Any) -> None:
    device = active_device(sim)
    follow = live.command_updates(device.id, timeout=10)
    waiting = asyncio.ensure_future(anext(follow))
    await asyncio.sleep(0.3)  # let the follower subscribe first
    command = await live.send_command(device.id, "no_such_command", {"x": 1})
    assert command.state is TaskState.QUEUED
    update = await asyncio.wait_for(waiting, 10)
    await follow.aclose()  # type: ignore[attr-defined]
    assert update.id == command.id and update.state is TaskState.FAILED
    assert "unknown command" in (update.message or "")


async def test_a_command_met_after_its_send_window_closed_is_not_published(
    live: MqttConnector, sim: Any
) -> None:
    """The outbox's last guard against a sync stopped past its lease: nothing leaves."""
    device = active_device(sim)
    follow = live.command_updates(device.id, timeout=2)
    waiting = asyncio.ensure_future(anext(follow))
    await asyncio.sleep(0.3)  # let the follower subscribe first
    with send_window(time.time() - 1), pytest.raises(SendWindowClosed):
        await live.send_command(device.id, "no_such_command", {"x": 1})
    await asyncio.wait({waiting}, timeout=10)
    assert waiting.done()
    assert isinstance(waiting.exception(), TimeoutError_), "the device answered a command never sent"


async def test_config_firmware_space_info_and_snapshot(live: MqttConnector, sim: Any) -> None:
    device = active_device(sim)
    config = await live.request_config(device.id)
    assert "version" in config and "last_updated" in config
    space = await live.space_info(device.id)
    assert space.name == device.name
    firmware = await live.firmware_info(device.id)
    assert firmware.latest in (None, "1.0.8")
    snapshot = await live.snapshot(device.id)
    assert {"telemetry", "space_info", "config/update"} <= set(snapshot)


async def test_requests_with_a_wrong_access_key_are_ignored_by_devices(sim: Any) -> None:
    wrong = MqttConnector("live", config_for(sim, timeout=1), "not-the-key")
    if sim.mqtt_protocol == "5":
        with pytest.raises(TimeoutError_):
            await wrong.request_config(active_device(sim).id)
    else:  # MQTT 3.1.1 carries no access key: every request counts
        assert "version" in await wrong.request_config(active_device(sim).id)


async def test_mqtt_311_lookup_and_telemetry_work_too(sim: Any, tmp_path: Path) -> None:
    old = keyed(sim, tmp_path, protocol="3.1.1")
    device = active_device(sim)
    found = await old.get_device(device.id)
    assert found.id == device.id and found.online is True
    assert len(await first_samples(old.telemetry(device.id), 2)) == 2


async def test_unreachable_broker_is_a_connection_error(sim: Any) -> None:
    closed = MqttConnector("live", config_for(sim, port=1, timeout=2), None)
    with pytest.raises(ConnectionError_):
        await closed.get_device("dev-1")


async def test_broker_restart_breaks_the_stream_and_a_new_one_resumes(sim_clean: Any, tmp_path: Path) -> None:
    live = keyed(sim_clean, tmp_path)
    device = active_device(sim_clean)
    stream = live.telemetry(device.id)
    await asyncio.wait_for(anext(stream), 5)
    restart = asyncio.create_task(asyncio.to_thread(sim_clean.admin, "POST", "/_sim/broker/restart"))
    with pytest.raises(ConnectionError_):
        async with asyncio.timeout(20):
            async for _ in stream:
                pass
    response = await restart
    assert response.status_code == 200
    # The service reconnects with backoff; here: retry until the broker and devices are back.
    deadline = time.monotonic() + 20
    while True:
        try:
            samples = await asyncio.wait_for(first_samples(live.telemetry(device.id), 2), 5)
            break
        except (ConnectionError_, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)
    assert len(samples) == 2
    with contextlib.suppress(Exception):
        await stream.aclose()  # type: ignore[attr-defined]
