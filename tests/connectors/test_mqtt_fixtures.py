"""Document 003's payloads, parsed as the MQTT connector reads them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fieldtui.config import MqttBackend
from fieldtui.connectors import mqtt
from fieldtui.connectors.mqtt import MqttConnector, command_state
from fieldtui.core.errors import AuthError, NotFound
from fieldtui.core.models import Location, TaskState

FIXTURES = Path(__file__).parent / "fixtures" / "mqtt"


def load(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def raw(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def connector(protocol: str = "5") -> MqttConnector:
    return MqttConnector("live", MqttBackend(kind="mqtt", host="127.0.0.1", protocol=protocol), "secret")  # type: ignore[arg-type]


def test_every_fixture_is_json() -> None:
    assert len(list(FIXTURES.glob("*.json"))) == 12
    for path in FIXTURES.glob("*.json"):
        json.loads(path.read_text())


def test_telemetry_payload_becomes_metrics() -> None:
    parsed = mqtt._telemetry(raw("telemetry"))
    assert not isinstance(parsed, str)
    timestamp, metrics = parsed
    assert timestamp == datetime(2021, 8, 4, 7, 45, 44, 122000, tzinfo=UTC)
    assert metrics == {"fan_speed": 100.1, "connection": "4g", "usbc": True, "status": "online"}
    assert type(metrics["usbc"]) is bool


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json at all", "not JSON"),
        (bytes(range(256)), "not JSON"),
        (b"\xff\xfe\x00binary", "not JSON"),
        (b"[1, 2, 3]", "not a JSON object"),
        (b'{"status": "online"}', "no telemetries object"),
        (b'{"telemetries": [1]}', "no telemetries object"),
        (b'{"telemetries": {"x": 1}, "pad": "' + b"a" * (1024 * 1024) + b'"}', "too large"),
    ],
)
def test_bad_telemetry_payloads_are_skipped_with_a_reason(payload: bytes, reason: str) -> None:
    assert mqtt._telemetry(payload) == reason


def test_nested_and_non_finite_values_are_dropped_not_fatal() -> None:
    parsed = mqtt._telemetry(b'{"telemetries": {"a": 1, "b": {"c": 2}, "d": null, "e": NaN, "f": [1]}}')
    assert not isinstance(parsed, str)
    _, metrics = parsed
    assert metrics == {"a": 1}


def test_space_info_payload() -> None:
    info = mqtt._space_info(load("space_info"))
    assert info.name == "Interactive Class"
    assert (info.lat, info.lon) == (51.165691, 10.451526)
    assert info.location_name == "Germany" and info.utc_offset == 60 and info.maintenance is False


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("pending", TaskState.QUEUED),
        ("in_progress", TaskState.RUNNING),
        ("done", TaskState.DONE),
        ("error", TaskState.FAILED),
    ],
)
def test_command_statuses(status: str, state: TaskState) -> None:
    assert command_state(status) is state


def test_command_and_its_update_are_followed_by_id() -> None:
    conn = connector()
    announced = conn._note_command("dev-1", load("command"))
    assert (
        announced is not None and announced.name == "update_firmware" and announced.state is TaskState.QUEUED
    )
    update = load("command_update")
    update["id"] = announced.id
    done = conn._note_command("dev-1", update)
    assert done is not None
    assert (done.name, done.state, done.message) == ("update_firmware", TaskState.DONE, "great, success!")
    assert done.parameters == {"url": "https://s3.amazonaws.com/xxxx.zip", "version": "1.3.4"}
    assert conn._note_command("dev-1", {"no": "id"}) is None


def seen_map(**items: mqtt._Seen) -> mqtt._SeenMap:
    seen = mqtt._SeenMap()
    for suffix, item in items.items():
        seen[suffix.replace("__", "/")] = item
    return seen


def test_device_from_the_documented_payloads() -> None:
    seen = seen_map(
        telemetry=mqtt._Seen(load("telemetry"), True, None),
        space_info=mqtt._Seen(load("space_info"), False, None),
        firmware=mqtt._Seen(load("firmware"), False, None),
        update=mqtt._Seen(load("update_device"), True, None),
    )
    device = connector()._device_from("DEVICE_ID", seen)
    assert device.name == "NAME"  # the device's own name ("Update Device"), not its space's
    assert device.location == Location(lat=51.165691, lon=10.451526)
    assert device.firmware == "VERSION"
    assert device.status == "online"
    assert device.online is False  # the documented reading is from 2021
    assert device.last_seen == datetime(2021, 8, 4, 7, 45, 44, 122000, tzinfo=UTC)
    assert device.alerts == ("firmware 1.0.8 available",)
    del seen["update"]  # a device that has not announced itself: its space names it
    assert connector()._device_from("DEVICE_ID", seen).name == "Interactive Class"
    assert device.raw["telemetry"]["telemetries"]["usbc"] is True


def test_user_properties_carry_device_id_and_access_key_on_mqtt5_only() -> None:
    documented = load("user_properties")
    props = connector()._properties("DEVICE_ID", "secret", response_topic="v1/device/DEVICE_ID/config/update")
    assert props is not None
    assert dict(props.UserProperty) == {"device_id": documented["device_id"], "access_key": "secret"}
    assert props.ResponseTopic == "v1/device/DEVICE_ID/config/update"
    assert connector("3.1.1")._properties("DEVICE_ID", "secret") is None


def test_a_device_known_only_from_the_clouds_snapshot_is_offline_not_missing() -> None:
    """Document 003 never promises a retained message: the snapshot's answers prove the device."""
    seen = seen_map(
        space_info=mqtt._Seen(load("space_info"), False, None),
        config__update=mqtt._Seen(load("config_update"), False, None),
    )
    assert mqtt._answered(seen)
    device = connector()._device_from("DEVICE_ID", seen)
    assert device.online is False and device.status == "offline (never published)"
    assert device.name == "Interactive Class" and device.last_seen is None
    assert device.location == Location(lat=51.165691, lon=10.451526)
    # only retained messages: the cloud has not answered (yet)
    assert not mqtt._answered(seen_map(update=mqtt._Seen(load("update_device"), True, None)))


def test_a_licence_from_the_snapshot() -> None:
    licence = mqtt._license(load("license"))
    assert licence.id == "xxxxxxxx-xxxx..." and licence.operation == "add"
    assert (licence.data, licence.signature) == ("device-specific license info...", "RSA signature...")
    assert mqtt._license({"id": "l-1", "add": "yes"}).operation is None  # only a JSON true counts


def keys_connector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **extra: Any) -> MqttConnector:
    keys = tmp_path / "live-keys.toml"
    keys.write_text('"dev-a" = "key-a"\n"dev b" = "key-b"\n')
    keys.chmod(0o600)
    config = MqttBackend(kind="mqtt", host="127.0.0.1", keys_file=str(keys), **extra)
    monkeypatch.setenv("FIELDTUI_SECRET_SITE_LIVE_DEV_C", "key-c")
    return MqttConnector("live", config, "shared", profile="site")


def test_each_device_gets_its_own_key_with_the_shared_key_as_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = keys_connector(tmp_path, monkeypatch, keys_in_keyring=True)
    assert conn._key_source("dev-a") == ("key-a", f"the keys file {tmp_path / 'live-keys.toml'}")
    assert conn._key_for("dev b") == "key-b"
    assert conn._key_source("dev-c") == ("key-c", "the secret site/live/dev-c")
    assert conn._key_source("dev-z") == ("shared", "the shared key of live")
    # the per-device secret is looked up only when the config asks for it
    assert keys_connector(tmp_path, monkeypatch)._key_for("dev-c") == "shared"
    # a key filed while the app runs is used at the next request
    keys = tmp_path / "live-keys.toml"
    keys.write_text(keys.read_text() + '"dev-z" = "key-z"\n')
    assert conn._key_for("dev-z") == "key-z"


def test_a_lookup_asks_the_cloud_only_with_a_key_that_can_be_the_devices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With per-device keys, an id in no keys file is another cloud's device: judged at once by
    what is retained, never by waiting for a snapshot that cannot come."""
    conn = keys_connector(tmp_path, monkeypatch)
    assert conn._lookup_asks("dev-a") and not conn._lookup_asks("XYGH07P6C64291655")
    shared_only = MqttConnector("live", MqttBackend(kind="mqtt", host="127.0.0.1"), "shared")
    assert shared_only._lookup_asks("any-device")  # the shared key is all this backend has
    keyless = MqttConnector("live", MqttBackend(kind="mqtt", host="127.0.0.1"), None)
    assert not keyless._lookup_asks("any-device")


def test_a_device_without_any_key_is_refused_before_anything_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = tmp_path / "live-keys.toml"
    keys.write_text('"dev-a" = "key-a"\n')
    keys.chmod(0o600)
    conn = MqttConnector("live", MqttBackend(kind="mqtt", host="127.0.0.1", keys_file=str(keys)), None)
    with pytest.raises(AuthError, match="no MQTT access key for device dev-b") as caught:
        conn._require_key("dev-b")
    assert caught.value.hint is not None and f'add "dev-b" = "ACCESS_KEY" to {keys}' in caught.value.hint
    assert conn._require_key("dev-a") == "key-a"


@pytest.mark.parametrize("bad", ["", "a/b", "dev+", "#", "x\x00"])
def test_ids_that_cannot_be_a_topic_level_are_not_found(bad: str) -> None:
    with pytest.raises(NotFound):
        connector()._base(bad)
