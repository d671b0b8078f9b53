"""MQTT telemetry ingest: samples/s of MqttConnector.telemetry() vs a bare aiomqtt subscriber vs mosquitto_sub.

Starts its own mosquitto on a free loopback port (or uses --host/--port), then for each
subscriber: subscribe, start a separate Python publisher process that sends N telemetry
messages (QoS 0, ~170 bytes, document 003's shape), and time the subscriber from its first
to its last message. The publisher runs in its own process so it does not share the GIL.

    python bench/mqtt_ingest.py [-n 50000] [--protocol 5|3.1.1] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt

from fieldtui.config import MqttBackend
from fieldtui.connectors.mqtt import MqttConnector

DEVICE = "dev-bench0001"
TOPIC = f"v1/device/{DEVICE}/telemetry"

PUBLISHER = r"""
import json, sys, time
import paho.mqtt.client as mqtt
host, port, n, v5 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "5"
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
client.max_queued_messages_set(0)
client.connect(host, port)
client.loop_start()
topic = sys.argv[5]
for i in range(n):
    payload = json.dumps({"status": "online", "timestamp": "2021-08-04T07:45:44.122Z",
        "telemetries": {"fan_speed": 100.1, "connection": "4g", "usbc": True, "temperature": 21.5,
                        "humidity": 40.2, "co2": 512, "rssi": -61, "seq": i}})
    info = client.publish(topic, payload, qos=0)
    if i % 2000 == 0:
        time.sleep(0.001)
client.loop_stop()
client.disconnect()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_mosquitto(port: int) -> tuple[subprocess.Popen[bytes], tempfile.TemporaryDirectory[str]]:
    tmp = tempfile.TemporaryDirectory(prefix="bench-mosquitto-")
    conf = Path(tmp.name) / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stdout\nmax_queued_messages 0\nmax_queued_bytes 0\n"
    )
    process = subprocess.Popen(
        ["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return process, tmp
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("mosquitto did not start")


def publish(host: str, port: int, n: int, protocol: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", PUBLISHER, host, str(port), str(n), protocol, TOPIC])


async def run_connector(host: str, port: int, n: int, protocol: str, timeout: float) -> tuple[int, float]:
    config = MqttBackend(kind="mqtt", host=host, port=port, protocol="3.1.1" if protocol == "3.1.1" else 5)
    connector = MqttConnector("bench", config, None)
    received, first, last = 0, 0.0, 0.0
    stream = connector.telemetry(DEVICE)
    publisher: subprocess.Popen[bytes] | None = None

    async def consume() -> None:
        nonlocal received, first, last, publisher
        # The subscription is made on the first __anext__; the publisher starts right after it.
        async for _ in stream:
            if received == 0:
                first = time.perf_counter()
            received += 1
            last = time.perf_counter()
            if received >= n:
                return

    async def start_publisher() -> None:
        nonlocal publisher
        await asyncio.sleep(0.3)
        publisher = publish(host, port, n, protocol)

    try:
        await asyncio.wait_for(asyncio.gather(consume(), start_publisher()), timeout)
    except TimeoutError:
        pass
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
        if publisher is not None:
            publisher.wait()
    return received, last - first


async def run_aiomqtt(host: str, port: int, n: int, protocol: str, timeout: float) -> tuple[int, float]:
    version = aiomqtt.ProtocolVersion.V311 if protocol == "3.1.1" else aiomqtt.ProtocolVersion.V5
    received, first, last = 0, 0.0, 0.0
    async with aiomqtt.Client(host, port, protocol=version) as client:
        await client.subscribe(TOPIC, qos=0)
        publisher = publish(host, port, n, protocol)

        async def consume() -> None:
            nonlocal received, first, last
            async for message in client.messages:
                json.loads(message.payload)  # type: ignore[arg-type]
                if received == 0:
                    first = time.perf_counter()
                received += 1
                last = time.perf_counter()
                if received >= n:
                    return

        try:
            await asyncio.wait_for(consume(), timeout)
        except TimeoutError:
            pass
        publisher.wait()
    return received, last - first


def run_mosquitto_sub(host: str, port: int, n: int, protocol: str, timeout: float) -> tuple[int, float]:
    version = "mqttv311" if protocol == "3.1.1" else "mqttv5"
    sub = subprocess.Popen(
        ["mosquitto_sub", "-h", host, "-p", str(port), "-V", version, "-t", TOPIC, "-C", str(n), "-F", "%U"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    publisher = publish(host, port, n, protocol)
    try:
        out, _ = sub.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        sub.kill()
        out, _ = sub.communicate()
    publisher.wait()
    # %U: receive time as unix seconds with microseconds, one line per message.
    stamps = [float(line) for line in out.decode().split()]
    if len(stamps) < 2:
        return len(stamps), 0.0
    return len(stamps), stamps[-1] - stamps[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=50_000, help="messages per run")
    parser.add_argument("--protocol", choices=("5", "3.1.1"), default="5")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--host", default=None, help="use this broker instead of starting mosquitto")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()

    process = None
    tmp = None
    host, port = args.host, args.port
    if host is None:
        if shutil.which("mosquitto") is None:
            raise SystemExit("mosquitto is not installed (apt-get install mosquitto mosquitto-clients)")
        host, port = "127.0.0.1", free_port()
        process, tmp = start_mosquitto(port)
    try:
        rates: dict[str, list[float]] = {"telemetry()": [], "bare aiomqtt": [], "mosquitto_sub": []}
        for _ in range(args.rounds):
            for name in rates:
                if name == "telemetry()":
                    got, seconds = asyncio.run(run_connector(host, port, args.n, args.protocol, args.timeout))
                elif name == "bare aiomqtt":
                    got, seconds = asyncio.run(run_aiomqtt(host, port, args.n, args.protocol, args.timeout))
                else:
                    if shutil.which("mosquitto_sub") is None:
                        continue
                    got, seconds = run_mosquitto_sub(host, port, args.n, args.protocol, args.timeout)
                rate = got / seconds if seconds > 0 else 0.0
                rates[name].append(rate)
                print(
                    f"  {name:14s} {got:7d}/{args.n} msgs in {seconds:6.2f} s = {rate:9.0f} msg/s", flush=True
                )
        print(f"\nMQTT {args.protocol}, {args.n} messages, median of {args.rounds}:")
        medians = {name: statistics.median(values) for name, values in rates.items() if values}
        for name, value in medians.items():
            print(f"  {name:14s} {value:9.0f} samples/s")
        if medians.get("bare aiomqtt"):
            print(f"  telemetry() / bare aiomqtt = {medians['telemetry()'] / medians['bare aiomqtt']:.2f}x")
    finally:
        if process is not None:
            process.terminate()
            process.wait()
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
