"""The mysensor connector against the running simulator, over real loopback HTTP."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from fieldtui.config import MySensorBackend
from fieldtui.connectors.mysensor import MySensorConnector
from fieldtui.core.errors import (
    AuthError,
    ConnectionError_,
    InvalidResponse,
    NotFound,
    Rejected,
    ServerError,
    TimeoutError_,
    Unsupported,
)
from fieldtui.core.models import BackendKind, TaskState

FIXTURES = Path(__file__).parent / "fixtures" / "mysensor"


@pytest.fixture
async def make(sim: Any) -> AsyncIterator[Callable[..., MySensorConnector]]:
    opened: list[MySensorConnector] = []

    def build(secret: str | None = None, *, timeout: float = 10.0) -> MySensorConnector:
        config = MySensorBackend(kind="mysensor", url=sim.urls["mysensor"], timeout=timeout)
        connector = MySensorConnector("sensors", config, secret or sim.credentials.mysensor_token)
        opened.append(connector)
        return connector

    yield build
    for connector in opened:
        await connector.aclose()


def inspect(sim: Any, serial: str) -> dict[str, Any]:
    response = sim.admin("GET", f"/_sim/inspect/mysensor/{serial}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def advance(sim: Any, seconds: float) -> None:
    assert sim.admin("POST", "/_sim/clock", json={"advance": seconds}).status_code == 200


def serials(sim: Any) -> list[str]:
    return list(sim.fleet.of("mysensor"))


def sensor_with_pages(sim: Any) -> str:
    """A sensor whose task list spans more than one page (10 a page)."""
    for serial in serials(sim):
        if len(inspect(sim, serial)["tasks"]) > 20:
            return serial
    raise AssertionError("no sensor with three pages of tasks in the simulated fleet")


async def test_a_sensor_reads_online_firmware_and_status(
    sim_clean: Any, make: Callable[..., MySensorConnector]
) -> None:
    serial = serials(sim_clean)[0]
    state = inspect(sim_clean, serial)["sensor"]
    device = await make().get_device(serial)
    assert (device.id, device.backend, device.kind) == (serial, "sensors", BackendKind.MYSENSOR)
    assert device.online is (state["activity_status"] == "Online")
    assert device.online is sim_clean.fleet.of("mysensor")[serial].online
    assert device.firmware == state["current_firmware"]
    assert device.status == state["status_name"]
    assert device.raw == state


async def test_an_unknown_serial_is_not_found_in_the_servers_words(
    sim_clean: Any, make: Callable[..., MySensorConnector]
) -> None:
    with pytest.raises(NotFound, match=r"No query results for model \[App\\Models\\Sensor\] 1"):
        await make().get_device("1")


async def test_search_is_an_exact_serial_lookup(
    sim_clean: Any, make: Callable[..., MySensorConnector]
) -> None:
    serial = serials(sim_clean)[1]
    connector = make()
    assert [d.id for d in await connector.search(f" {serial} ")] == [serial]
    assert await connector.search(serial[:6]) == []
    assert await connector.search("not-a-serial") == []
    assert connector.capabilities.search is False


async def test_every_page_of_tasks_is_followed(
    sim_clean: Any, make: Callable[..., MySensorConnector]
) -> None:
    serial = sensor_with_pages(sim_clean)
    truth = inspect(sim_clean, serial)["tasks"]
    tasks = await make().list_tasks(serial)
    assert sorted(t.id for t in tasks) == sorted(str(t["id"]) for t in truth)
    assert len(tasks) == len(truth)
    assert all(t.device == serial and t.backend == "sensors" for t in tasks)
    # the list spells it update_firwmare; the technician reads update_firmware
    assert {t.type for t in tasks} <= {"update_firmware", "update_configuration"}
    assert "update_firmware" in {t.type for t in tasks}
    assert all(t.created is not None and t.created.tzinfo is not None for t in tasks)


async def test_a_sensor_without_tasks_has_an_empty_list(
    sim_clean: Any, make: Callable[..., MySensorConnector]
) -> None:
    serial = next(s for s in serials(sim_clean) if not inspect(sim_clean, s)["tasks"])
    assert await make().list_tasks(serial) == []


async def test_one_task_by_id_and_a_task_of_another_sensor(
    sim_clean: Any, make: Callable[..., MySensorConnector]
) -> None:
    serial = sensor_with_pages(sim_clean)
    connector = make()
    listed = (await connector.list_tasks(serial))[0]
    task = await connector.get_task(serial, listed.id)
    assert (task.id, task.type, task.state, task.attempts) == (
        listed.id,
        listed.type,
        listed.state,
        listed.attempts,
    )
    with pytest.raises(NotFound, match="does not belong"):
        await connector.get_task(serials(sim_clean)[0], listed.id)
    with pytest.raises(NotFound, match="No query results"):
        await connector.get_task(serial, "1")


async def test_a_created_task_is_put_queued_runs_and_finishes(
    sim_clean: Any, make: Callable[..., MySensorConnector]
) -> None:
    serial = serials(sim_clean)[2]
    connector = make()
    task = await connector.create_task(serial, "update_firmware", {"file_id": "1607444"})
    assert (task.device, task.type, task.state, task.raw_state) == (
        serial,
        "update_firmware",
        TaskState.QUEUED,
        "Pending",
    )
    logged = sim_clean.admin("GET", "/_sim/mutations?backend=mysensor").json()
    assert [m["method"] for m in logged] == ["PUT"]
    sample = json.loads((FIXTURES / "create_task_request.json").read_text())
    body = logged[0]["body"]
    assert set(body) == set(sample)
    assert {k: type(v) for k, v in body.items()} == {k: type(v) for k, v in sample.items()}
    assert body == {"sensor_serial": int(serial), "file_id": 1607444, "type": "update_firmware"}
    advance(sim_clean, 3)
    assert (await connector.get_task(serial, task.id)).state is TaskState.RUNNING
    advance(sim_clean, 10)
    finished = await connector.get_task(serial, task.id)
    assert finished.state in (TaskState.DONE, TaskState.FAILED)
    assert finished.attempts and finished.attempts >= 1
    assert task.id in [t.id for t in await connector.list_tasks(serial)]


async def test_validation_refusals_carry_the_servers_words(
    sim_clean: Any, make: Callable[..., MySensorConnector]
) -> None:
    connector = make()
    with pytest.raises(Rejected, match=re.escape("The selected type is invalid.")) as caught:
        await connector.create_task(serials(sim_clean)[0], "reboot", {"file_id": 1})
    assert caught.value.status_code == 422
    with pytest.raises(Rejected, match=re.escape("The selected sensor serial is invalid.")):
        await connector.create_task("1", "update_firmware", {"file_id": 1})
    with pytest.raises(Rejected, match=re.escape("The file id field must be an integer.")):
        await connector.create_task(serials(sim_clean)[0], "update_firmware", {"file_id": "abc"})


async def test_delete_a_task_and_refuse_deleting_one_in_progress(
    sim_clean: Any, make: Callable[..., MySensorConnector]
) -> None:
    serial = serials(sim_clean)[3]
    connector = make()
    pending = await connector.create_task(serial, "update_configuration", {"file_id": 5})
    await connector.delete_task(serial, pending.id)
    with pytest.raises(NotFound):
        await connector.get_task(serial, pending.id)
    running = await connector.create_task(serial, "update_configuration", {"file_id": 6})
    advance(sim_clean, 3)
    with pytest.raises(Rejected, match=re.escape("A task in progress cannot be deleted.")):
        await connector.delete_task(serial, running.id)


async def test_no_fleet_wide_task_list_and_no_cancel(
    sim_clean: Any, make: Callable[..., MySensorConnector]
) -> None:
    connector = make()
    with pytest.raises(Unsupported, match="per sensor"):
        await connector.fleet_tasks()
    with pytest.raises(Unsupported, match="delete it instead"):
        await connector.cancel_task("1", "2")
    with pytest.raises(Unsupported):
        await connector.list_groups()


async def test_probe_and_a_revoked_token(sim_clean: Any, make: Callable[..., MySensorConnector]) -> None:
    connector = make()
    await connector.probe()
    with pytest.raises(AuthError, match=re.escape("Unauthenticated.")):
        await make(secret="wrong").probe()
    sim_clean.admin("POST", "/_sim/expire-credentials?backend=mysensor")
    with pytest.raises(AuthError, match=re.escape("Unauthenticated.")):
        await connector.get_device(serials(sim_clean)[0])


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"unreachable": True}, ConnectionError_),
        ({"error_rate": 1.0}, ServerError),
        ({"malformed": True}, InvalidResponse),
        ({"latency": 1.5}, TimeoutError_),
    ],
    ids=["unreachable", "error_rate", "malformed", "latency"],
)
async def test_each_fault_becomes_its_core_error(
    sim_clean: Any, make: Callable[..., MySensorConnector], fault: dict[str, Any], error: type[Exception]
) -> None:
    assert sim_clean.admin("PUT", "/_sim/faults/mysensor", json=fault).status_code == 200
    with pytest.raises(error) as caught:
        await make(timeout=0.5).list_tasks(serials(sim_clean)[0])
    assert caught.value.backend == "sensors"  # type: ignore[attr-defined]


async def test_an_injected_client_stays_open_after_close(sim: Any) -> None:
    config = MySensorBackend(kind="mysensor", url=sim.urls["mysensor"])
    async with httpx.AsyncClient() as client:
        async with MySensorConnector(
            "sensors", config, sim.credentials.mysensor_token, client=client
        ) as connector:
            await connector.probe()
        assert not client.is_closed
