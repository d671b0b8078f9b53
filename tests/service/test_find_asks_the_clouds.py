"""The lookup's find over the real session and the simulated clouds: names in every cloud that
keeps them, and the filters cloud:, group:, status: answered by the clouds' own listings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fieldtui.config import load_config
from fieldtui.core.models import InstallationStatus
from fieldtui.service.api import BackendFinished, FieldService, FindMatch, SyncMode
from fieldtui.service.session import open_service


@pytest.fixture
async def service(
    sim_clean: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FieldService]:
    config_path, _ = sim_clean.write_config(tmp_path / "config.toml")
    for name, value in sim_clean.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FIELDTUI_DATA_DIR", str(tmp_path / "data"))
    opened = await open_service(
        load_config(str(config_path), None), sync=SyncMode.NONE, path=tmp_path / "o.db"
    )
    try:
        yield opened
    finally:
        await opened.aclose()


async def find(
    service: FieldService, query: str, **filters: Any
) -> tuple[dict[str, set[str]], dict[str, BackendFinished]]:
    """Device id -> the clouds it was found in, and each cloud's end of the search."""
    found: dict[str, set[str]] = {}
    finished: dict[str, BackendFinished] = {}
    async for item in service.find(query, **filters):
        if isinstance(item, FindMatch):
            found[item.key] = {s.backend for s in item.view.sources}
        else:
            finished[item.backend] = item
    return found, finished


async def test_a_name_finds_mqtt_devices_and_things_say_they_keep_no_names(
    service: FieldService, sim_clean: Any
) -> None:
    named = {d.id for d in sim_clean.fleet.of("mqtt").values() if "lab" in d.name.lower() and d.online}
    deadline = time.monotonic() + 30
    while True:  # the simulator retains each online device's name shortly after it starts
        found, finished = await find(service, "Lab")
        if named <= set(found) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert named and named <= set(found)
    assert all("live" in clouds for device, clouds in found.items() if device in named)
    assert set(finished) == {"sensors", "things", "gateways", "fleet", "live"}
    assert finished["things"].count == 0 and "no names" in (finished["things"].note or "")
    assert "exact serials" in (finished["sensors"].note or "")


async def test_a_group_with_spaces_is_listed_by_the_cloud_that_keeps_it(
    service: FieldService, sim_clean: Any
) -> None:
    gateways = sim_clean.fleet.of("devicehq").values()
    group = next(d.group for d in gateways if d.group and " " in d.group)
    expected = {d.id for d in gateways if d.group == group}
    found, finished = await find(service, "", group=group)
    assert set(found) == expected
    # Only the clouds that keep groups are asked; the others cannot hold a member.
    assert set(finished) == {"things", "gateways"}
    assert finished["gateways"].error is None and finished["things"].error is None


async def test_a_status_is_asked_of_the_cloud_that_keeps_installation_statuses(
    service: FieldService, sim_clean: Any
) -> None:
    expected = {d.id for d in sim_clean.fleet.of("things").values() if d.installation_status == "retired"}
    found, finished = await find(service, "", status=InstallationStatus.RETIRED)
    assert set(finished) == {"things"}
    # The things API lists no statuses: each is read, within a time budget a loaded machine
    # may spend; a listing cut short says so.
    assert found and set(found) <= expected
    assert set(found) == expected or "partial" in (finished["things"].partial or "")


async def test_cloud_alone_is_that_clouds_own_listing(service: FieldService, sim_clean: Any) -> None:
    things = set(sim_clean.fleet.of("things"))
    found, finished = await find(service, "", cloud="things")
    assert set(finished) == {"things"}
    assert found and set(found) <= things
    assert set(found) == things or "partial" in (finished["things"].partial or "")
    _, nowhere = await find(service, "", cloud="bogus")
    assert nowhere == {}


async def test_a_cloud_that_is_down_is_said_not_asked(service: FieldService, sim_clean: Any) -> None:
    assert sim_clean.admin("PUT", "/_sim/faults/things", json={"unreachable": True}).status_code == 200
    thing = next(iter(sim_clean.fleet.of("things")))
    found, finished = await find(service, thing)
    assert thing not in found
    assert finished["things"].error is not None
    assert all(finished[name].error is None for name in ("sensors", "gateways", "fleet", "live"))
    _, listed = await find(service, "", status=InstallationStatus.INSTALLED)
    assert listed["things"].error is not None
