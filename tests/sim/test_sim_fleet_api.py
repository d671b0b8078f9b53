"""Contract of the simulated fleet device API (vendor document 004), over loopback HTTP."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$")
DEVICE_KEYS = {
    "id",
    "created_date",
    "updated_date",
    "device_serial",
    "owner_ref",
    "hardware_version",
    "last_seen",
    "last_seen_release",
    "cohort",
}


@pytest.fixture
def client(sim: Any) -> httpx.Client:
    headers = {"Authorization": f"Bearer {sim.credentials.fleet_token}"}
    with httpx.Client(base_url=sim.urls["fleet"], headers=headers, timeout=10) as client:
        yield client


def all_devices(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        body = client.get("/devices", params={**params, "page": page, "per_page": 100}).json()
        rows += body["data"]
        if page >= body["paging"]["total_pages"]:
            return rows
        page += 1


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def test_device_has_the_documented_shape(sim: Any, client: httpx.Client) -> None:
    serial = next(iter(sim.fleet.of("fleet")))
    response = client.get(f"/devices/{serial}")
    assert response.status_code == 200
    device = response.json()["data"]
    assert set(device) == DEVICE_KEYS
    assert device["device_serial"] == serial and isinstance(device["id"], int)
    for key in ("created_date", "updated_date", "last_seen"):
        assert STAMP.match(device[key]), device[key]
    assert set(device["last_seen_release"]) == {"id", "version", "revision"}
    assert len(device["last_seen_release"]["revision"]) == 40
    assert set(device["cohort"]) == {"id", "name", "slug"}
    assert device["cohort"]["slug"] == sim.fleet.of("fleet")[serial].group


def test_unknown_device_is_404_with_an_error_object(client: httpx.Client) -> None:
    response = client.get("/devices/NOPE0000")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == 404 and "NOPE0000" in response.json()["error"]["message"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}], ids=["missing", "wrong"])
def test_without_the_token_every_route_is_401(sim: Any, headers: dict[str, str]) -> None:
    serial = next(iter(sim.fleet.of("fleet")))
    with httpx.Client(base_url=sim.urls["fleet"], headers=headers, timeout=10) as anonymous:
        for method, path in (
            ("GET", "/devices"),
            ("POST", "/devices"),
            ("GET", f"/devices/{serial}"),
            ("PATCH", f"/devices/{serial}"),
            ("DELETE", f"/devices/{serial}"),
            ("GET", f"/devices/{serial}/attributes"),
            ("PATCH", f"/devices/{serial}/attributes"),
        ):
            response = anonymous.request(method, path, json={})
            assert response.status_code == 401, (method, path)
            assert response.json()["error"]["code"] == 401


def test_list_pages_cover_every_device_once(sim: Any, client: httpx.Client) -> None:
    first = client.get("/devices").json()
    total = len(sim.fleet.of("fleet"))
    assert first["paging"] == {"page": 1, "per_page": 20, "total": total, "total_pages": -(-total // 20)}
    assert len(first["data"]) == 20
    rows = all_devices(client)
    assert sorted(r["device_serial"] for r in rows) == sorted(sim.fleet.of("fleet"))
    last_page = first["paging"]["total_pages"]
    last = client.get("/devices", params={"page": last_page}).json()
    assert len(last["data"]) == total - (last_page - 1) * 20
    assert client.get("/devices", params={"page": last_page + 1}).json()["data"] == []


@pytest.mark.parametrize("params", [{"page": 0}, {"per_page": 0}, {"per_page": 101}, {"page": "x"}])
def test_bad_paging_is_400(client: httpx.Client, params: dict[str, Any]) -> None:
    response = client.get("/devices", params=params)
    assert response.status_code == 400 and response.json()["error"]["code"] == 400


def test_repeated_keys_or_within_and_across(client: httpx.Client) -> None:
    everything = all_devices(client)
    releases = sorted({d["last_seen_release"]["version"] for d in everything})[:2]
    hardware = everything[0]["hardware_version"]
    either = all_devices(client, release=releases)
    assert {d["last_seen_release"]["version"] for d in either} == set(releases)
    assert len(either) == sum(d["last_seen_release"]["version"] in releases for d in everything)
    both = all_devices(client, release=releases, hardware_version=hardware)
    expected = [
        d
        for d in everything
        if d["last_seen_release"]["version"] in releases and d["hardware_version"] == hardware
    ]
    assert sorted(d["device_serial"] for d in both) == sorted(d["device_serial"] for d in expected)
    owners = [everything[0]["owner_ref"], everything[1]["owner_ref"]]
    by_owner = all_devices(client, owner_ref=owners)
    assert {d["owner_ref"] for d in by_owner} == set(owners)


def test_sort_by_last_seen_both_ways_and_other_keys(client: httpx.Client) -> None:
    ascending = [parse(d["last_seen"]) for d in all_devices(client, sort="last_seen")]
    assert ascending == sorted(ascending)
    descending = [parse(d["last_seen"]) for d in all_devices(client, sort="-last_seen")]
    assert descending == sorted(descending, reverse=True)
    serials = [d["device_serial"] for d in all_devices(client, sort="device_serial")]
    assert serials == sorted(serials)
    created = [parse(d["created_date"]) for d in all_devices(client, sort="-created_date")]
    assert created == sorted(created, reverse=True)
    bad = client.get("/devices", params={"sort": "colour"})
    assert bad.status_code == 400 and "last_seen" in bad.json()["error"]["message"]


def test_last_seen_window(client: httpx.Client) -> None:
    everything = all_devices(client)
    middle = sorted(parse(d["last_seen"]) for d in everything)[len(everything) // 2]
    stamp = middle.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    since = all_devices(client, last_seen_since=stamp)
    until = all_devices(client, last_seen_until=stamp)
    assert since and until
    assert all(parse(d["last_seen"]) > middle - timedelta(seconds=1) for d in since)
    assert all(parse(d["last_seen"]) < middle for d in until)
    assert len(since) + len(until) >= len(everything) - 2
    assert client.get("/devices", params={"last_seen_since": "yesterday"}).status_code == 400


def test_create_get_patch_delete(sim: Any, sim_clean: Any, client: httpx.Client) -> None:
    body = {"device_serial": "ABCD1234", "owner_ref": "awesome_employee_1234", "hardware_version": "hwrev1"}
    created = client.post("/devices", json=body)
    assert created.status_code == 201
    device = created.json()["data"]
    assert set(device) == DEVICE_KEYS
    assert {k: device[k] for k in body} == body
    assert device["last_seen"] is None and device["last_seen_release"] is None and device["cohort"] is None
    assert client.post("/devices", json=body).status_code == 409
    assert client.get("/devices/ABCD1234").json()["data"] == device

    patched = client.patch("/devices/ABCD1234", json={"owner_ref": "someone_else", "cohort": "beta"})
    assert patched.status_code == 200
    data = patched.json()["data"]
    assert data["owner_ref"] == "someone_else" and data["cohort"]["slug"] == "beta"
    assert parse(data["updated_date"]) >= parse(device["updated_date"])
    assert client.patch("/devices/ABCD1234", json={"cohort": "nightly"}).status_code == 422
    assert client.patch("/devices/ABCD1234", json={"device_serial": "OTHER"}).status_code == 422
    assert client.patch("/devices/NOPE", json={"owner_ref": "x"}).status_code == 404

    deleted = client.delete("/devices/ABCD1234")
    assert deleted.status_code == 204
    assert client.get("/devices/ABCD1234").status_code == 404
    log = sim.admin("GET", "/_sim/mutations?backend=fleet").json()
    assert [(m["method"], m["status"]) for m in log] == [("POST", 201), ("PATCH", 200), ("DELETE", 204)]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"owner_ref": "a", "hardware_version": "b"}, "device_serial is required"),
        ({"device_serial": "X1", "owner_ref": "", "hardware_version": "b"}, "owner_ref is required"),
        (
            {"device_serial": "X1", "owner_ref": "a", "hardware_version": "b", "colour": "red"},
            "unknown field",
        ),
        ([1, 2], "JSON object"),
    ],
)
def test_create_refuses_bad_bodies_with_a_clear_error(client: httpx.Client, body: Any, words: str) -> None:
    response = client.post("/devices", json=body)
    assert response.status_code == 422
    assert words in response.json()["error"]["message"]


def test_attributes_read_and_update(sim: Any, sim_clean: Any, client: httpx.Client) -> None:
    serial = next(iter(sim.fleet.of("fleet")))
    listed = client.get(f"/devices/{serial}/attributes")
    assert listed.status_code == 200
    attributes = listed.json()["data"]
    assert attributes and all(
        set(a) == {"string_key", "data_type", "value", "updated_date"} for a in attributes
    )
    keys = {a["string_key"] for a in attributes}
    assert "site" in keys

    updated = client.patch(
        f"/devices/{serial}/attributes",
        json=[{"string_key": "installed_by", "value": "tech-7"}, {"string_key": "site", "value": None}],
    )
    assert updated.status_code == 200
    now = {a["string_key"]: a for a in updated.json()["data"]}
    assert now["installed_by"]["value"] == "tech-7" and now["installed_by"]["data_type"] == "string"
    assert "site" not in now
    wrapped = client.patch(
        f"/devices/{serial}/attributes", json={"data": [{"string_key": "floors", "value": 3}]}
    )
    assert {a["string_key"]: a["data_type"] for a in wrapped.json()["data"]}["floors"] == "int"
    assert client.patch(f"/devices/{serial}/attributes", json=[{"value": 1}]).status_code == 422
    assert client.patch(f"/devices/{serial}/attributes", json=[]).status_code == 422
    assert client.get("/devices/NOPE/attributes").status_code == 404
    state = sim.admin("GET", f"/_sim/inspect/fleet/{serial}").json()
    assert {a["string_key"] for a in state["attributes"]} == {"installed_by", "floors"} | (keys - {"site"})


def test_online_devices_keep_being_seen(sim: Any, sim_clean: Any, client: httpx.Client) -> None:
    serial = next(s for s, d in sim.fleet.of("fleet").items() if d.online)
    before = parse(client.get(f"/devices/{serial}").json()["data"]["last_seen"])
    assert sim.admin("POST", "/_sim/clock", json={"advance": 600}).status_code == 200
    after = parse(client.get(f"/devices/{serial}").json()["data"]["last_seen"])
    assert after - before >= timedelta(seconds=599)
    assert after <= datetime.now(UTC) + timedelta(seconds=601)


def test_listings_follow_every_change_while_paging(sim: Any, sim_clean: Any, client: httpx.Client) -> None:
    """Listings are kept between pages (no refilter per page), yet each change shows at once."""
    first = client.get("/devices", params={"per_page": 5, "page": 1}).json()
    total = first["paging"]["total"]
    body = {"device_serial": "ZZZZ0001", "owner_ref": "listing_probe", "hardware_version": "hwrev1"}
    assert client.post("/devices", json=body).status_code == 201
    last = client.get("/devices", params={"per_page": 5, "page": -(-(total + 1) // 5)}).json()
    assert last["paging"]["total"] == total + 1
    assert last["data"][-1]["device_serial"] == "ZZZZ0001"  # the newest id sorts last
    by_owner = {"owner_ref": "listing_probe", "per_page": 100}
    assert [d["device_serial"] for d in client.get("/devices", params=by_owner).json()["data"]] == [
        "ZZZZ0001"
    ]
    assert client.patch("/devices/ZZZZ0001", json={"owner_ref": "moved_on"}).status_code == 200
    assert client.get("/devices", params=by_owner).json()["data"] == []
    newest = client.get("/devices", params={"sort": "-updated_date", "per_page": 1}).json()["data"]
    assert newest[0]["device_serial"] == "ZZZZ0001"
    assert client.delete("/devices/ZZZZ0001").status_code == 204
    assert client.get("/devices", params={"per_page": 5}).json()["paging"]["total"] == total
