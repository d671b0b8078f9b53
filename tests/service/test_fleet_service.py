"""FleetService against the simulated clouds over real loopback HTTP (and the real broker)."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fieldtui.config import LoadedConfig, load_config
from fieldtui.core.errors import DeviceNotFound, NoBackendReachable
from fieldtui.core.models import StreamEvent, StreamEventKind, TelemetrySample
from fieldtui.secrets import env_var_name
from fieldtui.service.connectivity import BackendState
from fieldtui.service.factory import build_fleet_service
from fieldtui.service.fleet import BackendFinished, FindMatch
from fieldtui.service.store import OutboxStore


@pytest.fixture
def loaded(sim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LoadedConfig:
    path, _ = sim.write_config(tmp_path / "config.toml")
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    return load_config(str(path), "sim")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[OutboxStore]:
    async with await OutboxStore.open(tmp_path / "outbox.sqlite3") as opened:
        yield opened


def gateway_also_in_things(sim: Any) -> str:
    """A DeviceHQ gateway that things knows under the same id."""
    for device_id, device in sim.fleet.of("devicehq").items():
        if any(kind == "things" for kind, _ in device.also_in):
            return str(device_id)
    raise AssertionError("the simulated fleet has no gateway in two clouds")


def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unreachable_everywhere(sim: Any, loaded: LoadedConfig) -> LoadedConfig:
    """Every cloud unreachable: HTTP clouds by fault, the MQTT backend pointed at a closed port
    (stopping the shared broker would disturb every other test's telemetry)."""
    for backend in ("sensors", "things", "gateways", "fleet"):
        set_fault(sim, backend, unreachable=True)
    text = loaded.path.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^port = \d+$", f"port = {dead_port()}", text)
    path = loaded.path.with_name("unreachable.toml")
    path.write_text(text, encoding="utf-8")
    return load_config(str(path), loaded.profile_name)


def set_fault(sim: Any, backend: str, **fault: Any) -> None:
    response = sim.admin("PUT", f"/_sim/faults/{backend}", json=fault)
    assert response.status_code == 200, response.text


async def test_find_streams_results_while_a_slow_cloud_is_still_answering(
    sim_clean: Any, loaded: LoadedConfig
) -> None:
    device_id = gateway_also_in_things(sim_clean)
    set_fault(sim_clean, "things", latency=2.0)
    async with build_fleet_service(loaded) as service:
        started = time.monotonic()
        events: list[tuple[float, FindMatch | BackendFinished]] = []
        async for event in service.find(device_id):
            events.append((time.monotonic() - started, event))
    matches = [(t, e) for t, e in events if isinstance(e, FindMatch)]
    finished = {e.backend: t for t, e in events if isinstance(e, BackendFinished)}
    assert set(finished) == set(loaded.backends)
    # the gateway row appears as soon as DeviceHQ answers, long before things does
    first_time, first = matches[0]
    assert first.new and [s.backend for s in first.view.sources] == ["gateways"]
    assert first_time < 1.5 < finished["things"]
    assert all(t < 1.5 for name, t in finished.items() if name != "things")
    # then the same row is updated, now listing both clouds: one entry, two sources
    last_time, last = matches[-1]
    assert not last.new and last.key == first.key == device_id
    assert {s.backend for s in last.view.sources} == {"gateways", "things"}
    assert len({e.key for _, e in matches}) == 1
    assert last_time >= 2.0


async def test_find_bounds_each_cloud_by_its_timeout_and_reports_the_failure(
    sim_clean: Any, loaded: LoadedConfig
) -> None:
    device_id = gateway_also_in_things(sim_clean)
    set_fault(sim_clean, "things", latency=8.0)
    # Long enough for the clouds that do answer on a loaded 2-core machine (a second was not
    # always), far below the slow cloud's latency.
    service = build_fleet_service(loaded, per_backend_timeout=2.0)
    async with service:
        started = time.monotonic()
        events = [event async for event in service.find(device_id)]
        elapsed = time.monotonic() - started
    assert elapsed < 5.0
    things = next(e for e in events if isinstance(e, BackendFinished) and e.backend == "things")
    assert things.error is not None and "no answer within 2 s" in things.error
    assert service.connectivity.status("things").state is BackendState.OFFLINE
    assert any(isinstance(e, FindMatch) for e in events)


async def test_find_streams_a_scanning_clouds_pages_and_says_when_it_stopped_short(
    sim: Any, loaded: LoadedConfig
) -> None:
    async with build_fleet_service(loaded) as service:
        events = [event async for event in service.find("employee_")]
        service.search_budget = 0.0
        cut = [event async for event in service.find("employee_")]
    fleet = next(e for e in events if isinstance(e, BackendFinished) and e.backend == "fleet")
    rows = [e for e in events if isinstance(e, FindMatch)]
    assert (fleet.error, fleet.partial) == (None, None)
    assert fleet.count == len(rows) == len(sim.fleet.of("fleet"))  # every owner is employee_...
    assert events.index(fleet) > max(events.index(row) for row in rows)
    short = next(e for e in cut if isinstance(e, BackendFinished) and e.backend == "fleet")
    assert short.error is None and short.partial is not None and "budget" in short.partial
    assert short.count == 0 and not any(isinstance(e, FindMatch) for e in cut)


async def test_an_exact_fleet_serial_is_found_without_a_scan(sim: Any, loaded: LoadedConfig) -> None:
    serial = next(iter(sim.fleet.of("fleet")))
    async with build_fleet_service(loaded) as service:
        service.search_budget = 0.0  # a scan would find nothing: the exact lookup must
        events = [event async for event in service.find(serial)]
    fleet = next(e for e in events if isinstance(e, BackendFinished) and e.backend == "fleet")
    assert (fleet.count, fleet.error, fleet.partial) == (1, None, None)
    assert [e.key for e in events if isinstance(e, FindMatch)] == [serial]


async def test_device_merges_the_same_id_from_two_clouds(sim: Any, loaded: LoadedConfig) -> None:
    device_id = gateway_also_in_things(sim)
    async with build_fleet_service(loaded) as service:
        view = await service.device(device_id)
    assert view.device.id == device_id
    assert {(s.backend, s.kind.value, s.stale) for s in view.sources} == {
        ("gateways", "devicehq", False),
        ("things", "things", False),
    }
    gateway = sim.fleet.of("devicehq")[device_id]
    assert view.device.model == gateway.model
    assert view.device.installation_status is not None  # only things knows it


async def test_unknown_device_is_not_found(sim: Any, loaded: LoadedConfig) -> None:
    async with build_fleet_service(loaded) as service:
        with pytest.raises(DeviceNotFound):
            await service.device("NOPE00000000")


@pytest.mark.parametrize(
    ("fault", "state"),
    [
        ({"unreachable": True}, BackendState.OFFLINE),
        ({"error_rate": 1.0}, BackendState.DEGRADED),
    ],
)
async def test_faults_set_connectivity_and_probing_brings_it_back(
    sim_clean: Any, loaded: LoadedConfig, fault: dict[str, Any], state: BackendState
) -> None:
    fleet_id = next(iter(sim_clean.fleet.of("fleet")))
    set_fault(sim_clean, "fleet", **fault)
    async with build_fleet_service(loaded) as service:
        with pytest.raises(DeviceNotFound, match="not checked: fleet"):
            await service.device(fleet_id)
        status = service.connectivity.status("fleet")
        assert status.state is state
        assert status.last_error
        changes = service.connectivity.subscribe()
        service.connectivity._probe_interval = 0.1
        service.start()
        assert sim_clean.admin("DELETE", "/_sim/faults").status_code == 200
        async with asyncio.timeout(10):
            change = await anext(changes)
            while change.backend != "fleet":
                change = await anext(changes)
        assert change.new is BackendState.ONLINE
        await asyncio.wait_for(service.connectivity.wait_online("fleet"), 1)
        assert service.connectivity.status("fleet").last_error is None
        await changes.aclose()


async def test_refused_credentials_are_auth_error(
    sim: Any, loaded: LoadedConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env_var_name("sim", "fleet"), "not-the-token")
    fleet_id = next(iter(sim.fleet.of("fleet")))
    async with build_fleet_service(loaded) as service:
        with pytest.raises(DeviceNotFound, match="not checked: fleet"):
            await service.device(fleet_id)
        status = service.connectivity.status("fleet")
    assert status.state is BackendState.AUTH_ERROR
    assert "credentials" in (status.last_error or "")


async def test_unreachable_cloud_is_served_from_the_cache_marked_stale(
    sim_clean: Any, loaded: LoadedConfig, store: OutboxStore
) -> None:
    device_id = gateway_also_in_things(sim_clean)
    async with build_fleet_service(loaded, cache=store) as service:
        fresh = await service.device(device_id)
    assert not fresh.stale
    set_fault(sim_clean, "things", unreachable=True)
    async with build_fleet_service(loaded, cache=store) as service:
        view = await service.device(device_id)
    sources = {s.backend: s for s in view.sources}
    assert not sources["gateways"].stale
    assert sources["things"].stale and sources["things"].fetched_at <= sources["gateways"].fetched_at
    assert "things" in view.errors
    # with every cloud away, the whole answer comes from the cache
    nothing_reachable = unreachable_everywhere(sim_clean, loaded)
    async with build_fleet_service(nothing_reachable, cache=store) as service:
        cached = await service.device(device_id)
        assert cached.stale and {s.backend for s in cached.sources} == {"gateways", "things"}
        with pytest.raises(NoBackendReachable):
            await service.device("NEVERSEEN0001")


async def test_offline_mode_reads_only_the_cache(sim: Any, loaded: LoadedConfig, store: OutboxStore) -> None:
    device_id = gateway_also_in_things(sim)
    async with build_fleet_service(loaded, cache=store) as service:
        await service.device(device_id)
    async with build_fleet_service(loaded, cache=store, offline=True) as service:
        view = await service.device(device_id)
        assert view.stale
        with pytest.raises(NoBackendReachable):
            await service.device("NEVERSEEN0001")
        assert all(s.state is BackendState.UNKNOWN for s in service.connectivity.snapshot().values())


async def test_a_device_cached_from_one_cloud_is_still_asked_of_every_cloud(
    sim_clean: Any, loaded: LoadedConfig, store: OutboxStore
) -> None:
    """A partial search that cached only the DeviceHQ copy must not hide the things copy later."""
    device_id = gateway_also_in_things(sim_clean)
    async with build_fleet_service(loaded, cache=store) as service:
        view = await service.device(device_id)
    await store.store_devices([view.copies["gateways"]], view.sources[0].fetched_at)
    only_gateways = await store.cached_device(device_id)
    assert {c.backend for c in only_gateways} >= {"gateways"}
    async with build_fleet_service(loaded, cache=store) as service:
        views = [v async for v in service.device_updates(device_id)]
    assert {s.backend for s in views[-1].sources} == {"gateways", "things"}
    assert all(not s.stale for s in views[-1].sources)


async def test_a_twins_headline_values_follow_the_rule_not_the_answer_order(
    sim_clean: Any, loaded: LoadedConfig
) -> None:
    """Ten lookups of a gateway both clouds know, the things cloud slower on every other one:
    the same headline each time, and each cloud's value listed where they differ."""
    device_id = gateway_also_in_things(sim_clean)
    headlines = set()
    for attempt in range(10):
        set_fault(sim_clean, "things" if attempt % 2 else "gateways", latency=0.3)
        async with build_fleet_service(loaded) as service:
            view = await service.device(device_id)
        set_fault(sim_clean, "things" if attempt % 2 else "gateways", latency=0.0)
        device = view.device
        headlines.add((device.firmware, device.group, device.name, device.backend))
        for field, values in view.disagreements().items():
            assert set(values) == {"gateways", "things"}, field
    assert len(headlines) == 1


async def test_telemetry_from_a_polled_cloud(sim: Any, loaded: LoadedConfig) -> None:
    thing_id = next(iter(sim.fleet.of("things")))
    async with build_fleet_service(loaded) as service:
        samples: list[TelemetrySample] = []
        async with asyncio.timeout(30):
            async for item in service.telemetry(thing_id):
                if isinstance(item, TelemetrySample):
                    samples.append(item)
                    break
    assert samples[0].device == thing_id and samples[0].backend == "things"


async def test_broker_restart_during_telemetry_reconnects_and_samples_resume(
    sim_clean: Any, loaded: LoadedConfig
) -> None:
    if sim_clean.mqtt_port is None:
        pytest.fail("the simulator has no MQTT broker")
    mqtt_id = next(iter(sim_clean.fleet.of("mqtt")))
    events: list[StreamEvent] = []
    after_restart: list[TelemetrySample] = []
    async with build_fleet_service(loaded) as service:
        service.telemetry_backoff = type(service.telemetry_backoff)(initial=0.2, maximum=1.0)
        restarted = False
        async with asyncio.timeout(60):
            async for item in service.telemetry(mqtt_id):
                if isinstance(item, StreamEvent):
                    events.append(item)
                    continue
                assert item.device == mqtt_id
                if not restarted:
                    response = await asyncio.to_thread(sim_clean.admin, "POST", "/_sim/broker/restart")
                    assert response.status_code == 200, response.text
                    restarted = True
                elif any(e.kind is StreamEventKind.RECONNECTING for e in events):
                    after_restart.append(item)
                    break
    kinds = [e.kind for e in events]
    assert StreamEventKind.RECONNECTING in kinds
    assert kinds.index(StreamEventKind.CONNECTED, kinds.index(StreamEventKind.RECONNECTING)) > 0
    assert after_restart
