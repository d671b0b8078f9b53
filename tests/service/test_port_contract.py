"""The port's contract, checked against both of its implementations: the in-memory fake the
screen tests run on (``fakes.fake_service``) and the real session over the simulated clouds
(real loopback HTTP, the real broker, a private SQLite outbox).

Each behaviour is one test run twice (``[fake]`` and ``[real]``): what a screen relies on over
the fake is then known to hold over the real clouds too. Writes are judged by the cloud's own
record: the fake's cloud, or the simulator's ``/_sim/inspect``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fakes.fake_service import FakeService, Ids

from fieldtui.config import load_config
from fieldtui.connectors.declarations import (
    DEVICEHQ_TASK_KINDS,
    MQTT_COMMANDS,
    MYSENSOR_TASK_KINDS,
    THINGS_COMMANDS,
)
from fieldtui.core.errors import ConfigError, DeviceNotFound, InvalidId, Unsupported
from fieldtui.core.filters import DeviceFilter
from fieldtui.core.models import BackendKind, HistoryKind, InstallationStatus
from fieldtui.service.api import (
    ActionEvent,
    ActionRecord,
    ActionState,
    BackendFinished,
    BackendStatus,
    DeviceView,
    FieldService,
    FindMatch,
    FindResult,
    SyncMode,
    WriteOutcome,
)
from fieldtui.service.merge import FIELD_RULES
from fieldtui.service.session import open_service

#: The clouds of the simulator's written config (the fake holds the same five).
CLOUDS = {
    "sensors": BackendKind.MYSENSOR,
    "things": BackendKind.THINGS,
    "gateways": BackendKind.DEVICEHQ,
    "fleet": BackendKind.FLEET,
    "live": BackendKind.MQTT,
}
#: A real first attempt may wait for a loaded machine; the fake answers at once.
SYNC_TIMEOUT = 60.0


@dataclass
class Devices:
    """Devices of each kind a contract needs, by what they are."""

    #: A DeviceHQ gateway that is also a things gateway.
    gateway_twin: str
    #: An MQTT device that is also in the fleet cloud.
    mqtt_twin: str
    #: A things device known to no other cloud, and its installation status now.
    thing: str
    thing_status: InstallationStatus


@dataclass
class Subject:
    """One implementation of the port, with the few things a contract test does differently
    on each: let a queued write reach its cloud, and read what the cloud now holds."""

    name: str
    service: FieldService
    devices: Devices
    #: Let the cloud take the queued writes; returns the service that now holds them.
    _sync: Callable[[], Awaitable[FieldService]]
    #: What the cloud itself records as the device's installation status.
    cloud_status: Callable[[str], str | None]
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def sync(self, record: ActionRecord) -> tuple[WriteOutcome, list[ActionEvent]]:
        """Let ``record`` reach its cloud: its outcome and the events listeners heard meanwhile."""
        events: list[ActionEvent] = []
        self.service = await self._sync_listening(events)
        outcome = await self.service.writes.first_outcome(record, timeout=SYNC_TIMEOUT)
        return outcome, events

    async def _sync_listening(self, events: list[ActionEvent]) -> FieldService:
        service = await self._sync()
        unsubscribe = service.outbox.on_change(events.append)
        self.closers.append(_unsubscriber(unsubscribe))
        if isinstance(service, FakeService):
            service.apply_pending()
        return service


def _unsubscriber(unsubscribe: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        unsubscribe()

    return close


# -- the two implementations -----------------------------------------------------------------
def _fake_subject() -> Subject:
    fake = FakeService()

    async def sync() -> FieldService:
        return fake

    def cloud_status(device_id: str) -> str | None:
        status = fake.cloud.copies[device_id]["things"].installation_status
        return status.value if status is not None else None

    devices = Devices(
        gateway_twin=Ids.GATEWAY,
        mqtt_twin=Ids.MQTT_TWIN,
        thing=Ids.THING,
        thing_status=InstallationStatus.INSTALLED,
    )
    return Subject("fake", fake, devices, sync, cloud_status, [fake.aclose])


async def _real_subject(sim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Subject:
    """The real session (reads only, nothing sent) over the simulator; ``sync`` closes it and
    opens the app's session (engine in the background) on the same outbox."""
    config_path, _ = sim.write_config(tmp_path / "config.toml")
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FIELDTUI_DATA_DIR", str(tmp_path / "data"))
    loaded = load_config(str(config_path), None)
    outbox = tmp_path / "outbox.db"
    first = await open_service(loaded, sync=SyncMode.NONE, path=outbox)
    subject: Subject

    async def sync() -> FieldService:
        await subject.service.aclose()
        syncing = await open_service(loaded, sync=SyncMode.BACKGROUND, path=outbox)
        subject.closers.append(syncing.aclose)
        return syncing

    def cloud_status(device_id: str) -> str | None:
        found = sim.admin("GET", f"/_sim/inspect/things/{device_id}").json()
        return str(found["installation_status"]) if found.get("installation_status") else None

    subject = Subject("real", first, _sim_devices(sim), sync, cloud_status, [first.aclose])
    return subject


def _sim_devices(sim: Any) -> Devices:
    fleet = sim.fleet
    gateway = next(i for i, d in fleet.of("devicehq").items() if any(k == "things" for k, _ in d.also_in))
    mqtt = next(i for i, d in fleet.of("mqtt").items() if any(k == "fleet" for k, _ in d.also_in))
    thing_id, thing = next(
        (i, d)
        for i, d in fleet.of("things").items()
        if not d.also_in and d.installation_status in ("installed", "new")
    )
    return Devices(str(gateway), str(mqtt), str(thing_id), InstallationStatus(thing.installation_status))


async def _open(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sim_fixture: str
) -> AsyncIterator[Subject]:
    if request.param == "fake":
        subject = _fake_subject()
    else:
        subject = await _real_subject(request.getfixturevalue(sim_fixture), tmp_path, monkeypatch)
    try:
        yield subject
    finally:
        for close in reversed(subject.closers):
            await close()


@pytest.fixture(params=["fake", "real"])
async def port(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Subject]:
    """The port for reads (the real one over the shared simulator)."""
    async for subject in _open(request, tmp_path, monkeypatch, "sim"):
        yield subject


@pytest.fixture(params=["fake", "real"])
async def writable_port(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Subject]:
    """The port for writes (the real one over a freshly reset simulator)."""
    async for subject in _open(request, tmp_path, monkeypatch, "sim_clean"):
        yield subject


async def _views(service: FieldService, device_id: str) -> list[DeviceView]:
    return [view async for view in service.device_updates(device_id)]


def _headline_backend(view: DeviceView, name: str) -> str:
    """The cloud whose value the headline must show for ``name`` by the field's rule."""
    rule = FIELD_RULES[name]
    holders = [b for b, copy in view.copies.items() if getattr(copy, name) is not None]
    return min(holders, key=lambda b: rule.index(view.copies[b].kind))


# -- backends --------------------------------------------------------------------------------
async def test_backends_name_every_configured_cloud_with_its_kind_and_what_it_declares(port: Subject) -> None:
    infos = {info.name: info for info in port.service.backends()}
    assert {name: info.kind for name, info in infos.items()} == CLOUDS
    assert all(info.unusable is None for info in infos.values())
    assert infos["gateways"].task_kinds == DEVICEHQ_TASK_KINDS
    assert infos["sensors"].task_kinds == MYSENSOR_TASK_KINDS
    assert infos["things"].task_kinds == infos["live"].task_kinds == infos["fleet"].task_kinds == ()
    assert infos["live"].command_kinds == MQTT_COMMANDS
    assert infos["things"].command_kinds == THINGS_COMMANDS
    things_rules = infos["things"].group_rules
    assert things_rules is not None and things_rules.reserved == "unassigned"
    assert infos["sensors"].group_rules is None and infos["live"].group_rules is None
    assert infos["live"].why_not("tasks") is not None and infos["live"].why_not("commands") is None
    assert port.service.backend("things") == infos["things"]
    assert port.service.backend("nowhere") is None


async def test_connectivity_snapshot_has_every_cloud(port: Subject) -> None:
    snapshot = port.service.connectivity.snapshot()
    assert set(snapshot) == set(CLOUDS)
    assert all(
        isinstance(status, BackendStatus) and status.backend == name for name, status in snapshot.items()
    )


# -- the device view -------------------------------------------------------------------------
@pytest.mark.parametrize("twin", ["gateway_twin", "mqtt_twin"])
async def test_a_device_two_clouds_know_lists_both_with_headlines_by_rule(port: Subject, twin: str) -> None:
    device_id = getattr(port.devices, twin)
    view = await port.service.device(device_id)
    expected = {"gateway_twin": {"gateways", "things"}, "mqtt_twin": {"live", "fleet"}}[twin]
    assert {s.backend for s in view.sources} == expected
    assert set(view.copies) == expected
    assert not any(s.stale for s in view.sources)
    assert view.device.id == device_id
    # The clouds disagree on firmware; the headline follows the field's rule, never timing.
    assert set(view.disagreements()["firmware"]) == expected
    for name in ("firmware", "group"):
        assert getattr(view.device, name) == getattr(view.copies[_headline_backend(view, name)], name)


async def test_device_updates_grow_and_end_with_the_whole_view(port: Subject) -> None:
    device_id = port.devices.gateway_twin
    views = await _views(port.service, device_id)
    whole = await port.service.device(device_id)
    assert views, "device_updates yields at least one view"
    last = views[-1]
    assert {s.backend for s in last.sources} == {s.backend for s in whole.sources} == {"gateways", "things"}
    assert not any(s.stale for s in last.sources)
    fresh = [len([s for s in v.sources if not s.stale]) for v in views]
    assert fresh == sorted(fresh), f"a later view lost a fresh cloud: {fresh}"


async def test_a_device_no_cloud_knows_and_an_id_that_cannot_be_one_are_refused_clearly(
    port: Subject,
) -> None:
    with pytest.raises(DeviceNotFound, match="not known to any configured backend"):
        await port.service.device("NOPE000000000000")
    with pytest.raises(InvalidId):
        await port.service.device("a/../b")


# -- find ------------------------------------------------------------------------------------
async def test_find_streams_each_clouds_matches_then_says_it_finished(port: Subject) -> None:
    device_id = port.devices.mqtt_twin
    results: list[FindResult] = [r async for r in port.service.find(device_id)]
    finished = [r for r in results if isinstance(r, BackendFinished)]
    assert sorted(f.backend for f in finished) == sorted(CLOUDS)
    matches = [r for r in results if isinstance(r, FindMatch) and r.key == device_id]
    assert matches and matches[0].new and not any(m.new for m in matches[1:])
    assert {s.backend for s in matches[-1].view.sources} == {"live", "fleet"}
    for backend in ("live", "fleet"):  # a cloud's match comes before it says it finished
        first_with = next(i for i, r in enumerate(results) if r in matches and backend in r.view.copies)
        finished_at = next(i for i, r in enumerate(results) if r in finished and r.backend == backend)
        assert first_with < finished_at


# -- history and tasks -----------------------------------------------------------------------
async def test_history_is_newest_first_with_who_changed_the_installation_status(port: Subject) -> None:
    history = await port.service.history(port.devices.thing)
    assert history.device == port.devices.thing
    stamps = [e.timestamp for e in history.entries if e.timestamp is not None]
    assert stamps == sorted(stamps, reverse=True)
    installs = [e for e in history.entries if e.kind is HistoryKind.INSTALLATION]
    assert installs and all(e.backend == "things" for e in installs)
    assert installs[0].summary == port.devices.thing_status.value
    assert all(e.who for e in installs)
    assert all(e.backend in CLOUDS for e in history.entries)


async def test_task_view_of_a_gateway_lists_its_tasks_newest_first(port: Subject) -> None:
    view = await port.service.task_view(port.devices.gateway_twin)
    assert "gateways" in {s.backend for s in view.sources}
    assert not view.errors
    epoch = datetime.min.replace(tzinfo=None)
    times = [(t.updated or t.created) for t in view.tasks]
    keys = [t.replace(tzinfo=None) if t is not None else epoch for t in times]
    assert keys == sorted(keys, reverse=True)


# -- writes, the outbox and the view ---------------------------------------------------------
async def test_a_fresh_outbox_counts_nothing(port: Subject) -> None:
    counts = await port.service.outbox.counts()
    assert (counts.queued, counts.sending, counts.failed, counts.conflict, counts.pending) == (0, 0, 0, 0, 0)
    assert await port.service.outbox.list_actions() == []


async def test_a_queued_status_change_shows_in_the_view_then_its_synced_value(writable_port: Subject) -> None:
    port = writable_port
    device_id = port.devices.thing
    wanted = (
        InstallationStatus.QUARANTINE
        if port.devices.thing_status is not InstallationStatus.QUARANTINE
        else InstallationStatus.INSTALLED
    )
    before = await port.service.device(device_id)
    assert before.device.installation_status is port.devices.thing_status and not before.pending

    record = await port.service.writes.set_installation_status(device_id, wanted, backend="things")
    assert record.state is ActionState.QUEUED
    assert record.action.precondition == {"status": port.devices.thing_status.value}
    counts = await port.service.outbox.counts()
    assert (counts.queued, counts.pending) == (1, 1)
    queued = await port.service.device(device_id)
    change = queued.pending_for("installation_status")
    assert change is not None and (change.value, change.state) == (wanted.value, "queued")
    assert [r.id for r in await port.service.outbox.pending_for(device_id)] == [record.id]

    outcome, events = await port.sync(record)
    assert outcome.synced, outcome.reason
    assert port.cloud_status(device_id) == wanted.value
    assert any(e.record.id == record.id and e.state is ActionState.DONE for e in events)
    views = await _views(port.service, device_id)
    # Written through: the read cache's view (the first one) already shows the synced value.
    assert views[0].device.installation_status is wanted
    synced = views[-1]
    assert synced.device.installation_status is wanted
    assert synced.pending == ()
    counts = await port.service.outbox.counts()
    assert (counts.queued, counts.pending, counts.failed, counts.conflict) == (0, 0, 0, 0)
    assert counts.last_sync is not None


async def test_a_write_to_a_cloud_without_the_capability_is_refused_before_it_queues(port: Subject) -> None:
    with pytest.raises(Exception, match="installation status") as refused:
        await port.service.writes.set_installation_status(port.devices.mqtt_twin, "installed", backend="live")
    assert not isinstance(refused.value, AssertionError)
    with pytest.raises(ConfigError, match="no backend named"):
        await port.service.writes.move_to_group(port.devices.thing, "roof", backend="nowhere")
    assert await port.service.outbox.list_actions() == []


async def test_a_command_sent_to_an_mqtt_device_shows_in_its_tasks_and_history(
    writable_port: Subject,
) -> None:
    port = writable_port
    device_id = port.devices.mqtt_twin
    await port.service.device(device_id)
    record = await port.service.writes.send_command(device_id, "reboot", backend="live")
    assert record.action.backend == "live" and record.state is ActionState.QUEUED
    outcome, _ = await port.sync(record)
    assert outcome.synced, outcome.reason
    tasks = await port.service.task_view(device_id)
    assert any(t.backend == "live" and t.type == "reboot" for t in tasks.tasks)
    history = await port.service.history(device_id)
    commands = [e for e in history.entries if e.kind is HistoryKind.COMMAND and e.summary == "reboot"]
    assert commands and all(e.backend == "live" for e in commands)


async def test_an_mqtt_devices_cloud_details_hold_its_config_licences_space_and_firmware(
    port: Subject,
) -> None:
    device_id = port.devices.mqtt_twin
    details = await port.service.cloud_details(device_id, "live")
    assert (details.backend, details.device) == ("live", device_id)
    sections = details.sections
    assert {"version", "last_updated"} <= set(sections["config"])
    assert sections["licenses"] and all(lic["id"] and lic["data"] for lic in sections["licenses"])
    assert sections["space_info"]["name"]
    assert "latest" in sections["firmware"]
    with pytest.raises(Unsupported, match="keeps no more about a device"):
        await port.service.cloud_details(port.devices.thing, "things")


async def test_a_device_once_looked_up_is_among_the_known_devices_with_its_clouds(port: Subject) -> None:
    device_id = port.devices.gateway_twin
    await port.service.device(device_id)
    known = {view.device.id: view async for view in port.service.known_devices()}
    assert set(known[device_id].copies) == {"gateways", "things"}
    assert known[device_id].stale


async def test_groups_list_a_clouds_groups_and_say_why_a_cloud_has_none(port: Subject) -> None:
    thing = await port.service.device(port.devices.thing)
    listing = await port.service.groups("things")
    assert listing.error is None and listing.fetched_at is None
    assert thing.device.group in {g.id for g in listing.groups}
    members = await port.service.group_members("things", str(thing.device.group))
    assert port.devices.thing in {m.id for m in members}
    none = await port.service.groups("sensors")
    assert none.groups == [] and none.error is not None and "groups" in none.error


async def test_a_clouds_listing_applies_its_own_filters_and_refuses_others_by_name(port: Subject) -> None:
    thing = await port.service.device(port.devices.thing)
    group = str(thing.device.group)
    listed = await port.service.list_devices(DeviceFilter(group=group), backend="things")
    assert port.devices.thing in {d.id for d in listed.devices}
    assert all(d.backend == "things" for d in listed.devices)
    with pytest.raises(Unsupported, match="release"):
        await port.service.list_devices(DeviceFilter(release=("1.2.3",)), backend="gateways")
    everywhere = await port.service.list_devices(DeviceFilter(group=group))
    assert set(everywhere.skipped) == {"sensors", "live", "fleet"}
    assert "gateways" not in everywhere.errors
    with pytest.raises(ConfigError):
        await port.service.list_devices(DeviceFilter(), backend="nowhere")


async def test_members_the_cache_lacks_come_with_their_status_and_online(port: Subject) -> None:
    thing = await port.service.device(port.devices.thing)
    members = await port.service.group_members("things", str(thing.device.group))
    assert members and all(m.online is not None and m.installation_status for m in members)


async def test_alerts_name_each_alerting_thing_with_its_alert_types(port: Subject) -> None:
    view = await port.service.alerts()
    things = [d for d in view.devices if d.backend == "things"]
    assert things and all(d.alerts for d in things)
    assert not view.errors


# -- diagnostics -----------------------------------------------------------------------------
async def test_a_gateways_diagnostics_hold_network_lora_logs_configs_and_apps(port: Subject) -> None:
    view = await port.service.diagnostics(port.devices.gateway_twin)
    assert view.device == port.devices.gateway_twin
    by_cloud = {d.backend: d.sections for d in view.details}
    assert set(by_cloud) == {"gateways"}
    gateway = by_cloud["gateways"]
    assert set(gateway) == {"network", "lora", "log", "config", "apps"}
    assert set(gateway["network"]) == {"cell", "ethernet", "wifi"}
    assert all({"rx_bytes", "tx_bytes", "days"} <= set(i) for i in gateway["network"].values())
    assert isinstance(gateway["lora"]["card"], bool)
    for upload in (gateway["log"], gateway["config"]):
        assert upload["uploaded"] is False or upload["download"].startswith(("http://", "https://"))
    assert all(app["id"] and app["version"] for app in gateway["apps"])
    assert "keeps no more" in view.skipped["things"] and not view.errors


async def test_an_mqtt_twins_diagnostics_hold_fleet_attributes_and_the_mqtt_snapshot(port: Subject) -> None:
    view = await port.service.diagnostics(port.devices.mqtt_twin)
    by_cloud = {d.backend: d.sections for d in view.details}
    assert set(by_cloud) == {"fleet", "live"}
    assert by_cloud["fleet"]["attributes"] and all(
        isinstance(k, str) for k in by_cloud["fleet"]["attributes"]
    )
    assert {"config", "licenses", "space_info", "firmware"} <= set(by_cloud["live"])
    only = await port.service.diagnostics(port.devices.mqtt_twin, backend="fleet")
    assert [d.backend for d in only.details] == ["fleet"]
    with pytest.raises(ConfigError, match="no backend named"):
        await port.service.diagnostics(port.devices.mqtt_twin, backend="nowhere")


async def test_an_online_mqtt_device_answers_a_config_request_other_clouds_cannot_ask(port: Subject) -> None:
    answer = await port.service.request_config(port.devices.mqtt_twin, "live")
    assert (answer.backend, answer.device) == ("live", port.devices.mqtt_twin)
    assert {"version", "last_updated"} <= set(answer.sections["config"])
    with pytest.raises(Unsupported, match="cannot ask a device"):
        await port.service.request_config(port.devices.mqtt_twin, "fleet")


async def test_a_gateways_last_log_upload_downloads_as_a_gzip_archive_other_clouds_keep_no_files(
    port: Subject,
) -> None:
    log = await port.service.download(port.devices.gateway_twin, "gateways", "log")
    assert (log.backend, log.device) == ("gateways", port.devices.gateway_twin)
    assert log.content[:2] == b"\x1f\x8b" and log.name.endswith(".tar.gz") and "/" not in log.name
    with pytest.raises(Unsupported, match="keeps no files"):
        await port.service.download(port.devices.mqtt_twin, "fleet", "log")


async def test_find_asks_the_clouds_for_a_status_a_group_and_a_cloud(port: Subject) -> None:
    status = port.devices.thing_status
    results = [r async for r in port.service.find("", status=status)]
    finished = [r for r in results if isinstance(r, BackendFinished)]
    # Only the cloud that keeps installation statuses is asked.
    assert [f.backend for f in finished] == ["things"]
    found = {r.key: r.view for r in results if isinstance(r, FindMatch)}
    assert port.devices.thing in found or finished[0].partial
    assert all(view.device.installation_status == status for view in found.values())
    listed = [r async for r in port.service.find("", cloud="fleet")]
    assert [r.backend for r in listed if isinstance(r, BackendFinished)] == ["fleet"]
    assert any(isinstance(r, FindMatch) for r in listed)
    grouped = [r async for r in port.service.find("", group="no such group")]
    assert not any(isinstance(r, FindMatch) for r in grouped)
    ends = [r for r in grouped if isinstance(r, BackendFinished)]
    assert {r.backend for r in ends} == {"things", "gateways"}
    assert all("no group 'no such group'" in (r.note or "") for r in ends)


async def test_a_device_created_then_deleted_on_fleet_comes_and_goes(writable_port: Subject) -> None:
    port = writable_port
    fields = {"owner_ref": "tech-7", "hardware_version": "hwrev1"}
    with pytest.raises(Unsupported):  # things keeps no device records a technician makes
        await port.service.writes.create_device("things", "CONTRACT-1", fields)
    with pytest.raises(ConfigError, match="hardware_version"):  # refused unasked, never queued
        await port.service.writes.create_device("fleet", "CONTRACT-1", {"owner_ref": "tech-7"})
    assert await port.service.outbox.list_actions() == []
    created = await port.service.writes.create_device("fleet", "CONTRACT-1", fields)
    assert (created.action.device, created.action.backend, created.state) == (
        "CONTRACT-1",
        "fleet",
        ActionState.QUEUED,
    )
    outcome, _ = await port.sync(created)
    assert outcome.synced, outcome.reason
    view = await port.service.device("CONTRACT-1")
    assert "fleet" in view.copies
    deleted = await port.service.writes.delete_device("fleet", "CONTRACT-1")
    outcome, _ = await port.sync(deleted)
    assert outcome.synced, outcome.reason
    with pytest.raises(DeviceNotFound):
        await port.service.device("CONTRACT-1")
