"""Document 001's own example bodies map into the values a technician reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from fieldtui.connectors._wire_lenient import parse
from fieldtui.connectors._wire_things import (
    AlertCountWire,
    AlertingWire,
    CommandRecordWire,
    DeletedWire,
    GroupOfThingWire,
    GroupWire,
    InstallationSetWire,
    InstallationWire,
    RenamedWire,
    SentCommandsWire,
    ThingAlertWire,
    ThingWire,
    TokenWire,
    active_alert_types,
    message_time,
    metrics_of,
    to_command,
    to_group,
    to_record,
    to_sample,
)
from fieldtui.core.errors import InvalidResponse
from fieldtui.core.models import InstallationStatus, Location, TaskState

FIXTURES = Path(__file__).parent / "fixtures" / "things"
ROUTE = httpx.Response(200, request=httpx.Request("GET", "http://sim.test/prod/v1/things/XXXXTUID"))
BROKEN = [
    "client_token_response",
    "commands_response",
    "installations_response",
    "messages_response",
    "send_command_response",
]


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())["data"]


def test_every_document_body_is_kept_as_a_fixture() -> None:
    jsons = sorted(p.stem for p in FIXTURES.glob("*.json"))
    assert len(jsons) == 21  # every "- Body" of document 001
    assert sorted(p.name.removesuffix(".broken.txt") for p in FIXTURES.glob("*.broken.txt")) == BROKEN
    for name in BROKEN:
        with pytest.raises(ValueError):
            json.loads((FIXTURES / f"{name}.broken.txt").read_text())


def test_thing_sample_reads_battery_location_version_and_last_event() -> None:
    thing = parse(ThingWire, load("thing_response.json"), ROUTE, "things")
    assert thing.battery_level == 86
    assert thing.position == Location(lat=65.01, lon=25.52)
    assert thing.version == "2019.11.15.2_ts_pod3wp34"
    assert thing.timestamp == datetime.fromtimestamp(1586952604, UTC)


def test_location_documented_as_strings_reads_the_same() -> None:
    data = {
        **load("thing_response.json"),
        "location": {"lat": "65.01", "lon": "25.52"},
        "battery_level": "86",
    }
    thing = parse(ThingWire, data, ROUTE, "things")
    assert thing.position == Location(lat=65.01, lon=25.52)
    assert thing.battery_level == 86


def test_thing_without_location_or_with_half_of_it_has_none() -> None:
    assert parse(ThingWire, {}, ROUTE, "things").position is None
    assert parse(ThingWire, {"location": {"lat": 1, "lon": ""}}, ROUTE, "things").position is None


def test_alert_samples_read_tuids_and_a_count_sent_as_text() -> None:
    tuids = parse(AlertingWire, load("alerts_response.json"), ROUTE, "things").alerting_tuids
    assert tuids == ["XXXX03X2Z74162459", "XXXX03X2Z74162947"]
    assert parse(AlertCountWire, load("alert_count_response.json"), ROUTE, "things").alert_count == 207


def test_thing_alert_sample_is_active_only_while_its_span_is_open() -> None:
    alerts = [parse(ThingAlertWire, item, ROUTE, "things") for item in load("thing_alerts_response.json")]
    assert [a.alert_type for a in alerts] == ["gateway connection lost", "heartbeat missed"]
    assert alerts[1].alerts[0].start == datetime(1970, 1, 1)
    during = datetime(2019, 12, 3, 7, 33, tzinfo=UTC)
    assert active_alert_types(alerts, during, 300) == ["gateway connection lost"]
    assert active_alert_types(alerts, during + timedelta(days=1), 300) == []


def test_message_sample_gives_its_attributes_as_metrics() -> None:
    message = load("messages_response.json")[0]
    assert message_time(message) == 1559638241
    sample = to_sample(message, "things", "XXXXTUID", 1559638241)
    assert sample.metrics == {"batl": 74}  # tsm* and deploymentGroupId are not metrics
    assert sample.timestamp == datetime.fromtimestamp(1559638241, UTC)


def test_metrics_keep_numbers_strings_and_bools_only() -> None:
    metrics = metrics_of({"tsmTs": 1, "a": 1.5, "b": "x", "c": True, "d": None, "e": [1], "f": {"g": 1}})
    assert metrics == {"a": 1.5, "b": "x", "c": True}
    assert message_time({"tsmTs": "1559638241"}) == 1559638241
    assert message_time({"tsmTs": "soon"}) is None


def test_command_list_sample_maps_with_its_parameters() -> None:
    record = load("commands_response.json")[0]
    wire = parse(CommandRecordWire, record, ROUTE, "things")
    command = to_command(
        wire.command,
        record["command"],
        "things",
        "XXXXTUID",
        responsible=wire.responsible,
        sent=wire.timestamp,
    )
    assert command.name == "17110"
    assert command.device == "XXXXTUID"
    assert command.timestamp == datetime.fromtimestamp(1557302186, UTC)
    assert command.parameters == {"tsmEv": 30, "profileId": 0, "transactionId": 99999}
    assert (command.status, command.state, command.message) == ("sent", TaskState.DONE, None)


def test_send_command_samples_are_an_array_in_and_a_command_list_out() -> None:
    request = json.loads((FIXTURES / "send_command_request.json").read_text())
    assert isinstance(request, list) and {"tsmId", "tsmEv"} <= set(request[0])
    sent = parse(SentCommandsWire, load("send_command_response.json"), ROUTE, "things")
    assert sent.responsible is None
    assert [c.tsmId for c in sent.commands] == [17110]


def test_installation_history_sample_reads_retired() -> None:
    entry = parse(InstallationWire, load("installations_response.json")[0], ROUTE, "things")
    record = to_record(entry, "things", "XXXXTUID")
    assert record is not None
    assert record.status is InstallationStatus.RETIRED
    assert record.timestamp == datetime.fromtimestamp(1559564455, UTC)
    assert record.responsible is None


def test_an_undocumented_installation_status_is_left_out() -> None:
    entry = parse(InstallationWire, {"installation_status": "lost", "timestamp": 1}, ROUTE, "things")
    assert to_record(entry, "things", "X") is None


def test_installation_set_samples() -> None:
    request = json.loads((FIXTURES / "set_installation_request.json").read_text())
    assert InstallationStatus(request["installation_status"]) is InstallationStatus.INSTALLED
    answer = parse(InstallationSetWire, load("set_installation_response.json"), ROUTE, "things")
    assert answer.installation_status == "installed"


def test_group_samples() -> None:
    assert parse(GroupOfThingWire, load("group_response.json"), ROUTE, "things").group_id == "testgroup1"
    assert parse(GroupOfThingWire, load("set_group_response.json"), ROUTE, "things").group_id == "testgroup"
    created = to_group(parse(GroupWire, load("create_group_response.json"), ROUTE, "things"), "things")
    assert (created.id, created.description) == ("testgroup1", "This is a test group")
    renamed = parse(RenamedWire, load("rename_group_response.json"), ROUTE, "things")
    assert (renamed.group_id, renamed.old, renamed.renamed) == ("newgroupname", "oldgroupname", True)
    deleted = parse(DeletedWire, load("delete_group_response.json"), ROUTE, "things")
    assert (deleted.group_id, deleted.deleted) == ("deletedgroup", True)
    for name in ("set_group_request.json", "create_group_request.json", "rename_group_request.json"):
        assert "group_id" in json.loads((FIXTURES / name).read_text())


def test_group_list_entry_counts_members_under_any_spelling() -> None:
    group = to_group(parse(GroupWire, {"group_id": "roof", "member_count": "4"}, ROUTE, "things"), "things")
    assert group.member_count == 4


def test_token_sample_with_an_empty_token_is_an_invalid_response() -> None:
    request = json.loads((FIXTURES / "client_token_request.json").read_text())
    assert set(request) == {"client_id", "client_secret"}
    with pytest.raises(InvalidResponse) as caught:
        parse(TokenWire, load("client_token_response.json"), ROUTE, "things")
    assert "token" in str(caught.value)
