"""The Diagnostics tab end to end on the real simulator (loopback HTTP and mosquitto): what a
technician reads there is what the simulated clouds hold for the device."""

from __future__ import annotations

from typing import Any

from test_end_to_end import SIZE, inspect, scan
from ui_helpers import wait_for

from fieldtui.ui.screens.device_diagnostics import DiagnosticsPane


def _texts(pane: DiagnosticsPane) -> list[str]:
    return [line.text for line in pane.table.objects]


async def test_a_gateways_apps_and_upload_links_and_an_mqtt_devices_own_config(
    make_app: Any, sim: Any
) -> None:
    gateway = sorted(d.id for d in sim.fleet.of("devicehq").values() if d.online and not d.also_in)[0]
    mqtt = sorted(d.id for d in sim.fleet.of("mqtt").values() if d.online and not d.also_in)[0]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await scan(pilot, gateway)
        await wait_for(pilot, lambda: screen.view is not None, what="the gateway", timeout=60)
        await pilot.press("d")
        pane = screen.query_one(DiagnosticsPane)
        await wait_for(pilot, lambda: "Apps" in _texts(pane), what="the gateway's diagnostics", timeout=60)
        texts = _texts(pane)
        for app_id, version in inspect(sim, "gateways", gateway)["apps"].items():
            assert any(t.startswith(f"- id={app_id},") and f"version={version}" in t for t in texts)
        links = [t for t in texts if t.startswith("download: ")]
        assert all(link.removeprefix("download: ").startswith(sim.base_url) for link in links)

        await pilot.press("escape")
        screen = await scan(pilot, mqtt)
        await wait_for(pilot, lambda: screen.view is not None, what="the MQTT device", timeout=60)
        await pilot.press("d")
        pane = screen.query_one(DiagnosticsPane)
        await wait_for(pilot, lambda: "Licenses" in _texts(pane), what="the MQTT snapshot", timeout=60)
        await pilot.press("a")
        await wait_for(
            pilot, lambda: "Device config" in _texts(pane), what="the device's own config", timeout=60
        )
        recorded = sim.simulator.mqtt_devices.inspect(mqtt)
        after = _texts(pane)[_texts(pane).index("Device config") :]
        assert f"version: {recorded['config']['version']}" in after
