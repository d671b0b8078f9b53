"""DeviceHQ connector against the simulated DeviceHQ (fieldtui.sim.clouds.devicehq) over loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from fieldtui.config import DeviceHQBackend
from fieldtui.connectors import devicehq
from fieldtui.connectors.devicehq import DeviceHQConnector, TaskType, forget_sessions, shared_session
from fieldtui.core.errors import (
    AuthError,
    ConnectionError_,
    InvalidResponse,
    LimitReached,
    NotFound,
    Rejected,
    ServerError,
    SessionLost,
    Unsupported,
)
from fieldtui.core.models import TaskState


@pytest.fixture(autouse=True)
def _fresh_sessions() -> Iterator[None]:
    forget_sessions()
    yield
    forget_sessions()


@pytest.fixture
async def dhq(sim_clean: Any) -> AsyncIterator[DeviceHQConnector]:
    config = DeviceHQBackend(kind="devicehq", url=sim_clean.urls["devicehq"], poll_interval=0.2, timeout=5)
    async with DeviceHQConnector("gateways", config, sim_clean.credentials.devicehq_api_key) as connector:
        yield connector


def session_of(sim: Any) -> devicehq._SharedSession:
    return shared_session(sim.urls["devicehq"], sim.credentials.devicehq_api_key)


def gateway(sim: Any, *, family: str | None = None, online: bool | None = None) -> Any:
    for device in sim.fleet.of("devicehq").values():
        if family is not None and not (device.model or "").startswith(family):
            continue
        if online is not None and device.online != online:
            continue
        return device
    raise AssertionError("no such gateway in the simulated fleet")


async def test_lookup_matches_the_fleet(dhq: DeviceHQConnector, sim_clean: Any) -> None:
    await dhq.probe()
    sim_device = gateway(sim_clean, online=True)
    device = await dhq.get_device(sim_device.id)
    assert device.id == sim_device.id
    assert device.backend == "gateways"
    assert device.model == sim_device.model
    assert device.firmware == sim_device.firmware
    assert device.rssi == sim_device.rssi
    assert device.group == sim_device.group
    assert device.name == sim_device.name
    assert device.location is not None and device.location.lat == pytest.approx(sim_device.lat)
    assert device.online is True
    assert "token" not in device.raw


async def test_lookup_by_uuid_in_any_spelling(dhq: DeviceHQConnector, sim_clean: Any) -> None:
    sim_device = gateway(sim_clean)
    raw = sim_device.extra["uuid"].upper()
    spelled = f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
    device = await dhq.get_device(spelled)
    assert device.id == sim_device.id


async def test_unknown_device_is_not_found(dhq: DeviceHQConnector) -> None:
    with pytest.raises(NotFound):
        await dhq.get_device("000000001")


async def test_search_follows_every_page(
    dhq: DeviceHQConnector, sim_clean: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(devicehq, "PAGE_SIZE", 4)
    everything = await dhq.search("")
    assert sorted(d.id for d in everything) == sorted(sim_clean.fleet.of("devicehq"))
    assert len(await dhq.search("", limit=6)) == 6
    model = gateway(sim_clean).model
    matching = await dhq.search(model.lower())
    assert matching and all(d.model == model for d in matching)


async def test_update_and_move_to_group(dhq: DeviceHQConnector, sim_clean: Any) -> None:
    device_id = gateway(sim_clean).id
    updated = await dhq.update_device(
        device_id, {"description": "Roof, east mast", "location": [44.211, -92.12]}
    )
    assert updated.name == "Roof, east mast"
    assert updated.location is not None and updated.location.lon == -92.12
    await dhq.move_to_group(device_id, "product test")
    assert await dhq.get_group(device_id) == "product test"
    groups = {g.id: g.member_count for g in await dhq.list_groups("product")}
    assert groups == {"product test": 1}
    assert await dhq.group_members("product test") == [device_id]
    with pytest.raises(Rejected):
        await dhq.update_device(device_id, {"location": [123, 0]})


async def test_history_routes(dhq: DeviceHQConnector, sim_clean: Any) -> None:
    device = gateway(sim_clean, family="MTCDT-H5-210L", online=True)
    signals = await dhq.signal_strength(device.id)
    assert signals and all(s.rssi is not None and s.timestamp is not None for s in signals)
    check_ins = await dhq.check_ins(device.id, datetime.now(UTC).date() - timedelta(days=1))
    assert check_ins and check_ins[-1].result == "200"
    usage = await dhq.network(device.id, "ethernet")
    assert usage and {u.interface for u in usage} == {"ethernet"}
    lora = await dhq.lora(device.id)
    assert lora.enabled is True and lora.nodes
    apps = await dhq.device_apps(device.id)
    assert isinstance(apps, list)
    with pytest.raises(Rejected, match="cell, ethernet or wifi"):
        await dhq.network(device.id, "bluetooth")


async def test_telemetry_polls_signal_and_check_ins_in_time_order(
    dhq: DeviceHQConnector, sim_clean: Any
) -> None:
    device = gateway(sim_clean, online=True)
    since = datetime.now(UTC) - timedelta(minutes=10)
    stream = dhq.telemetry(device.id, since=since)
    samples = []
    async for sample in stream:
        samples.append(sample)
        if len(samples) == 20:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    assert all(s.timestamp > since for s in samples)
    assert [s.timestamp for s in samples] == sorted(s.timestamp for s in samples)
    assert any("rssi" in s.metrics for s in samples)
    assert any(s.metrics.get("check_in") is True for s in samples)


async def test_catalog_routes(dhq: DeviceHQConnector) -> None:
    apps = await dhq.apps()
    assert apps and all(app.name for app in apps)
    detail = await dhq.app(apps[0].id)
    assert detail.versions
    assert await dhq.device_firmwares()
    assert all(fw.sub_type == "cell_radio" for fw in await dhq.radio_firmwares())
    assert await dhq.device_configurations()
    with pytest.raises(NotFound):
        await dhq.app("0" * 24)


async def test_every_task_type_can_be_created_followed_cancelled_and_deleted(
    dhq: DeviceHQConnector, sim_clean: Any
) -> None:
    device = gateway(sim_clean, family="MTCDT")
    apps = await dhq.apps()
    app = next(a for a in [await dhq.app(a.id) for a in apps] if a.app_configs)
    firmware = next(f for f in await dhq.device_firmwares() if f.model == "MTCDT")
    radio = next(f for f in await dhq.radio_firmwares() if f.model == "MTCDT")
    config = next(c for c in await dhq.device_configurations() if (c.model or "").startswith("MTCDT"))
    assert app.app_configs[0].id is not None
    created = [
        await dhq.install_app(
            device.id, app.id, version=app.versions[0].version, config_ids=[app.app_configs[0].id]
        ),
        await dhq.uninstall_app(device.id, app.id),
        await dhq.install_app_configs(device.id, [app.app_configs[0].id]),
        await dhq.apply_configuration(device.id, config.id),
        await dhq.upgrade_firmware(device.id, firmware.id),
        await dhq.upgrade_radio_firmware(device.id, radio.id),
    ]
    assert [t.type for t in created] == [t.value for t in TaskType]
    assert all(t.state is TaskState.QUEUED and t.device == device.id for t in created)
    listed = await dhq.list_tasks(device.id)
    assert {t.id for t in listed} == {t.id for t in created}
    detail = await dhq.get_task(device.id, created[0].id)
    assert detail.type == "INSTALL_APP"
    cancelled = await dhq.cancel_task(device.id, created[1].id)
    assert cancelled.state is TaskState.CANCELLED and cancelled.raw_state == "cancelled"
    await dhq.delete_task(device.id, created[2].id)
    assert created[2].id not in {t.id for t in await dhq.list_tasks(device.id)}
    with pytest.raises(NotFound):
        await dhq.get_task(device.id, created[2].id)
    unfinished = await dhq.fleet_tasks([device.id])
    assert all(not t.state.finished for t in unfinished)
    assert created[1].id not in {t.id for t in unfinished}


async def test_a_task_the_gateway_is_working_on_shows_as_running(
    dhq: DeviceHQConnector, sim_clean: Any
) -> None:
    """Document 002: ``queued`` until the device picks the task up, ``pending`` while it works."""
    device = gateway(sim_clean, family="MTCDT", online=True)
    firmware = next(f for f in await dhq.device_firmwares() if f.model == "MTCDT")
    created = await dhq.upgrade_firmware(device.id, firmware.id)
    assert created.state is TaskState.QUEUED
    seen: list[tuple[str, TaskState]] = []
    # Check-ins come every 8 to 12 simulated seconds: queued until the next one (<= 12 s), then
    # pending for 1 to 3 more (<= 36 s), so give it two minutes of simulated time.
    for _ in range(120):
        task = await dhq.get_task(device.id, created.id)
        if not seen or seen[-1] != (task.raw_state, task.state):
            seen.append((task.raw_state, task.state))
        if task.state.finished:
            break
        assert sim_clean.admin("POST", "/_sim/clock", json={"advance": 1}).status_code == 200
    assert seen[0] == ("queued", TaskState.QUEUED)
    assert seen[1] == ("pending", TaskState.RUNNING), seen
    assert seen[-1][1] in (TaskState.DONE, TaskState.FAILED)
    # While it runs, the task list and the unfinished tasks show it running too.
    running = await dhq.upgrade_firmware(device.id, firmware.id)
    for _ in range(60):
        listed = {t.id: t for t in await dhq.list_tasks(device.id)}
        if listed[running.id].raw_state == "pending":
            break
        assert sim_clean.admin("POST", "/_sim/clock", json={"advance": 1}).status_code == 200
    assert listed[running.id].state is TaskState.RUNNING
    unfinished = {t.id: t for t in await dhq.fleet_tasks([device.id])}
    assert unfinished[running.id].state is TaskState.RUNNING


async def test_fleet_tasks_without_a_device_list_is_bounded(dhq: DeviceHQConnector) -> None:
    assert isinstance(await dhq.fleet_tasks(max_devices=100), list)
    with pytest.raises(Unsupported, match="no account-wide task list"):
        await dhq.fleet_tasks(max_devices=3)


async def test_the_26th_unfinished_task_hits_the_account_limit(
    dhq: DeviceHQConnector, sim_clean: Any
) -> None:
    firmware = next(f for f in await dhq.device_firmwares() if f.model == "MTCDT")
    # Offline gateways never check in, so their tasks stay unfinished.
    offline = [
        d for d in sim_clean.fleet.of("devicehq").values() if not d.online and d.model.startswith("MTCDT")
    ]
    assert offline, "the simulated fleet has no offline MTCDT gateway"
    for _ in range(25):
        await dhq.upgrade_firmware(offline[0].id, firmware.id)
    with pytest.raises(LimitReached) as caught:
        await dhq.upgrade_firmware(offline[0].id, firmware.id)
    assert "command limit (25)" in str(caught.value)
    assert caught.value.transient


def reword(sim: Any, on: bool) -> None:
    """With ``on``, the simulator's error answers keep their status and shape but not their words."""
    if on:
        assert sim.admin("PUT", "/_sim/faults/gateways", json={"reworded": True}).status_code == 200


@pytest.mark.parametrize("reworded", [False, True])
async def test_expired_credentials_mid_run_cost_one_new_session(
    dhq: DeviceHQConnector, sim_clean: Any, reworded: bool
) -> None:
    reword(sim_clean, reworded)
    device_id = gateway(sim_clean).id
    await dhq.get_device(device_id)
    before = session_of(sim_clean).created
    assert sim_clean.admin("POST", "/_sim/expire-credentials?backend=gateways").status_code == 200
    await asyncio.gather(*(dhq.get_device(device_id) for _ in range(5)))
    assert session_of(sim_clean).created == before + 1


async def test_idle_expiry_on_the_server_clock_is_recovered(dhq: DeviceHQConnector, sim_clean: Any) -> None:
    device_id = gateway(sim_clean).id
    await dhq.get_device(device_id)
    before = session_of(sim_clean).created
    assert sim_clean.admin("POST", "/_sim/clock", json={"advance": 301}).status_code == 200
    await dhq.get_device(device_id)
    assert session_of(sim_clean).created == before + 1


async def _open_session(sim: Any) -> None:
    async with httpx.AsyncClient() as other:
        response = await other.post(
            sim.urls["devicehq"] + "/session", headers={"X-API-KEY": sim.credentials.devicehq_api_key}
        )
        assert response.status_code == 200


@pytest.mark.parametrize("reworded", [False, True])
async def test_session_taken_over_by_another_client_is_recovered_once(
    dhq: DeviceHQConnector, sim_clean: Any, reworded: bool
) -> None:
    reword(sim_clean, reworded)
    device_id = gateway(sim_clean).id
    await dhq.get_device(device_id)
    before = session_of(sim_clean).created
    await _open_session(sim_clean)
    assert (await dhq.get_device(device_id)).id == device_id
    assert session_of(sim_clean).created == before + 1


@pytest.mark.parametrize("reworded", [False, True])
async def test_a_client_that_keeps_taking_the_session_ends_in_an_auth_error(
    dhq: DeviceHQConnector, sim_clean: Any, monkeypatch: pytest.MonkeyPatch, reworded: bool
) -> None:
    reword(sim_clean, reworded)
    monkeypatch.setattr(devicehq, "RENEW_BACKOFF", 0.01)
    device_id = gateway(sim_clean).id
    await dhq.get_device(device_id)

    async def thief() -> None:
        while True:
            await _open_session(sim_clean)
            await asyncio.sleep(0.005)

    transient = 0
    final: AuthError | None = None
    stealing = asyncio.create_task(thief())
    try:
        for _ in range(200):
            try:
                await dhq.get_device(device_id)
            except SessionLost:
                transient += 1  # the service would show "degraded" and retry
            except AuthError as exc:
                final = exc
                break
    finally:
        stealing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stealing
    assert final is not None and not isinstance(final, SessionLost)
    assert "another client is using this account's API key" in str(final)
    # Once the other client stops, the next call opens a session and works again.
    assert (await dhq.get_device(device_id)).id == device_id


async def test_the_api_key_never_appears_in_a_url(dhq: DeviceHQConnector, sim_clean: Any) -> None:
    await dhq.get_device(gateway(sim_clean).id)
    key = sim_clean.credentials.devicehq_api_key
    mutations = sim_clean.admin("GET", "/_sim/mutations?backend=gateways").json()
    sessions = [m for m in mutations if m["path"].endswith("/session")]
    assert sessions, mutations
    assert all(key not in m["query"] and key not in m["path"] and not m["body"] for m in sessions)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"error_rate": 1}, ServerError),
        ({"unreachable": True}, ConnectionError_),
        ({"malformed": True}, InvalidResponse),
    ],
)
async def test_injected_faults_become_the_right_errors(
    dhq: DeviceHQConnector, sim_clean: Any, fault: dict[str, Any], error: type[Exception]
) -> None:
    device_id = gateway(sim_clean).id
    if "malformed" in fault:
        await dhq.probe()  # a malformed session answer would be InvalidResponse too; test the device route
    assert sim_clean.admin("PUT", "/_sim/faults/gateways", json=fault).status_code == 200
    with pytest.raises(error):
        await dhq.get_device(device_id)
    assert sim_clean.admin("DELETE", "/_sim/faults").status_code == 200
    assert (await dhq.get_device(device_id)).id == device_id
