"""The fleet client holds against Memfault as it answers today, not only document 004's page.

Fixture bodies are in ``fixtures/memfault`` (shapes from Memfault's public material, values
ours); each test names its source. Shapes the simulator cannot serve (Basic auth, Memfault's
paging) go through the connector over real HTTP to a small loopback stub.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from vendor_stub import Seen, Stub, vendor_stub

from fieldtui.config import Config, FleetBackend, LoadedConfig, Profile
from fieldtui.connectors._http import raise_for_status
from fieldtui.connectors._wire_fleet import FleetDeviceWire, PagingWire, to_device
from fieldtui.connectors._wire_lenient import parse
from fieldtui.connectors.fleet import FleetConnector
from fieldtui.core.errors import AuthError, NotFound
from fieldtui.service.writes import open_outbox

FIXTURES = Path(__file__).parent / "fixtures" / "memfault"
PREFIX = "/api/v0/organizations/acme/projects/pumps"
ROUTE = httpx.Response(200, request=httpx.Request("GET", f"http://memfault.test{PREFIX}/devices/NRF-0042"))


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def device(data: dict[str, Any]) -> Any:
    return to_device(parse(FleetDeviceWire, data, ROUTE, "fleet"), data, "fleet")


@pytest.fixture
def stub() -> Iterator[Stub]:
    with vendor_stub() as running:
        yield running


def connector(stub: Stub, *, secret: str | None = "oat_secret", **auth: Any) -> FleetConnector:
    config = FleetBackend(kind="fleet", url=stub.url + PREFIX, timeout=30, **auth)
    return FleetConnector("fleet", config, secret)


def test_todays_device_body_reads_hardware_object_software_version_and_nickname() -> None:
    """Source: NordicSemiconductor/asset-tracker-cloud-memfault-aws-js,
    features/UpdateHardwareRevision.feature (a PATCH answer from api.memfault.com, 2022)."""
    data = load("device_2022.json")["data"]
    result = device(data)
    assert result.id == "NRF-0042"
    assert result.model == "nrf9160dk_nrf9160"  # {"name": ...}, not the document's string
    assert result.firmware == "0.0.1+32a02f"  # last_seen_software_version.version
    assert result.name == "Pump-7"  # nickname
    assert result.group == "default"
    assert result.last_seen == datetime(2022, 4, 8, 13, 7, 30, 16000, tzinfo=UTC)
    assert result.raw["description"] == "Pump room, level -1"  # kept for the device view
    assert result.raw["project"]["slug"] == "asset-tracker"


def test_the_2019_body_with_empty_owner_and_never_seen_reads_as_unknowns() -> None:
    """Source: Memfault's docs tutorial "Adding a Device to a Cohort - API" (a copy of Memfault's
    docs repository: rksawyer/memfault-docs); the body also has cohort.count_devices,
    latest_install and latest_trace."""
    result = device(load("device_2019.json")["data"])
    assert (result.id, result.model, result.group) == ("ABCD1234", "hwrev1", "default")
    assert (result.firmware, result.last_seen, result.online, result.name) == (None, None, False, None)


def test_memfaults_paging_spelling_gives_the_total_and_the_last_page() -> None:
    """Source: NordicSemiconductor/asset-tracker-cloud-memfault-aws-js,
    features/UpdateHardwareRevision.feature (``paging`` of a ``?page=1&per_page=5000`` listing)."""
    paging = PagingWire.model_validate(load("devices_page.json")["paging"])
    assert (paging.total, paging.total_pages, paging.item_count) == (5, 3, 2)
    simulator = PagingWire.model_validate({"page": 1, "per_page": 20, "total": 41, "total_pages": 3})
    assert (simulator.total, simulator.total_pages) == (41, 3)


def test_memfaults_error_body_gives_its_message() -> None:
    """Source: NordicSemiconductor/asset-tracker-cloud-memfault-aws-js,
    features/UpdateHardwareRevision.feature (a 404 from PATCH /devices/{serial})."""
    request = httpx.Request("PATCH", f"http://memfault.test{PREFIX}/devices/NRF-0042")
    response = httpx.Response(404, json=load("error_not_found.json"), request=request)
    with pytest.raises(NotFound) as caught:
        raise_for_status(response, "fleet")
    assert "HardwareVersion with name `hwrev9` not found" in str(caught.value)


async def test_a_device_is_read_under_memfaults_project_prefix_with_the_default_bearer(stub: Stub) -> None:
    """Source: https://docs.memfault.com/api ("Organization Auth Tokens use Bearer
    Authentication") and the prefix /api/v0/organizations/{org}/projects/{project} of Nordic's
    lambda/updateMemfaultDeviceInfo.ts: the configured url carries the prefix."""
    stub.answer("GET", f"{PREFIX}/devices/NRF-0042", 200, load("device_2022.json"))
    async with connector(stub) as fleet:
        found = await fleet.get_device("NRF-0042")
    assert (found.id, found.model, found.firmware) == ("NRF-0042", "nrf9160dk_nrf9160", "0.0.1+32a02f")
    assert stub.seen[-1].headers["authorization"] == "Bearer oat_secret"


@pytest.mark.parametrize(
    ("username", "pair"),
    [("", ":oat_secret"), ("tech@example.com", "tech@example.com:oat_secret")],
    ids=["organization-token", "user-api-key"],
)
async def test_basic_auth_sends_the_token_or_email_and_key_as_memfault_asks(
    stub: Stub, username: str, pair: str
) -> None:
    """Source: https://docs.memfault.com/docs/ci/authentication (``curl -u ":$TOKEN"`` for an
    organization auth token, ``-u "$EMAIL:$USER_API_KEY"`` for a user) and Nordic's
    lambda/updateMemfaultDeviceInfo.ts (``Basic base64(":" + token)``)."""
    stub.answer("GET", f"{PREFIX}/devices/ABCD1234", 200, load("device_2019.json"))
    async with connector(stub, auth="basic", username=username) as fleet:
        await fleet.get_device("ABCD1234")
    expected = "Basic " + base64.b64encode(pair.encode()).decode()
    assert stub.seen[-1].headers["authorization"] == expected


async def test_basic_auth_without_a_secret_is_refused_before_any_request(stub: Stub) -> None:
    async with connector(stub, secret=None, auth="basic") as fleet:
        with pytest.raises(AuthError, match="no API token configured"):
            await fleet.get_device("ABCD1234")
    assert stub.seen == []


def test_a_user_name_basic_cannot_carry_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="username"):
        FleetBackend(kind="fleet", url="https://api.memfault.com", auth="basic", username="a:b")


async def test_a_listing_follows_memfaults_page_count_even_when_pages_are_short(stub: Stub) -> None:
    """Source: Nordic's features/UpdateHardwareRevision.feature for the ``paging`` spelling
    (``page_count``, ``total_count``); Memfault may answer fewer items than ``per_page`` asks."""
    first = load("devices_page.json")

    def page(seen: Seen) -> tuple[int, Any]:
        number = int(seen.query["page"][0])
        serials = {1: ["NRF-0001", "NRF-0002"], 2: ["NRF-0003", "NRF-0004"], 3: ["NRF-0005"]}[number]
        items = [{**first["data"][0], "device_serial": serial} for serial in serials]
        paging = {**first["paging"], "page": number, "item_count": len(items)}
        return 200, {"data": items, "paging": paging}

    stub.routes[("GET", f"{PREFIX}/devices")] = page
    async with connector(stub) as fleet:
        devices = await fleet.list_devices()
    assert [d.id for d in devices] == [f"NRF-000{i}" for i in range(1, 6)]
    assert [s.query["page"] for s in stub.seen] == [["1"], ["2"], ["3"]]  # stops at page_count
    assert all(d.model == "evt" and d.firmware == "1.0.0" for d in devices)


async def test_a_hardware_version_memfault_shows_as_an_object_is_found_applied(
    stub: Stub, tmp_path: Path
) -> None:
    """Source: Nordic's features/UpdateHardwareRevision.feature: Memfault PATCHes
    ``{"hardware_version": "<name>"}`` and shows ``"hardware_version": {"name": "<name>"}``. The
    outbox's "already applied?" check must read the object by its name, or a change whose answer
    was lost is sent again and one that did land is reported as not applied."""
    stub.answer("GET", f"{PREFIX}/devices/NRF-0042", 200, load("device_2022.json"))
    backend = FleetBackend(kind="fleet", url=stub.url + PREFIX, timeout=30)
    profile = Profile(backends={"memfault": backend})
    loaded = LoadedConfig(
        path=tmp_path / "config.toml", config=Config(profiles={"field": profile}), profile_name="field"
    )
    async with (
        FleetConnector("memfault", backend, "oat_secret") as fleet,
        open_outbox(
            loaded, offline=True, path=tmp_path / "outbox.sqlite", connectors={"memfault": fleet}
        ) as outbox,
    ):
        landed = await outbox.writes.update_device(
            "NRF-0042", {"hardware_version": "nrf9160dk_nrf9160"}, backend="memfault"
        )
        assert await outbox.engine.check_applied(landed) is True
        other = await outbox.writes.update_device("NRF-0042", {"hardware_version": "dvt"}, backend="memfault")
        assert await outbox.engine.check_applied(other) is False
    assert [seen.method for seen in stub.seen] == ["GET", "GET"]  # asking sent nothing
