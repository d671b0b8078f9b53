"""Contract of the simulated sensor manufacturer API (vendor document 000), over loopback HTTP."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

STAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
SENSOR_KEYS = {
    "serial",
    "status_id",
    "current_configuration",
    "current_firmware",
    "created_at",
    "updated_at",
    "status_name",
    "next_task",
    "task_count",
    "activity_status",
    "task_queue",
}
TASK_KEYS = {
    "id",
    "sensor_serial",
    "type",
    "status_id",
    "attempt_count",
    "created_at",
    "updated_at",
    "file_id",
    "status_name",
}


@pytest.fixture
def client(sim: Any) -> httpx.Client:
    headers = {"Authorization": f"Bearer {sim.credentials.mysensor_token}", "Accept": "application/json"}
    with httpx.Client(base_url=sim.urls["mysensor"], headers=headers, timeout=10) as client:
        yield client


def serials(sim: Any) -> list[str]:
    return list(sim.fleet.of("mysensor"))


def sensor_with_pages(sim: Any, client: httpx.Client) -> tuple[str, int]:
    """A sensor whose seeded history spans more than one page."""
    for serial in serials(sim):
        total = client.get("/tasks", params={"sensor_serial": serial}).json()["total"]
        if total > 10:
            return serial, total
    raise AssertionError("the seeded fleet has no sensor with more than 10 tasks")


def advance(sim: Any, seconds: float) -> None:
    assert sim.admin("POST", "/_sim/clock", json={"advance": seconds}).status_code == 200


def test_sensor_has_the_documented_fields_and_a_numeric_serial(sim: Any, client: httpx.Client) -> None:
    serial = serials(sim)[0]
    response = client.get(f"/sensors/{serial}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == SENSOR_KEYS
    assert body["serial"] == int(serial)
    assert isinstance(body["serial"], int)
    assert STAMP.match(body["created_at"]) and STAMP.match(body["updated_at"])
    assert body["activity_status"] in ("Online", "Offline")
    assert body["status_name"] in ("Idle", "Busy", "Error")
    assert body["current_firmware"].startswith("FW:")
    assert body["activity_status"] == ("Online" if sim.fleet.of("mysensor")[serial].online else "Offline")


def test_unknown_sensor_is_404_with_a_laravel_message(client: httpx.Client) -> None:
    for ident in ("111", "not-a-number"):
        response = client.get(f"/sensors/{ident}")
        assert response.status_code == 404
        assert "No query results" in response.json()["message"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}],
    ids=["missing", "wrong-token", "not-bearer"],
)
def test_without_the_token_every_route_is_401_unauthenticated(sim: Any, headers: dict[str, str]) -> None:
    serial = serials(sim)[0]
    with httpx.Client(base_url=sim.urls["mysensor"], headers=headers, timeout=10) as anonymous:
        for method, path, kwargs in (
            ("GET", f"/sensors/{serial}", {}),
            ("GET", "/tasks", {"params": {"sensor_serial": serial}}),
            ("GET", "/tasks/16000000", {}),
            (
                "PUT",
                "/tasks",
                {"json": {"sensor_serial": int(serial), "file_id": 1, "type": "update_firmware"}},
            ),
            ("DELETE", "/tasks/16000000", {}),
        ):
            response = anonymous.request(method, path, **kwargs)
            assert response.status_code == 401, (method, path)
            assert response.json() == {"message": "Unauthenticated."}


def test_task_list_is_laravel_paginated_newest_first(sim: Any, client: httpx.Client) -> None:
    serial, total = sensor_with_pages(sim, client)
    first = client.get("/tasks", params={"sensor_serial": serial}).json()
    assert {"current_page", "from", "to", "total", "first_page", "last_page", "per_page", "data"} <= set(
        first
    )
    assert first["current_page"] == 1 and first["first_page"] == 1 and first["per_page"] == 10
    assert (first["from"], first["to"], first["total"]) == (1, 10, total)
    assert first["last_page"] == -(-total // 10)
    ids = [task["id"] for task in first["data"]]
    assert ids == sorted(ids, reverse=True)
    for task in first["data"]:
        assert set(task) == TASK_KEYS
        assert task["sensor_serial"] == int(serial)
        assert task["type"] in ("update_firwmare", "update_configuration")

    last = client.get("/tasks", params={"sensor_serial": serial, "page": first["last_page"]}).json()
    assert last["current_page"] == first["last_page"]
    assert last["to"] == total and last["from"] == (first["last_page"] - 1) * 10 + 1
    assert len(last["data"]) == total - (first["last_page"] - 1) * 10

    beyond = client.get("/tasks", params={"sensor_serial": serial, "page": first["last_page"] + 1}).json()
    assert (
        beyond["data"] == [] and beyond["from"] is None and beyond["to"] is None and beyond["total"] == total
    )

    every = []
    for page in range(1, first["last_page"] + 1):
        every += client.get("/tasks", params={"sensor_serial": serial, "page": page}).json()["data"]
    assert len({task["id"] for task in every}) == total


def test_task_list_honours_per_page(sim: Any, client: httpx.Client) -> None:
    serial, total = sensor_with_pages(sim, client)
    body = client.get("/tasks", params={"sensor_serial": serial, "per_page": 4, "page": 2}).json()
    assert body["per_page"] == 4 and (body["from"], body["to"]) == (5, 8)
    assert body["last_page"] == -(-total // 4)


def test_list_spells_firmware_type_as_the_document_and_single_task_correctly(
    sim: Any, client: httpx.Client
) -> None:
    for serial in serials(sim):
        tasks = client.get("/tasks", params={"sensor_serial": serial, "per_page": 100}).json()["data"]
        firmware = [t for t in tasks if t["type"] == "update_firwmare"]
        if firmware:
            single = client.get(f"/tasks/{firmware[0]['id']}").json()
            assert single["type"] == "update_firmware"
            assert {k: v for k, v in single.items() if k != "type"} == {
                k: v for k, v in firmware[0].items() if k != "type"
            }
            return
    raise AssertionError("no firmware task in the seeded fleet")


def test_task_list_needs_a_sensor_serial_and_an_unknown_one_is_an_empty_page(client: httpx.Client) -> None:
    missing = client.get("/tasks")
    assert missing.status_code == 422
    assert missing.json()["errors"]["sensor_serial"] == ["The sensor serial field is required."]
    bad = client.get("/tasks", params={"sensor_serial": "abc"})
    assert bad.status_code == 422 and "sensor_serial" in bad.json()["errors"]
    unknown = client.get("/tasks", params={"sensor_serial": "111"})
    assert unknown.status_code == 200
    assert unknown.json()["total"] == 0 and unknown.json()["data"] == [] and unknown.json()["last_page"] == 1


def test_get_task_and_unknown_task(sim: Any, client: httpx.Client) -> None:
    serial, _ = sensor_with_pages(sim, client)
    listed = client.get("/tasks", params={"sensor_serial": serial}).json()["data"][0]
    single = client.get(f"/tasks/{listed['id']}")
    assert single.status_code == 200 and set(single.json()) == TASK_KEYS
    assert STAMP.match(single.json()["created_at"])
    assert client.get("/tasks/99").status_code == 404
    assert "No query results" in client.get("/tasks/x").json()["message"]


def test_put_task_validates_like_laravel(sim: Any, sim_clean: Any, client: httpx.Client) -> None:
    empty = client.put("/tasks", json={})
    assert empty.status_code == 422
    body = empty.json()
    assert set(body["errors"]) == {"sensor_serial", "file_id", "type"}
    assert body["message"] == "The sensor serial field is required. (and 2 more errors)"
    wrong = client.put("/tasks", json={"sensor_serial": 111, "file_id": "x", "type": "reboot"})
    assert wrong.status_code == 422
    assert wrong.json()["errors"] == {
        "sensor_serial": ["The selected sensor serial is invalid."],
        "file_id": ["The file id field must be an integer."],
        "type": ["The selected type is invalid."],
    }
    not_json = client.put("/tasks", content=b"{oops", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 422
    assert sim.admin("GET", "/_sim/mutations").json() == []


def test_created_task_progresses_and_shows_on_the_sensor(
    sim: Any, sim_clean: Any, client: httpx.Client
) -> None:
    serial = serials(sim)[1]
    before = client.get(f"/sensors/{serial}").json()
    created = client.put(
        "/tasks", json={"sensor_serial": serial, "file_id": 1607444, "type": "update_configuration"}
    )
    assert created.status_code == 201
    task = created.json()
    assert set(task) == TASK_KEYS
    assert (task["status_id"], task["status_name"], task["attempt_count"]) == (0, "Pending", 0)
    assert task["sensor_serial"] == int(serial) and task["type"] == "update_configuration"

    sensor = client.get(f"/sensors/{serial}").json()
    assert sensor["task_count"] == before["task_count"] + 1
    assert sensor["next_task"] is not None and sensor["task_queue"] in ("Queued", "Processing")
    listed = client.get("/tasks", params={"sensor_serial": serial}).json()["data"][0]
    assert listed["id"] == task["id"]

    advance(sim, 2.5)
    running = client.get(f"/tasks/{task['id']}").json()
    assert (running["status_id"], running["status_name"]) == (1, "In progress")
    assert running["attempt_count"] >= 1
    assert client.get(f"/sensors/{serial}").json()["task_queue"] == "Processing"

    advance(sim, 10)
    done = client.get(f"/tasks/{task['id']}").json()
    assert done["status_name"] in ("Completed", "Failed") and done["status_id"] in (2, 3)
    assert done["attempt_count"] >= running["attempt_count"]
    final = client.get(f"/sensors/{serial}").json()
    if done["status_id"] == 2:
        assert final["current_configuration"] != before["current_configuration"]
    if final["next_task"] is None:
        assert final["task_queue"] == "Empty"


def test_same_put_twice_makes_two_tasks(sim: Any, sim_clean: Any, client: httpx.Client) -> None:
    serial = serials(sim)[2]
    body = {"sensor_serial": int(serial), "file_id": 42, "type": "update_firmware"}
    first = client.put("/tasks", json=body).json()
    second = client.put("/tasks", json=body).json()
    assert first["id"] != second["id"]
    log = sim.admin("GET", "/_sim/mutations?backend=sensors").json()
    assert [entry["body"] for entry in log] == [body, body]


def test_delete_task(sim: Any, sim_clean: Any, client: httpx.Client) -> None:
    serial = serials(sim)[3]
    task = client.put(
        "/tasks", json={"sensor_serial": serial, "file_id": 7, "type": "update_firmware"}
    ).json()
    count = client.get(f"/sensors/{serial}").json()["task_count"]
    deleted = client.delete(f"/tasks/{task['id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert client.get(f"/tasks/{task['id']}").status_code == 404
    assert client.delete(f"/tasks/{task['id']}").status_code == 404
    assert client.get(f"/sensors/{serial}").json()["task_count"] == count - 1


def test_a_task_in_progress_cannot_be_deleted(sim: Any, sim_clean: Any, client: httpx.Client) -> None:
    serial = serials(sim)[4]
    task = client.put(
        "/tasks", json={"sensor_serial": serial, "file_id": 7, "type": "update_firmware"}
    ).json()
    advance(sim, 2.5)
    refused = client.delete(f"/tasks/{task['id']}")
    assert refused.status_code == 422 and "in progress" in refused.json()["message"]


def test_expired_credentials_are_refused_until_reset(sim: Any, sim_clean: Any, client: httpx.Client) -> None:
    serial = serials(sim)[0]
    assert sim.admin("POST", "/_sim/expire-credentials?backend=sensors").json() == {"expired": ["sensors"]}
    assert client.get(f"/sensors/{serial}").status_code == 401
    sim.reset()
    assert client.get(f"/sensors/{serial}").status_code == 200


def test_inspect_shows_the_sensor_and_its_tasks(sim: Any, client: httpx.Client) -> None:
    serial = serials(sim)[0]
    state = sim.admin("GET", f"/_sim/inspect/sensors/{serial}").json()
    assert state["sensor"]["serial"] == int(serial)
    assert len(state["tasks"]) == state["sensor"]["task_count"]
    assert sim.admin("GET", "/_sim/inspect/mysensor/111").status_code == 404
