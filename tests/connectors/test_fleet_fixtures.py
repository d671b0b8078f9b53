"""Document 004's example body maps into the values a technician reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from fieldtui.connectors._wire_fleet import FleetDeviceWire, to_device
from fieldtui.connectors._wire_lenient import parse
from fieldtui.core.errors import InvalidResponse
from fieldtui.core.models import BackendKind

FIXTURES = Path(__file__).parent / "fixtures" / "fleet"
ROUTE = httpx.Response(200, request=httpx.Request("GET", "http://sim.test/devices/ABCD1234"))
SEEN = datetime(2019, 1, 19, 5, 1, 13, tzinfo=UTC)


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "device_response.json").read_text())["data"]
    return data


def device(data: dict[str, Any], now: datetime | None = None) -> Any:
    return to_device(parse(FleetDeviceWire, data, ROUTE, "fleet"), data, "fleet", now)


def test_the_document_body_is_kept_as_a_fixture() -> None:
    assert sorted(p.name for p in FIXTURES.iterdir()) == ["README.md", "device_response.json"]


def test_device_sample_reads_serial_model_firmware_group_and_last_seen() -> None:
    data = load()
    result = device(data)
    assert result.id == "ABCD1234"
    assert (result.backend, result.kind) == ("fleet", BackendKind.FLEET)
    assert result.model == "hwrev1"
    assert result.firmware == "1.2.3"
    assert result.group == "beta"
    assert result.last_seen == SEEN
    assert result.online is False  # seen in 2019
    assert result.raw == data


@pytest.mark.parametrize(("age", "online"), [(timedelta(minutes=3), True), (timedelta(minutes=16), False)])
def test_online_means_seen_in_the_last_fifteen_minutes(age: timedelta, online: bool) -> None:
    assert device(load(), now=SEEN + age).online is online


def test_offsets_and_microseconds_become_utc() -> None:
    result = device({**load(), "last_seen": "2019-01-19T07:01:13.250000+02:00"})
    assert result.last_seen == SEEN.replace(microsecond=250000)


def test_lenient_release_as_text_missing_cohort_and_never_seen() -> None:
    data = {**load(), "id": "1", "last_seen_release": "1.2.4", "cohort": None, "last_seen": None}
    result = device(data)
    assert (result.firmware, result.group, result.last_seen, result.online) == ("1.2.4", None, None, False)
    assert device({"device_serial": "X1"}).firmware is None


def test_a_device_without_serial_is_an_invalid_response() -> None:
    with pytest.raises(InvalidResponse) as caught:
        device({k: v for k, v in load().items() if k != "device_serial"})
    assert caught.value.route == "GET /devices/ABCD1234"
    assert "device_serial" in str(caught.value)
