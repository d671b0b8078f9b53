"""The simulator's admin routes and injected faults, each observed by a plain HTTP client."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from fieldtui.sim.faults import parse_fault_spec
from fieldtui.sim.fleet import BACKEND_NAMES, generate_fleet
from fieldtui.sim.server import PREFIXES


def sensor_get(sim: Any) -> tuple[str, dict[str, str]]:
    serial = next(iter(sim.fleet.of("mysensor")))
    return f"{sim.urls['mysensor']}/sensors/{serial}", {
        "Authorization": f"Bearer {sim.credentials.mysensor_token}"
    }


def set_fault(sim: Any, backend: str, **faults: Any) -> None:
    response = sim.admin("PUT", f"/_sim/faults/{backend}", json=faults)
    assert response.status_code == 200, response.text


def test_fleet_lists_every_device_with_id_kind_backend(sim: Any) -> None:
    rows = sim.admin("GET", "/_sim/fleet").json()
    assert len(rows) == len(sim.fleet.devices)
    assert all({"id", "kind", "backend"} <= set(row) for row in rows)
    assert {row["kind"] for row in rows} == set(BACKEND_NAMES)
    assert all(row["backend"] == BACKEND_NAMES[row["kind"]] for row in rows)
    sensors = sim.admin("GET", "/_sim/fleet?kind=mysensor").json()
    assert sensors and {row["kind"] for row in sensors} == {"mysensor"}
    assert sim.admin("GET", "/_sim/fleet?backend=gateways").json() == [
        row for row in rows if row["backend"] == "gateways"
    ]


def test_same_seed_same_fleet(sim: Any) -> None:
    served = sim.admin("GET", "/_sim/fleet").json()
    again = generate_fleet(sim.fleet.seed, sim.fleet.size)
    assert served == [device.summary() for device in again.devices]
    other = generate_fleet(sim.fleet.seed + 1, sim.fleet.size)
    assert [d.id for d in other.devices] != [row["id"] for row in served]


def test_every_mounted_cloud_sits_at_its_prefix(sim: Any) -> None:
    server = sim.simulator.server
    assert {"mysensor", "fleet"} <= set(server.clouds)
    for kind, cloud in server.clouds.items():
        assert cloud.prefix == PREFIXES[kind]
        assert sim.urls[kind].endswith(PREFIXES[kind])
    assert sim.admin("GET", "/_sim/info").json()["clouds"] == sorted(server.clouds)


def test_unreachable_drops_the_connection_without_a_response(sim: Any, sim_clean: Any) -> None:
    url, headers = sensor_get(sim)
    set_fault(sim, "sensors", unreachable=True)
    for _ in range(3):  # fresh and pooled connections alike
        with pytest.raises(httpx.TransportError):
            httpx.get(url, headers=headers, timeout=5)
    # Only that backend: the fleet API and the admin routes still answer.
    fleet = httpx.get(
        f"{sim.urls['fleet']}/devices", headers={"Authorization": f"Bearer {sim.credentials.fleet_token}"}
    )
    assert fleet.status_code == 200
    assert sim.admin("GET", "/_sim/faults").json()["sensors"]["unreachable"] is True
    set_fault(sim, "mysensor", unreachable=False)
    assert httpx.get(url, headers=headers, timeout=5).status_code == 200


def test_error_rate_one_answers_503(sim: Any, sim_clean: Any) -> None:
    url, headers = sensor_get(sim)
    set_fault(sim, "sensors", error_rate=1)
    response = httpx.get(url, headers=headers)
    assert response.status_code == 503
    assert "Service Unavailable" in response.text


def test_error_rate_and_drop_rate_are_fractions_of_requests(sim: Any, sim_clean: Any) -> None:
    url, headers = sensor_get(sim)
    set_fault(sim, "sensors", error_rate=0.5)
    statuses = [httpx.get(url, headers=headers).status_code for _ in range(60)]
    assert 10 < statuses.count(503) < 50 and statuses.count(200) == 60 - statuses.count(503)
    set_fault(sim, "sensors", error_rate=0, drop_rate=0.5)
    dropped = 0
    with httpx.Client(headers=headers, timeout=5) as client:
        for _ in range(40):
            try:
                client.get(url)
            except httpx.TransportError:
                dropped += 1
    assert 5 < dropped < 35


def test_malformed_bodies_are_not_json_but_errors_stay_intact(sim: Any, sim_clean: Any) -> None:
    url, headers = sensor_get(sim)
    set_fault(sim, "sensors", malformed=True)
    response = httpx.get(url, headers=headers)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert int(response.headers["content-length"]) == len(response.content)
    refused = httpx.get(url)  # a 401 body is left alone: only successes are broken
    assert refused.status_code == 401 and refused.json() == {"message": "Unauthenticated."}


def test_latency_delays_every_answer(sim: Any, sim_clean: Any) -> None:
    url, headers = sensor_get(sim)
    set_fault(sim, "sensors", latency=0.3)
    began = time.perf_counter()
    assert httpx.get(url, headers=headers).status_code == 200
    assert time.perf_counter() - began >= 0.3


def test_bad_fault_requests_are_400(sim: Any, sim_clean: Any) -> None:
    assert sim.admin("PUT", "/_sim/faults/nowhere", json={"latency": 1}).status_code == 400
    assert sim.admin("PUT", "/_sim/faults/sensors", json={"colour": 1}).status_code == 400
    assert sim.admin("PUT", "/_sim/faults/sensors", json={"error_rate": 2}).status_code == 400
    assert sim.admin("PUT", "/_sim/faults/sensors", json=[1]).status_code == 400


def test_delete_faults_clears_them_all(sim: Any, sim_clean: Any) -> None:
    set_fault(sim, "fleet", latency=1)
    set_fault(sim, "sensors", unreachable=True)
    cleared = sim.admin("DELETE", "/_sim/faults").json()
    assert all(not any(values.values()) for values in cleared.values())
    assert set(cleared) == set(BACKEND_NAMES.values())


def test_mutation_log_records_accepted_changes_only(sim: Any, sim_clean: Any) -> None:
    serial = next(iter(sim.fleet.of("mysensor")))
    headers = {"Authorization": f"Bearer {sim.credentials.mysensor_token}"}
    body = {"sensor_serial": int(serial), "file_id": 3, "type": "update_firmware"}
    assert httpx.put(f"{sim.urls['mysensor']}/tasks", json=body, headers=headers).status_code == 201
    assert httpx.put(f"{sim.urls['mysensor']}/tasks", json={}, headers=headers).status_code == 422
    assert httpx.put(f"{sim.urls['mysensor']}/tasks", json=body).status_code == 401
    httpx.get(f"{sim.urls['mysensor']}/sensors/{serial}", headers=headers)
    log = sim.admin("GET", "/_sim/mutations").json()
    assert len(log) == 1
    entry = log[0]
    assert (entry["backend"], entry["method"], entry["path"], entry["status"]) == (
        "sensors",
        "PUT",
        "/mysensor/api/tasks",
        201,
    )
    assert entry["body"] == body and entry["time"] > 0
    assert sim.admin("GET", "/_sim/mutations?backend=fleet").json() == []
    assert sim.admin("GET", "/_sim/mutations?backend=mysensor").json() == log


def test_reset_rebuilds_clouds_and_clears_everything(sim: Any, sim_clean: Any) -> None:
    url, headers = sensor_get(sim)
    fleet_headers = {"Authorization": f"Bearer {sim.credentials.fleet_token}"}
    serial = next(iter(sim.fleet.of("fleet")))
    assert httpx.delete(f"{sim.urls['fleet']}/devices/{serial}", headers=fleet_headers).status_code == 204
    set_fault(sim, "sensors", error_rate=1)
    sim.admin("POST", "/_sim/clock", json={"advance": 100})
    sim.reset()
    assert httpx.get(f"{sim.urls['fleet']}/devices/{serial}", headers=fleet_headers).status_code == 200
    assert httpx.get(url, headers=headers).status_code == 200
    assert sim.admin("GET", "/_sim/mutations").json() == []
    assert sim.admin("GET", "/_sim/clock").json()["offset"] == 0


def test_expire_credentials_for_all_or_one_backend(sim: Any, sim_clean: Any) -> None:
    everything = sim.admin("POST", "/_sim/expire-credentials").json()["expired"]
    assert {"sensors", "fleet"} <= set(everything)
    assert sim.admin("POST", "/_sim/expire-credentials?backend=nowhere").status_code == 400


def test_inspect_routes(sim: Any) -> None:
    serial = next(iter(sim.fleet.of("fleet")))
    assert sim.admin("GET", f"/_sim/inspect/fleet/{serial}").json()["device"]["device_serial"] == serial
    assert sim.admin("GET", "/_sim/inspect/fleet/NOPE").status_code == 404
    assert sim.admin("GET", "/_sim/inspect/nowhere/x").status_code == 400


def test_clock_moves_forward_only(sim: Any, sim_clean: Any) -> None:
    before = sim.admin("GET", "/_sim/clock").json()["now"]
    after = sim.admin("POST", "/_sim/clock", json={"advance": 3600}).json()["now"]
    assert after - before >= 3600
    assert sim.admin("POST", "/_sim/clock", json={"advance": -1}).status_code == 400


def test_broker_routes(sim: Any, sim_clean: Any) -> None:
    if sim.mqtt_port is None:
        assert sim.admin("POST", "/_sim/broker/restart").status_code == 503
        return
    assert sim.admin("POST", "/_sim/broker/stop").json()["broker"] == "stopped"
    started = sim.admin("POST", "/_sim/broker/start").json()
    assert started == {"broker": "running", "protocol": sim.mqtt_protocol}
    assert sim.admin("POST", "/_sim/broker/restart").json()["protocol"] == sim.mqtt_protocol
    assert sim.admin("POST", "/_sim/broker/explode").status_code == 404


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("things:unreachable", ("things", "unreachable", True)),
        ("devicehq:latency=0.5", ("gateways", "latency", 0.5)),
        ("sensors:error_rate=0.2", ("sensors", "error_rate", 0.2)),
        ("fleet:drop_rate=0.1", ("fleet", "drop_rate", 0.1)),
        ("gateways:malformed", ("gateways", "malformed", True)),
    ],
)
def test_fault_specs_parse(spec: str, expected: tuple[str, str, Any]) -> None:
    assert parse_fault_spec(spec) == expected


@pytest.mark.parametrize(
    "spec", ["things", "things:", "mars:unreachable", "things:colour", "things:latency", "x:error_rate=2"]
)
def test_bad_fault_specs_say_what_is_wrong(spec: str) -> None:
    with pytest.raises(ValueError, match="bad fault"):
        parse_fault_spec(spec)
