"""The things connector against the running simulator, over real loopback HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from fieldtui.config import ThingsBackend
from fieldtui.connectors.things import TOKEN_LIFETIME, ThingsConnector
from fieldtui.core.errors import (
    AuthError,
    ConnectionError_,
    InvalidResponse,
    NotFound,
    Rejected,
    ServerError,
    TimeoutError_,
)
from fieldtui.core.models import BackendKind, InstallationStatus, Location, TaskState, TelemetrySample


@dataclass
class Traffic:
    """What went over the wire: token requests and 401 answers."""

    requests: list[str] = field(default_factory=list)
    unauthorized: int = 0

    @property
    def token_requests(self) -> int:
        return sum(1 for r in self.requests if r.endswith("/auth/client-token"))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counting_client(traffic: Traffic) -> httpx.AsyncClient:
    async def on_request(request: httpx.Request) -> None:
        traffic.requests.append(f"{request.method} {request.url.path}")

    async def on_response(response: httpx.Response) -> None:
        traffic.unauthorized += response.status_code == 401

    return httpx.AsyncClient(event_hooks={"request": [on_request], "response": [on_response]})


@pytest.fixture
async def traffic() -> Traffic:
    return Traffic()


@pytest.fixture
async def make(sim: Any, traffic: Traffic) -> AsyncIterator[Callable[..., ThingsConnector]]:
    clients: list[httpx.AsyncClient] = []

    def build(
        secret: str | None = None,
        *,
        timeout: float = 10.0,
        poll: float = 0.05,
        clock: FakeClock | None = None,
    ) -> ThingsConnector:
        config = ThingsBackend(
            kind="things",
            url=sim.urls["things"],
            client_id=sim.credentials.things_client_id,
            timeout=timeout,
            poll_interval=poll,
        )
        client = counting_client(traffic)
        clients.append(client)
        extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
        return ThingsConnector(
            "things", config, secret or sim.credentials.things_client_secret, client=client, **extra
        )

    yield build
    for client in clients:
        await client.aclose()


def things(sim: Any) -> dict[str, Any]:
    return sim.fleet.of("things")


def inspect(sim: Any, tuid: str) -> dict[str, Any]:
    response = sim.admin("GET", f"/_sim/inspect/things/{tuid}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def pick(sim: Any, **wanted: Any) -> str:
    for tuid, dev in things(sim).items():
        if all(getattr(dev, key) == value for key, value in wanted.items()) and not dev.extra.get(
            "is_gateway"
        ):
            return str(tuid)
    raise AssertionError(f"no thing with {wanted}")


def sim_now(sim: Any) -> float:
    return float(sim.admin("GET", "/_sim/clock").json()["now"])


def advance(sim: Any, seconds: float) -> None:
    assert sim.admin("POST", "/_sim/clock", json={"advance": seconds}).status_code == 200


def mutations(sim: Any) -> list[dict[str, Any]]:
    return [
        m
        for m in sim.admin("GET", "/_sim/mutations?backend=things").json()
        if "client-token" not in m["path"]
    ]


# -- looking a thing up ----------------------------------------------------------------------


async def test_a_thing_reads_battery_firmware_location_group_and_status(
    sim_clean: Any, make: Callable[..., ThingsConnector]
) -> None:
    tuid = pick(sim_clean, online=True)
    dev = things(sim_clean)[tuid]
    state = inspect(sim_clean, tuid)
    async with make() as connector:
        device = await connector.get_device(tuid)
    assert (device.id, device.backend, device.kind) == (tuid, "things", BackendKind.THINGS)
    assert device.battery == dev.battery
    assert device.firmware == dev.firmware
    assert device.location == Location(lat=dev.lat, lon=dev.lon)
    assert device.group == state["group"]
    assert device.installation_status == InstallationStatus(state["installation_status"])
    assert device.online is True
    assert device.last_seen is not None and device.last_seen.tzinfo is not None
    assert device.raw["thing"]["version"] == dev.firmware
    assert device.raw["installation"]["installation_status"] == state["installation_status"]
    assert device.raw["group"] == {"group_id": state["group"], "tuid": tuid}
    assert "token" not in repr(device.raw)


async def test_an_offline_thing_reads_offline(sim_clean: Any, make: Callable[..., ThingsConnector]) -> None:
    tuid = pick(sim_clean, online=False)
    async with make() as connector:
        device = await connector.get_device(tuid)
    assert device.online is False


async def test_alerting_things_show_their_active_alerts(
    sim_clean: Any, make: Callable[..., ThingsConnector]
) -> None:
    alerting = pick(sim_clean, alerting=True)
    quiet = pick(sim_clean, alerting=False)
    async with make() as connector:
        assert await connector.alerts(alerting) != []
        assert (await connector.get_device(alerting)).alerts != ()
        assert await connector.alerts(quiet) == []
        everyone = await connector.alerting_devices()
        assert alerting in everyone and quiet not in everyone
        assert await connector.alert_count() == len(everyone)


async def test_an_unknown_thing_is_not_found_in_the_servers_words(
    sim_clean: Any, make: Callable[..., ThingsConnector]
) -> None:
    async with make() as connector:
        with pytest.raises(NotFound, match="Thing 'NOPE00X0X00000000' not found"):
            await connector.get_device("NOPE00X0X00000000")


# -- the client token ------------------------------------------------------------------------


async def test_twenty_concurrent_calls_make_exactly_one_token_request(
    sim_clean: Any, make: Callable[..., ThingsConnector], traffic: Traffic
) -> None:
    tuids = list(things(sim_clean))[:20]
    async with make() as connector:
        groups = await asyncio.gather(*(connector.get_group(t) for t in tuids))
    assert all(groups)
    assert traffic.token_requests == 1


async def test_credentials_expired_mid_run_renew_once_and_the_call_succeeds(
    sim_clean: Any, make: Callable[..., ThingsConnector], traffic: Traffic
) -> None:
    tuid = pick(sim_clean, online=True)
    async with make() as connector:
        await connector.get_group(tuid)
        assert sim_clean.admin("POST", "/_sim/expire-credentials?backend=things").status_code == 200
        results = await asyncio.gather(*(connector.get_group(tuid) for _ in range(10)))
    assert len(set(results)) == 1
    assert traffic.token_requests == 2
    assert traffic.unauthorized >= 1


async def test_a_token_past_fifteen_minutes_on_the_server_is_renewed_once(
    sim_clean: Any, make: Callable[..., ThingsConnector], traffic: Traffic
) -> None:
    tuid = pick(sim_clean)
    async with make() as connector:
        await connector.get_group(tuid)
        advance(sim_clean, 16 * 60)
        await connector.installation_history(tuid)
    assert traffic.token_requests == 2


async def test_the_token_is_renewed_shortly_before_expiry_without_a_refusal(
    sim_clean: Any, make: Callable[..., ThingsConnector], traffic: Traffic
) -> None:
    clock = FakeClock()
    tuid = pick(sim_clean)
    async with make(clock=clock) as connector:
        await connector.get_group(tuid)
        clock.now += TOKEN_LIFETIME - 120  # well inside the lifetime: reused
        await connector.get_group(tuid)
        assert traffic.token_requests == 1
        clock.now += 90  # within the renewal margin: renewed before the server would refuse
        await connector.get_group(tuid)
    assert traffic.token_requests == 2
    assert traffic.unauthorized == 0


async def test_a_wrong_secret_is_an_auth_error_in_the_servers_words(
    sim_clean: Any, make: Callable[..., ThingsConnector]
) -> None:
    async with make(secret="wrong") as connector:
        with pytest.raises(AuthError, match="Invalid client credentials"):
            await connector.probe()


async def test_probe_succeeds_with_good_credentials(
    sim_clean: Any, make: Callable[..., ThingsConnector]
) -> None:
    async with make() as connector:
        await connector.probe()


# -- messages and telemetry ------------------------------------------------------------------


async def test_messages_are_newest_first_with_their_attributes(
    sim_clean: Any, make: Callable[..., ThingsConnector]
) -> None:
    tuid = pick(sim_clean, online=True)
    async with make() as connector:
        samples = await connector.messages(tuid, limit=12)
    assert len(samples) == 12
    stamps = [s.timestamp for s in samples]
    assert stamps == sorted(stamps, reverse=True)
    assert all(s.metrics and not any(k.startswith("tsm") for k in s.metrics) for s in samples)
    assert any("batl" in s.metrics for s in samples) and any("temp" in s.metrics for s in samples)
    assert all("deploymentGroupId" not in s.metrics for s in samples)


async def _take(stream: AsyncIterator[TelemetrySample], count: int) -> list[TelemetrySample]:
    taken: list[TelemetrySample] = []
    async with asyncio.timeout(20):
        async for sample in stream:
            taken.append(sample)
            if len(taken) == count:
                break
    return taken


async def test_telemetry_polls_every_message_once_in_order_across_pages_and_polls(
    sim_clean: Any, make: Callable[..., ThingsConnector], traffic: Traffic
) -> None:
    tuid = pick(sim_clean, online=True)
    now = sim_now(sim_clean)
    since = datetime.fromtimestamp(now - 1800, UTC)  # more than one page of messages
    async with make(poll=0.05) as connector:
        truth = await connector.messages(tuid, since=since, limit=1000)
        assert len(truth) > 100
        stream = connector.telemetry(tuid, since=since)
        first = await _take(stream, len(truth))
        assert [s.timestamp for s in first] == sorted(s.timestamp for s in truth)
        assert [s.metrics for s in first] == [s.metrics for s in reversed(truth)]
        advance(sim_clean, 60)
        later = await connector.messages(tuid, since=first[-1].timestamp + timedelta(seconds=1), limit=1000)
        assert later
        more = await _take(stream, len(later))
        assert [s.timestamp for s in more] == sorted(s.timestamp for s in later)
        await stream.aclose()  # type: ignore[attr-defined]
    assert len({(s.timestamp, repr(s.metrics)) for s in first + more}) == len(first) + len(more)
    assert all(s.device == tuid and s.backend == "things" for s in first + more)
    polls = [r for r in traffic.requests if r.endswith("/messages")]
    assert any("messages" in r for r in polls)


async def test_telemetry_without_since_starts_with_the_latest_messages(
    sim_clean: Any, make: Callable[..., ThingsConnector]
) -> None:
    tuid = pick(sim_clean, online=True)
    async with make() as connector:
        stream = connector.telemetry(tuid)
        samples = await _take(stream, 5)
        await stream.aclose()  # type: ignore[attr-defined]
    assert [s.timestamp for s in samples] == sorted(s.timestamp for s in samples)


async def test_telemetry_breaks_with_a_backend_error_when_the_cloud_fails(
    sim_clean: Any, make: Callable[..., ThingsConnector]
) -> None:
    tuid = pick(sim_clean, online=True)
    async with make() as connector:
        stream = connector.telemetry(tuid)
        await _take(stream, 1)
        sim_clean.admin("PUT", "/_sim/faults/things", json={"error_rate": 1.0})
        with pytest.raises(ServerError):
            async with asyncio.timeout(10):
                async for _ in stream:
                    pass


# -- commands --------------------------------------------------------------------------------


async def test_an_allowed_command_is_sent_as_an_array_and_listed(
    sim_clean: Any, make: Callable[..., ThingsConnector]
) -> None:
    tuid = pick(sim_clean, online=True)
    async with make() as connector:
        command = await connector.send_command(tuid, "1500", {"tsmEv": 1, "profileId": 2})
        listed = await connector.list_commands(tuid)
    assert (command.name, command.device, command.state) == ("1500", tuid, TaskState.DONE)
    assert command.message == f"sent by {sim_clean.credentials.things_client_id}"
    assert command.parameters == {"tsmEv": 1, "profileId": 2}
    assert command.id in [c.id for c in listed]
    assert all(c.name in {"1500", "1501", "12200", "13200"} for c in listed)
    sent = mutations(sim_clean)
    # The target named as Haltian's command spec asks (tsmDstTuid), beside the document's fields.
    assert [m["body"] for m in sent] == [[{"tsmId": 1500, "tsmEv": 1, "profileId": 2, "tsmDstTuid": tuid}]]


async def test_a_forbidden_command_never_reaches_the_cloud(
    sim_clean: Any, make: Callable[..., ThingsConnector]
) -> None:
    async with make() as connector:
        with pytest.raises(Rejected, match="allowed message ids are 1500, 1501, 12200, 13200"):
            await connector.send_command(pick(sim_clean), "17110", {"tsmEv": 30})
    assert mutations(sim_clean) == []


# -- installation status ---------------------------------------------------------------------


async def test_setting_installation_status_shows_first_in_the_history(
    sim_clean: Any, make: Callable[..., ThingsConnector]
) -> None:
    tuid = pick(sim_clean, installation_status="installed")
    async with make() as connector:
        before = await connector.installation_history(tuid)
        await connector.set_installation_status(tuid, InstallationStatus.QUARANTINE)
        after = await connector.installation_history(tuid)
        device = await connector.get_device(tuid)
        latest_only = await connector.installation_history(tuid, limit=1)
    assert before[0].status is InstallationStatus.INSTALLED
    assert after[0].status is InstallationStatus.QUARANTINE
    assert after[0].responsible == sim_clean.credentials.things_client_id
    assert [r.timestamp for r in after] == sorted((r.timestamp for r in after), reverse=True)
    assert len(after) == len(before) + 1
    assert device.installation_status is InstallationStatus.QUARANTINE
    assert [r.status for r in latest_only] == [InstallationStatus.QUARANTINE]
    assert [m["body"] for m in mutations(sim_clean)] == [{"installation_status": "quarantine"}]


# -- deployment groups -----------------------------------------------------------------------


async def test_groups_listed_searched_and_their_members(
    sim_clean: Any, make: Callable[..., ThingsConnector]
) -> None:
    async with make() as connector:
        groups = await connector.list_groups()
        assert {g.id for g in groups} == set(sim_clean.fleet.groups)
        first = groups[0]
        members = await connector.group_members(first.id)
        assert first.member_count == len(members)
        assert all(await asyncio.gather(*(connector.get_group(m) for m in members[:5])))
        term = first.id.split("-")[0]
        found = await connector.list_groups(term)
        assert found and all(term in g.id or term in (g.description or "").lower() for g in found)


async def test_create_move_rename_and_delete_a_group(
    sim_clean: Any, make: Callable[..., ThingsConnector]
) -> None:
    tuid = pick(sim_clean)
    async with make() as connector:
        created = await connector.create_group("roof-7", "Roof, building 7")
        assert (created.id, created.description, created.member_count) == ("roof-7", "Roof, building 7", 0)
        await connector.move_to_group(tuid, "roof-7")
        assert await connector.get_group(tuid) == "roof-7"
        renamed = await connector.rename_group("roof-7", "roof-8")
        assert renamed.id == "roof-8"
        assert await connector.group_members("roof-8") == [tuid]
        assert (await connector.get_device(tuid)).group == "roof-8"
        await connector.delete_group("roof-8")
        assert await connector.get_group(tuid) == "unassigned"
        assert "roof-8" not in {g.id for g in await connector.list_groups()}


async def test_the_servers_refusals_keep_its_words(
    sim_clean: Any, make: Callable[..., ThingsConnector]
) -> None:
    existing = next(iter(sim_clean.fleet.groups))
    async with make() as connector:
        with pytest.raises(Rejected, match=f"Group '{existing}' already exists") as caught:
            await connector.create_group(existing)
        assert caught.value.status_code == 409
        with pytest.raises(NotFound, match="Group 'nowhere' not found"):
            await connector.move_to_group(pick(sim_clean), "nowhere")
        with pytest.raises(NotFound, match="Group 'nowhere' not found"):
            await connector.delete_group("nowhere")


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"unreachable": True}, ConnectionError_),
        ({"error_rate": 1.0}, ServerError),
        ({"malformed": True}, InvalidResponse),
        ({"latency": 6.0}, TimeoutError_),
    ],
    ids=["unreachable", "error_rate", "malformed", "latency"],
)
async def test_each_fault_becomes_its_core_error(
    sim_clean: Any, make: Callable[..., ThingsConnector], fault: dict[str, Any], error: type[Exception]
) -> None:
    tuid = pick(sim_clean)
    # A timeout a slow, loaded machine still meets for the token; the latency is well past it.
    async with make(timeout=2.0) as connector:
        await connector.get_group(tuid)  # a token in hand: the fault hits the call itself
        assert sim_clean.admin("PUT", "/_sim/faults/things", json=fault).status_code == 200
        with pytest.raises(error) as caught:
            await connector.get_device(tuid)
    assert caught.value.backend == "things"  # type: ignore[attr-defined]
    assert getattr(caught.value, "transient", False) is (error is not InvalidResponse)


async def test_an_injected_client_stays_open_after_close(sim: Any) -> None:
    config = ThingsBackend(kind="things", url=sim.urls["things"], client_id=sim.credentials.things_client_id)
    async with httpx.AsyncClient() as client:
        connector = ThingsConnector("things", config, sim.credentials.things_client_secret, client=client)
        await connector.aclose()
        assert not client.is_closed
    async with ThingsConnector("things", config, sim.credentials.things_client_secret) as owned:
        await owned.probe()
