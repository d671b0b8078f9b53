"""Merging one device as several clouds know it (pure logic: no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fieldtui.core.actions import Action, ActionState, ActionType
from fieldtui.core.models import BackendKind, Device, InstallationStatus, Location
from fieldtui.service.merge import Source, SourcedDevice, iso, merge_devices
from fieldtui.service.overlay import heard
from fieldtui.service.store import ActionRecord

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def copy(
    backend: str, kind: BackendKind, *, stale: bool = False, fetched_ago: float = 0, **fields: object
) -> SourcedDevice:
    device = Device(id="991516757", backend=backend, kind=kind, **fields)  # type: ignore[arg-type]
    return SourcedDevice(device, Source(backend, kind, NOW - timedelta(seconds=fetched_ago), stale))


def test_gateway_in_two_clouds_shows_every_field_either_cloud_knows() -> None:
    things = copy(
        "things",
        BackendKind.THINGS,
        firmware="2021.04.02.1",
        battery=80,
        installation_status=InstallationStatus.INSTALLED,
        last_seen=NOW - timedelta(minutes=5),
        raw={"tuid": "991516757"},
    )
    gateways = copy(
        "gateways",
        BackendKind.DEVICEHQ,
        model="MTR-G3",
        firmware="5.3.0",
        rssi=-90,
        location=Location(lat=1.0, lon=2.0),
        last_seen=NOW - timedelta(minutes=1),
        raw={"serial": "991516757"},
    )
    view = merge_devices([things, gateways])
    merged = view.device
    # The site record (name, group, installation status) comes from things first; what the
    # device reports (firmware, signal) from the device-management cloud first: never by timing.
    assert merged.backend == "things"
    assert merged.firmware == "5.3.0"
    assert (merged.model, merged.battery, merged.rssi) == ("MTR-G3", 80, -90)
    assert merged.installation_status is InstallationStatus.INSTALLED
    assert merged.last_seen == NOW - timedelta(minutes=1)
    assert merged.raw == {"gateways": {"serial": "991516757"}, "things": {"tuid": "991516757"}}
    assert [s.backend for s in view.sources] == ["things", "gateways"]
    assert set(view.copies) == {"things", "gateways"}
    assert view.disagreements() == {"firmware": {"things": "2021.04.02.1", "gateways": "5.3.0"}}


def test_the_headline_does_not_depend_on_which_cloud_answered_first_or_saw_the_device_last() -> None:
    results = set()
    for things_seen, gateways_seen in ((5, 1), (1, 5)):
        things = copy(
            "things",
            BackendKind.THINGS,
            firmware="A",
            group="roof",
            last_seen=NOW - timedelta(minutes=things_seen),
        )
        gateways = copy(
            "gateways",
            BackendKind.DEVICEHQ,
            firmware="B",
            group="lab",
            last_seen=NOW - timedelta(minutes=gateways_seen),
        )
        for order in ([things, gateways], [gateways, things]):
            device = merge_devices(order).device
            results.add((device.firmware, device.group, device.backend))
    assert results == {("B", "roof", "things")}


def test_fresh_copy_wins_over_a_cached_one_even_if_the_cache_saw_the_device_later() -> None:
    cached = copy("a", BackendKind.FLEET, stale=True, fetched_ago=3600, firmware="old", last_seen=NOW)
    fresh = copy("b", BackendKind.MQTT, firmware="new", last_seen=NOW - timedelta(hours=2))
    view = merge_devices([cached, fresh])
    assert view.device.firmware == "new"
    assert [s.stale for s in view.sources] == [False, True]
    assert not view.stale


def test_online_when_any_fresh_cloud_says_so() -> None:
    view = merge_devices(
        [copy("a", BackendKind.FLEET, online=False), copy("b", BackendKind.MQTT, online=True)]
    )
    assert view.device.online is True
    view = merge_devices(
        [copy("a", BackendKind.FLEET, online=None), copy("b", BackendKind.MQTT, online=False)]
    )
    assert view.device.online is False
    only_cached = merge_devices([copy("a", BackendKind.FLEET, stale=True, online=True)])
    assert only_cached.device.online is True and only_cached.stale


def test_alerts_are_the_union_without_duplicates() -> None:
    view = merge_devices(
        [
            copy("a", BackendKind.THINGS, alerts=("low battery", "tamper")),
            copy("b", BackendKind.DEVICEHQ, alerts=("tamper",)),
        ]
    )
    assert sorted(view.device.alerts) == ["low battery", "tamper"]


def test_status_json_document_shape() -> None:
    view = merge_devices([copy("things", BackendKind.THINGS, stale=True, fetched_ago=60, last_seen=NOW)])
    document = view.as_json()
    # device and sources are the scripts' contract; clouds, differs and pending were added.
    assert set(document) == {"device", "sources", "clouds", "differs", "pending"}
    assert document["differs"] == {} and document["pending"] == []
    assert set(document["clouds"]) == {"things"}
    assert document["sources"] == [
        {"backend": "things", "kind": "things", "fetched_at": "2025-05-01T11:59:00Z", "stale": True}
    ]
    assert document["device"]["last_seen"] == "2025-05-01T12:00:00Z"
    assert set(document["device"]) == set(Device.model_fields)


def test_iso_is_utc_with_z() -> None:
    assert iso(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2025-01-02T03:04:05Z"


def test_merging_nothing_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        merge_devices([])


def test_a_synced_description_edit_renames_the_open_device_view() -> None:
    """DeviceHQ's description is the name the technician sees: once the edit is done, the open
    screen's view takes it from the engine's event, without asking the clouds again (F5)."""
    view = merge_devices([copy("gateways", BackendKind.DEVICEHQ, name="Gateway 991516757")])
    action = Action(
        type=ActionType.UPDATE_DEVICE,
        device="991516757",
        backend="gateways",
        params={"fields": {"description": "pump room"}},
    )
    done = ActionRecord(
        action=action,
        seq=1,
        state=ActionState.DONE,
        attempts=1,
        uncertain=False,
        next_attempt_at=NOW,
        last_error=None,
        lease_owner=None,
        lease_until=None,
        result={},
        first_sent_at=NOW,
        updated_at=NOW,
        done_at=NOW,
    )
    assert heard(view, done).device.name == "pump room"
