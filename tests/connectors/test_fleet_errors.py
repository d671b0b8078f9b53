"""Error mapping of the fleet connector: wrong shapes, broken bodies and local refusals.
(A mock transport is used only here, to serve exactly the broken bodies.)"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fieldtui.config import FleetBackend
from fieldtui.connectors.fleet import FleetConnector
from fieldtui.core.errors import InvalidResponse, Rejected

FIXTURES = Path(__file__).parent / "fixtures" / "fleet"


def connector(routes: dict[tuple[str, str], tuple[int, bytes]], seen: list[httpx.Request]) -> FleetConnector:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, body = routes.get((request.method, request.url.path), (404, b'{"error": {"message": "no"}}'))
        return httpx.Response(status, content=body)

    config = FleetBackend(kind="fleet", url="http://fleet.test/v0")
    client = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return FleetConnector("fleet", config, "token", client=client)


async def test_the_document_body_with_a_trailing_comma_is_an_invalid_response() -> None:
    text = (FIXTURES / "device_response.json").read_text().rstrip()
    broken = (text[:-1].rstrip()[:-1] + "},\n}").encode()  # the vendor documents' favourite typo
    seen: list[httpx.Request] = []
    async with connector({("GET", "/v0/devices/ABCD1234"): (200, broken)}, seen) as fleet:
        with pytest.raises(InvalidResponse) as caught:
            await fleet.get_device("ABCD1234")
    assert caught.value.route == "GET /v0/devices/ABCD1234"


@pytest.mark.parametrize(
    "body",
    [b'{"data": []}', b'{"data": {"owner_ref": "x"}}', b"[1, 2]", b'{"data": {"device_serial": ""}}'],
)
async def test_devices_of_the_wrong_shape_are_invalid_responses(body: bytes) -> None:
    seen: list[httpx.Request] = []
    async with connector({("GET", "/v0/devices/X"): (200, body)}, seen) as fleet:
        with pytest.raises(InvalidResponse) as caught:
            await fleet.get_device("X")
    assert "pydantic" not in str(caught.value)


async def test_a_list_that_is_not_a_list_is_an_invalid_response() -> None:
    seen: list[httpx.Request] = []
    async with connector({("GET", "/v0/devices"): (200, b'{"data": {"device_serial": "X"}}')}, seen) as fleet:
        with pytest.raises(InvalidResponse, match="list of devices"):
            await fleet.list_devices()


async def test_attributes_of_the_wrong_shape_are_invalid_responses() -> None:
    seen: list[httpx.Request] = []
    routes = {("GET", "/v0/devices/X/attributes"): (200, b'{"data": [{"value": 1}]}')}
    async with connector(routes, seen) as fleet:
        with pytest.raises(InvalidResponse, match="string_key"):
            await fleet.get_attributes("X")


async def test_fields_the_api_cannot_change_are_refused_before_any_request() -> None:
    seen: list[httpx.Request] = []
    async with connector({}, seen) as fleet:
        with pytest.raises(Rejected, match="device_serial"):
            await fleet.update_device("X", {"device_serial": "Y"})
        with pytest.raises(Rejected, match="nothing to change"):
            await fleet.update_device("X", {})
        with pytest.raises(Rejected, match="owner_ref"):
            await fleet.create_device("X", {"owner_ref": " ", "hardware_version": "hwrev1"})
        with pytest.raises(Rejected, match="no attributes"):
            await fleet.update_attributes("X", {})
    assert seen == []
