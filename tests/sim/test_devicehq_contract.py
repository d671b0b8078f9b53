"""Contract of the simulated DeviceHQ account API v2 (document 002), over real loopback HTTP.

Self-sufficient: the module serves the cloud with uvicorn on 127.0.0.1 (port 0) in a thread,
and each test gets a fresh cloud on a clock it controls.
"""

from __future__ import annotations

import gzip
import io
import random
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from fieldtui.sim.clouds.devicehq import DeviceHQCloud
from fieldtui.sim.context import SimContext, SimCredentials
from fieldtui.sim.fleet import Fleet, SimDevice, generate_fleet

T0 = 1_750_000_000.0  # 2025-06-15T15:06:40Z
LIMIT_BODY = {
    "errors": [{"detail": "Cannot create new command because account is already at command limit (25)."}]
}


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class Switch:
    """The served ASGI app; each test plugs a fresh cloud into the running server."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None
        await self.app(scope, receive, send)


@dataclass
class Server:
    base: str
    switch: Switch


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    switch = Switch()
    config = uvicorn.Config(switch, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = uv.servers[0].sockets[0].getsockname()[1]
    yield Server(f"http://127.0.0.1:{port}", switch)
    uv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def dhq_url(server: Server) -> str:
    return server.base + DeviceHQCloud.prefix


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return generate_fleet(seed=7, size=4000, now=T0)  # 600 gateways: more than one default page


@dataclass
class DHQ:
    url: str
    cloud: DeviceHQCloud
    clock: Clock
    ctx: SimContext
    http: httpx.Client

    @property
    def key(self) -> str:
        return self.ctx.credentials.devicehq_api_key

    def login(self) -> str:
        r = self.http.post(f"{self.url}/session", headers={"X-API-KEY": self.key})
        assert r.status_code == 200, r.text
        token: str = r.json()["meta"]["token"]
        return token

    def later(self, seconds: float) -> str:
        """Let ``seconds`` pass (the session idles out beyond 5 minutes) and log in again."""
        self.clock.advance(seconds)
        return self.login()

    def call(self, method: str, path: str, token: str | None, **kw: Any) -> httpx.Response:
        headers = {"X-AUTH-TOKEN": token} if token else {}
        return self.http.request(method, self.url + path, headers=headers, **kw)

    def devices(self) -> dict[str, SimDevice]:
        return self.ctx.fleet.of("devicehq")

    def pick(self, *, online: bool, lora: bool | None = None, family: str | None = None) -> SimDevice:
        for d in self.devices().values():
            if d.online != online:
                continue
            if lora is not None and (d.model or "").endswith("L") != lora:
                continue
            if family is not None and not (d.model or "").startswith(family):
                continue
            return d
        raise AssertionError("no such device in the test fleet")


def mount(server: Server, cloud: DeviceHQCloud) -> None:
    server.switch.app = Starlette(routes=[Mount(DeviceHQCloud.prefix, routes=cloud.routes())])


@pytest.fixture
def dhq(server: Server, dhq_url: str, fleet: Fleet) -> Iterator[DHQ]:
    clock = Clock(T0)
    ctx = SimContext(fleet=fleet, credentials=SimCredentials(), clock=clock, rng=random.Random(11))
    cloud = DeviceHQCloud(ctx)
    mount(server, cloud)
    with httpx.Client(timeout=10) as http:
        yield DHQ(dhq_url, cloud, clock, ctx, http)


def assert_423(r: httpx.Response, contains: str = "") -> str:
    assert r.status_code == 423, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"errors"} and isinstance(body["errors"], list) and body["errors"]
    detail: str = body["errors"][0]["detail"]
    assert isinstance(detail, str) and detail
    assert contains.lower() in detail.lower(), detail
    return detail


def dashed(uuid: str) -> str:
    return f"{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:]}"


# ---------------------------------------------------------------------------- sessions


def test_info_answers_without_a_session(dhq: DHQ) -> None:
    r = dhq.http.get(f"{dhq.url}/info")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.api+json")
    body = r.json()
    assert body["jsonapi"] == {"version": "1.0"}
    assert body["meta"]["version"].startswith("v3")
    assert body["meta"]["url"].endswith("/devicehq/api/v2/info")


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize("how", ["header", "param", "body"])
def test_session_is_created_three_ways(dhq: DHQ, method: str, how: str) -> None:
    kw: dict[str, Any] = {}
    if how == "header":
        kw["headers"] = {"X-API-KEY": dhq.key, "Content-Length": "0"}
    elif how == "param":
        kw["params"] = {"api_key": dhq.key}
        kw["headers"] = {"Content-Length": "0"}
    else:
        kw["json"] = {"api_key": dhq.key}
    r = dhq.http.request(method, f"{dhq.url}/session", **kw)
    assert r.status_code == 200, r.text
    meta = r.json()["meta"]
    assert 12 <= len(meta["token"]) <= 16 and meta["token"].isalnum()
    assert meta["jsonapi"] == {"version": "1.0"}
    assert datetime.fromisoformat(meta["expires"]) == datetime.fromtimestamp(T0 + 300, UTC)
    assert dhq.call("GET", "/test", meta["token"]).status_code == 200


@pytest.mark.parametrize(
    "kw",
    [
        {"headers": {"X-API-KEY": "wrong"}},
        {"params": {"api_key": "wrong"}},
        {"json": {"api_key": "wrong"}},
        {},
        {"content": b"{not json"},
    ],
)
def test_session_refuses_a_bad_or_missing_key_with_423(dhq: DHQ, kw: dict[str, Any]) -> None:
    assert_423(dhq.http.post(f"{dhq.url}/session", **kw))


def test_new_session_closes_the_previous_one(dhq: DHQ) -> None:
    first = dhq.login()
    assert dhq.call("GET", "/account", first).status_code == 200
    second = dhq.login()
    assert second != first
    assert_423(dhq.call("GET", "/account", first), "new session")
    assert dhq.call("GET", "/account", second).status_code == 200


def test_failed_login_leaves_the_open_session_alone(dhq: DHQ) -> None:
    token = dhq.login()
    assert_423(dhq.http.post(f"{dhq.url}/session", headers={"X-API-KEY": "nope"}))
    assert dhq.call("GET", "/test", token).status_code == 200


def test_session_expires_five_minutes_after_the_last_request(dhq: DHQ) -> None:
    token = dhq.login()
    dhq.clock.advance(299)
    assert dhq.call("GET", "/test", token).status_code == 200  # refreshes the session
    dhq.clock.advance(299)
    assert dhq.call("GET", "/test", token).status_code == 200
    dhq.clock.advance(300)
    assert_423(dhq.call("GET", "/test", token), "expired")
    assert_423(dhq.call("GET", "/test", token), "expired")  # and it stays closed
    assert dhq.call("GET", "/test", dhq.login()).status_code == 200


def test_token_is_accepted_as_url_parameter(dhq: DHQ) -> None:
    token = dhq.login()
    r = dhq.http.get(f"{dhq.url}/account", params={"token": token})
    assert r.status_code == 200
    assert_423(dhq.http.get(f"{dhq.url}/account", params={"token": token + "x"}), "invalid")


def test_delete_session_closes_it(dhq: DHQ) -> None:
    token = dhq.login()
    r = dhq.call("DELETE", "/session", token)
    assert r.status_code == 200
    assert_423(dhq.call("GET", "/test", token), "closed")
    assert_423(dhq.call("DELETE", "/session", token))


def test_expire_credentials_closes_the_open_session(dhq: DHQ) -> None:
    token = dhq.login()
    dhq.cloud.expire_credentials()
    assert_423(dhq.call("GET", "/devices", token), "expired")


def test_test_route_needs_a_session(dhq: DHQ) -> None:
    assert_423(dhq.http.get(f"{dhq.url}/test"), "not logged in")
    r = dhq.call("GET", "/test", dhq.login())
    assert r.json()["meta"]["message"] == "OK"
    assert r.json()["meta"]["timestamp"] == "2025-06-15T15:06:40.000Z"


AUTHED = [
    ("GET", "/test"),
    ("GET", "/account"),
    ("GET", "/account/users"),
    ("GET", "/devices"),
    ("POST", "/devices/register"),
    ("GET", "/devices/{s}"),
    ("PUT", "/devices/{s}"),
    ("PATCH", "/devices/{s}"),
    ("DELETE", "/devices/{s}"),
    ("GET", "/devices/{s}/check_ins"),
    ("GET", "/devices/{s}/signal_strength"),
    ("GET", "/devices/{s}/network"),
    ("GET", "/devices/{s}/lora"),
    ("GET", "/devices/{s}/logs"),
    ("GET", "/devices/{s}/configs"),
    ("GET", "/devices/{s}/apps"),
    ("GET", "/devices/{s}/tasks"),
    ("POST", "/devices/{s}/tasks"),
    ("GET", "/devices/{s}/tasks/60d0a5eb31eddd285865a781"),
    ("DELETE", "/devices/{s}/tasks/60d0a5eb31eddd285865a781"),
    ("PUT", "/devices/{s}/tasks/60d0a5eb31eddd285865a781/cancel"),
    ("PATCH", "/devices/{s}/tasks/60d0a5eb31eddd285865a781/cancel"),
    ("GET", "/apps"),
    ("GET", "/apps/60d098a631eddd1f6a725d23"),
    ("GET", "/device-firmwares"),
    ("GET", "/radio-firmwares"),
    ("GET", "/device-configurations"),
    ("GET", "/files/57e50e1d11c3a8fd12711fff"),
    ("DELETE", "/session"),
]


@pytest.mark.parametrize(("method", "path"), AUTHED)
def test_every_route_answers_423_without_a_valid_token(dhq: DHQ, method: str, path: str) -> None:
    serial = next(iter(dhq.devices()))
    path = path.format(s=serial)
    assert_423(dhq.call(method, path, None), "not logged in")
    assert_423(dhq.call(method, path, "bogusbogusbogu"), "invalid")
    token = dhq.login()
    dhq.login()  # takes over
    assert_423(dhq.call(method, path, token), "new session")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/devices", "GET"),
        ("DELETE", "/devices/{s}/check_ins", "GET"),
        ("POST", "/devices/{s}", "DELETE, GET, PATCH, PUT"),
        ("GET", "/devices/{s}/tasks/60d0a5eb31eddd285865a781/cancel", "PATCH, PUT"),
        ("GET", "/session", "DELETE, POST, PUT"),
        ("PATCH", "/info", "GET"),
    ],
)
def test_a_wrong_method_is_a_423_with_errors_not_a_plain_405(
    dhq: DHQ, method: str, path: str, allowed: str
) -> None:
    path = path.format(s=next(iter(dhq.devices())))
    detail = assert_423(dhq.call(method, path, dhq.login(), json={}), method)
    assert detail.endswith(allowed), detail
    assert dhq.call(method, path, None).status_code == 423  # with or without a session


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nothing-here"),
        ("GET", "/devices/{s}/firmware"),
        ("POST", "/devices/{s}/reboot"),
        ("GET", "/devices/{s}/tasks/60d0a5eb31eddd285865a781/retry"),
        ("DELETE", "/"),
    ],
)
def test_an_unknown_path_under_the_prefix_is_a_423_with_errors_not_a_plain_404(
    dhq: DHQ, method: str, path: str
) -> None:
    path = path.format(s=next(iter(dhq.devices())))
    r = dhq.call(method, path, dhq.login())
    assert r.headers["content-type"].startswith("application/vnd.api+json")
    assert assert_423(r, "no route") == f"No route matches {method} /api/v2{path}"


def test_a_wrong_route_changes_nothing_and_leaves_the_session_open(dhq: DHQ) -> None:
    serial = next(iter(dhq.devices()))
    token = dhq.login()
    before = dhq.call("GET", f"/devices/{serial}", token).json()["data"]
    assert_423(dhq.call("POST", f"/devices/{serial}", token, json={"data": {"attributes": {"group": "x"}}}))
    assert dhq.call("GET", f"/devices/{serial}", token).json()["data"] == before


# ---------------------------------------------------------------------------- account


def test_account_and_users(dhq: DHQ) -> None:
    token = dhq.login()
    account = dhq.call("GET", "/account", token).json()["data"]
    assert account["type"] == "accounts" and account["id"] == account["attributes"]["email"]
    assert account["attributes"]["alerts_config"]["low_signal"]["threshold"] == "-100"
    users = dhq.call("GET", "/account/users", token).json()["data"]["attributes"]["users"]
    assert {u["role"] for u in users} == {"manager", "basic"}


# ---------------------------------------------------------------------------- devices


def test_single_device_body_as_documented(dhq: DHQ) -> None:
    token = dhq.login()
    device = dhq.pick(online=True)
    body = dhq.call("GET", f"/devices/{device.id}", token).json()
    assert body["result"] == "ok" and body["token"] == token
    data = body["data"]
    assert data["id"] == device.id and data["type"] == "devices"
    a = data["attributes"]
    assert a["serial"] == device.id and a["product"] == device.model
    assert a["software_version"] == device.firmware
    assert a["location_description"] == [device.lat, device.lon]
    assert a["cell_radio"]["rssi"] == device.rssi
    assert a["group"] == device.group and a["provider"] == device.extra["provider"]
    last = datetime.fromisoformat(a["last_checkin"]).timestamp()
    assert T0 - 12.5 < last <= T0
    for key in ("dhcp", "ethernet", "wifi", "supports", "active_apps", "hardware_version", "up_time_seconds"):
        assert key in a


def test_offline_device_last_checkin_is_old(dhq: DHQ) -> None:
    token = dhq.login()
    device = dhq.pick(online=False)
    a = dhq.call("GET", f"/devices/{device.id}", token).json()["data"]["attributes"]
    assert datetime.fromisoformat(a["last_checkin"]).timestamp() == pytest.approx(device.last_seen, abs=0.001)
    token = dhq.later(3600)
    a = dhq.call("GET", f"/devices/{device.id}", token).json()["data"]["attributes"]
    assert datetime.fromisoformat(a["last_checkin"]).timestamp() == pytest.approx(device.last_seen, abs=0.001)


def test_device_is_addressed_by_serial_or_uuid_in_any_spelling(dhq: DHQ) -> None:
    token = dhq.login()
    device = next(iter(dhq.devices().values()))
    uuid = device.extra["uuid"]
    spellings = [
        uuid,
        uuid.upper(),
        dashed(uuid),
        dashed(uuid).upper(),
        f" {uuid[:10]} {uuid[10:]} ",
        "{" + uuid + "}",
    ]
    for spelling in [device.id, *spellings]:
        r = dhq.call("GET", f"/devices/{spelling}", token)
        assert r.status_code == 200, spelling
        assert r.json()["data"]["id"] == device.id


@pytest.mark.parametrize("ident", ["123", "0" * 32, "0" * 31, "g" * 32, "MTS-JP-103"])
def test_unknown_device_is_404_with_errors(dhq: DHQ, ident: str) -> None:
    r = dhq.call("GET", f"/devices/{ident}", dhq.login())
    assert r.status_code == 404
    assert r.json()["errors"][0]["detail"]


def test_device_list_pages_with_default_limit_500(dhq: DHQ) -> None:
    token = dhq.login()
    order = list(dhq.devices())
    assert len(order) == 600
    first = dhq.call("GET", "/devices", token).json()
    assert first["meta"] == {"skip": 0, "limit": 500, "total": 600}
    assert [d["id"] for d in first["data"]] == order[:500]
    rest = dhq.call("GET", "/devices", token, params={"skip": 500}).json()
    assert [d["id"] for d in rest["data"]] == order[500:]
    page = dhq.call("GET", "/devices", token, params={"limit": 20, "skip": 30}).json()
    assert [d["id"] for d in page["data"]] == order[30:50]
    assert page["meta"] == {"skip": 30, "limit": 20, "total": 600}
    assert dhq.call("GET", "/devices", token, params={"skip": 600}).json()["data"] == []
    item = first["data"][0]["attributes"]
    assert {"firmware", "position", "last_checkin", "cell_radio", "product", "group", "serial"} <= set(item)


@pytest.mark.parametrize("params", [{"limit": "x"}, {"limit": "-1"}, {"skip": "1.5"}])
def test_device_list_rejects_bad_paging_with_423(dhq: DHQ, params: dict[str, str]) -> None:
    assert_423(dhq.call("GET", "/devices", dhq.login(), params=params))


def test_device_search_matches_serial_product_group_and_description(dhq: DHQ) -> None:
    token = dhq.login()
    devices = dhq.devices()
    mtcdt = [s for s, d in devices.items() if "mtcdt" in (d.model or "").lower()]
    r = dhq.call("GET", "/devices", token, params={"q": "mtcdt", "limit": 1000}).json()
    assert r["meta"]["total"] >= len(mtcdt) > 0
    assert set(mtcdt) <= {d["id"] for d in r["data"]}
    serial = list(devices)[123]
    assert serial in [
        d["id"] for d in dhq.call("GET", "/devices", token, params={"q": serial}).json()["data"]
    ]
    group = devices[serial].group
    assert group is not None
    hits = dhq.call("GET", "/devices", token, params={"q": group, "limit": 1000}).json()["data"]
    assert all(group.lower() in d["attributes"]["group"].lower() for d in hits) and hits
    dhq.call(
        "PATCH", f"/devices/{serial}", token, json={"data": {"attributes": {"description": "Boiler Room 7"}}}
    )
    found = dhq.call("GET", "/devices", token, params={"q": "boiler room 7"}).json()
    assert [d["id"] for d in found["data"]] == [serial] and found["meta"]["total"] == 1


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_changes_description_group_and_location(dhq: DHQ, method: str) -> None:
    token = dhq.login()
    device = dhq.pick(online=True)
    body = {
        "data": {
            "id": device.id,
            "type": "devices",
            "attributes": {
                "description": "Building 33",
                "location_description": [44.211, -92.12],
                "group": "test",
            },
        }
    }
    r = dhq.call(method, f"/devices/{device.id}", token, json=body)
    assert r.status_code == 200
    assert r.json()["result"] == "ok"
    a = dhq.call("GET", f"/devices/{device.extra['uuid']}", token).json()["data"]["attributes"]
    assert (a["description"], a["group"], a["location_description"]) == (
        "Building 33",
        "test",
        [44.211, -92.12],
    )
    state = dhq.cloud.inspect(device.id)
    assert (
        state is not None and state["location"] == {"lat": 44.211, "lon": -92.12} and state["group"] == "test"
    )


@pytest.mark.parametrize(
    "attributes",
    [
        {"description": "ok", "serial": "other"},
        {"product": "MTR-H5"},
        {"software_version": "9.9"},
        {"description": 5},
        {"location_description": [91, 0]},
        {"location_description": "44,-92"},
        {"location_description": [1, 2, 3]},
    ],
)
def test_update_refuses_other_attributes_and_changes_nothing(dhq: DHQ, attributes: dict[str, Any]) -> None:
    token = dhq.login()
    device = dhq.pick(online=True)
    assert_423(dhq.call("PUT", f"/devices/{device.id}", token, json={"data": {"attributes": attributes}}))
    state = dhq.cloud.inspect(device.id)
    assert state is not None and state["description"] == device.name


def test_update_rejects_a_body_that_is_not_jsonapi(dhq: DHQ) -> None:
    token = dhq.login()
    serial = next(iter(dhq.devices()))
    assert_423(dhq.call("PUT", f"/devices/{serial}", token, json={"description": "flat"}))
    assert_423(dhq.call("PUT", f"/devices/{serial}", token, content=b"{oops"))
    assert_423(dhq.call("PUT", f"/devices/{serial}", token, json={"data": {"id": "123", "attributes": {}}}))


def test_deleted_device_is_gone_until_it_checks_in_again(dhq: DHQ) -> None:
    token = dhq.login()
    online, offline = dhq.pick(online=True), dhq.pick(online=False)
    dhq.call("PATCH", f"/devices/{online.id}", token, json={"data": {"attributes": {"description": "mine"}}})
    app_id = dhq.call("GET", "/apps", token).json()["data"][0]["id"]
    assert create(dhq, token, online.id, {"type": "INSTALL_APP", "app_id": app_id}).status_code == 200
    for device in (online, offline):
        assert dhq.call("DELETE", f"/devices/{device.id}", token).status_code == 200
        assert dhq.call("GET", f"/devices/{device.id}", token).status_code == 404
        assert dhq.call("GET", f"/devices/{device.extra['uuid']}/check_ins", token).status_code == 404
    total = dhq.call("GET", "/devices", token).json()["meta"]["total"]
    assert total == 598
    dhq.clock.advance(13)  # every gateway checks in within 12 s
    r = dhq.call("GET", f"/devices/{online.id}", token)
    assert r.status_code == 200
    assert r.json()["data"]["attributes"]["description"] == ""  # recreated: the account's edits are gone
    checkins = dhq.call("GET", f"/devices/{online.id}/check_ins", token).json()["attributes"]["check_ins"]
    assert 1 <= len(checkins) <= 2
    assert dhq.call("GET", f"/devices/{online.id}/tasks", token).json()["data"] == []  # records went too
    assert dhq.call("GET", f"/devices/{offline.id}", token).status_code == 404
    assert dhq.call("GET", "/devices", token).json()["meta"]["total"] == 599


def test_register_a_new_device_and_rules(dhq: DHQ) -> None:
    token = dhq.login()
    uuid = "776334cb-8e42-4839-835c-899d075d63ae"
    r = dhq.call("POST", "/devices/register", token, json={"serial": 12345678, "uuid": uuid})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["id"] == "12345678"
    a = dhq.call("GET", "/devices/776334CB8E424839835C899D075D63AE", token).json()["data"]["attributes"]
    assert a["serial"] == "12345678" and a["last_checkin"] is None
    assert dhq.call("GET", "/devices", token).json()["meta"]["total"] == 601
    again = dhq.call("POST", "/devices/register", token, json={"serial": "12345678", "uuid": uuid.upper()})
    assert again.status_code == 200
    assert_423(dhq.call("POST", "/devices/register", token, json={"serial": "999", "uuid": uuid}), "already")
    existing = dhq.pick(online=True)
    assert_423(
        dhq.call("POST", "/devices/register", token, json={"serial": existing.id, "uuid": "a" * 32}), "match"
    )
    assert_423(dhq.call("POST", "/devices/register", token, json={"serial": "1", "uuid": "abc"}), "32")
    assert_423(dhq.call("POST", "/devices/register", token, json={"uuid": uuid}), "serial")
    assert_423(dhq.call("POST", "/devices/register", token, json={"serial": "1"}), "uuid")
    ok = dhq.call(
        "POST", "/devices/register", token, json={"serial": existing.id, "uuid": existing.extra["uuid"]}
    )
    assert ok.status_code == 200


# ---------------------------------------------------------------------------- history


def test_check_ins_accumulate_as_time_passes(dhq: DHQ) -> None:
    token = dhq.login()
    device = dhq.pick(online=True)
    before = dhq.call("GET", f"/devices/{device.id}/check_ins", token).json()
    assert before["device_id"] == device.id and before["product_id"] == device.model
    rows = before["attributes"]["check_ins"]
    times = [datetime.fromisoformat(c["timestamp"]).timestamp() for c in rows]
    assert times == sorted(times) and len(times) > 50
    assert {"timestamp", "action", "result", "ssl", "duration"} == set(rows[0])
    token = dhq.later(600)
    after = dhq.call("GET", f"/devices/{device.id}/check_ins", token).json()["attributes"]["check_ins"]
    assert 600 / 12 - 1 <= len(after) - len(rows) <= 600 / 8 + 1
    assert after[: len(rows)] == rows  # history does not change, it grows
    token = dhq.later(86_400)  # bounded: the cloud keeps the latest 2000
    assert (
        len(dhq.call("GET", f"/devices/{device.id}/check_ins", token).json()["attributes"]["check_ins"])
        == 2000
    )


def test_offline_device_history_does_not_grow(dhq: DHQ) -> None:
    token = dhq.login()
    device = next(d for d in dhq.devices().values() if not d.online and d.last_seen > T0 - 9 * 86_400)
    rows = dhq.call("GET", f"/devices/{device.id}/check_ins", token).json()["attributes"]["check_ins"]
    token = dhq.later(3600)
    assert dhq.call("GET", f"/devices/{device.id}/check_ins", token).json()["attributes"]["check_ins"] == rows


def test_signal_strength_field_is_spelled_rssii(dhq: DHQ) -> None:
    token = dhq.login()
    device = dhq.pick(online=True)
    body = dhq.call("GET", f"/devices/{device.id}/signal_strength", token).json()
    samples = body["attributes"]["signal_strength"]
    assert samples and body["attributes"]["device_id"] == device.id
    assert device.rssi is not None
    for s in samples:
        assert set(s) == {"timestamp", "rssii", "fer"}
        assert isinstance(s["rssii"], int) and abs(s["rssii"] - device.rssi) <= 4
    dhq.clock.advance(290)
    later = dhq.call("GET", f"/devices/{device.id}/signal_strength", token).json()["attributes"][
        "signal_strength"
    ]
    assert len(later) > len(samples)


HISTORY = ["check_ins", "signal_strength", "network", "lora", "logs", "configs"]


@pytest.mark.parametrize("route", HISTORY)
@pytest.mark.parametrize(
    "params",
    [
        {"start_date": "2025/06/01"},
        {"end_date": "15-06-2025"},
        {"start_date": "2025-13-01"},
        {"start_date": "2025-6-1"},
        {"end_date": ""},
        {"start_date": "2025-06-10", "end_date": "2025-06-01"},
    ],
)
def test_history_dates_must_be_yyyy_mm_dd(dhq: DHQ, route: str, params: dict[str, str]) -> None:
    device = dhq.pick(online=True, lora=True)
    assert_423(dhq.call("GET", f"/devices/{device.id}/{route}", dhq.login(), params=params), "date")


def test_history_window_defaults_and_explicit_dates(dhq: DHQ) -> None:
    token = dhq.login()
    device = dhq.pick(online=True)
    path = f"/devices/{device.id}/check_ins"
    today = datetime.fromtimestamp(T0, UTC).date()
    default = dhq.call("GET", path, token).json()["attributes"]["check_ins"]
    explicit = dhq.call(
        "GET",
        path,
        token,
        params={
            "start_date": (today - timedelta(days=10)).isoformat(),
            "end_date": (today + timedelta(1)).isoformat(),
        },
    ).json()["attributes"]["check_ins"]
    assert default == explicit and default
    only_today = dhq.call("GET", path, token, params={"start_date": today.isoformat()}).json()
    assert all(c["timestamp"].startswith(today.isoformat()) for c in only_today["attributes"]["check_ins"])
    none = dhq.call("GET", path, token, params={"start_date": "2020-01-01", "end_date": "2020-01-05"}).json()
    assert none["attributes"]["check_ins"] == []


@pytest.mark.parametrize("kind", [None, "cell", "ethernet", "wifi"])
def test_network_usage_per_day_and_type(dhq: DHQ, kind: str | None) -> None:
    token = dhq.login()
    device = dhq.pick(online=True)
    params = {} if kind is None else {"type": kind}
    body = dhq.call("GET", f"/devices/{device.id}/network", token, params=params).json()
    assert body["device_id"] == device.id and body["vendor_id"]
    usages = body["attributes"]["network_usages"]
    assert usages
    last_day, counters = next(iter(usages[-1].items()))
    assert last_day == "2025-06-15"
    assert set(counters) == {kind or "cell"}
    assert counters[kind or "cell"]["rx_bytes"] > 0
    dhq.clock.advance(120)
    grown = dhq.call("GET", f"/devices/{device.id}/network", token, params=params).json()["attributes"]
    assert (
        grown["network_usages"][-1][last_day][kind or "cell"]["rx_bytes"]
        > counters[kind or "cell"]["rx_bytes"]
    )


def test_network_rejects_unknown_type(dhq: DHQ) -> None:
    device = dhq.pick(online=True)
    assert_423(dhq.call("GET", f"/devices/{device.id}/network", dhq.login(), params={"type": "lte"}), "type")


def test_lora_card_only_on_lora_gateways(dhq: DHQ) -> None:
    token = dhq.login()
    lora = dhq.pick(online=True, lora=True)
    body = dhq.call("GET", f"/devices/{lora.id}/lora", token).json()
    assert body["device"] == lora.id and body["product"] == lora.model
    card = body["attributes"]["lora"]
    assert card["nodes"] and {"dev_eui", "rss_i_avg", "snr_avg"} <= set(card["nodes"][0])
    assert "tx_joins_1st wnd" in card["link_statistics"]
    plain = dhq.pick(online=True, lora=False)
    assert dhq.call("GET", f"/devices/{plain.id}/lora", token).json()["attributes"]["lora"] == {}


def test_logs_and_configs_link_a_downloadable_archive(dhq: DHQ) -> None:
    token = dhq.login()
    device = dhq.pick(online=True, family="MTCDT")
    token = dhq.later(600)  # at least one log and one config upload
    logs = dhq.call("GET", f"/devices/{device.id}/logs", token).json()
    log = logs["attributes"]["log"]
    assert (
        log["uploaded_at"].endswith("UTC")
        and len(log["md5sum"]) == 32
        and log["description"].endswith(".zip")
    )
    configs = dhq.call("GET", f"/devices/{device.id}/configs", token).json()
    assert {"md5sum", "name", "description"} == set(configs["attributes"]["config"])
    for link in (logs["links"]["self"], configs["links"]["self"]):
        assert "/devicehq/api/v2/files/" in link
        r = dhq.http.get(link, headers={"X-AUTH-TOKEN": token})
        assert r.status_code == 200 and r.headers["content-type"] == "application/gzip"
        with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:gz") as archive:
            assert archive.getnames() == [
                f"{'log' if link == logs['links']['self'] else 'config'}/{device.id}.txt"
            ]
        assert gzip.decompress(r.content)
    none = dhq.call(
        "GET",
        f"/devices/{device.id}/logs",
        token,
        params={"start_date": "2020-01-01", "end_date": "2020-01-02"},
    )
    assert none.json()["attributes"]["log"] is None
    assert dhq.call("GET", "/files/0123456789abcdef01234567", token).status_code == 404


# ---------------------------------------------------------------------------- catalog


def test_apps_firmwares_and_configurations(dhq: DHQ) -> None:
    token = dhq.login()
    apps = dhq.call("GET", "/apps", token).json()["data"]
    assert len(apps) >= 3 and all(a["type"] == "apps" and set(a["attributes"]) == {"name"} for a in apps)
    for app in apps:
        assert len(app["id"]) == 24
        detail = dhq.call("GET", f"/apps/{app['id']}", token).json()["data"]["attributes"]
        assert detail["name"] == app["attributes"]["name"] and detail["versions"]
        assert {"id", "version", "description", "status"} == set(detail["versions"][0])
        assert isinstance(detail["app_configs"], list) and "platform" in detail
    assert any(
        dhq.call("GET", f"/apps/{a['id']}", token).json()["data"]["attributes"]["app_configs"] for a in apps
    )
    assert dhq.call("GET", "/apps/000000000000000000000000", token).status_code == 404
    fws = dhq.call("GET", "/device-firmwares", token).json()["data"]
    assert fws and all(f["type"] == "firmwares" and f["attributes"]["sub_type"] == "device" for f in fws)
    assert {f["attributes"]["model"] for f in fws} == {"MTCDT", "MTCAP", "MTR"}
    radios = dhq.call("GET", "/radio-firmwares", token).json()["data"]
    assert radios and all(
        f["attributes"]["sub_type"] == "cell_radio" and f["attributes"]["radio_module"] for f in radios
    )
    configs = dhq.call("GET", "/device-configurations", token).json()["data"]
    assert configs and all(c["type"] == "device_configurations" for c in configs)
    assert {"name", "description", "model"} == set(configs[0]["attributes"])


def test_catalog_is_deterministic_per_seed(dhq: DHQ) -> None:
    other = DeviceHQCloud(SimContext(fleet=dhq.ctx.fleet, credentials=SimCredentials(), clock=dhq.clock))
    assert list(other.catalog.apps) == list(dhq.cloud.catalog.apps)
    assert list(other.catalog.device_firmwares) == list(dhq.cloud.catalog.device_firmwares)


# ---------------------------------------------------------------------------- tasks


@dataclass
class Ids:
    app: dict[str, Any]
    app_with_configs: dict[str, Any]
    firmware: str
    radio: str
    config: str


def catalog_for(dhq: DHQ, token: str, device: SimDevice) -> Ids:
    apps = [
        dhq.call("GET", f"/apps/{a['id']}", token).json()["data"]
        for a in dhq.call("GET", "/apps", token).json()["data"]
    ]
    fam = (device.model or "").split("-")[0]
    fw = next(
        f["id"]
        for f in dhq.call("GET", "/device-firmwares", token).json()["data"]
        if f["attributes"]["model"] == fam
    )
    radio = dhq.call("GET", "/radio-firmwares", token).json()["data"][0]["id"]
    configs = dhq.call("GET", "/device-configurations", token).json()["data"]
    config = next(c["id"] for c in configs if c["attributes"]["model"].split("-")[0] == fam)
    return Ids(apps[0], next(a for a in apps if a["attributes"]["app_configs"]), fw, radio, config)


def create(dhq: DHQ, token: str, serial: str, attributes: dict[str, Any]) -> httpx.Response:
    return dhq.call(
        "POST", f"/devices/{serial}/tasks", token, json={"data": {"type": "tasks", "attributes": attributes}}
    )


def test_all_six_task_types_as_documented(dhq: DHQ) -> None:
    token = dhq.login()
    device = dhq.pick(online=True, family="MTCDT")
    ids = catalog_for(dhq, token, device)
    app, capp = ids.app, ids.app_with_configs
    version = app["attributes"]["versions"][0]["version"]
    cfg = capp["attributes"]["app_configs"][0]

    plain = create(dhq, token, device.id, {"type": "INSTALL_APP", "app_id": app["id"]}).json()["data"]
    assert len(plain["id"]) == 24 and plain["type"] == "tasks"
    a = plain["attributes"]
    assert (a["function"], a["state"], a["app_id"]) == ("INSTALL_APP", "queued", app["id"])
    assert a["created_at"] == "2025-06-15T15:06:40.000Z"
    assert a["app"] == {
        "name": app["attributes"]["name"],
        "version": app["attributes"]["versions"][-1]["version"],
        "config_ids": "",
        "id": app["id"],
    }

    a = create(
        dhq, token, device.id, {"type": "INSTALL_APP", "app_id": app["id"], "version": version}
    ).json()["data"]
    assert a["attributes"]["version"] == version and a["attributes"]["app"]["version"] == version

    body = {
        "type": "INSTALL_APP",
        "app_id": capp["id"],
        "version": capp["attributes"]["versions"][0]["version"],
    }
    a = create(dhq, token, device.id, {**body, "config_ids": [cfg["id"]]}).json()["data"]["attributes"]
    assert a["config_ids"] == cfg["id"] and a["app"]["config_ids"] == cfg["id"]

    a = create(dhq, token, device.id, {"type": "UNINSTALL_APP", "app_id": app["id"]}).json()["data"][
        "attributes"
    ]
    assert a["function"] == "UNINSTALL_APP" and a["app"]["config_ids"] is None and a["app_id"] == app["id"]

    a = create(dhq, token, device.id, {"type": "INSTALL_CONFIGS", "config_ids": [cfg["id"]]}).json()["data"][
        "attributes"
    ]
    assert (a["app_id"], a["config_ids"], a["version"], a["app"]["version"]) == (
        capp["id"],
        cfg["id"],
        "*",
        "*",
    )
    assert a["app_configs"][0]["id"] == cfg["id"] and a["app_configs"][0]["version"] == cfg["version"]
    assert "install_requested_at" in a["app_configs"][0]

    a = create(dhq, token, device.id, {"type": "CONFIG_UPGRADE", "config_file_id": ids.config}).json()[
        "data"
    ]["attributes"]
    assert a["config_file_id"] == ids.config

    for kind, fid in (("SOFTWARE_UPGRADE", ids.firmware), ("RADIO_FIRMWARE_UPGRADE", ids.radio)):
        a = create(dhq, token, device.id, {"type": kind, "firmware_id": fid}).json()["data"]["attributes"]
        assert a["function"] == kind and a["firmware_id"] == fid and a["version"]

    listed = dhq.call("GET", f"/devices/{device.id}/tasks", token).json()["data"]
    assert [t["attributes"]["function"] for t in listed] == [
        "RADIO_FIRMWARE_UPGRADE",
        "SOFTWARE_UPGRADE",
        "CONFIG_UPGRADE",
        "INSTALL_CONFIGS",
        "UNINSTALL_APP",
        "INSTALL_APP",
        "INSTALL_APP",
        "INSTALL_APP",
    ]
    detail = dhq.call("GET", f"/devices/{device.id}/tasks/{plain['id']}", token).json()["data"]
    assert detail["id"] == plain["id"] and detail["attributes"]["function"] == "INSTALL_APP"
    assert "return_code" in detail["attributes"]


def test_task_creation_errors_are_descriptive_423s(dhq: DHQ) -> None:
    token = dhq.login()
    device = dhq.pick(online=True, family="MTCDT")
    other = dhq.pick(online=True, family="MTR")
    ids = catalog_for(dhq, token, device)
    other_fw = catalog_for(dhq, token, other).firmware
    bad: list[tuple[dict[str, Any], str]] = [
        ({"type": "REBOOT"}, "unknown task type"),
        ({}, "unknown task type"),
        ({"type": "INSTALL_APP"}, "app_id is required"),
        (
            {"type": "INSTALL_APP", "app_id": "000000000000000000000000"},
            "app 000000000000000000000000 not found",
        ),
        ({"type": "INSTALL_APP", "app_id": ids.app["id"], "version": "99.9.9"}, "no version"),
        (
            {"type": "INSTALL_APP", "app_id": ids.app_with_configs["id"], "config_ids": ["nope"]},
            "app config nope",
        ),
        ({"type": "UNINSTALL_APP", "app_id": "x"}, "not found"),
        ({"type": "INSTALL_CONFIGS"}, "config_ids is required"),
        ({"type": "INSTALL_CONFIGS", "config_ids": ["nope"]}, "app config nope"),
        ({"type": "CONFIG_UPGRADE", "config_file_id": "nope"}, "device configuration nope"),
        ({"type": "SOFTWARE_UPGRADE", "firmware_id": "nope"}, "firmware nope"),
        ({"type": "SOFTWARE_UPGRADE", "firmware_id": other_fw}, "is for mtr"),
        ({"type": "RADIO_FIRMWARE_UPGRADE", "firmware_id": ids.firmware}, "radio firmware"),
        ({"type": "RADIO_FIRMWARE_UPGRADE"}, "firmware_id is required"),
    ]
    for attributes, words in bad:
        assert_423(create(dhq, token, device.id, attributes), words)
    assert_423(
        dhq.call("POST", f"/devices/{device.id}/tasks", token, json={"type": "INSTALL_APP"}), "json:api"
    )
    assert dhq.call("GET", f"/devices/{device.id}/tasks", token).json()["data"] == []
    assert create(dhq, token, "1", {"type": "INSTALL_APP", "app_id": ids.app["id"]}).status_code == 404


def states_until_final(dhq: DHQ, token: str, serial: str, task_id: str, seconds: int = 60) -> list[str]:
    seen: list[str] = []
    for _ in range(seconds):
        state = dhq.call("GET", f"/devices/{serial}/tasks/{task_id}", token).json()["data"]["attributes"][
            "state"
        ]
        if not seen or seen[-1] != state:
            seen.append(state)
        if state in ("completed", "failed", "cancelled"):
            break
        dhq.clock.advance(1)
    return seen


def test_task_moves_queued_pending_then_completed_or_failed(dhq: DHQ) -> None:
    token = dhq.login()
    device = dhq.pick(online=True, family="MTCDT")
    ids = catalog_for(dhq, token, device)
    task = create(dhq, token, device.id, {"type": "SOFTWARE_UPGRADE", "firmware_id": ids.firmware}).json()[
        "data"
    ]
    seen = states_until_final(dhq, token, device.id, task["id"])
    assert seen[:2] == ["queued", "pending"] and seen[-1] in ("completed", "failed") and len(seen) == 3
    state = dhq.cloud.inspect(device.id)
    assert state is not None
    sw = dhq.call("GET", f"/devices/{device.id}", token).json()["data"]["attributes"]["software_version"]
    detail = dhq.call("GET", f"/devices/{device.id}/tasks/{task['id']}", token).json()["data"]["attributes"]
    if seen[-1] == "completed":
        assert sw == task["attributes"]["version"] == state["firmware"] and detail["return_code"] == 0
    else:
        assert sw == device.firmware and detail["return_code"] and detail["error"]


def test_completed_install_app_shows_on_the_device(dhq: DHQ) -> None:
    token = dhq.login()
    device = dhq.pick(online=True, family="MTCDT")
    ids = catalog_for(dhq, token, device)
    dhq.ctx.rng.seed(5)
    outcomes = []
    for app_id in [ids.app["id"], ids.app_with_configs["id"]]:
        task = create(dhq, token, device.id, {"type": "INSTALL_APP", "app_id": app_id}).json()["data"]
        outcomes.append((app_id, states_until_final(dhq, token, device.id, task["id"])[-1]))
    apps = dhq.call("GET", f"/devices/{device.id}/apps", token).json()["data"]
    assert apps["type"] == "devices" and apps["attributes"]["product"] == device.model
    installed = {a["id"] for a in apps["attributes"]["apps"]}
    active = dhq.call("GET", f"/devices/{device.id}", token).json()["data"]["attributes"]["active_apps"]
    assert installed == {a["id"] for a in active}
    for app_id, outcome in outcomes:
        if outcome == "completed":
            assert app_id in installed


def test_offline_gateway_keeps_its_tasks_queued(dhq: DHQ) -> None:
    token = dhq.login()
    device = dhq.pick(online=False)
    ids = catalog_for(dhq, token, device)
    task = create(dhq, token, device.id, {"type": "INSTALL_APP", "app_id": ids.app["id"]}).json()["data"]
    token = dhq.later(3600)
    got = dhq.call("GET", f"/devices/{device.id}/tasks/{task['id']}", token).json()["data"]["attributes"]
    assert got["state"] == "queued"


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_cancel_is_final(dhq: DHQ, method: str) -> None:
    token = dhq.login()
    device = dhq.pick(online=True, family="MTCDT")
    ids = catalog_for(dhq, token, device)
    task = create(dhq, token, device.id, {"type": "INSTALL_APP", "app_id": ids.app["id"]}).json()["data"]
    r = dhq.call(method, f"/devices/{device.id}/tasks/{task['id']}/cancel", token)
    assert r.status_code == 200 and r.json()["data"]["attributes"]["state"] == "cancelled"
    dhq.clock.advance(120)
    assert states_until_final(dhq, token, device.id, task["id"]) == ["cancelled"]
    done = create(dhq, token, device.id, {"type": "INSTALL_APP", "app_id": ids.app["id"]}).json()["data"]
    assert states_until_final(dhq, token, device.id, done["id"])[-1] in ("completed", "failed")
    assert_423(
        dhq.call(method, f"/devices/{device.id}/tasks/{done['id']}/cancel", token), "cannot be cancelled"
    )


def test_delete_task_answers_204_and_forgets_it(dhq: DHQ) -> None:
    token = dhq.login()
    device = dhq.pick(online=True, family="MTCDT")
    ids = catalog_for(dhq, token, device)
    task = create(dhq, token, device.id, {"type": "INSTALL_APP", "app_id": ids.app["id"]}).json()["data"]
    r = dhq.call("DELETE", f"/devices/{device.id}/tasks/{task['id']}", token)
    assert r.status_code == 204 and r.content == b""
    assert dhq.call("GET", f"/devices/{device.id}/tasks/{task['id']}", token).status_code == 404
    assert dhq.call("DELETE", f"/devices/{device.id}/tasks/{task['id']}", token).status_code == 404
    assert dhq.call("GET", f"/devices/{device.id}/tasks", token).json()["data"] == []


def test_task_of_another_device_is_404(dhq: DHQ) -> None:
    token = dhq.login()
    device = dhq.pick(online=True, family="MTCDT")
    other = dhq.pick(online=False)
    ids = catalog_for(dhq, token, device)
    task = create(dhq, token, device.id, {"type": "INSTALL_APP", "app_id": ids.app["id"]}).json()["data"]
    assert dhq.call("GET", f"/devices/{other.id}/tasks/{task['id']}", token).status_code == 404
    assert dhq.call("PUT", f"/devices/{other.id}/tasks/{task['id']}/cancel", token).status_code == 404


def test_account_is_capped_at_25_unfinished_tasks(dhq: DHQ) -> None:
    token = dhq.login()
    offline = [d for d in dhq.devices().values() if not d.online][:13]
    app_id = catalog_for(dhq, token, offline[0]).app["id"]
    created = []
    for n in range(25):
        r = create(dhq, token, offline[n % len(offline)].id, {"type": "INSTALL_APP", "app_id": app_id})
        assert r.status_code == 200, (n, r.text)
        created.append((offline[n % len(offline)].id, r.json()["data"]["id"]))
    r = create(dhq, token, offline[0].id, {"type": "INSTALL_APP", "app_id": app_id})
    assert r.status_code == 423 and r.json() == LIMIT_BODY
    serial, task_id = created[0]
    dhq.call("PATCH", f"/devices/{serial}/tasks/{task_id}/cancel", token)
    assert create(dhq, token, offline[0].id, {"type": "INSTALL_APP", "app_id": app_id}).status_code == 200
    assert create(dhq, token, offline[0].id, {"type": "INSTALL_APP", "app_id": app_id}).json() == LIMIT_BODY
    serial, task_id = created[1]
    assert dhq.call("DELETE", f"/devices/{serial}/tasks/{task_id}", token).status_code == 204
    assert create(dhq, token, offline[1].id, {"type": "INSTALL_APP", "app_id": app_id}).status_code == 200


def test_finished_tasks_free_room_under_the_cap(dhq: DHQ) -> None:
    token = dhq.login()
    online = [d for d in dhq.devices().values() if d.online][:25]
    app_id = catalog_for(dhq, token, online[0]).app["id"]
    for device in online:
        assert create(dhq, token, device.id, {"type": "INSTALL_APP", "app_id": app_id}).status_code == 200
    assert create(dhq, token, online[0].id, {"type": "INSTALL_APP", "app_id": app_id}).json() == LIMIT_BODY
    dhq.clock.advance(60)  # one check-in to pick it up, at most three more to finish
    for _ in range(25):
        assert create(dhq, token, online[0].id, {"type": "INSTALL_APP", "app_id": app_id}).status_code == 200
    assert create(dhq, token, online[0].id, {"type": "INSTALL_APP", "app_id": app_id}).json() == LIMIT_BODY


def test_inspect_reports_own_state(dhq: DHQ) -> None:
    token = dhq.login()
    device = dhq.pick(online=True, family="MTCDT")
    ids = catalog_for(dhq, token, device)
    task = create(dhq, token, device.id, {"type": "INSTALL_APP", "app_id": ids.app["id"]}).json()["data"]
    state = dhq.cloud.inspect(dashed(device.extra["uuid"]).upper())
    assert state is not None
    assert state["serial"] == device.id and state["group"] == device.group and not state["deleted"]
    assert state["location"] == {"lat": device.lat, "lon": device.lon}
    assert [t["id"] for t in state["tasks"]] == [task["id"]] and state["tasks"][0]["state"] == "queued"
    assert dhq.cloud.inspect("nope") is None


# ---------------------------------------------------------------------------- scale


def test_answers_with_100000_gateways(server: Server, dhq_url: str) -> None:
    """Every route answers with 100,000 gateways (how fast: ``python bench/sim_bench.py``)."""
    rng = random.Random(3)
    devices: dict[str, SimDevice] = {}
    for n in range(100_000):
        serial = str(900_000_000 + n)
        devices[serial] = SimDevice(
            id=serial,
            kind="devicehq",
            backend="gateways",
            name=f"Gateway {serial}",
            model="MTCDT-H5-210L",
            firmware="5.3.0",
            online=True,
            last_seen=T0 - rng.uniform(5, 240),
            battery=None,
            rssi=-80,
            lat=45.0,
            lon=5.0,
            group=f"Group {n % 250:03d}",
            installation_status=None,
            alerting=False,
            created=T0 - 86_400,
            extra={"uuid": f"{rng.getrandbits(128):032x}", "provider": "AT&T"},
        )
    fleet = Fleet(seed=3, size=100_000, started=T0, devices=list(devices.values()), groups={})
    fleet.by_kind["devicehq"] = devices
    clock = Clock(T0)
    cloud = DeviceHQCloud(SimContext(fleet=fleet, credentials=SimCredentials(), clock=clock))
    mount(server, cloud)
    key = cloud.ctx.credentials.devicehq_api_key
    last = list(devices.values())[-1]
    with httpx.Client(timeout=30) as http:
        token = http.post(f"{dhq_url}/session", headers={"X-API-KEY": key}).json()["meta"]["token"]
        h = {"X-AUTH-TOKEN": token}
        cases: list[tuple[str, str, dict[str, str | int]]] = [
            ("page", "/devices", {}),
            ("far page", "/devices", {"skip": 99_990}),
            ("uuid", f"/devices/{dashed(last.extra['uuid'])}", {}),
            ("search", "/devices", {"q": "group 249", "limit": 10}),
            ("search again", "/devices", {"q": str(last.id)}),
        ]
        for name, url, params in cases:
            r = http.get(dhq_url + url, headers=h, params=params)
            assert r.status_code == 200, (name, r.text)
        assert r.json()["data"][0]["id"] == last.id
