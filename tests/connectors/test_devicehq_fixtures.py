"""Document 002's example bodies, parsed into the core values a technician sees."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fieldtui.connectors import _wire_devicehq as wire
from fieldtui.connectors.devicehq import TaskType, task_attributes
from fieldtui.core.errors import Rejected
from fieldtui.core.models import Location, TaskState

FIXTURES = Path(__file__).parent / "fixtures" / "devicehq"


def load(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_every_fixture_is_json() -> None:
    files = sorted(FIXTURES.glob("*.json"))
    assert len(files) >= 40
    for path in files:
        json.loads(path.read_text())


def test_single_device_maps_to_core_fields() -> None:
    checked_in = datetime(2015, 12, 15, 20, 40, tzinfo=UTC)
    device = wire.device_from(load("device"), backend="gateways", now=checked_in)
    assert device is not None
    assert device.id == "MTS-JP-003"
    assert device.model == "MTR-H5"
    assert device.firmware == "3.0.9"  # software_version when there is no firmware
    assert device.location == Location(lat=-27.6234, lon=93.2)
    assert device.group == "Group 00X"
    assert device.rssi == -103
    assert device.name == "East wing of library building"
    assert device.online is True  # last check-in 10 minutes before "now"
    assert device.last_seen == datetime(2015, 12, 15, 20, 30, 13, 107000, tzinfo=UTC)


def test_device_raw_keeps_payload_but_not_the_session_token() -> None:
    device = wire.device_from(load("device"), backend="gateways")
    assert device is not None
    assert "token" not in device.raw
    assert "i9eTvNmbinALex" not in json.dumps(device.raw)
    assert device.raw["result"] == "ok"
    assert device.raw["data"]["attributes"]["cell_radio"]["rssi"] == -103


def test_device_checked_in_long_ago_is_offline() -> None:
    device = wire.device_from(load("device"), backend="gateways")
    assert device is not None and device.online is False


def test_device_list_item_uses_firmware_and_serial_as_name() -> None:
    items = wire.resources(load("devices_list"))
    assert items is not None and len(items) == 1
    device = wire.device_from({"data": items[0]}, backend="gateways")
    assert device is not None
    assert device.id == "MTS-JP-103"
    assert device.name == "MTS-JP-103"  # empty description
    assert device.firmware == "3.0.9"
    assert device.group is None  # "" means no group
    assert device.rssi == -107
    assert device.location is None  # "position": null and no location_description
    assert load("devices_list")["meta"] == {"skip": 0, "limit": 1, "total": 67}


def test_signal_history_reads_the_rssii_spelling() -> None:
    samples = wire.signal_samples_from(load("signal_strength"))
    assert samples is not None
    assert [s.rssi for s in samples] == [-77, -71]
    assert samples[0].timestamp == datetime(2017, 1, 9, 16, 2, 18, 626000, tzinfo=UTC)
    assert wire.signal_metrics(samples[1]) == {"rssi": -71}


def test_check_in_history() -> None:
    check_ins = wire.check_ins_from(load("check_ins"))
    assert check_ins is not None
    assert [c.action for c in check_ins] == ["upload_log", "update"]
    assert check_ins[0].result == "200" and check_ins[0].ssl is True and check_ins[0].duration == 0
    metrics = wire.check_in_metrics(check_ins[1])
    assert metrics["check_in"] is True and metrics["check_in_action"] == "update"


def test_network_usage_per_day_and_interface() -> None:
    usages = wire.network_from(load("network"))
    assert usages is not None
    assert [(u.day, u.interface, u.rx_bytes) for u in usages] == [
        ("2017-01-15", "cell", 0),
        ("2017-01-16", "cell", 20997455),
        ("2017-01-16", "ethernet", 4236739667),
    ]


def test_lora_card() -> None:
    info = wire.lora_from(load("lora"))
    assert info is not None
    assert info.enabled is True and info.running is True
    assert len(info.nodes) == 1
    node = info.nodes[0]
    assert node.dev_eui == "00-80-00-00-00-00-9c-3d"
    assert node.node_class == "A"
    assert node.rss_i_avg == -42
    assert info.link_statistics["rx_pkts"] == 123616


def test_history_bodies_without_data_wrapper_are_understood() -> None:
    assert wire.resource(load("signal_strength")) is not None
    assert wire.resource({"meta": {}}) is None


@pytest.mark.parametrize(
    ("fixture", "task_type", "raw_state", "state"),
    [
        ("task_install_app_response", "INSTALL_APP", "", TaskState.QUEUED),
        ("task_install_app_version_response", "INSTALL_APP", "queued", TaskState.QUEUED),
        ("task_install_app_version_config_response", "INSTALL_APP", "queued", TaskState.QUEUED),
        ("task_uninstall_app_response", "UNINSTALL_APP", "queued", TaskState.QUEUED),
        ("task_software_upgrade_response", "SOFTWARE_UPGRADE", "queued", TaskState.QUEUED),
        ("task_radio_firmware_upgrade_response", "RADIO_FIRMWARE_UPGRADE", "queued", TaskState.QUEUED),
        ("task_config_upgrade_response", "CONFIG_UPGRADE", "queued", TaskState.QUEUED),
        ("task_install_configs_response", "INSTALL_CONFIGS", "queued", TaskState.QUEUED),
        ("task_detail", "INSTALL_APP", "queued", TaskState.QUEUED),
        ("task_cancel", "INSTALL_APP", "cancelled", TaskState.CANCELLED),
    ],
)
def test_task_bodies_map_to_tasks(fixture: str, task_type: str, raw_state: str, state: TaskState) -> None:
    item = wire.resource(load(fixture))
    assert item is not None
    task = wire.task_from(item, backend="gateways", device="996082621")
    assert task is not None
    assert task.type == task_type
    assert task.raw_state == raw_state
    assert task.state is state
    assert task.created is not None and task.created.tzinfo is not None


def test_task_list_with_its_missing_comma_repaired() -> None:
    items = wire.resources(load("tasks_list"))
    assert items is not None
    task = wire.task_from(items[0], backend="gateways", device="996874991")
    assert task is not None
    assert (task.id, task.type, task.state) == ("60d0a5eb31eddd285865a781", "UNINSTALL_APP", TaskState.QUEUED)


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("queued", TaskState.QUEUED),
        ("pending", TaskState.RUNNING),
        ("in progress", TaskState.RUNNING),
        ("IN_PROGRESS", TaskState.RUNNING),
        ("running", TaskState.RUNNING),
        ("completed", TaskState.DONE),
        ("success", TaskState.DONE),
        ("failed", TaskState.FAILED),
        ("error", TaskState.FAILED),
        ("cancelled", TaskState.CANCELLED),
        ("canceled", TaskState.CANCELLED),
        ("something new", TaskState.QUEUED),
    ],
)
def test_task_states_are_normalised(word: str, state: TaskState) -> None:
    assert wire.task_state(word) is state


@pytest.mark.parametrize(
    ("request_fixture", "kind"),
    [
        ("task_install_app_request", TaskType.INSTALL_APP),
        ("task_install_app_version_request", TaskType.INSTALL_APP),
        ("task_install_app_version_config_request", TaskType.INSTALL_APP),
        ("task_uninstall_app_request", TaskType.UNINSTALL_APP),
        ("task_software_upgrade_request", TaskType.SOFTWARE_UPGRADE),
        ("task_radio_firmware_upgrade_request", TaskType.RADIO_FIRMWARE_UPGRADE),
        ("task_config_upgrade_request", TaskType.CONFIG_UPGRADE),
        ("task_install_configs_request", TaskType.INSTALL_CONFIGS),
    ],
)
def test_task_requests_are_rebuilt_exactly(request_fixture: str, kind: TaskType) -> None:
    documented = load(request_fixture)["data"]["attributes"]
    params = {k: v for k, v in documented.items() if k != "type"}
    assert task_attributes(kind.value.lower(), params) == documented


def test_task_attributes_refuse_what_the_type_does_not_take() -> None:
    with pytest.raises(Rejected, match="needs firmware_id"):
        task_attributes("SOFTWARE_UPGRADE", {})
    with pytest.raises(Rejected, match="takes no app_id"):
        task_attributes("SOFTWARE_UPGRADE", {"firmware_id": "x", "app_id": "y"})
    with pytest.raises(Rejected, match="unknown DeviceHQ task type"):
        task_attributes("REBOOT", {})


def test_apps_firmwares_and_configurations() -> None:
    apps = wire.listed(load("apps"), wire.App)
    assert apps is not None and apps[0].name == "app_30225500"
    detail = wire.app_from(load("app_detail"))
    assert detail is not None
    assert detail.platform == "python"
    assert [v.version for v in detail.versions] == ["9.6.3"]
    assert detail.app_configs[0].description == "description for app config version 0.3.6"
    firmwares = wire.listed(load("device_firmwares"), wire.Firmware)
    assert firmwares is not None and (firmwares[0].version, firmwares[0].model) == ("4.8", "MTCDT")
    radios = wire.listed(load("radio_firmwares"), wire.Firmware)
    assert radios is not None and radios[0].radio_module == "HE910-D"
    configs = wire.listed(load("device_configurations"), wire.DeviceConfiguration)
    assert configs is not None and configs[0].model == "MTCDT-H5-210L"
    installed = wire.installed_apps_from(load("device_apps"))
    assert installed is not None and installed[0].status == "Active"


@pytest.mark.parametrize(
    ("given", "path_ref"),
    [
        ("MTS-JP-003", "MTS-JP-003"),
        ("12345678", "12345678"),
        ("776334cb-8e42-4839-835c-899d075d63ae", "776334cb8e424839835c899d075d63ae"),
        (" 776334CB 8E42 4839 835C 899D075D63AE ", "776334cb8e424839835c899d075d63ae"),
    ],
)
def test_device_refs_keep_serials_and_clean_uuids(given: str, path_ref: str) -> None:
    assert wire.normalise_device_ref(given) == path_ref


def test_locations_are_checked() -> None:
    assert wire.location_from([44.211, -92.12]) == Location(lat=44.211, lon=-92.12)
    assert wire.location_from("44.211, -92.12") == Location(lat=44.211, lon=-92.12)
    assert wire.location_from([200, 0]) is None
    assert wire.location_from("East wing") is None
    assert wire.location_from(None) is None


def test_failed_task_detail_carries_the_device_words() -> None:
    item = {
        "id": "t1",
        "type": "tasks",
        "attributes": {"function": "SOFTWARE_UPGRADE", "state": "failed", "return_code": 5, "error": None},
    }
    task = wire.task_from(item, backend="gateways", device="1")
    assert task is not None and task.state is TaskState.FAILED and task.detail == "return code 5"
    item["attributes"]["error"] = "Device reported: download checksum mismatch"
    task = wire.task_from(item, backend="gateways", device="1")
    assert task is not None and task.detail == "Device reported: download checksum mismatch"
