"""`fieldtui demo` opens on devices worth trying, not on an empty list."""

from __future__ import annotations

from fieldtui.commands.demo import sample_devices
from fieldtui.sim.fleet import generate_fleet


def test_the_demo_offers_one_device_per_cloud_the_twins_and_an_offline_one() -> None:
    fleet = generate_fleet(seed=1, size=200)
    samples = dict(sample_devices(fleet))
    words = " ".join(samples.values())
    for kind in ("mysensor", "things", "devicehq", "fleet", "mqtt"):
        assert f"{kind} device" in words
    assert "DeviceHQ and things" in words and "also in the fleet" in words and "offline" in words
    for device_id in samples:
        assert any(
            device_id in fleet.of(kind) for kind in ("mysensor", "things", "devicehq", "fleet", "mqtt")
        )
