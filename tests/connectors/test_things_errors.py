"""Error mapping of the things connector: the document's unrepaired bodies, wrong shapes and
local refusals. (A mock transport is used only here, to serve exactly the broken bodies.)"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from fieldtui.config import ThingsBackend
from fieldtui.connectors.things import ThingsConnector
from fieldtui.core.errors import AuthError, InvalidResponse, Rejected
from fieldtui.core.models import InstallationStatus

FIXTURES = Path(__file__).parent / "fixtures" / "things"
BASE = "http://things.test/prod/v1"
TOKEN = b'{"data": {"token": "t-1"}}'


def connector(routes: dict[tuple[str, str], tuple[int, bytes]], seen: list[httpx.Request]) -> ThingsConnector:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        key = (request.method, request.url.path.removeprefix("/prod/v1"))
        if key == ("POST", "/auth/client-token") and key not in routes:
            return httpx.Response(200, content=TOKEN)
        status, body = routes.get(key, (404, b'{"message": "no such route in this test"}'))
        return httpx.Response(status, content=body)

    config = ThingsBackend(kind="things", url=BASE, client_id="installer-7")
    client = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return ThingsConnector("things", config, "secret", client=client)


def broken(name: str) -> bytes:
    return (FIXTURES / f"{name}.broken.txt").read_bytes()


Call = Callable[[ThingsConnector], Awaitable[Any]]
CASES: list[tuple[str, str, str, Call]] = [
    ("messages_response", "GET", "/things/XXXXTUID/messages", lambda c: c.messages("XXXXTUID")),
    ("commands_response", "GET", "/things/XXXXTUID/commands", lambda c: c.list_commands("XXXXTUID")),
    (
        "send_command_response",
        "POST",
        "/things/XXXXTUID/commands",
        lambda c: c.send_command("XXXXTUID", "1500", {"tsmEv": 1}),
    ),
    (
        "installations_response",
        "GET",
        "/things/XXXXTUID/installations",
        lambda c: c.installation_history("XXXXTUID"),
    ),
]


@pytest.mark.parametrize(("fixture", "method", "path", "call"), CASES, ids=[c[0] for c in CASES])
async def test_unrepaired_document_bodies_are_invalid_responses(
    fixture: str, method: str, path: str, call: Call
) -> None:
    seen: list[httpx.Request] = []
    async with connector({(method, path): (200, broken(fixture))}, seen) as things:
        with pytest.raises(InvalidResponse) as caught:
            await call(things)
    assert caught.value.backend == "things"
    assert caught.value.route == f"{method} /prod/v1{path}"
    assert "not JSON" in str(caught.value)


async def test_unrepaired_token_body_is_an_invalid_response() -> None:
    seen: list[httpx.Request] = []
    routes = {("POST", "/auth/client-token"): (200, broken("client_token_response"))}
    async with connector(routes, seen) as things:
        with pytest.raises(InvalidResponse) as caught:
            await things.get_group("XXXXTUID")
    assert caught.value.route == "POST /prod/v1/auth/client-token"
    assert len(seen) == 1  # nothing sent without a token


async def test_doc_sample_bodies_served_as_is_in_the_wrong_place_are_shape_errors() -> None:
    thing = (FIXTURES / "thing_response.json").read_bytes()
    seen: list[httpx.Request] = []
    async with connector({("GET", "/things/X/messages"): (200, thing)}, seen) as things:
        with pytest.raises(InvalidResponse) as caught:
            await things.messages("X")
    assert "unexpected response shape" in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [b"[]", b'{"data": null}', b'{"data": {"location": []}}', b'{"nodata": 1}', b"<html>502</html>"],
)
async def test_wrong_shapes_never_leak_a_pydantic_error(body: bytes) -> None:
    seen: list[httpx.Request] = []
    routes = {("GET", "/things/X/group"): (200, body)}
    async with connector(routes, seen) as things:
        with pytest.raises(InvalidResponse) as caught:
            await things.get_group("X")
    assert "pydantic" not in str(caught.value) and "validation error" not in str(caught.value)


async def test_refused_credentials_are_an_auth_error_in_the_vendors_words() -> None:
    seen: list[httpx.Request] = []
    refusal = json.dumps({"error": "Unauthorized", "message": "Invalid client credentials"}).encode()
    async with connector({("POST", "/auth/client-token"): (401, refusal)}, seen) as things:
        with pytest.raises(AuthError) as caught:
            await things.alerts("X")
    assert "Invalid client credentials" in str(caught.value)
    assert "installer-7" in str(caught.value)


@pytest.mark.parametrize("message_id", ["17110", "1502", "abc", ""])
async def test_commands_outside_the_allowed_ids_are_refused_before_any_request(message_id: str) -> None:
    seen: list[httpx.Request] = []
    async with connector({}, seen) as things:
        with pytest.raises(Rejected) as caught:
            await things.send_command("X", message_id, {"tsmEv": 1})
    assert "1500, 1501, 12200, 13200" in str(caught.value)
    assert seen == []


async def test_a_command_without_event_id_is_refused_before_any_request() -> None:
    seen: list[httpx.Request] = []
    async with connector({}, seen) as things:
        with pytest.raises(Rejected, match="tsmEv"):
            await things.send_command("X", "1500", {})
    assert seen == []


@pytest.mark.parametrize(
    ("group_id", "words"),
    [
        ("my group", "whitespace"),
        ("tab\tgroup", "whitespace"),
        ("unassigned", "unassigned"),
        ("", "required"),
    ],
)
async def test_bad_group_ids_are_refused_locally(group_id: str, words: str) -> None:
    seen: list[httpx.Request] = []
    async with connector({}, seen) as things:
        with pytest.raises(Rejected, match=words):
            await things.create_group(group_id)
        with pytest.raises(Rejected, match=words):
            await things.rename_group("roof", group_id)
        with pytest.raises(Rejected, match=words):
            await things.delete_group(group_id)
    assert seen == []


async def test_move_accepts_unassigned_but_not_whitespace() -> None:
    seen: list[httpx.Request] = []
    answer = b'{"data": {"group_id": "unassigned", "tuid": "X"}}'
    async with connector({("POST", "/things/X/group"): (200, answer)}, seen) as things:
        await things.move_to_group("X", "unassigned")
        with pytest.raises(Rejected, match="whitespace"):
            await things.move_to_group("X", "roof top")
    assert [json.loads(r.content) for r in seen if r.url.path.endswith("/group")] == [
        {"group_id": "unassigned"}
    ]


async def test_the_server_keeping_another_status_is_a_refusal() -> None:
    seen: list[httpx.Request] = []
    answer = b'{"data": {"tuid": "X", "installation_status": "new"}}'
    async with connector({("POST", "/things/X/installations"): (200, answer)}, seen) as things:
        with pytest.raises(Rejected, match="'new'"):
            await things.set_installation_status("X", InstallationStatus.INSTALLED)


async def test_a_group_not_renamed_or_not_deleted_is_a_refusal() -> None:
    seen: list[httpx.Request] = []
    routes = {
        ("POST", "/groups/a/rename"): (200, b'{"data": {"group_id": "b", "old": "a", "renamed": false}}'),
        ("DELETE", "/groups/a"): (200, b'{"data": {"group_id": "a", "deleted": false}}'),
    }
    async with connector(routes, seen) as things:
        with pytest.raises(Rejected, match="did not rename"):
            await things.rename_group("a", "b")
        with pytest.raises(Rejected, match="did not delete"):
            await things.delete_group("a")


async def test_no_secret_is_an_auth_error_before_any_request() -> None:
    config = ThingsBackend(kind="things", url=BASE, client_id="installer-7")
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    async with ThingsConnector("things", config, None, client=client) as things:
        with pytest.raises(AuthError, match="no client secret"):
            await things.probe()
    assert seen == []
    await client.aclose()
