"""Contract tests of the simulated "things" cloud (vendor document 001), over real loopback HTTP.

The cloud is mounted at its prefix in a small Starlette app served by uvicorn on 127.0.0.1
(port 0) in a background thread; each test gets a fresh cloud and a clock it controls. The last
test runs the same contract through the shared simulator of tests/conftest.py.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from fieldtui.sim.clouds.things import ALLOWED_COMMAND_IDS, INSTALLATION_STATUSES, ThingsCloud
from fieldtui.sim.context import SimContext, SimCredentials
from fieldtui.sim.fleet import Fleet, SimDevice, generate_fleet

T0 = 1_700_000_000.0
SEED = 11
SIZE = 300
ALERT_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


# -- harness ----------------------------------------------------------------------------------


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class _Swappable:
    """The ASGI app uvicorn serves; each test installs its own fresh cloud behind it."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None
        await self.app(scope, receive, send)


@dataclass
class _Server:
    root: str
    swap: _Swappable


@dataclass
class ThingsEnv:
    url: str
    cloud: ThingsCloud
    ctx: SimContext
    clock: Clock
    creds: SimCredentials
    fleet: Fleet

    @property
    def things(self) -> dict[str, SimDevice]:
        return self.fleet.of("things")


@pytest.fixture(scope="module")
def _things_server() -> Iterator[_Server]:
    swap = _Swappable()
    config = uvicorn.Config(swap, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield _Server(root=f"http://127.0.0.1:{port}", swap=swap)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def _fleet_args() -> tuple[int, int, float]:
    return SEED, SIZE, T0


@pytest.fixture
def things_env(_things_server: _Server, _fleet_args: tuple[int, int, float]) -> ThingsEnv:
    seed, size, now = _fleet_args
    fleet = generate_fleet(seed, size, now=now)
    clock = Clock(now)
    creds = SimCredentials()
    ctx = SimContext(fleet=fleet, credentials=creds, clock=clock)
    cloud = ThingsCloud(ctx)
    _things_server.swap.app = Starlette(routes=[Mount(ThingsCloud.prefix, routes=cloud.routes())])
    return ThingsEnv(
        url=_things_server.root + ThingsCloud.prefix,
        cloud=cloud,
        ctx=ctx,
        clock=clock,
        creds=creds,
        fleet=fleet,
    )


@pytest.fixture
def things_url(things_env: ThingsEnv) -> str:
    """The full base URL of a fresh simulated things cloud (prefix included)."""
    return things_env.url


@pytest.fixture
def anon(things_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=things_url, timeout=10) as client:
        yield client


def get_token(client: httpx.Client, env: ThingsEnv) -> str:
    r = client.post(
        "/auth/client-token",
        json={"client_id": env.creds.things_client_id, "client_secret": env.creds.things_client_secret},
    )
    assert r.status_code == 200, r.text
    token = r.json()["data"]["token"]
    assert isinstance(token, str) and token
    return token


@pytest.fixture
def api(things_url: str, things_env: ThingsEnv) -> Iterator[httpx.Client]:
    """A client holding a valid bearer token."""
    with httpx.Client(base_url=things_url, timeout=10) as client:
        client.headers["Authorization"] = f"Bearer {get_token(client, things_env)}"
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def first(env: ThingsEnv, **want: Any) -> SimDevice:
    """The first thing (not a gateway unless asked) whose attributes match ``want``."""
    gateway = want.pop("gateway", False)
    for dev in env.things.values():
        if bool(dev.extra.get("is_gateway")) != gateway:
            continue
        if all(getattr(dev, key) == value for key, value in want.items()):
            return dev
    raise AssertionError(f"no thing with {want}")


def state(env: ThingsEnv, tuid: str) -> dict[str, Any]:
    """The cloud's own view of a thing (``inspect``), which must know it."""
    found = env.cloud.inspect(tuid)
    assert found is not None, tuid
    return found


def assert_refusal(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["message"], str) and body["message"]
    return body


def some_group(env: ThingsEnv) -> str:
    """A fleet group with at least two members."""
    counts: dict[str, int] = {}
    for dev in env.things.values():
        if dev.group and dev.group != "unassigned":
            counts[dev.group] = counts.get(dev.group, 0) + 1
    return next(g for g, n in counts.items() if n >= 2)


# -- authentication ---------------------------------------------------------------------------

PROTECTED: list[tuple[str, str]] = [
    ("GET", "/things/alerts"),
    ("GET", "/things/alerts/count"),
    ("GET", "/things/{tuid}"),
    ("GET", "/things/{tuid}/alerts"),
    ("GET", "/things/{tuid}/messages?limit=5"),
    ("GET", "/things/{tuid}/commands"),
    ("POST", "/things/{tuid}/commands"),
    ("GET", "/things/{tuid}/installations"),
    ("POST", "/things/{tuid}/installations"),
    ("GET", "/things/{tuid}/group"),
    ("POST", "/things/{tuid}/group"),
    ("POST", "/groups"),
    ("GET", "/groups/"),
    ("POST", "/groups/{group}/rename"),
    ("GET", "/groups/{group}/things"),
    ("DELETE", "/groups/{group}"),
]


def _fill(env: ThingsEnv, path: str) -> str:
    return path.format(tuid=next(iter(env.things)), group=some_group(env))


def test_client_token_shape_and_use(anon: httpx.Client, things_env: ThingsEnv) -> None:
    r = anon.post(
        "/auth/client-token",
        json={
            "client_id": things_env.creds.things_client_id,
            "client_secret": things_env.creds.things_client_secret,
        },
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["data"] and list(body["data"]) == ["token"]
    assert anon.get("/things/alerts", headers=bearer(body["data"]["token"])).status_code == 200


@pytest.mark.parametrize(
    ("client_id", "secret_ok"),
    [("installer-7", False), ("someone-else", True), ("", False)],
)
def test_wrong_credentials_are_refused_with_401(
    anon: httpx.Client, things_env: ThingsEnv, client_id: str, secret_ok: bool
) -> None:
    secret = things_env.creds.things_client_secret if secret_ok else "th-wrong"
    r = anon.post("/auth/client-token", json={"client_id": client_id, "client_secret": secret})
    body = assert_refusal(r, 401)
    assert "credential" in body["message"].lower()
    assert "data" not in body


@pytest.mark.parametrize(
    "body", [{}, {"client_id": "installer-7"}, {"client_secret": "x"}, [], {"client_id": 7}]
)
def test_client_token_request_missing_fields_is_400(anon: httpx.Client, body: Any) -> None:
    assert_refusal(anon.post("/auth/client-token", json=body), 400)


def test_client_token_request_not_json_is_400(anon: httpx.Client) -> None:
    r = anon.post("/auth/client-token", content=b"client_id=x", headers={"Content-Type": "application/json"})
    assert_refusal(r, 400)


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_route_wants_a_bearer_token(
    anon: httpx.Client, things_env: ThingsEnv, method: str, path: str
) -> None:
    url = _fill(things_env, path)
    assert_refusal(anon.request(method, url), 401)
    assert_refusal(anon.request(method, url, headers=bearer("not-a-token")), 401)
    assert_refusal(anon.request(method, url, headers={"Authorization": "Basic aW5zdGFsbGVyOng="}), 401)
    assert_refusal(anon.request(method, url, headers={"Authorization": "Bearer"}), 401)


def test_token_lives_fifteen_minutes(anon: httpx.Client, things_env: ThingsEnv) -> None:
    token = get_token(anon, things_env)
    things_env.clock.advance(15 * 60 - 1)
    assert anon.get("/things/alerts/count", headers=bearer(token)).status_code == 200
    things_env.clock.advance(1)
    body = assert_refusal(anon.get("/things/alerts/count", headers=bearer(token)), 401)
    assert "expired" in body["message"].lower()
    assert anon.get("/things/alerts/count", headers=bearer(get_token(anon, things_env))).status_code == 200


def test_several_tokens_are_valid_at_once(anon: httpx.Client, things_env: ThingsEnv) -> None:
    a = get_token(anon, things_env)
    things_env.clock.advance(600)
    b = get_token(anon, things_env)
    assert a != b
    assert anon.get("/things/alerts", headers=bearer(a)).status_code == 200
    assert anon.get("/things/alerts", headers=bearer(b)).status_code == 200
    things_env.clock.advance(301)  # a is 901 s old, b 301 s
    assert_refusal(anon.get("/things/alerts", headers=bearer(a)), 401)
    assert anon.get("/things/alerts", headers=bearer(b)).status_code == 200
    things_env.clock.advance(600)
    assert_refusal(anon.get("/things/alerts", headers=bearer(b)), 401)


def test_expire_credentials_invalidates_every_token(anon: httpx.Client, things_env: ThingsEnv) -> None:
    tokens = [get_token(anon, things_env) for _ in range(3)]
    things_env.cloud.expire_credentials()
    for token in tokens:
        assert_refusal(anon.get("/things/alerts", headers=bearer(token)), 401)
    assert anon.get("/things/alerts", headers=bearer(get_token(anon, things_env))).status_code == 200


# -- alerts -----------------------------------------------------------------------------------


def test_all_alerts_lists_the_alerting_things(api: httpx.Client, things_env: ThingsEnv) -> None:
    r = api.get("/things/alerts")
    assert r.status_code == 200
    tuids = r.json()["data"]["alerting_tuids"]
    expected = [tuid for tuid, dev in things_env.things.items() if dev.alerting]
    assert expected, "the fleet should hold alerting things"
    assert sorted(tuids) == sorted(expected)


def test_alert_count_is_a_string(api: httpx.Client, things_env: ThingsEnv) -> None:
    r = api.get("/things/alerts/count")
    assert r.status_code == 200
    count = r.json()["data"]["alert_count"]
    assert isinstance(count, str)
    assert count == str(sum(1 for dev in things_env.things.values() if dev.alerting))


def test_alerts_of_an_alerting_thing(api: httpx.Client, things_env: ThingsEnv) -> None:
    dev = first(things_env, alerting=True)
    r = api.get(f"/things/{dev.id}/alerts")
    assert r.status_code == 200
    data = r.json()["data"]
    assert isinstance(data, list) and data
    types = set()
    for entry in data:
        assert set(entry) == {"tuid", "alert_type", "alerts"}
        assert entry["tuid"] == dev.id
        assert entry["alert_type"] not in types, "one entry per alert type"
        types.add(entry["alert_type"])
        for alert in entry["alerts"]:
            assert set(alert) == {"from", "to"}
            assert ALERT_TS.match(alert["from"]) and ALERT_TS.match(alert["to"])
            assert alert["from"] <= alert["to"]
    # The active alert lasts at least until now.
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(things_env.clock.t))
    assert any(a["to"] == now for e in data for a in e["alerts"])


def test_alerts_from_to_filter(api: httpx.Client, things_env: ThingsEnv) -> None:
    dev = first(things_env, alerting=True)
    future = int(things_env.clock.t) + 86_400
    assert api.get(f"/things/{dev.id}/alerts", params={"from": future}).json() == {"data": []}
    everything = api.get(f"/things/{dev.id}/alerts", params={"from": 0, "to": future}).json()["data"]
    assert everything == api.get(f"/things/{dev.id}/alerts").json()["data"]
    assert_refusal(api.get(f"/things/{dev.id}/alerts", params={"from": "yesterday"}), 400)


def test_alert_since_1970_quirk(api: httpx.Client, things_env: ThingsEnv) -> None:
    """The document's sample has a heartbeat alert starting 1970-01-01T00:00:00."""
    for tuid in things_env.things:
        alerts = state(things_env, tuid)["alerts"]
        if any(a["from"] == "1970-01-01T00:00:00" for e in alerts for a in e["alerts"]):
            break
    else:
        raise AssertionError("no thing with an alert since 1970")
    data = api.get(f"/things/{tuid}/alerts", params={"to": 3_600}).json()["data"]
    assert data == [
        {
            "tuid": tuid,
            "alert_type": "heartbeat missed",
            "alerts": [next(a for e in alerts for a in e["alerts"] if a["from"] == "1970-01-01T00:00:00")],
        }
    ]


def test_thing_without_alerts_has_an_empty_list(api: httpx.Client, things_env: ThingsEnv) -> None:
    for tuid, dev in things_env.things.items():
        if not dev.alerting and not state(things_env, tuid)["alerts"]:
            assert api.get(f"/things/{tuid}/alerts").json() == {"data": []}
            return
    raise AssertionError("every thing has alerts")


@pytest.mark.parametrize(
    "path",
    [
        "/things/NOPE00X0X00000000",
        "/things/NOPE00X0X00000000/alerts",
        "/things/NOPE00X0X00000000/messages?limit=3",
        "/things/NOPE00X0X00000000/commands",
        "/things/NOPE00X0X00000000/installations",
        "/things/NOPE00X0X00000000/group",
    ],
)
def test_unknown_tuid_is_404(api: httpx.Client, path: str) -> None:
    body = assert_refusal(api.get(path), 404)
    assert "NOPE00X0X00000000" in body["message"]


@pytest.mark.parametrize(
    ("path", "json"),
    [
        ("/things/NOPE00X0X00000000/commands", [{"tsmId": 1500, "tsmEv": 1}]),
        ("/things/NOPE00X0X00000000/installations", {"installation_status": "installed"}),
        ("/things/NOPE00X0X00000000/group", {"group_id": "unassigned"}),
    ],
)
def test_unknown_tuid_is_404_on_writes(api: httpx.Client, path: str, json: Any) -> None:
    assert_refusal(api.post(path, json=json), 404)


# -- thing information ------------------------------------------------------------------------


def test_thing_information_shape(api: httpx.Client, things_env: ThingsEnv) -> None:
    dev = first(things_env, online=True)
    r = api.get(f"/things/{dev.id}")
    assert r.status_code == 200
    data = r.json()["data"]
    assert set(data) == {"battery_level", "timestamp", "location", "gateway_tuid", "version"}
    assert data["battery_level"] == dev.battery
    assert isinstance(data["timestamp"], int)
    assert things_env.clock.t - 10 <= data["timestamp"] <= things_env.clock.t
    # Documented as strings, sent as numbers.
    assert isinstance(data["location"]["lat"], float) and data["location"]["lat"] == dev.lat
    assert isinstance(data["location"]["lon"], float) and data["location"]["lon"] == dev.lon
    assert data["gateway_tuid"] == dev.extra["gateway_tuid"]
    assert data["version"] == dev.firmware


def test_gateway_thing_is_its_own_gateway(api: httpx.Client, things_env: ThingsEnv) -> None:
    gw = first(things_env, gateway=True)
    assert api.get(f"/things/{gw.id}").json()["data"]["gateway_tuid"] == gw.id


def test_last_event_timestamp_follows_the_clock(api: httpx.Client, things_env: ThingsEnv) -> None:
    online = first(things_env, online=True)
    offline = first(things_env, online=False)
    before_on = api.get(f"/things/{online.id}").json()["data"]["timestamp"]
    before_off = api.get(f"/things/{offline.id}").json()["data"]["timestamp"]
    assert before_off <= offline.last_seen
    things_env.clock.advance(120)
    assert api.get(f"/things/{online.id}").json()["data"]["timestamp"] >= before_on + 100
    assert api.get(f"/things/{offline.id}").json()["data"]["timestamp"] == before_off


# -- messages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "?limit=", "?limit=0", "?limit=-3", "?limit=ten"])
def test_messages_limit_is_required_and_positive(
    api: httpx.Client, things_env: ThingsEnv, query: str
) -> None:
    tuid = next(iter(things_env.things))
    body = assert_refusal(api.get(f"/things/{tuid}/messages{query}"), 400)
    assert "limit" in body["message"]


def test_messages_shape(api: httpx.Client, things_env: ThingsEnv) -> None:
    dev = first(things_env, online=True)
    data = api.get(f"/things/{dev.id}/messages", params={"limit": 12}).json()["data"]
    assert len(data) == 12
    group = state(things_env, dev.id)["group"]
    for msg in data:
        assert {"tsmId", "tsmEv", "tsmTs", "tsmTuid", "tsmGw", "deploymentGroupId"} <= set(msg)
        assert all(isinstance(msg[k], int) for k in ("tsmId", "tsmEv", "tsmTs"))
        assert msg["tsmTuid"] == dev.id
        assert msg["tsmGw"] == dev.extra["gateway_tuid"]
        assert msg["deploymentGroupId"] == group
        assert msg["tsmTs"] <= things_env.clock.t
        if msg["tsmId"] == 1110:
            assert msg["batl"] == dev.battery
        else:
            assert isinstance(msg["temp"], float) and isinstance(msg["hum"], float)
    stamps = [m["tsmTs"] for m in data]
    assert stamps == sorted(stamps, reverse=True), "newest first"
    assert len(set(stamps)) == len(stamps)
    assert {m["tsmId"] for m in data} == {1110, 12100}


def test_messages_are_deterministic(api: httpx.Client, things_env: ThingsEnv) -> None:
    tuid = first(things_env, online=True).id
    a = api.get(f"/things/{tuid}/messages", params={"limit": 30}).json()
    assert a == api.get(f"/things/{tuid}/messages", params={"limit": 30}).json()


def test_messages_accumulate_over_time(api: httpx.Client, things_env: ThingsEnv) -> None:
    dev = first(things_env, online=True)
    latest = api.get(f"/things/{dev.id}/messages", params={"limit": 1}).json()["data"][0]
    period = state(things_env, dev.id)["message_period"]
    assert 5 <= period <= 10
    count_before = state(things_env, dev.id)["message_count"]
    assert api.get(
        f"/things/{dev.id}/messages", params={"from": latest["tsmTs"] + 1, "limit": 100}
    ).json() == {"data": []}

    things_env.clock.advance(60)
    new = api.get(f"/things/{dev.id}/messages", params={"from": latest["tsmTs"], "limit": 100}).json()["data"]
    # ``from`` is inclusive: the last message seen comes back, plus every new one.
    assert new[-1] == latest
    fresh = new[:-1]
    assert len(fresh) in (60 // period, 60 // period + 1)
    assert all(latest["tsmTs"] < m["tsmTs"] <= things_env.clock.t for m in fresh)
    gaps = {a["tsmTs"] - b["tsmTs"] for a, b in itertools.pairwise(new)}
    assert gaps == {period}
    assert state(things_env, dev.id)["message_count"] == count_before + len(fresh)


def test_offline_thing_sends_no_new_messages(api: httpx.Client, things_env: ThingsEnv) -> None:
    dev = first(things_env, online=False)
    before = api.get(f"/things/{dev.id}/messages", params={"limit": 5}).json()["data"]
    assert before and before[0]["tsmTs"] <= dev.last_seen
    things_env.clock.advance(800)  # within the token's life
    assert api.get(f"/things/{dev.id}/messages", params={"limit": 5}).json()["data"] == before


def test_messages_filters(api: httpx.Client, things_env: ThingsEnv) -> None:
    tuid = first(things_env, online=True).id
    url = f"/things/{tuid}/messages"
    battery = api.get(url, params={"messageid": "1110", "limit": 7}).json()["data"]
    assert len(battery) == 7 and all(m["tsmId"] == 1110 and "batl" in m for m in battery)
    both = api.get(url, params={"messageid": "1110,12100", "limit": 7}).json()["data"]
    assert both == api.get(url, params={"limit": 7}).json()["data"]
    assert api.get(url, params={"messageid": "9999", "limit": 7}).json() == {"data": []}
    assert api.get(url, params={"eventid": "99", "limit": 7}).json() == {"data": []}
    assert len(api.get(url, params={"eventid": "10", "limit": 7}).json()["data"]) == 7
    window = api.get(url, params={"limit": 20}).json()["data"]
    lo, hi = window[-1]["tsmTs"], window[5]["tsmTs"]
    ranged = api.get(url, params={"from": lo, "to": hi, "limit": 100}).json()["data"]
    assert ranged == window[5:]
    capped = api.get(url, params={"from": lo, "to": hi, "limit": 3}).json()["data"]
    assert capped == window[5:8]
    assert_refusal(api.get(url, params={"messageid": "abc", "limit": 3}), 400)
    assert_refusal(api.get(url, params={"to": "soon", "limit": 3}), 400)


def test_messages_carry_the_current_group(api: httpx.Client, things_env: ThingsEnv) -> None:
    tuid = first(things_env, online=True).id
    assert api.post("/groups", json={"group_id": "msg-group"}).status_code == 200
    assert api.post(f"/things/{tuid}/group", json={"group_id": "msg-group"}).status_code == 200
    data = api.get(f"/things/{tuid}/messages", params={"limit": 3}).json()["data"]
    assert {m["deploymentGroupId"] for m in data} == {"msg-group"}


# -- commands ---------------------------------------------------------------------------------


def test_send_commands(api: httpx.Client, things_env: ThingsEnv) -> None:
    tuid = next(iter(things_env.things))
    now = int(things_env.clock.t)
    body = [
        {"tsmId": 1500, "tsmEv": 30, "transactionId": 99999, "profileId": 0},
        {"tsmId": 13200, "tsmEv": 1},
    ]
    r = api.post(f"/things/{tuid}/commands", json=body)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["responsible"] == things_env.creds.things_client_id
    assert data["commands"] == [
        {
            "tsmId": 1500,
            "tsmEv": 30,
            "transactionId": 99999,
            "profileId": 0,
            "tsmTs": now,
            "tsmDstTuid": tuid,
        },
        {"tsmId": 13200, "tsmEv": 1, "tsmTs": now, "tsmDstTuid": tuid},
    ]


def test_list_commands_chronological_with_responsible(api: httpx.Client, things_env: ThingsEnv) -> None:
    tuid = next(iter(things_env.things))
    before = api.get(f"/things/{tuid}/commands").json()["data"]
    for tsm_id in ALLOWED_COMMAND_IDS:
        things_env.clock.advance(5)
        assert api.post(f"/things/{tuid}/commands", json=[{"tsmId": tsm_id, "tsmEv": 2}]).status_code == 200
    data = api.get(f"/things/{tuid}/commands").json()["data"]
    assert data[: len(before)] == before
    mine = data[len(before) :]
    assert [e["command"]["tsmId"] for e in mine] == list(ALLOWED_COMMAND_IDS)
    stamps = [e["timestamp"] for e in data]
    assert stamps == sorted(stamps)
    for entry in mine:
        assert set(entry) == {"tuid", "timestamp", "responsible", "command"}
        assert entry["tuid"] == tuid
        assert entry["responsible"] == things_env.creds.things_client_id
        assert entry["command"]["tsmTs"] == entry["timestamp"]
        assert entry["command"]["tsmDstTuid"] == tuid


def test_list_commands_filters_and_limit(api: httpx.Client, things_env: ThingsEnv) -> None:
    tuid = next(iter(things_env.things))
    start = int(things_env.clock.t) + 1
    for i, tsm_id in enumerate((1500, 1501, 1500, 12200)):
        things_env.clock.advance(10)
        api.post(f"/things/{tuid}/commands", json=[{"tsmId": tsm_id, "tsmEv": 40 + i}])
    url = f"/things/{tuid}/commands"
    recent = api.get(url, params={"from": start}).json()["data"]
    assert [e["command"]["tsmId"] for e in recent] == [1500, 1501, 1500, 12200]
    only_1500 = api.get(url, params={"from": start, "messageid": "1500"}).json()["data"]
    assert [e["command"]["tsmEv"] for e in only_1500] == [40, 42]
    by_event = api.get(url, params={"eventid": "41,43"}).json()["data"]
    assert [e["command"]["tsmId"] for e in by_event] == [1501, 12200]
    assert api.get(url, params={"limit": 2}).json()["data"] == recent[-2:]
    assert api.get(url, params={"from": start, "to": start + 15}).json()["data"] == recent[:1]
    assert_refusal(api.get(url, params={"limit": "x"}), 400)


def test_command_list_shows_only_allowed_ids(api: httpx.Client, things_env: ThingsEnv) -> None:
    for tuid in things_env.things:
        logged = state(things_env, tuid)["commands"]
        if any(c["command"]["tsmId"] == 17110 for c in logged):
            break
    else:
        raise AssertionError("no thing whose log holds a platform command")
    listed = api.get(f"/things/{tuid}/commands").json()["data"]
    assert all(e["command"]["tsmId"] in ALLOWED_COMMAND_IDS for e in listed)
    assert len(listed) == sum(1 for c in logged if c["command"]["tsmId"] in ALLOWED_COMMAND_IDS)


@pytest.mark.parametrize("bad_id", [17110, 1110, 0])
def test_command_with_a_disallowed_id_is_400(api: httpx.Client, things_env: ThingsEnv, bad_id: int) -> None:
    tuid = next(iter(things_env.things))
    before = state(things_env, tuid)["commands"]
    body = [{"tsmId": 1500, "tsmEv": 1}, {"tsmId": bad_id, "tsmEv": 30}]
    refusal = assert_refusal(api.post(f"/things/{tuid}/commands", json=body), 400)
    for allowed in ALLOWED_COMMAND_IDS:
        assert str(allowed) in refusal["message"]
    assert str(bad_id) in refusal["message"]
    assert state(things_env, tuid)["commands"] == before, "nothing of a refused request is sent"


@pytest.mark.parametrize(
    "body",
    [
        {"tsmId": 1500, "tsmEv": 1},
        [],
        [{"tsmId": 1500}],
        [{"tsmEv": 1}],
        [{"tsmId": "1500", "tsmEv": 1}],
        ["x"],
    ],
)
def test_command_body_must_be_an_array_of_commands(
    api: httpx.Client, things_env: ThingsEnv, body: Any
) -> None:
    tuid = next(iter(things_env.things))
    assert_refusal(api.post(f"/things/{tuid}/commands", json=body), 400)


# -- installations ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", INSTALLATION_STATUSES)
def test_seeded_history_agrees_with_the_fleet(api: httpx.Client, things_env: ThingsEnv, status: str) -> None:
    dev = first(things_env, installation_status=status)
    history = api.get(f"/things/{dev.id}/installations").json()["data"]
    assert history[0]["installation_status"] == status
    assert len(history) == (1 if status == "new" else 2)
    assert history[-1]["installation_status"] == "new"
    for entry in history:
        assert set(entry) == {"tuid", "installation_status", "timestamp", "responsible"}
        assert entry["tuid"] == dev.id and isinstance(entry["timestamp"], int)
        assert isinstance(entry["responsible"], str)
    stamps = [e["timestamp"] for e in history]
    assert stamps == sorted(stamps, reverse=True)


def test_set_installation_status_appends_newest_first(api: httpx.Client, things_env: ThingsEnv) -> None:
    dev = first(things_env, installation_status="new")
    url = f"/things/{dev.id}/installations"
    before = api.get(url).json()["data"]
    for i, status in enumerate(("installed", "quarantine", "installed", "retired")):
        things_env.clock.advance(30)
        r = api.post(url, json={"installation_status": status})
        assert r.status_code == 200
        assert r.json() == {"data": {"tuid": dev.id, "installation_status": status}}
        after = api.get(url).json()["data"]
        assert len(after) == len(before) + i + 1, "exactly one entry per POST"
        assert after[0] == {
            "tuid": dev.id,
            "installation_status": status,
            "timestamp": int(things_env.clock.t),
            "responsible": things_env.creds.things_client_id,
        }
        assert after[-len(before) :] == before
    assert [e["installation_status"] for e in api.get(url, params={"limit": 2}).json()["data"]] == [
        "retired",
        "installed",
    ]
    assert state(things_env, dev.id)["installation_status"] == "retired"


@pytest.mark.parametrize(
    "body",
    [
        {"installation_status": "broken"},
        {"installation_status": "Installed"},
        {"installation_status": ""},
        {"installation_status": None},
        {},
        ["installed"],
    ],
)
def test_unknown_installation_status_is_400(api: httpx.Client, things_env: ThingsEnv, body: Any) -> None:
    tuid = next(iter(things_env.things))
    before = api.get(f"/things/{tuid}/installations").json()["data"]
    refusal = assert_refusal(api.post(f"/things/{tuid}/installations", json=body), 400)
    for status in INSTALLATION_STATUSES:
        assert status in refusal["message"]
    assert api.get(f"/things/{tuid}/installations").json()["data"] == before


def test_installation_history_limit_must_be_positive(api: httpx.Client, things_env: ThingsEnv) -> None:
    tuid = next(iter(things_env.things))
    assert_refusal(api.get(f"/things/{tuid}/installations", params={"limit": 0}), 400)
    assert len(api.get(f"/things/{tuid}/installations", params={"limit": 1}).json()["data"]) == 1


# -- deployment groups ------------------------------------------------------------------------


def test_get_group_of_a_thing(api: httpx.Client, things_env: ThingsEnv) -> None:
    dev = next(d for d in things_env.things.values() if d.group != "unassigned")
    assert api.get(f"/things/{dev.id}/group").json() == {"data": {"group_id": dev.group, "tuid": dev.id}}
    loose = next(d for d in things_env.things.values() if d.group == "unassigned")
    assert api.get(f"/things/{loose.id}/group").json() == {
        "data": {"group_id": "unassigned", "tuid": loose.id}
    }


def test_set_group_of_a_thing(api: httpx.Client, things_env: ThingsEnv) -> None:
    dev = next(iter(things_env.things.values()))
    assert api.post("/groups", json={"group_id": "testgroup1"}).status_code == 200
    r = api.post(f"/things/{dev.id}/group", json={"group_id": "testgroup1"})
    assert r.status_code == 200
    assert r.json() == {"data": {"group_id": "testgroup1", "tuid": dev.id}}
    assert api.get(f"/things/{dev.id}/group").json()["data"]["group_id"] == "testgroup1"
    assert {"group_id": "testgroup1", "tuid": dev.id} in api.get("/groups/testgroup1/things").json()["data"]
    if dev.group != "unassigned":
        old_members = api.get(f"/groups/{dev.group}/things").json()["data"]
        assert dev.id not in [m["tuid"] for m in old_members]
    assert state(things_env, dev.id)["group"] == "testgroup1"
    # Back out of any group.
    assert api.post(f"/things/{dev.id}/group", json={"group_id": "unassigned"}).status_code == 200
    assert dev.id in [m["tuid"] for m in api.get("/groups/unassigned/things").json()["data"]]
    assert api.get("/groups/testgroup1/things").json() == {"data": []}


def test_set_group_to_an_unknown_group_is_404(api: httpx.Client, things_env: ThingsEnv) -> None:
    tuid = next(iter(things_env.things))
    before = api.get(f"/things/{tuid}/group").json()
    body = assert_refusal(api.post(f"/things/{tuid}/group", json={"group_id": "no-such-group"}), 404)
    assert "no-such-group" in body["message"]
    assert api.get(f"/things/{tuid}/group").json() == before
    assert_refusal(api.post(f"/things/{tuid}/group", json={}), 400)
    assert_refusal(api.post(f"/things/{tuid}/group", json={"group_id": 5}), 400)


def test_create_group(api: httpx.Client) -> None:
    r = api.post("/groups", json={"group_id": "testgroup1", "group_description": "This is a test group"})
    assert r.status_code == 200
    assert r.json() == {"data": {"group_id": "testgroup1", "group_description": "This is a test group"}}
    listed = api.get("/groups/", params={"q": "testgroup1"}).json()["data"]
    assert listed == [
        {"group_id": "testgroup1", "group_description": "This is a test group", "thing_count": 0}
    ]
    assert api.get("/groups/testgroup1/things").json() == {"data": []}
    bare = api.post("/groups", json={"group_id": "bare"}).json()["data"]
    assert bare == {"group_id": "bare", "group_description": ""}


def test_create_duplicate_group_is_409(api: httpx.Client, things_env: ThingsEnv) -> None:
    assert api.post("/groups", json={"group_id": "dup"}).status_code == 200
    assert_refusal(api.post("/groups", json={"group_id": "dup"}), 409)
    assert_refusal(api.post("/groups", json={"group_id": some_group(things_env)}), 409)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"group_id": "test group"}, "whitespace"),
        ({"group_id": " lead"}, "whitespace"),
        ({"group_id": "tab\there"}, "whitespace"),
        ({"group_id": "line\nbreak"}, "whitespace"),
        ({"group_id": "unassigned"}, '"unassigned"'),
        ({"group_id": ""}, "group_id"),
        ({"group_id": 12}, "group_id"),
        ({"group_description": "no id"}, "group_id"),
        ({"group_id": "ok", "group_description": 3}, "group_description"),
        (["x"], "group_id"),
    ],
)
def test_create_group_id_rules(api: httpx.Client, body: Any, words: str) -> None:
    assert words in assert_refusal(api.post("/groups", json=body), 400)["message"]
    assert "ok" not in [g["group_id"] for g in api.get("/groups/").json()["data"]]


def test_rename_group_members_follow(api: httpx.Client, things_env: ThingsEnv) -> None:
    old = some_group(things_env)
    members = [t for t, d in things_env.things.items() if d.group == old]
    description = things_env.fleet.groups[old]
    r = api.post(f"/groups/{old}/rename", json={"group_id": "newgroupname"})
    assert r.status_code == 200
    assert r.json() == {"data": {"group_id": "newgroupname", "old": old, "renamed": True}}
    assert [m["tuid"] for m in api.get("/groups/newgroupname/things").json()["data"]] == members
    assert_refusal(api.get(f"/groups/{old}/things"), 404)
    for tuid in members:
        assert api.get(f"/things/{tuid}/group").json()["data"]["group_id"] == "newgroupname"
        assert state(things_env, tuid)["group"] == "newgroupname"
    msgs = api.get(f"/things/{members[0]}/messages", params={"limit": 2}).json()["data"]
    assert {m["deploymentGroupId"] for m in msgs} == {"newgroupname"}
    listed = api.get("/groups/", params={"q": "newgroupname"}).json()["data"]
    assert listed == [
        {"group_id": "newgroupname", "group_description": description, "thing_count": len(members)}
    ]
    assert api.get("/groups/", params={"q": old}).json()["data"] == []


def test_rename_group_refusals(api: httpx.Client, things_env: ThingsEnv) -> None:
    g = some_group(things_env)
    assert api.post("/groups", json={"group_id": "taken"}).status_code == 200
    assert_refusal(api.post(f"/groups/{g}/rename", json={"group_id": "taken"}), 409)
    assert (
        "whitespace"
        in assert_refusal(api.post(f"/groups/{g}/rename", json={"group_id": "a b"}), 400)["message"]
    )
    assert_refusal(api.post(f"/groups/{g}/rename", json={"group_id": "unassigned"}), 400)
    assert_refusal(api.post(f"/groups/{g}/rename", json={}), 400)
    assert_refusal(api.post("/groups/no-such-group/rename", json={"group_id": "x"}), 404)
    assert_refusal(api.post("/groups/unassigned/rename", json={"group_id": "x"}), 400)
    same = api.post(f"/groups/{g}/rename", json={"group_id": g})
    assert same.json() == {"data": {"group_id": g, "old": g, "renamed": False}}


def test_list_groups(api: httpx.Client, things_env: ThingsEnv) -> None:
    r = api.get("/groups/")
    assert r.status_code == 200
    data = r.json()["data"]
    assert [g["group_id"] for g in data] == sorted(things_env.fleet.groups)
    counts: dict[str, int] = {}
    for dev in things_env.things.values():
        counts[dev.group or "unassigned"] = counts.get(dev.group or "unassigned", 0) + 1
    for entry in data:
        assert set(entry) == {"group_id", "group_description", "thing_count"}
        assert entry["group_description"] == things_env.fleet.groups[entry["group_id"]]
        assert entry["thing_count"] == counts.get(entry["group_id"], 0)
    assert "unassigned" not in [g["group_id"] for g in data]
    assert api.get("/groups").json() == r.json()
    assert api.get("/groups/", params={"limit": 2}).json()["data"] == data[:2]
    assert_refusal(api.get("/groups/", params={"limit": 0}), 400)


def test_list_groups_search(api: httpx.Client, things_env: ThingsEnv) -> None:
    api.post("/groups", json={"group_id": "zz-alpha", "group_description": "Boiler SENSORS north"})
    api.post("/groups", json={"group_id": "zz-beta", "group_description": "roof"})
    by_description = api.get("/groups/", params={"q": "boiler sensors"}).json()["data"]
    assert [g["group_id"] for g in by_description] == ["zz-alpha"]
    by_id = api.get("/groups/", params={"q": "ZZ-"}).json()["data"]
    assert [g["group_id"] for g in by_id] == ["zz-alpha", "zz-beta"]
    assert api.get("/groups/", params={"q": "zz-", "limit": 1}).json()["data"] == by_id[:1]
    assert api.get("/groups/", params={"q": "no such text anywhere"}).json() == {"data": []}


def test_group_things(api: httpx.Client, things_env: ThingsEnv) -> None:
    g = some_group(things_env)
    members = api.get(f"/groups/{g}/things").json()["data"]
    assert members == [{"group_id": g, "tuid": t} for t, d in things_env.things.items() if d.group == g]
    loose = api.get("/groups/unassigned/things").json()["data"]
    assert {m["tuid"] for m in loose} == {t for t, d in things_env.things.items() if d.group == "unassigned"}
    assert_refusal(api.get("/groups/no-such-group/things"), 404)


def test_delete_group_members_become_unassigned(api: httpx.Client, things_env: ThingsEnv) -> None:
    g = some_group(things_env)
    members = [m["tuid"] for m in api.get(f"/groups/{g}/things").json()["data"]]
    loose_before = len(api.get("/groups/unassigned/things").json()["data"])
    r = api.delete(f"/groups/{g}")
    assert r.status_code == 200
    assert r.json() == {"data": {"group_id": g, "deleted": True}}
    for tuid in members:
        assert api.get(f"/things/{tuid}/group").json()["data"]["group_id"] == "unassigned"
        assert state(things_env, tuid)["group"] == "unassigned"
    assert len(api.get("/groups/unassigned/things").json()["data"]) == loose_before + len(members)
    assert g not in [e["group_id"] for e in api.get("/groups/").json()["data"]]
    assert_refusal(api.get(f"/groups/{g}/things"), 404)
    assert_refusal(api.delete(f"/groups/{g}"), 404)
    assert_refusal(api.post(f"/things/{members[0]}/group", json={"group_id": g}), 404)
    # The id is free again.
    assert api.post("/groups", json={"group_id": g}).status_code == 200


def test_delete_unassigned_is_refused(api: httpx.Client) -> None:
    assert "unassigned" in assert_refusal(api.delete("/groups/unassigned"), 400)["message"]


# -- inspect and scale ------------------------------------------------------------------------


def test_inspect(api: httpx.Client, things_env: ThingsEnv) -> None:
    assert things_env.cloud.inspect("NOPE00X0X00000000") is None
    dev = first(things_env, online=True, installation_status="installed")
    initial = state(things_env, dev.id)
    assert initial["group"] == dev.group
    assert initial["installation_status"] == "installed"
    assert initial["alerting"] == dev.alerting
    api.post(f"/things/{dev.id}/installations", json={"installation_status": "quarantine"})
    api.post(f"/things/{dev.id}/commands", json=[{"tsmId": 12200, "tsmEv": 5}])
    things_env.clock.advance(30)
    after = state(things_env, dev.id)
    assert after["installation_status"] == "quarantine"
    assert after["installation_history"][0]["responsible"] == things_env.creds.things_client_id
    assert after["commands"][-1]["command"]["tsmId"] == 12200
    assert after["message_count"] > initial["message_count"]


def test_large_fleet_builds_and_answers(anon: httpx.Client, _things_server: _Server) -> None:
    """A 100,000-device fleet is served whole (how fast: ``python bench/sim_bench.py``; no timed
    assertion here, the suite runs on loaded machines)."""
    fleet = generate_fleet(3, 100_000, now=T0)
    clock = Clock(T0)
    ctx = SimContext(fleet=fleet, credentials=SimCredentials(), clock=clock)
    cloud = ThingsCloud(ctx)
    _things_server.swap.app = Starlette(routes=[Mount(ThingsCloud.prefix, routes=cloud.routes())])
    r = anon.post(
        "/auth/client-token",
        json={
            "client_id": ctx.credentials.things_client_id,
            "client_secret": ctx.credentials.things_client_secret,
        },
    )
    anon.headers["Authorization"] = f"Bearer {r.json()['data']['token']}"
    tuid = list(fleet.of("things"))[-1]
    assert anon.get(f"/things/{tuid}").status_code == 200
    group = anon.get(f"/things/{tuid}/group").json()["data"]["group_id"]
    for _ in range(20):
        assert anon.get(f"/things/{tuid}/messages", params={"limit": 1000}).status_code == 200
    if group != "unassigned":
        assert anon.post(f"/groups/{group}/rename", json={"group_id": "renamed-big"}).status_code == 200
        assert anon.delete("/groups/renamed-big").json()["data"]["deleted"] is True
    assert int(anon.get("/things/alerts/count").json()["data"]["alert_count"]) == sum(
        1 for d in fleet.of("things").values() if d.alerting
    )


# -- through the shared simulator (tests/conftest.py) -----------------------------------------


def test_mounted_in_the_shared_simulator(sim_clean: Any) -> None:
    """The same contract through the real framework: prefix, admin clock, inspect, expiry."""
    creds = sim_clean.credentials
    tuid = next(iter(sim_clean.fleet.of("things")))
    with httpx.Client(base_url=sim_clean.urls["things"], timeout=10) as client:
        assert sim_clean.urls["things"].endswith(ThingsCloud.prefix)
        r = client.post(
            "/auth/client-token",
            json={"client_id": creds.things_client_id, "client_secret": creds.things_client_secret},
        )
        assert r.status_code == 200, r.text
        client.headers["Authorization"] = f"Bearer {r.json()['data']['token']}"
        assert isinstance(client.get("/things/alerts/count").json()["data"]["alert_count"], str)
        before = client.get(f"/things/{tuid}/installations").json()["data"]
        assert (
            client.post(
                f"/things/{tuid}/installations", json={"installation_status": "quarantine"}
            ).status_code
            == 200
        )
        inspected = sim_clean.admin("GET", f"/_sim/inspect/things/{tuid}").json()
        assert inspected["installation_status"] == "quarantine"
        assert len(inspected["installation_history"]) == len(before) + 1
        assert sim_clean.admin("POST", "/_sim/clock", json={"advance": 15 * 60}).status_code == 200
        assert_refusal(client.get("/things/alerts"), 401)
        r = client.post(
            "/auth/client-token",
            json={"client_id": creds.things_client_id, "client_secret": creds.things_client_secret},
        )
        client.headers["Authorization"] = f"Bearer {r.json()['data']['token']}"
        assert client.get("/things/alerts").status_code == 200
        assert sim_clean.admin("POST", "/_sim/expire-credentials?backend=things").status_code == 200
        assert_refusal(client.get("/things/alerts"), 401)
