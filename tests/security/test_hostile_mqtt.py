"""Hostile MQTT payloads through the simulator's real broker: skipped, and the stream goes on."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from fieldtui.config import MqttBackend
from fieldtui.connectors.mqtt import MqttConnector
from fieldtui.core.models import TelemetrySample

DEVICE = "hostile-telemetry-1"

HOSTILE: list[tuple[str, bytes]] = [
    ("not JSON", b"temperature=21.5"),
    ("not JSON", b'{"telemetries": {"temperature": 1},'),  # the vendor documents' trailing comma
    ("binary", os.urandom(512)),
    ("invalid UTF-8", b'{"telemetries": {"name": "\xff\xfe"}}'),
    ("1 MB", b'{"telemetries": {"blob": "' + b"x" * (1024 * 1024) + b'"}}'),
    ("deeply nested", b"[" * 200_000 + b"]" * 200_000),
    ("wrong type", b'["telemetries", 1, 2]'),
    ("wrong type", b'{"telemetries": [1, 2, 3]}'),
    ("wrong type", b'{"telemetries": {"temperature": {"nested": true}}, "timestamp": 12}'),
    ("empty", b""),
    ("null", b"null"),
]


def _valid(marker: int) -> bytes:
    stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps({"status": "online", "timestamp": stamp, "telemetries": {"marker": marker}}).encode()


def _connector(sim: Any) -> MqttConnector:
    protocol = "3.1.1" if sim.mqtt_protocol == "3.1.1" else "5"
    config = MqttBackend(kind="mqtt", host="127.0.0.1", port=sim.mqtt_port, protocol=protocol)
    return MqttConnector("live", config, sim.credentials.mqtt_access_key)


async def _publish_all(sim: Any, ready: asyncio.Event) -> None:
    await ready.wait()
    version = MQTTProtocolVersion.MQTTv311 if sim.mqtt_protocol == "3.1.1" else MQTTProtocolVersion.MQTTv5
    async with aiomqtt.Client("127.0.0.1", sim.mqtt_port, protocol=version) as client:
        topic = f"v1/device/{DEVICE}/telemetry"
        for marker, (_label, payload) in enumerate(HOSTILE, start=1):
            await client.publish(topic, payload, qos=1)
            await client.publish(topic, _valid(marker), qos=1)


async def test_non_json_binary_and_huge_payloads_are_skipped_and_the_stream_goes_on(sim: Any) -> None:
    if sim.mqtt_port is None:
        pytest.fail("the simulator runs no MQTT broker")
    connector = _connector(sim)
    markers: list[Any] = []
    others: list[TelemetrySample] = []
    ready = asyncio.Event()

    async def consume() -> None:
        stream = connector.telemetry(DEVICE)
        first = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.5)  # subscribed by now
        ready.set()
        sample: TelemetrySample = await first
        while True:
            if "marker" in sample.metrics:
                markers.append(sample.metrics["marker"])
                if markers[-1] == len(HOSTILE):
                    return
            else:
                others.append(sample)
            sample = await anext(stream)

    async with connector:
        consumer = asyncio.create_task(consume())
        await _publish_all(sim, ready)
        await asyncio.wait_for(consumer, 30)
    assert markers == list(range(1, len(HOSTILE) + 1))
    skipped = connector.stats.skipped
    # A message whose values are all of the wrong type may pass as a sample without metrics:
    # what it carries never does (only numbers, strings and booleans become metrics).
    assert sum(skipped.values()) + len(others) == len(HOSTILE), (skipped, others)
    for sample in others:
        assert all(isinstance(v, int | float | str | bool) for v in sample.metrics.values()), sample
    assert skipped["too large"] >= 1
    assert skipped["not JSON"] >= 4
