"""Search and listing in every cloud against the simulator: names where a cloud has them, the
cloud's own search where it has one, a bounded listing matched on this side where it lists."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from connectors.test_mqtt_against_sim import keyed

from fieldtui.config import DeviceHQBackend, FleetBackend, MySensorBackend, ThingsBackend
from fieldtui.connectors.devicehq import DeviceHQConnector, forget_sessions
from fieldtui.connectors.fleet import FleetConnector
from fieldtui.connectors.mysensor import MySensorConnector
from fieldtui.connectors.search import PagedSearch
from fieldtui.connectors.things import ThingsConnector
from fieldtui.core.errors import Unsupported
from fieldtui.core.filters import DeviceFilter
from fieldtui.core.models import InstallationStatus


async def eventually(check: Any, timeout: float = 30.0) -> Any:
    """Run ``check`` until it returns something true (the simulator seeds retained messages in
    the background after its start)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.2)


async def test_mqtt_names_are_found_without_a_device_list(sim: Any, tmp_path: Path) -> None:
    connector = keyed(sim, tmp_path)
    assert isinstance(connector, PagedSearch)
    named = {d.id for d in sim.fleet.of("mqtt").values() if "lab" in d.name.lower() and d.online}
    assert named, "the seeded fleet has online MQTT devices named Lab"

    async def found_all() -> set[str] | None:
        ids = {d.id for d in await connector.search("Lab")}
        return ids if named <= ids else None

    found = await eventually(found_all)
    assert found is not None and named <= found
    devices = await connector.search("lab")
    assert all("lab" in (d.name or "").lower() or "lab" in d.id.lower() for d in devices)


async def test_an_offline_mqtt_device_with_a_key_is_found_by_part_of_its_id(sim: Any, tmp_path: Path) -> None:
    connector = keyed(sim, tmp_path)
    offline = next(d for d in sim.fleet.of("mqtt").values() if not d.online)
    part = offline.id[4:12]

    async def found_it() -> dict[str, Any] | None:
        found = {d.id: d for d in await connector.search(part)}
        return found if offline.id in found else None

    # The simulator seeds its retained messages in the background (again after a reset).
    found = await eventually(found_it)
    assert found is not None and offline.id in found
    assert found[offline.id].online is False


async def test_mqtt_listing_is_what_the_broker_knows(sim: Any, tmp_path: Path) -> None:
    connector = keyed(sim, tmp_path)
    listed = await connector.list_devices(DeviceFilter(limit=None))
    online = {d.id for d in sim.fleet.of("mqtt").values() if d.online}
    assert online & {d.id for d in listed}
    with pytest.raises(Unsupported, match="cannot filter by group"):
        await connector.list_devices(DeviceFilter(group="x"))


@pytest.fixture
async def things(sim: Any) -> AsyncIterator[ThingsConnector]:
    config = ThingsBackend(
        kind="things", url=sim.urls["things"], client_id=sim.credentials.things_client_id, timeout=10
    )
    async with ThingsConnector("things", config, sim.credentials.things_client_secret) as connector:
        yield connector


async def test_things_are_found_by_part_of_a_tuid_over_every_group(sim: Any, things: ThingsConnector) -> None:
    thing = next(d for d in sim.fleet.of("things").values() if not d.extra.get("is_gateway"))
    # A budget no loaded machine runs out of: what is found is the question here, not how fast.
    pages = [page async for page in things.search_pages(thing.id[-7:-2], budget=60)]
    assert [p.partial for p in pages if p.partial] == []
    assert thing.id in {d.id for page in pages for d in page.devices}
    # Things carry no names in document 001: a name finds nothing, and the scope says why.
    assert await things.search("Thing") == []
    assert "no names" in things.search_scope


async def test_things_listed_by_installation_status(sim_clean: Any, things: ThingsConnector) -> None:
    expected = {d.id for d in sim_clean.fleet.of("things").values() if d.installation_status == "quarantine"}
    wanted = DeviceFilter(installation_status=InstallationStatus.QUARANTINE, limit=None)
    pages = [page async for page in things.list_pages(wanted, budget=60)]
    listed = [d for page in pages for d in page.devices]
    assert [p.partial for p in pages if p.partial] == []
    assert {d.id for d in listed} == expected
    assert all(d.installation_status is InstallationStatus.QUARANTINE for d in listed)


async def test_devicehq_lists_a_group_with_spaces_in_its_name(sim: Any) -> None:
    forget_sessions()
    config = DeviceHQBackend(kind="devicehq", url=sim.urls["devicehq"], timeout=10)
    async with DeviceHQConnector("gateways", config, sim.credentials.devicehq_api_key) as dhq:
        everything = await dhq.list_devices(DeviceFilter(limit=None))
        group = next(d.group for d in everything if d.group and " " in d.group)
        listed = await dhq.list_devices(DeviceFilter(group=group, limit=None))
        assert {d.id for d in listed} == {d.id for d in everything if d.group == group}
    forget_sessions()


async def test_fleet_listing_takes_a_query_as_its_search_does(sim: Any) -> None:
    config = FleetBackend(kind="fleet", url=sim.urls["fleet"], timeout=10)
    async with FleetConnector("fleet", config, sim.credentials.fleet_token) as fleet:
        device = next(iter(sim.fleet.of("fleet").values()))
        part = device.id[2:8].lower()
        listed = await fleet.list_devices(DeviceFilter(query=part))
        assert device.id in {d.id for d in listed}
        assert {d.id for d in listed} == {d.id for d in await fleet.search(part)}


async def test_mysensor_answers_a_query_with_the_exact_serial_only(sim: Any) -> None:
    config = MySensorBackend(kind="mysensor", url=sim.urls["mysensor"], timeout=10)
    async with MySensorConnector("sensors", config, sim.credentials.mysensor_token) as sensors:
        serial = next(iter(sim.fleet.of("mysensor")))
        assert [d.id for d in await sensors.list_devices(DeviceFilter(query=serial))] == [serial]
        assert await sensors.list_devices(DeviceFilter(query="Sensor")) == []
        with pytest.raises(Unsupported, match="no device listing"):
            await sensors.list_devices(DeviceFilter())


async def test_things_search_reuses_a_complete_scan_and_skips_what_no_tuid_holds(sim: Any) -> None:
    asked: list[str] = []

    async def count(request: httpx.Request) -> None:
        asked.append(request.url.path)

    config = ThingsBackend(
        kind="things", url=sim.urls["things"], client_id=sim.credentials.things_client_id, timeout=10
    )
    async with httpx.AsyncClient(event_hooks={"request": [count]}) as client:
        things = ThingsConnector("things", config, sim.credentials.things_client_secret, client=client)
        first = next(iter(sim.fleet.of("things")))
        assert first in {d.id for d in await things.search(first[-6:-1])}
        listed_groups = sum(path.endswith("/groups/") for path in asked)
        # Typing on: the next word is matched against the members already scanned.
        await things.search(first[-5:])
        assert sum(path.endswith("/groups/") for path in asked) == listed_groups == 1
        before = len(asked)
        assert await things.search("Lab 132") == [] and await things.search("dev-18") == []
        assert len(asked) == before
