"""The things client holds against what Haltian's own public apps read from the Thingsee API.

Fixture bodies are in ``fixtures/thingsee`` (shapes from Haltian's installer apps, values
ours); each test names its source. The group-members object, which the simulator does not
serve (it keeps its own reading), goes through the connector over real HTTP to a small stub.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from vendor_stub import Stub, vendor_stub

from fieldtui.config import ThingsBackend
from fieldtui.connectors._http import raise_for_status
from fieldtui.connectors._wire_lenient import parse
from fieldtui.connectors._wire_things import (
    CommandRecordWire,
    GroupWire,
    InstallationSetWire,
    InstallationWire,
    SentCommandsWire,
    ThingWire,
    member_tuids,
    message_time,
    to_command,
    to_group,
    to_record,
)
from fieldtui.connectors.things import ThingsConnector
from fieldtui.core.errors import InvalidResponse, NotFound
from fieldtui.core.models import InstallationStatus

FIXTURES = Path(__file__).parent / "fixtures" / "thingsee"
TUID = "TSPD0112345678"
ROUTE = httpx.Response(200, request=httpx.Request("GET", f"http://thingsee.test/v1/things/{TUID}"))


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def stub() -> Iterator[Stub]:
    with vendor_stub() as running:
        running.answer("POST", "/v1/auth/client-token", 200, {"data": {"token": "tok-1"}})
        yield running


def test_group_members_as_haltians_apps_read_them_are_tuids() -> None:
    """Sources: haltian/Thingsee-Toolbox lib/protocol/device_list_response.g.dart
    (``group_id``, ``tuids``) and haltian/ThingseeInstaller
    thingsee_installer/lib/thingsee_network_apis.dart (``data['tuids']``)."""
    assert member_tuids(load("group_things.json")["data"]) == [TUID, "TSPR0487654321"]


@pytest.mark.parametrize(
    ("data", "tuids"),
    [
        ([{"group_id": "g", "tuid": "A"}, {"group_id": "g", "tuid": "B"}], ["A", "B"]),
        (["A", 7], ["A", "7"]),
        ({"group_id": "g", "tuids": []}, []),
        ([], []),
    ],
    ids=["simulator-entries", "bare-tuids", "empty-object", "empty-list"],
)
def test_group_members_in_the_simulators_reading_still_read(data: Any, tuids: list[str]) -> None:
    assert member_tuids(data) == tuids


@pytest.mark.parametrize(
    "data",
    [{"group_id": "g"}, {"tuids": "A"}, [{"id": "A"}], [True], "A", None, {"tuids": [{"tuid": "A"}]}],
)
def test_group_members_in_no_known_shape_are_refused(data: Any) -> None:
    assert member_tuids(data) is None


def test_groups_without_a_count_or_a_description_read_as_unknown() -> None:
    """Source: haltian/Thingsee-Toolbox lib/protocol/group.g.dart and
    lib/logic/fetch_group_list_backend.dart (a list of ``group_id``, ``group_description``)."""
    groups = [
        to_group(parse(GroupWire, item, ROUTE, "things"), "things") for item in load("groups.json")["data"]
    ]
    assert [(g.id, g.description, g.member_count) for g in groups] == [
        ("pumproom", "Pump room sensors", None),
        ("lobby", None, None),
    ]


def test_thing_info_without_a_location_reads_battery_version_and_last_event() -> None:
    """Source: haltian/Thingsee-Toolbox lib/protocol/device_info.g.dart (``battery_level`` and
    ``timestamp`` as integers, ``gateway_tuid``, ``version``; no ``location``)."""
    thing = parse(ThingWire, load("thing_info.json")["data"], ROUTE, "things")
    assert (thing.battery_level, thing.version, thing.gateway_tuid) == (71, "2021.04.01.1", "TSGW0611111111")
    assert thing.position is None
    assert thing.timestamp is not None and int(thing.timestamp.timestamp()) == 1586952604


def test_installation_entries_carrying_a_group_id_read_as_records() -> None:
    """Source: haltian/Thingsee-Toolbox lib/protocol/installation_status.g.dart (an entry holds
    ``tuid``, ``installation_status``, ``group_id``) and lib/logic/fetch_installation_status_backend.dart
    (``?limit=1``, ``data[0]``)."""
    item = load("installation_status.json")["data"][0]
    record = to_record(parse(InstallationWire, item, ROUTE, "things"), "things", TUID)
    assert record is not None
    assert (record.status, record.responsible) == (InstallationStatus.INSTALLED, "installer@example.com")
    answer = parse(InstallationSetWire, load("set_installation_response.json")["data"], ROUTE, "things")
    assert answer.installation_status == "installed"


def test_a_command_answer_with_destination_and_parameters_reads_as_a_sent_command() -> None:
    """Source: haltian/Thingsee-Toolbox lib/protocol/device_command.g.dart and
    lib/logic/send_command_backend.dart (posts ``[{tsmId, tsmEv, tsmDstTuid, ...}]``, reads
    ``data.commands``; no ``responsible``)."""
    data = load("send_command_response.json")["data"]
    sent = parse(SentCommandsWire, data, ROUTE, "things")
    command = to_command(
        sent.commands[0], data["commands"][0], "things", "other", responsible=None, sent=None
    )
    assert (command.device, command.name) == (TUID, "1500")
    assert command.parameters == {"tsmEv": 30, "measurementInterval": 300, "reportInterval": 900}
    assert load("send_command_request.json")[0]["tsmDstTuid"] == TUID


def test_a_listed_command_with_its_parameters_and_no_transaction_id_reads() -> None:
    """Source: haltian/Thingsee-Toolbox lib/protocol/commands_response.g.dart (``tuid``,
    ``timestamp``, ``responsible``, ``command``). Neither Haltian app sends or reads
    ``transactionId``: a listing without it has no correlation, never an error."""
    item = load("commands_response.json")["data"][0]
    wire = parse(CommandRecordWire, item, ROUTE, "things")
    command = to_command(
        wire.command, item["command"], "things", TUID, responsible=wire.responsible, sent=wire.timestamp
    )
    assert command.message == "sent by installer@example.com"
    assert command.parameters["mode"] == 1
    assert "transactionId" not in command.parameters


def test_haltians_error_body_gives_its_message() -> None:
    """Source: haltian/Thingsee-Toolbox lib/protocol/error_message.g.dart and
    lib/installer_error_model.dart (``statusCode``, ``error``, ``message``)."""
    request = httpx.Request("GET", f"http://thingsee.test/v1/things/{TUID}")
    with pytest.raises(NotFound, match="Thing TSPD0199999999 not found"):
        raise_for_status(httpx.Response(404, json=load("error.json"), request=request), "things")


async def test_a_groups_members_in_haltians_shape_come_through_the_connector(stub: Stub) -> None:
    """Source: haltian/ThingseeInstaller thingsee_installer/lib/thingsee_network_apis.dart
    (``GET groups/{id}/things`` read as ``data['tuids']``)."""
    stub.answer("GET", "/v1/groups/pumproom/things", 200, load("group_things.json"))
    config = ThingsBackend(kind="things", url=stub.url + "/v1", client_id="installer", timeout=30)
    async with ThingsConnector("things", config, "secret") as things:
        members = await things.group_members("pumproom")
    assert members == [TUID, "TSPR0487654321"]
    assert stub.seen[-1].headers["authorization"] == "Bearer tok-1"


async def test_group_members_in_an_unknown_shape_are_an_invalid_response(stub: Stub) -> None:
    stub.answer("GET", "/v1/groups/pumproom/things", 200, {"data": {"members": [TUID]}})
    config = ThingsBackend(kind="things", url=stub.url + "/v1", client_id="installer", timeout=30)
    async with ThingsConnector("things", config, "secret") as things:
        with pytest.raises(InvalidResponse) as caught:
            await things.group_members("pumproom")
    assert caught.value.route == "GET /v1/groups/pumproom/things"
    assert "tuids" in str(caught.value)


async def test_a_command_names_its_target_and_carries_the_transaction_id_haltian_specifies(
    stub: Stub,
) -> None:
    """Sources: https://support.haltian.com/knowledgebase/thingsee-message-commands and
    https://developer.haltian.io/thingsee-iot/apis/message-profiles/message-commands
    (``tsmDstTuid`` the target, ``transactionId`` allocated by the client), and
    haltian/Thingsee-Toolbox lib/logic/send_command_backend.dart (posts ``tsmDstTuid``)."""
    stub.answer("POST", f"/v1/things/{TUID}/commands", 200, load("send_command_response.json"))
    config = ThingsBackend(kind="things", url=stub.url + "/v1", client_id="installer", timeout=30)
    params = {"tsmEv": 30, "measurementInterval": 300, "tsmDstTuid": "TSPD0199999999"}
    async with ThingsConnector("things", config, "secret") as things:
        command = await things.send_command(TUID, "1500", params, correlation=4242)
    [sent] = stub.seen[-1].body
    assert sent["tsmDstTuid"] == TUID  # the path's thing, never one named in the parameters
    assert (sent["tsmId"], sent["tsmEv"], sent["transactionId"]) == (1500, 30, 4242)
    assert command.device == TUID


def test_a_message_time_with_decimal_milliseconds_reads_as_its_second() -> None:
    """Source: https://developer.haltian.io/thingsee-iot/apis/message-profiles/message-header
    (``tsmTs``: milliseconds may come as a decimal)."""
    assert message_time({"tsmId": 1110, "tsmEv": 36, "tsmTs": 1492603998.725}) == 1492603998
