"""Document 000's own example bodies map into the values a technician reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldtui.connectors._wire_lenient import parse
from fieldtui.connectors._wire_mysensor import (
    SensorWire,
    TaskPageWire,
    TaskWire,
    task_state,
    to_device,
    to_task,
)
from fieldtui.core.errors import InvalidResponse
from fieldtui.core.models import BackendKind, TaskState

FIXTURES = Path(__file__).parent / "fixtures" / "mysensor"
ROUTE = httpx.Response(200, request=httpx.Request("GET", "http://sim.test/api/sensors/1"))


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def sensor(body: Any) -> Any:
    return to_device(parse(SensorWire, body, ROUTE, "sensors"), dict(body), "sensors")


def task(body: Any, device: str = "1") -> Any:
    return to_task(parse(TaskWire, body, ROUTE, "sensors"), dict(body), "sensors", device)


def test_every_document_body_is_kept_as_a_fixture() -> None:
    names = sorted(p.name for p in FIXTURES.iterdir())
    assert names == [
        "README.md",
        "create_task_request.json",
        "get_sensor_response.json",
        "get_task_response.broken.txt",
        "get_task_response.json",
        "list_tasks_response.json",
    ]


def test_sensor_sample_reads_online_with_its_firmware_and_status() -> None:
    body = load("get_sensor_response.json")
    device = sensor(body)
    assert device.id == "123456789098789"  # a JSON number in the document
    assert device.backend == "sensors"
    assert device.kind is BackendKind.MYSENSOR
    assert device.online is True
    assert device.firmware == "FW:23-09-2022:03"
    assert device.status == "Idle"
    assert device.raw == body


def test_offline_sensor_and_missing_activity_are_told_apart() -> None:
    body = load("get_sensor_response.json")
    assert sensor({**body, "activity_status": "Offline"}).online is False
    without = {k: v for k, v in body.items() if k != "activity_status"}
    assert sensor(without).online is None


def test_task_sample_reads_completed_with_attempts_and_utc_times() -> None:
    result = task(load("get_task_response.json"))
    assert result.id == "16624171"
    assert result.device == "12345678909789"
    assert result.type == "update_firmware"
    assert result.state is TaskState.DONE
    assert result.raw_state == "Completed"
    assert result.attempts == 3
    assert result.created == datetime(2022, 10, 17, 16, 0, 7, tzinfo=UTC)
    assert result.updated == datetime(2022, 10, 17, 16, 49, 39, tzinfo=UTC)


def test_task_list_sample_spelling_update_firwmare_reads_as_update_firmware() -> None:
    body = load("list_tasks_response.json")
    page = parse(TaskPageWire, body, ROUTE, "sensors")
    assert (page.current_page, page.last_page, page.total) == (1, 3, 26)
    tasks = [to_task(item, raw, "sensors", "1") for item, raw in zip(page.data, body["data"], strict=True)]
    assert [t.type for t in tasks] == ["update_firmware", "update_firmware"]
    assert [t.id for t in tasks] == ["16624171", "16624170"]
    # raw stays as received, quirk included
    assert tasks[0].raw["type"] == "update_firwmare"


def test_create_task_request_sample_has_the_fields_the_connector_sends() -> None:
    body = load("create_task_request.json")
    assert set(body) == {"sensor_serial", "file_id", "type"}
    assert isinstance(body["sensor_serial"], int) and isinstance(body["file_id"], int)


@pytest.mark.parametrize(
    ("name", "status_id", "state"),
    [
        ("Pending", 0, TaskState.QUEUED),
        ("queued", None, TaskState.QUEUED),
        ("Running", None, TaskState.RUNNING),
        ("In progress", 1, TaskState.RUNNING),
        ("Completed", 2, TaskState.DONE),
        ("Failed", 3, TaskState.FAILED),
        ("Cancelled", None, TaskState.CANCELLED),
        ("canceled", None, TaskState.CANCELLED),
        (None, 2, TaskState.DONE),
        (None, 3, TaskState.FAILED),
        ("Rebooting", 2, TaskState.QUEUED),  # an unknown word never claims the task finished
        (None, 99, TaskState.QUEUED),
    ],
)
def test_task_states_normalise_from_name_then_id(
    name: str | None, status_id: int | None, state: TaskState
) -> None:
    assert task_state(name, status_id) is state


def test_unknown_state_keeps_the_vendor_word() -> None:
    result = task({**load("get_task_response.json"), "status_name": "Rebooting", "status_id": 9})
    assert (result.state, result.raw_state) == (TaskState.QUEUED, "Rebooting")


def test_lenient_numbers_as_strings_and_missing_optionals() -> None:
    result = task({"id": "7", "sensor_serial": "42", "status_id": "2", "attempt_count": "1", "type": "x"})
    assert (result.id, result.device, result.state, result.attempts) == ("7", "42", TaskState.DONE, 1)
    assert result.created is None and result.detail is None
    assert sensor({"serial": "42", "created_at": "not a date"}).firmware is None


def test_a_sensor_without_serial_is_an_invalid_response_naming_the_route() -> None:
    with pytest.raises(InvalidResponse) as caught:
        sensor({"status_name": "Idle"})
    assert caught.value.route == "GET /api/sensors/1"
    assert "serial" in str(caught.value)
    assert "pydantic" not in str(caught.value)


SCALAR = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
JSON = SCALAR | st.lists(SCALAR, max_size=3) | st.dictionaries(st.text(max_size=4), SCALAR, max_size=3)
SENSORISH = st.fixed_dictionaries(
    {},
    optional={
        key: JSON
        for key in ("serial", "status_id", "current_firmware", "created_at", "status_name", "activity_status")
    },
)


@given(SENSORISH)
def test_any_payload_maps_or_is_an_invalid_response(body: dict[str, Any]) -> None:
    try:
        device = sensor(body)
    except InvalidResponse:
        return
    assert device.id == str(device.id)
