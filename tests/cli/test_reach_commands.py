"""`fieldtui devices|groups|alerts` and the change verbs as a technician runs them: real
processes against the simulator; writes judged by the simulator's own mutation log."""

from __future__ import annotations

import json
from typing import Any

from test_read_commands import fieldtui


def _mutations(sim: Any, backend: str) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = sim.admin("GET", f"/_sim/mutations?backend={backend}").json()
    return [m for m in log if not m["path"].endswith(("/session", "/client-token"))]


def test_fleet_listing_applies_release_repeated_and_sort_descending(
    sim: Any, cli_env: dict[str, str]
) -> None:
    result = fieldtui(
        cli_env, "devices", "--cloud", "fleet", "--release", "1.2.3", "--release", "1.2.4",
        "--sort=-last_seen", "--limit", "0", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    devices = json.loads(result.stdout)["devices"]
    assert devices and {d["firmware"] for d in devices} <= {"1.2.3", "1.2.4"}
    seen = [d["last_seen"] for d in devices if d["last_seen"]]
    assert seen == sorted(seen, reverse=True), "newest first"
    every = json.loads(fieldtui(cli_env, "devices", "--cloud", "fleet", "--limit", "0", "--json").stdout)
    wanted = [d for d in every["devices"] if d["firmware"] in ("1.2.3", "1.2.4")]
    assert len(devices) == len(wanted), "every page followed"


def test_a_filter_the_cloud_cannot_apply_is_refused_by_name(sim: Any, cli_env: dict[str, str]) -> None:
    result = fieldtui(cli_env, "devices", "--cloud", "gateways", "--release", "1.2.3")
    assert result.returncode == 2
    assert "cannot filter by release" in result.stderr and "Traceback" not in result.stderr
    listed = fieldtui(cli_env, "devices", "--owner", "nobody-at-all")
    assert listed.returncode == 0, listed.stderr
    assert "gateways: not listed" in listed.stderr, "the clouds left out are named"


def test_devicehq_query_and_things_group_list_their_devices(sim: Any, cli_env: dict[str, str]) -> None:
    gateway = next(iter(sim.fleet.of("devicehq")))
    found = json.loads(fieldtui(cli_env, "devices", "--cloud", "gateways", "-q", gateway, "--json").stdout)
    assert gateway in {d["id"] for d in found["devices"]}
    group, members = _a_things_group(sim)
    listed = fieldtui(cli_env, "devices", "--cloud", "things", "--group", group, "--json")
    assert listed.returncode == 0, listed.stderr
    assert {d["id"] for d in json.loads(listed.stdout)["devices"]} == members


def _a_things_group(sim: Any) -> tuple[str, set[str]]:
    groups: dict[str, set[str]] = {}
    for device_id, device in sim.fleet.of("things").items():
        if device.group and device.group != "unassigned":
            groups.setdefault(device.group, set()).add(device_id)
    group = min(groups, key=lambda g: (len(groups[g]), g))
    return group, groups[group]


def test_a_groups_members_show_status_online_and_battery(sim: Any, cli_env: dict[str, str]) -> None:
    group, members = _a_things_group(sim)
    result = fieldtui(cli_env, "groups", group, "--json")
    assert result.returncode == 0, result.stderr
    clouds = json.loads(result.stdout)["clouds"]
    things = next(c for c in clouds if c["backend"] == "things")
    assert {m["id"] for m in things["members"]} == members
    for member in things["members"]:
        assert member["online"] is not None and member["installation_status"], "read from the cloud"
    assert any(m["battery"] is not None for m in things["members"])
    listing = fieldtui(cli_env, "groups", "--cloud", "things")
    assert listing.returncode == 0 and group in listing.stdout
    missing = fieldtui(cli_env, "groups", "no-such-group-anywhere")
    assert missing.returncode == 3 and "no cloud has a group" in missing.stderr


def test_a_devicehq_group_name_with_spaces_lists_its_members(sim: Any, cli_env: dict[str, str]) -> None:
    spaced = {d.group for d in sim.fleet.of("devicehq").values() if d.group and " " in d.group}
    group = sorted(spaced)[0]
    result = fieldtui(cli_env, "groups", group, "--cloud", "gateways", "--json")
    assert result.returncode == 0, result.stderr
    members = json.loads(result.stdout)["clouds"][0]["members"]
    expected = {i for i, d in sim.fleet.of("devicehq").items() if d.group == group}
    assert {m["id"] for m in members} == expected


def test_alerts_list_what_the_things_cloud_says_is_alerting(sim: Any, cli_env: dict[str, str]) -> None:
    result = fieldtui(cli_env, "alerts", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    alerting = {i for i, d in sim.fleet.of("things").items() if d.alerting}
    listed = {d["device"] for d in document["devices"] if d["backend"] == "things"}
    assert listed == alerting
    assert document["counts"]["things"] >= 0
    assert all(d["alerts"] for d in document["devices"] if d["backend"] == "things"), "types read"
    text = fieldtui(cli_env, "alerts")
    assert text.returncode == 0 and all(len(line) <= 80 for line in text.stdout.splitlines())


def test_group_create_rename_delete_reach_the_things_cloud(sim_clean: Any, cli_env: dict[str, str]) -> None:
    for args in (
        ("group", "create", "things", "roof-north", "--description", "roof, north side"),
        ("group", "rename", "things", "roof-north", "roof-n"),
        ("group", "delete", "things", "roof-n"),
    ):
        result = fieldtui(cli_env, *args)
        assert result.returncode == 0, result.stderr
        assert "synced now" in result.stdout
    writes = [(m["method"], m["path"].split("/prod/v1")[-1]) for m in _mutations(sim_clean, "things")]
    assert writes == [
        ("POST", "/groups"),
        ("POST", "/groups/roof-north/rename"),
        ("DELETE", "/groups/roof-n"),
    ]


def test_edits_of_device_records_reach_devicehq_and_fleet(sim_clean: Any, cli_env: dict[str, str]) -> None:
    gateway = next(iter(sim_clean.fleet.of("devicehq")))
    assert fieldtui(cli_env, "status", gateway).returncode == 0  # now in the read cache
    result = fieldtui(cli_env, "edit", gateway, "description=pump room", "location=[60.17, 24.94]")
    assert result.returncode == 0, result.stderr
    # DeviceHQ's description is the device's name: the cache took it once synced.
    cached = fieldtui(cli_env, "--offline", "status", gateway, "--json")
    assert json.loads(cached.stdout)["device"]["name"] == "pump room", cached.stdout
    put = [m for m in _mutations(sim_clean, "devicehq") if m["method"] == "PUT"]
    attributes = put[-1]["body"]["data"]["attributes"]
    assert attributes["description"] == "pump room" and attributes["location_description"] == [60.17, 24.94]
    serial = next(iter(sim_clean.fleet.of("fleet")))
    edited = fieldtui(cli_env, "edit", serial, "owner_ref=acme-7", "--backend", "fleet", "--json")
    assert edited.returncode == 0, edited.stderr
    assert json.loads(edited.stdout)["status"] == "synced"
    patch = [m for m in _mutations(sim_clean, "fleet") if m["method"] == "PATCH"]
    assert patch[-1]["body"] == {"owner_ref": "acme-7"}
    refused = fieldtui(cli_env, "edit", serial, "colour=red", "--backend", "fleet")
    assert refused.returncode == 6 and "cannot change colour" in refused.stderr


def test_task_create_offers_the_catalogue_by_id_then_queues_the_chosen_one(
    sim_clean: Any, cli_env: dict[str, str]
) -> None:
    gateway = next(iter(sim_clean.fleet.of("devicehq")))
    choices = fieldtui(cli_env, "task", "create", gateway, "SOFTWARE_UPGRADE", "--json")
    assert choices.returncode == 0, choices.stderr
    assert _mutations(sim_clean, "devicehq") == [], "a listing of choices queues nothing"
    firmware = json.loads(choices.stdout)["choices"][0]["id"]
    wrong = fieldtui(cli_env, "task", "create", gateway, "SOFTWARE_UPGRADE", "no-such-firmware")
    assert wrong.returncode == 2 and firmware in wrong.stderr
    created = fieldtui(cli_env, "task", "create", gateway, "SOFTWARE_UPGRADE", firmware, "--json")
    assert created.returncode == 0, created.stderr
    task_id = json.loads(created.stdout)["action"]["result"]["created_id"]
    cancelled = fieldtui(cli_env, "task", "cancel", gateway, task_id)
    assert cancelled.returncode == 0, cancelled.stderr
    deleted = fieldtui(cli_env, "task", "delete", gateway, task_id)
    assert deleted.returncode == 0, deleted.stderr
    methods = [m["method"] for m in _mutations(sim_clean, "devicehq")]
    assert methods[0] == "POST" and methods[-1] == "DELETE" and methods[1] in ("PUT", "PATCH")


def test_a_command_sent_from_the_cli_reaches_the_thing(sim_clean: Any, cli_env: dict[str, str]) -> None:
    thing = next(iter(sim_clean.fleet.of("things")))
    result = fieldtui(cli_env, "command", "send", thing, "1500", "tsmEv=1", "--backend", "things")
    assert result.returncode == 0, result.stderr + result.stdout
    posts = [m for m in _mutations(sim_clean, "things") if m["path"].endswith(f"/things/{thing}/commands")]
    assert len(posts) == 1


def test_changes_are_refused_read_only_and_queued_offline(sim_clean: Any, cli_env: dict[str, str]) -> None:
    refused = fieldtui(cli_env, "--read-only", "group", "create", "things", "roof-x")
    assert refused.returncode == 2 and "read-only" in refused.stderr
    queued = fieldtui(cli_env, "--offline", "group", "create", "things", "roof-x", "--json")
    assert queued.returncode == 0, queued.stderr
    assert json.loads(queued.stdout)["status"] == "queued"
    assert _mutations(sim_clean, "things") == []


def test_offline_alerts_judge_the_devices_the_cache_holds(sim: Any, cli_env: dict[str, str]) -> None:
    alerting = sorted(i for i, d in sim.fleet.of("things").items() if d.alerting)[0]
    looked_up = fieldtui(cli_env, "status", alerting)
    assert looked_up.returncode == 0, looked_up.stderr
    result = fieldtui(cli_env, "--offline", "alerts", "--json")
    assert result.returncode == 0, result.stderr
    devices = json.loads(result.stdout)["devices"]
    assert any(d["device"] == alerting and d["alerts"] for d in devices)
