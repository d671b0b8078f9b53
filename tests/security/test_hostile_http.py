"""Hostile bodies on every connector response route: always a core error, never a crash.

Each operation of each REST connector is run against the simulator through a proxy transport
that forwards every request and then replaces ONE response (the n-th the operation receives)
with something hostile: truncated, wrongly typed (the genuine JSON with a node swapped for
another JSON value), arbitrary JSON or bytes, invalid UTF-8, nested thousands deep, or 10 MB.
Whatever comes back, the connector answers normally or raises a ``FieldtuiError`` whose text
is short enough to show; any other exception is a bug.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldtui.config import DeviceHQBackend, FleetBackend, MySensorBackend, ThingsBackend
from fieldtui.connectors.base import Connector
from fieldtui.connectors.devicehq import DeviceHQConnector
from fieldtui.connectors.fleet import FleetConnector
from fieldtui.connectors.mysensor import MySensorConnector
from fieldtui.connectors.things import ThingsConnector
from fieldtui.core.errors import FieldtuiError, InvalidResponse
from fieldtui.core.models import InstallationStatus

Op = Callable[[Any, dict[str, str]], Awaitable[object]]
Corrupt = Callable[[httpx.Response], httpx.Response]

#: Routes that hand out credentials: corrupted only in their own test, so the rest get past them.
AUTH_PATHS = ("/auth/client-token", "/session")
TEN_MB = 10 * 1024 * 1024

OPERATIONS: dict[str, dict[str, Op]] = {
    "mysensor": {
        "probe": lambda c, ids: c.probe(),
        "get_device": lambda c, ids: c.get_device(ids["device"]),
        "list_tasks": lambda c, ids: c.list_tasks(ids["device"]),
        "get_task": lambda c, ids: c.get_task(ids["device"], ids["task"]),
        "create_task": lambda c, ids: c.create_task(ids["device"], "update_firmware", {"file_id": 1_700_001}),
        "delete_task": lambda c, ids: c.delete_task(ids["device"], "999999999"),
        "details": lambda c, ids: c.details(ids["device"]),
    },
    "things": {
        "probe": lambda c, ids: c.probe(),
        "get_device": lambda c, ids: c.get_device(ids["device"]),
        "installation_history": lambda c, ids: c.installation_history(ids["device"]),
        "alerts": lambda c, ids: c.alerts(ids["device"]),
        "alerting_devices": lambda c, ids: c.alerting_devices(),
        "list_groups": lambda c, ids: c.list_groups(),
        "group_members": lambda c, ids: c.group_members(ids["group"]),
        "get_group": lambda c, ids: c.get_group(ids["device"]),
        "list_commands": lambda c, ids: c.list_commands(ids["device"]),
        "messages": lambda c, ids: c.messages(ids["device"]),
        "set_installation_status": lambda c, ids: c.set_installation_status(
            ids["device"], InstallationStatus.INSTALLED
        ),
        "move_to_group": lambda c, ids: c.move_to_group(ids["device"], ids["group"]),
        "create_group": lambda c, ids: c.create_group("hostile-group", "made by a test"),
        "send_command": lambda c, ids: c.send_command(ids["device"], "1500", {"tsmEv": 1}),
    },
    "devicehq": {
        "probe": lambda c, ids: c.probe(),
        "get_device": lambda c, ids: c.get_device(ids["device"]),
        "search": lambda c, ids: c.search("MTCDT", limit=20),
        "signal_strength": lambda c, ids: c.signal_strength(ids["device"]),
        "check_ins": lambda c, ids: c.check_ins(ids["device"]),
        "network": lambda c, ids: c.network(ids["device"]),
        "lora": lambda c, ids: c.lora(ids["device"]),
        "list_tasks": lambda c, ids: c.list_tasks(ids["device"]),
        "update_device": lambda c, ids: c.update_device(ids["device"], {"description": "hostile test"}),
        "apps": lambda c, ids: c.apps(),
        "device_firmwares": lambda c, ids: c.device_firmwares(),
        "device_apps": lambda c, ids: c.device_apps(ids["device"]),
        "details": lambda c, ids: c.details(ids["device"]),
        "download": lambda c, ids: c.download(ids["device"], "log"),
    },
    "fleet": {
        "probe": lambda c, ids: c.probe(),
        "get_device": lambda c, ids: c.get_device(ids["device"]),
        "list_devices": lambda c, ids: c.list_devices(),
        "search": lambda c, ids: c.search("1.2", limit=20),
        "get_attributes": lambda c, ids: c.get_attributes(ids["device"]),
        "details": lambda c, ids: c.details(ids["device"]),
        "update_device": lambda c, ids: c.update_device(ids["device"], {"hardware_version": "hwrev2"}),
    },
}

CASES = [(kind, name) for kind, ops in OPERATIONS.items() for name in ops]


class HostileProxy(httpx.AsyncBaseTransport):
    """Forwards to the simulator; the ``target``-th response (auth routes aside) is corrupted."""

    def __init__(
        self,
        upstream: httpx.AsyncBaseTransport,
        *,
        target: int | None,
        corrupt: Corrupt | None,
        auth_too: bool = False,
    ) -> None:
        self.upstream = upstream
        self.target = target
        self.corrupt = corrupt
        self.auth_too = auth_too
        self.count = 0

    async def aclose(self) -> None:
        await self.upstream.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.upstream.handle_async_request(request)
        is_auth = request.url.path.endswith(AUTH_PATHS)
        if is_auth != self.auth_too:
            return response
        index = self.count
        self.count += 1
        if self.corrupt is None or index != self.target:
            return response
        await response.aread()
        response.request = request
        return self.corrupt(response)


def _connector(kind: str, sim: Any, client: httpx.AsyncClient) -> Connector:
    url = sim.urls[kind]
    secret = sim.credentials.secret_for(kind)
    if kind == "mysensor":
        return MySensorConnector("sensors", MySensorBackend(kind="mysensor", url=url), secret, client=client)
    if kind == "things":
        config = ThingsBackend(kind="things", url=url, client_id=sim.credentials.things_client_id)
        return ThingsConnector("things", config, secret, client=client)
    if kind == "devicehq":
        return DeviceHQConnector("gateways", DeviceHQBackend(kind="devicehq", url=url), secret, client=client)
    return FleetConnector("fleet", FleetBackend(kind="fleet", url=url), secret, client=client)


def _ids(kind: str, sim: Any) -> dict[str, str]:
    devices = sorted(sim.fleet.of(kind))
    ids = {"device": devices[1], "group": sorted(sim.fleet.groups)[0]}
    if kind == "mysensor":
        tasks = sim.admin("GET", f"/_sim/inspect/sensors/{devices[1]}").json()["tasks"]
        ids["task"] = str(tasks[0]["id"])
    return ids


async def _run(kind: str, name: str, sim: Any, proxy: HostileProxy) -> BaseException | None:
    """Run one operation; return the exception it raised (None when it answered)."""
    ids = _ids(kind, sim)
    async with httpx.AsyncClient(base_url=sim.urls[kind], transport=proxy, timeout=30) as client:
        connector = _connector(kind, sim, client)
        try:
            async with connector:
                await asyncio.wait_for(OPERATIONS[kind][name](connector, ids), 60)
        except Exception as exc:  # the assertions below say which exceptions are allowed
            return exc
    return None


def _responses(kind: str, name: str, sim: Any, *, auth: bool = False) -> int:
    """How many (non-auth, or auth) responses the operation receives when nothing is wrong."""
    proxy = HostileProxy(httpx.AsyncHTTPTransport(), target=None, corrupt=None, auth_too=auth)
    error = asyncio.run(_run(kind, name, sim, proxy))
    assert error is None or isinstance(error, FieldtuiError), error
    return proxy.count


def _assert_core_error(outcome: BaseException | None, what: str) -> None:
    if outcome is None:
        return
    assert isinstance(outcome, FieldtuiError), f"{what}: {type(outcome).__name__}: {outcome!r}"
    text = str(outcome)
    assert len(text) < 1500, f"{what}: an error message of {len(text)} characters"
    assert "Traceback" not in text and "pydantic" not in text.lower(), text


# -- what hostile bodies look like -------------------------------------------------------------
def _replace(response: httpx.Response, content: bytes, status: int | None = None) -> httpx.Response:
    headers = {
        k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-encoding")
    }
    return httpx.Response(
        status or response.status_code, headers=headers, content=content, request=response.request
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def _retyped(body: bytes, seed: int, value: Any) -> bytes:
    """The genuine JSON with one node (chosen by ``seed``) replaced by ``value``."""
    try:
        document = json.loads(body)
    except ValueError:
        return json.dumps(value).encode()
    nodes: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in node:
                nodes.append((node, key))
                walk(node[key])
        elif isinstance(node, list):
            for index in range(len(node)):
                nodes.append((node, index))
                walk(node[index])

    walk(document)
    if not nodes:
        return json.dumps(value).encode()
    parent, key = random.Random(seed).choice(nodes)
    parent[key] = value
    return json.dumps(document).encode()


@st.composite
def corruptions(draw: st.DrawFn) -> tuple[str, Corrupt]:
    how = draw(st.sampled_from(["truncate", "retype", "json", "bytes", "utf8", "deep", "status"]))
    status = draw(st.sampled_from([None, None, 200, 201, 204, 400, 404, 409, 422, 423, 429, 500, 503]))
    if how == "truncate":
        cut = draw(st.floats(0, 1, exclude_max=True))
        return how, lambda r: _replace(r, r.content[: int(len(r.content) * cut)], status)
    if how == "retype":
        seed, value = draw(st.integers(0, 2**16)), draw(json_values)
        return how, lambda r: _replace(r, _retyped(r.content, seed, value), status)
    if how == "json":
        value = draw(json_values)
        return how, lambda r: _replace(r, json.dumps(value).encode(), status)
    if how == "bytes":
        blob = draw(st.binary(max_size=300))
        return how, lambda r: _replace(r, blob, status)
    if how == "utf8":
        bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]))
        return how, lambda r: _replace(r, r.content.replace(b'"', b'"' + bad, 3) or bad, status)
    if how == "deep":
        depth = draw(st.sampled_from([200, 1_000, 5_000, 100_000]))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"data":', "}"), ('{"a":[', "]}")]))
        return how, lambda r: _replace(r, (opener * depth + "1" + closer * depth).encode(), status)
    # only the status changes: the genuine body under a status it does not belong to
    code = draw(st.sampled_from([200, 201, 202, 204, 301, 400, 401, 403, 404, 410, 418, 423, 429, 500, 502]))
    return how, lambda r: _replace(r, r.content, code)


# -- the tests ---------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(("kind", "name"), CASES, ids=[f"{k}-{n}" for k, n in CASES])
def test_every_response_route_turns_hostile_bodies_into_core_errors(kind: str, name: str, sim: Any) -> None:
    responses = _responses(kind, name, sim)
    assert responses >= 1

    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(target=st.integers(0, responses - 1), corruption=corruptions())
    def check(target: int, corruption: tuple[str, Corrupt]) -> None:
        how, corrupt = corruption
        proxy = HostileProxy(httpx.AsyncHTTPTransport(), target=target, corrupt=corrupt)
        outcome = asyncio.run(_run(kind, name, sim, proxy))
        _assert_core_error(outcome, f"{kind}.{name}, response {target} {how}")

    check()


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "name"), CASES, ids=[f"{k}-{n}" for k, n in CASES])
def test_ten_megabyte_bodies_are_core_errors(kind: str, name: str, sim: Any) -> None:
    responses = _responses(kind, name, sim)
    blobs = {
        "json": json.dumps({"data": ["x" * 1000] * (TEN_MB // 1006)}).encode(),
        "text": b"A" * TEN_MB,
    }
    for label, blob in blobs.items():
        for target in range(min(responses, 3)):
            proxy = HostileProxy(
                httpx.AsyncHTTPTransport(), target=target, corrupt=lambda r, b=blob: _replace(r, b)
            )
            outcome = asyncio.run(_run(kind, name, sim, proxy))
            _assert_core_error(outcome, f"{kind}.{name}, response {target}, 10 MB {label}")


@pytest.mark.parametrize("kind", ["things", "devicehq"])
@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html>502 Bad Gateway</html>",
        b'{"token": 12}',
        b'{"meta": {"token": ""}}',
        b"[" * 50_000,
        b'{"token": "\xff\xfe"}',
        b"null",
    ],
)
def test_hostile_answers_from_the_credential_routes_are_core_errors(kind: str, body: bytes, sim: Any) -> None:
    for status in (200, 201, 401, 423, 500):
        # A DeviceHQ session outlives a connector (one per process): close it so a new one is asked for.
        sim.admin("POST", f"/_sim/expire-credentials?backend={kind}")
        proxy = HostileProxy(
            httpx.AsyncHTTPTransport(),
            target=0,
            corrupt=lambda r, s=status: _replace(r, body, s),
            auth_too=True,
        )
        outcome = asyncio.run(_run(kind, "get_device", sim, proxy))
        assert outcome is not None, f"{kind}: a {status} {body[:20]!r} from the credential route was accepted"
        _assert_core_error(outcome, f"{kind} credential route, {status} {body[:20]!r}")


def test_a_document_body_that_is_not_json_names_the_route(sim: Any) -> None:
    proxy = HostileProxy(
        httpx.AsyncHTTPTransport(),
        target=0,
        corrupt=lambda r: _replace(r, b'{"serial": 1, "responsible": ,}'),
    )
    outcome = asyncio.run(_run("mysensor", "get_device", sim, proxy))
    assert isinstance(outcome, InvalidResponse)
    assert outcome.route is not None and outcome.route.startswith("GET ")
