"""DeviceHQ session handling and error mapping, against a scripted transport.

Only what a real server cannot be made to do on demand is scripted here (exact 423 details,
bodies that are not JSON); everything else runs against the simulator in
test_devicehq_against_sim and test_devicehq_sessions.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from fieldtui.config import DeviceHQBackend
from fieldtui.connectors import devicehq
from fieldtui.connectors.devicehq import DeviceHQConnector, forget_sessions, shared_session
from fieldtui.core.errors import (
    AuthError,
    InvalidResponse,
    LimitReached,
    NotFound,
    Rejected,
    ServerError,
    SessionLost,
)

URL = "https://dhq.example/api/v2"
KEY = "5sHszZNuTfmgs58VGA"
DEVICE = {"data": {"id": "MTS-JP-003", "type": "devices", "attributes": {"serial": "MTS-JP-003"}}}
ACCOUNT = {"data": {"id": "1", "type": "accounts", "attributes": {"name": "Acme"}}}
#: What this fake says to a closed session: no word of it names a session, a token or a login.
CLOSED_WORDS = "Anfrage konnte nicht verarbeitet werden"
MAX_LOSSES_AND_THEN_SOME = devicehq.MAX_SESSION_LOSSES + 3


@pytest.fixture(autouse=True)
def _fresh_sessions() -> Iterator[None]:
    forget_sessions()
    yield
    forget_sessions()


def _errors(detail: str) -> dict[str, Any]:
    return {"errors": [{"detail": detail}]}


class FakeDeviceHQ:
    """One account with one session; ``route`` answers authenticated requests."""

    def __init__(
        self, route: Callable[[httpx.Request], httpx.Response] | None = None, *, closed: str = CLOSED_WORDS
    ) -> None:
        self.closed = closed
        self.token: str | None = None
        self.sessions = 0
        self.requests: list[httpx.Request] = []
        self.route = route or (lambda request: httpx.Response(200, json=DEVICE))

    def steal(self) -> None:
        """Another client opened a session: ours is closed."""
        self.sessions += 1
        self.token = f"thief{self.sessions}"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/session") and request.method == "POST":
            if request.headers.get("x-api-key") != KEY:
                return httpx.Response(423, json=_errors("Invalid API key"))
            self.sessions += 1
            self.token = f"tok{self.sessions:011d}"
            return httpx.Response(
                200, json={"meta": {"token": self.token, "expires": "2030-01-01T00:00:00Z"}}
            )
        if request.headers.get("x-auth-token") != self.token:
            return httpx.Response(423, json=_errors(self.closed))
        if request.method == "GET" and request.url.path.endswith("/account"):
            return httpx.Response(200, json=ACCOUNT)
        return self.route(request)

    def sent(self, method: str, suffix: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.url.path.endswith(suffix))


def connector(fake: FakeDeviceHQ, *, key: str = KEY, name: str = "gateways") -> DeviceHQConnector:
    client = httpx.AsyncClient(base_url=URL, transport=httpx.MockTransport(fake))
    return DeviceHQConnector(name, DeviceHQBackend(kind="devicehq", url=URL), key, client=client)


async def test_api_key_travels_only_in_the_header_and_token_in_x_auth_token() -> None:
    fake = FakeDeviceHQ()
    await connector(fake).get_device("MTS-JP-003")
    session, lookup = fake.requests
    assert session.headers["x-api-key"] == KEY
    assert KEY not in str(session.url) and "api_key" not in str(session.url)
    assert session.content == b""
    assert lookup.headers["x-auth-token"] == fake.token
    assert "token" not in lookup.url.params
    assert all(KEY not in str(r.url) for r in fake.requests)


async def test_a_refused_api_key_is_an_auth_error_not_a_lost_session() -> None:
    with pytest.raises(AuthError) as caught:
        await connector(FakeDeviceHQ(), key="wrong").probe()
    assert not isinstance(caught.value, SessionLost)
    assert "Invalid API key" in str(caught.value)


async def test_missing_key_says_how_to_set_it() -> None:
    fake = FakeDeviceHQ()
    conn = DeviceHQConnector(
        "gateways",
        DeviceHQBackend(kind="devicehq", url=URL),
        None,
        client=httpx.AsyncClient(base_url=URL, transport=httpx.MockTransport(fake)),
    )
    with pytest.raises(AuthError, match="no DeviceHQ API key"):
        await conn.probe()
    assert fake.requests == []


async def test_one_session_is_shared_by_every_connector_of_the_process() -> None:
    fake = FakeDeviceHQ()
    await connector(fake, name="a").get_device("MTS-JP-003")
    await connector(fake, name="b").get_device("MTS-JP-003")
    assert fake.sessions == 1


async def test_session_taken_once_is_renewed_once_and_the_call_succeeds() -> None:
    fake = FakeDeviceHQ()
    conn = connector(fake)
    await conn.probe()
    fake.steal()
    device = await conn.get_device("MTS-JP-003")
    assert device.id == "MTS-JP-003"
    assert shared_session(URL, KEY).created == 2


@pytest.mark.parametrize(
    "words",
    [
        "Anfrage konnte nicht verarbeitet werden",
        "Unprocessable Entity",
        "Device MTS-JP-003 not found",  # misleading words do not decide either
        "Cannot create new command because account is already at command limit (25).",
    ],
)
async def test_a_taken_session_is_renewed_whatever_the_423_says(words: str) -> None:
    fake = FakeDeviceHQ(closed=words)
    conn = connector(fake)
    await conn.probe()
    fake.steal()
    assert (await conn.create_task("MTS-JP-003", "SOFTWARE_UPGRADE", {"firmware_id": "f"})).id == "MTS-JP-003"
    assert shared_session(URL, KEY).created == 2
    assert fake.sent("POST", "/tasks") == 2


def _refusing(method: str, words: str) -> Callable[[httpx.Request], httpx.Response]:
    def route(request: httpx.Request) -> httpx.Response:
        if request.method == method:
            return httpx.Response(423, json=_errors(words))
        return httpx.Response(200, json=DEVICE)

    return route


async def test_a_refusal_on_a_session_that_worked_is_retried_once_then_kept_in_the_servers_words() -> None:
    fake = FakeDeviceHQ(_refusing("PUT", "location_description must be an array of [latitude, longitude]"))
    conn = connector(fake)
    await conn.probe()
    with pytest.raises(Rejected) as caught:
        await conn.update_device("MTS-JP-003", {"description": "Roof"})
    assert not isinstance(caught.value, SessionLost | LimitReached)
    assert "must be an array of [latitude, longitude]" in str(caught.value)
    assert fake.sent("PUT", "/MTS-JP-003") == 2  # once on the old session, once on a fresh one
    assert fake.sessions == 2


async def test_a_refusal_on_a_session_that_has_not_worked_yet_is_not_retried() -> None:
    fake = FakeDeviceHQ(_refusing("POST", "App 42 not found in this account"))
    with pytest.raises(Rejected, match="App 42 not found"):
        await connector(fake).create_task("MTS-JP-003", "SOFTWARE_UPGRADE", {"firmware_id": "f"})
    assert fake.sent("POST", "/tasks") == 1
    assert fake.sessions == 1  # GET /account showed the session open: no new one was needed


@pytest.mark.parametrize("words", ["Invalid session token", "Not logged in", "Unauthorized: token expired"])
async def test_session_words_on_an_open_session_are_a_refusal_not_a_lost_session(words: str) -> None:
    fake = FakeDeviceHQ(_refusing("POST", words))
    conn = connector(fake)
    await conn.probe()
    with pytest.raises(Rejected) as caught:
        await conn.create_task("MTS-JP-003", "SOFTWARE_UPGRADE", {"firmware_id": "f"})
    assert not isinstance(caught.value, AuthError)
    assert words in str(caught.value)


async def test_refusals_in_a_row_never_add_up_to_another_client_taking_the_session() -> None:
    fake = FakeDeviceHQ(_refusing("PUT", "group names are at most 64 characters"))
    conn = connector(fake)
    await conn.probe()
    for _ in range(MAX_LOSSES_AND_THEN_SOME):
        with pytest.raises(Rejected, match="at most 64 characters"):
            await conn.move_to_group("MTS-JP-003", "x" * 70)
    assert (await conn.get_device("MTS-JP-003")).id == "MTS-JP-003"


async def test_the_task_cap_words_on_another_route_are_a_plain_refusal() -> None:
    words = "Cannot create new command because account is already at command limit (25)."
    fake = FakeDeviceHQ(_refusing("PUT", words))
    with pytest.raises(Rejected) as caught:
        await connector(fake).update_device("MTS-JP-003", {"description": "Roof"})
    assert not isinstance(caught.value, LimitReached)


async def test_concurrent_calls_after_a_loss_renew_the_session_once() -> None:
    fake = FakeDeviceHQ()
    conn = connector(fake)
    await conn.probe()
    fake.steal()
    stolen = fake.sessions
    await asyncio.gather(*(conn.get_device("MTS-JP-003") for _ in range(8)))
    assert fake.sessions == stolen + 1


async def test_http_401_also_means_the_session_is_gone() -> None:
    fake = FakeDeviceHQ()
    calls = 0

    def route(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return (
            httpx.Response(401, json=_errors("Unauthorized"))
            if calls == 1
            else httpx.Response(200, json=DEVICE)
        )

    fake.route = route
    await connector(fake).get_device("MTS-JP-003")
    assert fake.sessions == 2


async def test_a_session_taken_again_right_after_renewal_is_session_lost() -> None:
    fake = FakeDeviceHQ()

    def route(request: httpx.Request) -> httpx.Response:
        fake.steal()  # every request: another client opens a session at the same moment
        return httpx.Response(423, json=_errors(fake.closed))

    fake.route = route
    with pytest.raises(SessionLost) as caught:
        await connector(fake).get_device("MTS-JP-003")
    assert isinstance(caught.value, AuthError)
    assert "other program" in (caught.value.hint or "")


async def test_a_client_that_keeps_stealing_the_session_ends_in_an_auth_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(devicehq, "RENEW_BACKOFF", 0.001)
    fake = FakeDeviceHQ()
    conn = connector(fake)
    outcomes: list[str] = []
    messages: list[str] = []
    for _ in range(6):
        fake.steal()
        try:
            await conn.get_device("MTS-JP-003")
            outcomes.append("ok")
        except AuthError as exc:
            assert not isinstance(exc, SessionLost)  # the service shows auth_error, not degraded
            outcomes.append("lost")
            messages.append(str(exc))
    # The first steal is before any session of ours; the next three are renewed as bad luck;
    # the fourth loss within a minute is reported. After that the service's own retry (here
    # the next call) opens a session again.
    assert outcomes == ["ok", "ok", "ok", "ok", "lost", "ok"]
    assert "another client is using this account's API key" in messages[0]


async def test_an_idle_session_is_renewed_before_the_server_would_drop_it() -> None:
    fake = FakeDeviceHQ()
    conn = connector(fake)
    await conn.probe()
    shared_session(URL, KEY).last_used -= devicehq.SESSION_IDLE_RENEW + 1
    await conn.probe()
    assert fake.sessions == 2
    assert all(r.headers.get("x-auth-token") in (None, fake.token, "tok00000000001") for r in fake.requests)


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (
            423,
            _errors("Cannot create new command because account is already at command limit (25)."),
            LimitReached,
            "command limit (25)",
        ),
        (
            423,
            _errors("App 42 not found in this account: see GET /api/v2/apps"),
            Rejected,
            "App 42 not found",
        ),
        (423, _errors("location_description must be an array of [latitude, longitude]"), Rejected, "array"),
        (404, _errors("Device 1 not found"), NotFound, "Device 1 not found"),
        (404, None, NotFound, "not found"),
        (503, None, ServerError, "HTTP 503"),
        (429, None, ServerError, "HTTP 429"),
        (423, None, InvalidResponse, "423"),
        (423, {"errors": []}, InvalidResponse, "423"),
    ],
)
async def test_error_responses_map_to_core_errors(
    status: int, body: dict[str, Any] | None, error: type[Exception], words: str
) -> None:
    fake = FakeDeviceHQ(
        lambda request: (
            httpx.Response(status, json=body)
            if body is not None
            else httpx.Response(status, content=b"<html>proxy error</html>")
        )
    )
    with pytest.raises(error) as caught:
        await connector(fake).create_task("MTS-JP-003", "SOFTWARE_UPGRADE", {"firmware_id": "f"})
    assert words in str(caught.value)
    if error is LimitReached:
        assert caught.value.transient  # type: ignore[attr-defined]
        assert "25 unfinished tasks" in (caught.value.hint or "")  # type: ignore[attr-defined]


async def test_a_body_that_is_not_json_is_an_invalid_response() -> None:
    fake = FakeDeviceHQ(lambda request: httpx.Response(200, content=b'{"data": {"id": "x",}'))
    with pytest.raises(InvalidResponse, match="not JSON"):
        await connector(fake).get_device("MTS-JP-003")


async def test_a_json_body_of_the_wrong_shape_is_an_invalid_response() -> None:
    fake = FakeDeviceHQ(lambda request: httpx.Response(200, json={"data": []}))
    with pytest.raises(InvalidResponse, match="no device"):
        await connector(fake).get_device("MTS-JP-003")


async def test_search_follows_skip_and_limit_until_meta_total() -> None:
    serials = [f"S{i:04d}" for i in range(1203)]
    seen: list[tuple[int, int]] = []

    def route(request: httpx.Request) -> httpx.Response:
        skip, limit = int(request.url.params["skip"]), int(request.url.params["limit"])
        seen.append((skip, limit))
        page = serials[skip : skip + limit]
        data = [{"id": s, "type": "devices", "attributes": {"serial": s}} for s in page]
        return httpx.Response(
            200, json={"data": data, "meta": {"skip": skip, "limit": limit, "total": len(serials)}}
        )

    found = await connector(FakeDeviceHQ(route)).search("MTCDT")
    assert [d.id for d in found] == serials
    assert seen == [(0, 500), (500, 500), (1000, 500)]


async def test_update_device_sends_json_api_and_refuses_other_fields() -> None:
    bodies: list[Any] = []

    def route(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            bodies.append(json.loads(request.content))
        return httpx.Response(200, json=DEVICE)

    conn = connector(FakeDeviceHQ(route))
    await conn.update_device("MTS-JP-003", {"name": "Roof", "location": {"lat": 44.211, "lon": -92.12}})
    await conn.move_to_group("MTS-JP-003", "product test")
    assert bodies == [
        {
            "data": {
                "id": "MTS-JP-003",
                "type": "devices",
                "attributes": {"description": "Roof", "location_description": [44.211, -92.12]},
            }
        },
        {"data": {"id": "MTS-JP-003", "type": "devices", "attributes": {"group": "product test"}}},
    ]
    with pytest.raises(Rejected, match="cannot change 'firmware'"):
        await conn.update_device("MTS-JP-003", {"firmware": "5.0"})


async def test_losses_seen_by_earlier_connectors_do_not_count_against_a_new_one() -> None:
    fake = FakeDeviceHQ()
    for _ in range(5):  # e.g. one short-lived connector per command, each finding the session gone
        fake.steal()
        await connector(fake).get_device("MTS-JP-003")
    fake.steal()
    assert (await connector(fake).get_device("MTS-JP-003")).id == "MTS-JP-003"


async def test_an_applied_update_with_an_unreadable_answer_is_read_back() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            return httpx.Response(200, content=b'{"data": ')
        return httpx.Response(200, json=DEVICE)

    fake = FakeDeviceHQ(route)
    device = await connector(fake).update_device("MTS-JP-003", {"description": "Roof"})
    assert device.id == "MTS-JP-003"
    assert [r.method for r in fake.requests] == ["POST", "PUT", "GET"]
