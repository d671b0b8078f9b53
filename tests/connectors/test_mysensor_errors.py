"""Error mapping of the mysensor connector: the document's unrepaired body, wrong shapes and
local refusals. (A mock transport is used only here, to serve exactly the broken bodies.)"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fieldtui.config import MySensorBackend
from fieldtui.connectors.mysensor import MySensorConnector
from fieldtui.core.errors import AuthError, InvalidResponse, Rejected

FIXTURES = Path(__file__).parent / "fixtures" / "mysensor"


def connector(
    routes: dict[tuple[str, str], tuple[int, bytes]], seen: list[httpx.Request]
) -> MySensorConnector:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, body = routes.get((request.method, request.url.path), (404, b'{"message": "not here"}'))
        return httpx.Response(status, content=body)

    config = MySensorBackend(kind="mysensor", url="http://mysensor.test/api")
    client = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return MySensorConnector("sensors", config, "token", client=client)


async def test_unrepaired_task_sample_is_an_invalid_response_naming_the_route() -> None:
    body = (FIXTURES / "get_task_response.broken.txt").read_bytes()
    seen: list[httpx.Request] = []
    async with connector({("GET", "/api/tasks/16624171"): (200, body)}, seen) as sensors:
        with pytest.raises(InvalidResponse) as caught:
            await sensors.get_task("12345678909789", "16624171")
    assert caught.value.route == "GET /api/tasks/16624171"
    assert str(caught.value).startswith("sensors: the server sent a body that is not JSON")


@pytest.mark.parametrize(
    "body", [b"[]", b'{"current_page": "x", "data": 3}', b'{"data": [{"type": "x"}]}', b"<html>oops</html>"]
)
async def test_task_pages_of_the_wrong_shape_are_invalid_responses(body: bytes) -> None:
    seen: list[httpx.Request] = []
    async with connector({("GET", "/api/tasks"): (200, body)}, seen) as sensors:
        with pytest.raises(InvalidResponse) as caught:
            await sensors.list_tasks("1")
    assert caught.value.route == "GET /api/tasks"
    assert "pydantic" not in str(caught.value)


async def test_laravel_validation_errors_keep_every_field_message() -> None:
    body = (
        b'{"message": "The file id field is required. (and 1 more error)", "errors": '
        b'{"file_id": ["The file id field is required."], "type": ["The selected type is invalid."]}}'
    )
    seen: list[httpx.Request] = []
    async with connector({("PUT", "/api/tasks"): (422, body)}, seen) as sensors:
        with pytest.raises(Rejected) as caught:
            await sensors.create_task("1", "reboot", {"file_id": 5})
    assert caught.value.status_code == 422
    assert caught.value.message == "The file id field is required.; The selected type is invalid."


async def test_a_task_without_file_is_refused_before_any_request() -> None:
    seen: list[httpx.Request] = []
    async with connector({}, seen) as sensors:
        with pytest.raises(Rejected, match="file_id"):
            await sensors.create_task("1", "update_firmware", {})
        with pytest.raises(Rejected, match="type"):
            await sensors.create_task("1", " ", {"file_id": 1})
    assert seen == []


async def test_no_token_is_an_auth_error_before_any_request() -> None:
    seen: list[httpx.Request] = []
    config = MySensorBackend(kind="mysensor", url="http://mysensor.test/api")
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(500)))
    async with MySensorConnector("sensors", config, None, client=client) as sensors:
        with pytest.raises(AuthError, match="no API token"):
            await sensors.get_device("1")
    assert seen == []
    await client.aclose()
