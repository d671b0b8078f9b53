"""Device records and cloud settings are applied exactly once, judged by the simulator's record.

A create (fleet) or a register (DeviceHQ) whose answer was lost must not be sent twice: the
check before a resend finds the device the first attempt made. A delete whose answer was lost
is done when the device is gone. A cloud setting is done when the device reports it.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from outbox_doubles import drain_all

from fieldtui.core.actions import ActionState
from fieldtui.service import device_records
from fieldtui.service.writes import open_outbox

#: How long a drain loop may take at most (generous: the machine may be loaded).
PATIENCE = 120.0
UUID = "0123456789abcdef0123456789ABCDEF"


def _mutations(sim: Any, backend: str, method: str, pattern: str) -> list[dict[str, Any]]:
    log = sim.admin("GET", f"/_sim/mutations?backend={backend}").json()
    return [m for m in log if m["method"] == method and re.fullmatch(pattern, m["path"])]


async def test_create_register_and_delete_whose_answers_were_lost_are_applied_once(
    sim_setup: Any, sim_clean: Any
) -> None:
    # An offline gateway: it does not check in again (which would recreate it) during the test.
    gateway = sorted(
        (d for d in sim_clean.fleet.of("devicehq").values() if not d.online), key=lambda d: d.id
    )[0]
    fleet_device = sorted(sim_clean.fleet.of("fleet"))[3]
    async with open_outbox(sim_setup.loaded(), offline=True) as outbox:
        await outbox.connectors["gateways"].get_device(gateway.id)  # the session first: its POST is a change
        writes = outbox.writes
        created = await writes.create_device(
            "fleet", "CW-LOST-1", {"owner_ref": "tech-7", "hardware_version": "hwrev1"}
        )
        registered = await writes.create_device("gateways", "CW-LOST-2", {"uuid": UUID})
        deleted = await writes.delete_device("gateways", gateway.id)
        gone = await writes.delete_device("fleet", fleet_device)
        for backend in ("fleet", "gateways"):
            assert sim_clean.admin("PUT", f"/_sim/faults/{backend}", {"answer_lost": 1.0}).status_code == 200
        await drain_all(outbox, PATIENCE)
        records = [await outbox.store.get(r.id) for r in (created, registered, deleted, gone)]
    assert [r.state if r else None for r in records] == [ActionState.DONE] * 4
    assert all(r is not None and r.attempts >= 2 for r in records), "each answer was lost, then checked"
    assert len(_mutations(sim_clean, "fleet", "POST", r"/fleet/api/v0/projects/demo/devices")) == 1
    assert len(_mutations(sim_clean, "gateways", "POST", r"/devicehq/api/v2/devices/register")) == 1
    path = rf"/devicehq/api/v2/devices/{gateway.id}"
    assert len(_mutations(sim_clean, "gateways", "DELETE", path)) == 1
    assert (
        len(_mutations(sim_clean, "fleet", "DELETE", rf"/fleet/api/v0/projects/demo/devices/{fleet_device}"))
        == 1
    )
    assert sim_clean.admin("GET", "/_sim/inspect/fleet/CW-LOST-1").json()["device"]["owner_ref"] == "tech-7"


async def test_a_create_that_finds_someone_elses_device_is_a_conflict_not_an_overwrite(
    sim_setup: Any, sim_clean: Any
) -> None:
    serial = sorted(sim_clean.fleet.of("fleet"))[0]
    async with open_outbox(sim_setup.loaded(), offline=True) as outbox:
        fleet = outbox.connectors["fleet"]
        record = await outbox.writes.create_device(
            "fleet", serial, {"owner_ref": "not-the-owner", "hardware_version": "hwrev9"}
        )
        found = await device_records.check(fleet, record.action)
        assert found is not None and not found.applied and "other values" in found.message
        assert await outbox.engine.check_applied(record) is False


async def test_a_cloud_setting_is_done_once_the_device_reports_it(sim_setup: Any, sim_clean: Any) -> None:
    device = next(d for d in sorted(sim_clean.fleet.of("mqtt").values(), key=lambda d: d.id) if d.online)
    async with open_outbox(sim_setup.loaded(), offline=True) as outbox:
        live = outbox.connectors["live"]
        record = await outbox.writes.set_cloud_setting(device.id, "reporting_interval", 300, backend="live")
        assert await device_records.check(live, record.action) is None, "not set yet: send it"
        await drain_all(outbox, PATIENCE)
        done = await outbox.store.get(record.id)
        assert done is not None and done.state is ActionState.DONE
        # The cloud takes the published setting on its own loop, a moment after the broker
        # acknowledged it (on a loaded machine, after the drain had returned).
        devices = sim_clean.simulator.mqtt_devices
        deadline = time.monotonic() + 10
        while devices.inspect(device.id)["cloud_settings"] != {"reporting_interval": 300}:
            assert time.monotonic() < deadline, devices.inspect(device.id)["cloud_settings"]
            await asyncio.sleep(0.05)
        found = await device_records.check(live, record.action)
        assert found is not None and found.applied
        assert await outbox.engine.check_applied(done) is True
