"""Gateway diagnostics read from document 002's own samples and the shapes a JSON:API server
may send instead (links under ``data``, the link inside the file object, no upload at all)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from test_devicehq_errors import FakeDeviceHQ, _errors, connector

from fieldtui.connectors import _wire_devicehq as wire
from fieldtui.connectors.devicehq import forget_sessions
from fieldtui.connectors.devicehq_diagnostics import (
    api_path,
    file_name,
    lora_section,
    network_section,
    uploaded_file,
)
from fieldtui.core.errors import NotFound, Rejected
from fieldtui.core.outline import outline

#: Document 002's "Logs" sample.
LOGS: dict[str, Any] = {
    "id": "77778211",
    "type": "devices",
    "attributes": {
        "log": {
            "uploaded_at": "09-23-16 11:12:29UTC",
            "md5sum": "69ed906fbec08f0ee7d66550e0f590ec",
            "description": "09-23-16_11:12:29UTC.zip",
        }
    },
    "links": {"self": "https://devicehq.com/api/v2/files/57e50e1d11c3a8fd12711fff"},
}
#: Document 002's "Configs" sample.
CONFIGS: dict[str, Any] = {
    "id": "77778332",
    "type": "devices",
    "attributes": {
        "config": {"md5sum": "ADFA1341234131341234AFDDDD", "name": "config22", "description": "Config #22"}
    },
    "links": {"self": "https://devicehq.com/api/v2/files/5894cd7f95b54a75e732f952"},
}


def test_the_documents_log_and_config_samples_give_their_download_links() -> None:
    log = uploaded_file(LOGS, "log")
    assert log is not None and log["uploaded"] is True
    assert log["download"] == "https://devicehq.com/api/v2/files/57e50e1d11c3a8fd12711fff"
    assert log["md5sum"] == "69ed906fbec08f0ee7d66550e0f590ec"
    config = uploaded_file(CONFIGS, "config")
    assert config is not None and config["name"] == "config22"
    assert config["download"].endswith("/5894cd7f95b54a75e732f952")


def test_a_json_api_server_s_links_under_data_or_in_the_file_are_read_too() -> None:
    under_data = {"data": {**LOGS, "links": {"self": {"href": "https://h/files/1"}}}}
    assert (uploaded_file(under_data, "log") or {})["download"] == "https://h/files/1"
    inside = {"attributes": {"config": {"name": "c", "url": "https://h/files/2"}}}
    assert (uploaded_file(inside, "config") or {})["download"] == "https://h/files/2"


def test_no_upload_is_said_and_a_wrong_shape_is_refused() -> None:
    assert uploaded_file({"id": "1", "attributes": {"log": None}}, "log") == {"uploaded": False}
    assert uploaded_file({"id": "1", "attributes": {}}, "config") == {"uploaded": False}
    assert uploaded_file({"id": "1", "attributes": {"log": "yes"}}, "log") is None
    assert uploaded_file(["not", "an", "object"], "log") is None


def test_network_usage_sums_each_interface_and_keeps_each_day() -> None:
    sample = {
        "attributes": {
            "network_usages": [
                {
                    "2017-01-16": {
                        "cell": {"rx_bytes": 20997455, "tx_bytes": 35255516},
                        "ethernet": {"rx_bytes": 4, "tx_bytes": 5},
                    }
                },
                {"2017-01-15": {"cell": {"rx_bytes": 1, "tx_bytes": 2}}},
            ]
        }
    }
    usages = wire.network_from(sample) or []
    section = network_section({"cell": usages, "ethernet": usages})
    assert section["cell"]["rx_bytes"] == 20997456 and section["cell"]["tx_bytes"] == 35255518
    assert [d["day"] for d in section["cell"]["days"]] == ["2017-01-15", "2017-01-16"]
    assert section["ethernet"]["days"] == [{"day": "2017-01-16", "rx_bytes": 4, "tx_bytes": 5}]
    lines = [line.render() for line in outline(section)]
    assert "  rx_bytes: 21.0 MB (20997456)" in lines


def test_a_gateway_without_a_lora_card_says_so() -> None:
    assert lora_section(wire.lora_from({"attributes": {"lora": {}}}) or wire.LoraInfo()) == {"card": False}
    card = lora_section(
        wire.lora_from(
            {"attributes": {"lora": {"nodes": [{"node_addr": "00:00:00:01", "class": "A"}], "running": True}}}
        )
        or wire.LoraInfo()
    )
    assert card["card"] is True and card["running"] is True
    assert card["nodes"][0]["node_addr"] == "00:00:00:01"


# -- one route failing, over a scripted transport (the simulator cannot be made to do it) -----
@pytest.fixture(autouse=True)
def _fresh_sessions() -> Iterator[None]:
    forget_sessions()
    yield
    forget_sessions()


def _fake_gateway(refuse: str | None = None, missing: bool = False) -> FakeDeviceHQ:
    def route(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if missing:
            return httpx.Response(404, json=_errors("Device not found"))
        if refuse and path.endswith(f"/{refuse}"):
            return httpx.Response(423, json=_errors("This model has no LoRa card slot"))
        if path.endswith("/logs"):
            return httpx.Response(200, json=LOGS)
        if path.endswith("/configs"):
            return httpx.Response(200, json=CONFIGS)
        if path.endswith("/network"):
            return httpx.Response(200, json={"attributes": {"network_usages": []}})
        if path.endswith("/lora"):
            return httpx.Response(200, json={"attributes": {"lora": {}}})
        if path.endswith("/apps"):
            return httpx.Response(200, json={"data": {"attributes": {"apps": []}}})
        return httpx.Response(404, json=_errors("no route"))

    return FakeDeviceHQ(route)


async def test_one_refused_route_is_that_sections_error_while_the_others_show() -> None:
    sections = await connector(_fake_gateway(refuse="lora")).details("MTS-JP-003")
    assert sections["lora"] == {"error": "This model has no LoRa card slot"}
    assert sections["log"]["download"] == "https://devicehq.com/api/v2/files/57e50e1d11c3a8fd12711fff"
    assert sections["apps"] == [] and set(sections["network"]) == {"cell", "ethernet", "wifi"}


async def test_a_device_every_route_denies_is_not_found_not_five_errors() -> None:
    with pytest.raises(NotFound, match="Device not found"):
        await connector(_fake_gateway(missing=True)).details("MTS-JP-404")


def test_a_download_link_is_followed_with_the_session_only_on_the_apis_own_host() -> None:
    api = "https://devicehq.com/api/v2"
    assert api_path("https://devicehq.com/api/v2/files/57e5", api) == "/files/57e5"
    assert api_path("https://DeviceHQ.com/api/v2/files/57e5?x=1", api) == "/files/57e5?x=1"
    assert api_path("https://files.devicehq.com/api/v2/files/57e5", api) is None
    assert api_path("http://devicehq.com/api/v2/files/57e5", api) is None
    assert api_path("https://devicehq.com/api/v2evil/files/57e5", api) is None
    assert api_path("https://devicehq.com/other/files/57e5", api) is None


def test_a_downloaded_files_name_is_a_plain_name_never_a_path() -> None:
    assert (
        file_name('attachment; filename="992557995-log.tar.gz"', "992557995", "log") == "992557995-log.tar.gz"
    )
    assert file_name('attachment; filename="../../etc/passwd"', "9", "log") == "passwd"
    assert file_name("attachment; filename=..\\..\\boot.ini", "9", "log") == "boot.ini"
    assert file_name('attachment; filename=".."', "9", "config") == "9-config.tar.gz"
    assert file_name(None, "9", "config") == "9-config.tar.gz"


async def test_a_link_to_another_host_is_refused_before_anything_is_sent_there() -> None:
    elsewhere = {**LOGS, "links": {"self": "https://cdn.example/files/57e5"}}

    def route(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=elsewhere)

    fake = FakeDeviceHQ(route)
    with pytest.raises(Rejected, match="points outside the DeviceHQ API") as refused:
        await connector(fake).download("MTS-JP-003", "log")
    assert refused.value.hint == "open the link in a browser signed in to DeviceHQ"
    assert all(r.url.host == "dhq.example" for r in fake.requests)


async def test_no_upload_to_download_says_when_the_gateway_uploads_one() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "77778211", "type": "devices", "attributes": {"log": None}})

    with pytest.raises(NotFound, match="has uploaded no log lately") as missing:
        await connector(FakeDeviceHQ(route)).download("77778211", "log")
    assert missing.value.hint and "next" in missing.value.hint
