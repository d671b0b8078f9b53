"""The fleet connector against the running simulator, over real loopback HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from fieldtui.config import FleetBackend
from fieldtui.connectors import fleet as fleet_connector
from fieldtui.connectors.fleet import FleetConnector
from fieldtui.core.errors import (
    AuthError,
    ConnectionError_,
    InvalidResponse,
    NotFound,
    Rejected,
    ServerError,
    TimeoutError_,
)
from fieldtui.core.models import BackendKind


@pytest.fixture
async def make(sim: Any) -> AsyncIterator[Callable[..., FleetConnector]]:
    opened: list[FleetConnector] = []

    def build(secret: str | None = None, *, timeout: float = 10.0, page_size: int = 100) -> FleetConnector:
        config = FleetBackend(kind="fleet", url=sim.urls["fleet"], timeout=timeout)
        connector = FleetConnector(
            "fleet", config, secret or sim.credentials.fleet_token, page_size=page_size
        )
        opened.append(connector)
        return connector

    yield build
    for connector in opened:
        await connector.aclose()


def devices(sim: Any) -> dict[str, Any]:
    return sim.fleet.of("fleet")


def mutations(sim: Any) -> list[dict[str, Any]]:
    return list(sim.admin("GET", "/_sim/mutations?backend=fleet").json())


async def test_a_device_reads_model_firmware_group_and_online(
    sim_clean: Any, make: Callable[..., FleetConnector]
) -> None:
    connector = make()
    for serial, dev in list(devices(sim_clean).items())[:8]:
        device = await connector.get_device(serial)
        assert (device.id, device.backend, device.kind) == (serial, "fleet", BackendKind.FLEET)
        assert device.model == dev.model
        assert device.firmware == dev.firmware
        assert device.group == dev.group
        assert device.online is dev.online
        assert device.last_seen is not None and device.last_seen.tzinfo is not None
        assert device.raw["device_serial"] == serial


async def test_an_unknown_serial_is_not_found_in_the_servers_words(
    sim_clean: Any, make: Callable[..., FleetConnector]
) -> None:
    with pytest.raises(NotFound, match="Device 'NOPE' not found"):
        await make().get_device("NOPE")


async def test_every_page_is_followed(sim_clean: Any, make: Callable[..., FleetConnector]) -> None:
    listed = await make(page_size=7).list_devices()
    assert sorted(d.id for d in listed) == sorted(devices(sim_clean))
    assert len(await make(page_size=7).list_devices(limit=10)) == 10


async def test_filters_repeat_keys_and_combine(sim_clean: Any, make: Callable[..., FleetConnector]) -> None:
    connector = make(page_size=9)
    fleet = devices(sim_clean).values()
    wanted = {"1.2.3", "1.2.4"}
    by_release = await connector.list_devices(release=sorted(wanted))
    assert sorted(d.id for d in by_release) == sorted(d.id for d in fleet if d.firmware in wanted)
    by_both = await connector.list_devices(release=sorted(wanted), hardware_version="hwrev1")
    assert sorted(d.id for d in by_both) == sorted(
        d.id for d in fleet if d.firmware in wanted and d.model == "hwrev1"
    )
    owner = next(iter(fleet)).extra["owner_ref"]
    assert {d.raw["owner_ref"] for d in await connector.list_devices(owner_ref=[owner])} == {owner}


async def test_last_seen_window_and_sort_newest_first(
    sim_clean: Any, make: Callable[..., FleetConnector]
) -> None:
    connector = make(page_size=11)
    recent = await connector.list_devices(
        last_seen_since=datetime.now(UTC) - timedelta(minutes=15), sort="-last_seen"
    )
    assert recent and all(d.online for d in recent)
    stamps = [d.last_seen for d in recent]
    assert stamps == sorted(stamps, key=lambda s: s or datetime.min.replace(tzinfo=UTC), reverse=True)
    old = await connector.list_devices(last_seen_until=datetime.now(UTC) - timedelta(hours=1))
    assert old and not any(d.online for d in old)
    assert {d.id for d in recent}.isdisjoint(d.id for d in old)


async def test_search_by_serial_owner_and_part_of_either(
    sim_clean: Any, make: Callable[..., FleetConnector]
) -> None:
    connector = make(page_size=13)
    serial, dev = next(iter(devices(sim_clean).items()))
    assert [d.id for d in await connector.search(serial)] == [serial]
    owner = dev.extra["owner_ref"]
    assert serial in [d.id for d in await connector.search(owner)]
    partial = await connector.search(serial[2:8].lower())
    assert serial in [d.id for d in partial]
    assert await connector.search("zz-no-such-thing-zz") == []
    assert len(await connector.search("employee_", limit=3)) == 3


async def test_an_exact_serial_is_one_lookup_never_a_listing(sim_clean: Any) -> None:
    asked: list[httpx.URL] = []

    async def record(request: httpx.Request) -> None:
        asked.append(request.url)

    serial = next(iter(devices(sim_clean)))
    config = FleetBackend(kind="fleet", url=sim_clean.urls["fleet"])
    async with httpx.AsyncClient(event_hooks={"request": [record]}) as client:
        connector = FleetConnector("fleet", config, sim_clean.credentials.fleet_token, client=client)
        pages = [page async for page in connector.search_pages(serial)]
    assert [d.id for page in pages for d in page.devices] == [serial]
    assert all(page.partial is None for page in pages)
    listings = [url for url in asked if url.path.endswith("/devices")]
    # only the exact owner filter, asked alongside the serial: nothing is scanned
    assert listings and all(url.params.get("owner_ref") == serial for url in listings)


async def test_a_substring_search_streams_page_by_page(
    sim_clean: Any, make: Callable[..., FleetConnector]
) -> None:
    everyone = set(devices(sim_clean))
    pages = [page async for page in make(page_size=7).search_pages("EMPLOYEE_")]
    assert len(pages) > 1 and all(page.devices for page in pages)
    assert {d.id for page in pages for d in page.devices} == everyone
    assert pages[-1].partial is None
    limited = [page async for page in make(page_size=7).search_pages("employee_", limit=9)]
    assert sum(len(page.devices) for page in limited) == 9


async def test_a_scan_cut_short_says_how_much_it_looked_at(
    sim_clean: Any, make: Callable[..., FleetConnector], monkeypatch: pytest.MonkeyPatch
) -> None:
    total = len(devices(sim_clean))
    spent = [page async for page in make().search_pages("zz-no-such-thing-zz", budget=0.0)]
    assert [page.devices for page in spent] == [[]]
    assert spent[0].partial is not None and "search budget spent" in spent[0].partial
    monkeypatch.setattr(fleet_connector, "SEARCH_SCAN_CAP", 10)
    capped = [page async for page in make(page_size=5).search_pages("zz-no-such-thing-zz")]
    assert capped[-1].partial == (
        f"partial: the fleet API cannot search; looked at 10 of {total} devices "
        "(the scan cap of 10 devices reached)"
    )
    assert await make(page_size=5).search("zz-no-such-thing-zz") == []


async def test_create_update_and_delete_a_device(sim_clean: Any, make: Callable[..., FleetConnector]) -> None:
    connector = make()
    created = await connector.create_device(
        "NEWX00000001", {"owner_ref": "installer_7", "hardware_version": "hwrev2"}
    )
    assert (created.id, created.model, created.online, created.firmware) == (
        "NEWX00000001",
        "hwrev2",
        False,
        None,
    )
    updated = await connector.update_device("NEWX00000001", {"cohort": "beta", "owner_ref": "installer_8"})
    assert (updated.group, updated.raw["owner_ref"]) == ("beta", "installer_8")
    assert (await connector.get_device("NEWX00000001")).group == "beta"
    await connector.delete_device("NEWX00000001")
    with pytest.raises(NotFound):
        await connector.get_device("NEWX00000001")
    assert [m["method"] for m in mutations(sim_clean)] == ["POST", "PATCH", "DELETE"]


async def test_attributes_read_and_change(sim_clean: Any, make: Callable[..., FleetConnector]) -> None:
    connector = make()
    serial = next(iter(devices(sim_clean)))
    before = await connector.get_attributes(serial)
    assert {"site", "battery_replaced", "boot_count"} <= set(before)
    after = await connector.update_attributes(serial, {"site": "roof-9", "mounted": True, "boot_count": None})
    assert after["site"] == "roof-9" and after["mounted"] is True and "boot_count" not in after
    assert await connector.get_attributes(serial) == after


async def test_validation_refusals_carry_the_servers_words(
    sim_clean: Any, make: Callable[..., FleetConnector]
) -> None:
    connector = make()
    serial = next(iter(devices(sim_clean)))
    with pytest.raises(Rejected, match="unknown cohort 'gold'") as caught:
        await connector.update_device(serial, {"cohort": "gold"})
    assert caught.value.status_code == 422
    with pytest.raises(Rejected, match=f"Device '{serial}' already exists") as exists:
        await connector.create_device(serial, {"owner_ref": "someone", "hardware_version": "hwrev1"})
    assert exists.value.status_code == 409
    with pytest.raises(Rejected, match="unknown sort key"):
        await connector.list_devices(sort="-colour")
    assert mutations(sim_clean) == []


async def test_probe_and_a_revoked_token(sim_clean: Any, make: Callable[..., FleetConnector]) -> None:
    connector = make()
    await connector.probe()
    with pytest.raises(AuthError, match="a valid bearer token is required"):
        await make(secret="wrong").probe()
    sim_clean.admin("POST", "/_sim/expire-credentials?backend=fleet")
    with pytest.raises(AuthError):
        await connector.get_device(next(iter(devices(sim_clean))))


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
    sim_clean: Any, make: Callable[..., FleetConnector], fault: dict[str, Any], error: type[Exception]
) -> None:
    assert sim_clean.admin("PUT", "/_sim/faults/fleet", json=fault).status_code == 200
    with pytest.raises(error) as caught:
        await make(timeout=0.5).search("employee_0001")
    assert caught.value.backend == "fleet"  # type: ignore[attr-defined]


async def test_an_injected_client_stays_open_after_close(sim: Any) -> None:
    config = FleetBackend(kind="fleet", url=sim.urls["fleet"])
    async with httpx.AsyncClient() as client:
        async with FleetConnector("fleet", config, sim.credentials.fleet_token, client=client) as connector:
            await connector.probe()
        assert not client.is_closed
