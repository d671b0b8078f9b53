"""``fieldtui devices [--cloud C] [filters] [--json]``: the clouds' own device listings.

Each cloud applies the filters it understands (fleet: release, owner, hardware version, last
seen since/until, sort; DeviceHQ: ``--query``, ``--group``; things: ``--group``, ``--status``);
``--query`` finds what the lookup finds (a cloud without a search of its own matches ids and
names on this side: fleet serials, owners and nicknames, things tuids, MQTT what the broker
retains, a sensor's exact serial). The lookup's ``cloud:``, ``group:``, ``status:`` are
``--cloud``, ``--group``, ``--status``. Asked of one cloud, a
filter it cannot apply is refused (exit 2); asked of all, the clouds that cannot apply it are
named on stderr and left out.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from fieldtui.commands import _output as out
from fieldtui.commands._session import session, warn
from fieldtui.config import load_config
from fieldtui.core.errors import ConfigError, NoBackendReachable
from fieldtui.core.filters import DeviceFilter
from fieldtui.core.models import Device, InstallationStatus
from fieldtui.service.api import DeviceListing


def device_filter(args: argparse.Namespace) -> DeviceFilter:
    if args.limit < 0:
        raise ConfigError("--limit must be 0 (all) or more")
    return DeviceFilter(
        query=args.query or None,
        group=args.group or None,
        installation_status=InstallationStatus(args.status) if args.status else None,
        release=tuple(args.release),
        owner=tuple(args.owner),
        hardware_version=tuple(args.hardware_version),
        last_seen_since=args.since,
        last_seen_until=args.until,
        sort=args.sort or None,
        limit=args.limit or None,
    )


def run(args: argparse.Namespace) -> int:
    loaded = load_config(args.config, args.profile)
    wanted = device_filter(args)

    async def listing() -> DeviceListing:
        async with session(loaded, offline=bool(args.offline)) as service:
            return await service.list_devices(wanted, backend=args.cloud)

    result = asyncio.run(listing())
    asked = 1 if args.cloud is not None else len(loaded.backends)
    if len(result.skipped) >= asked:
        reasons = "; ".join(f"{name}: {why}" for name, why in result.skipped.items())
        raise ConfigError(f"no cloud can list devices with these filters ({reasons})")
    if not result.devices and result.errors and len(result.errors) + len(result.skipped) >= asked:
        reasons = "; ".join(f"{name}: {why}" for name, why in result.errors.items())
        raise NoBackendReachable(f"no cloud could be listed ({reasons})")
    if args.json:
        print(out.dumps(listing_json(result), indent=2))
    else:
        for line in listing_lines(result.devices):
            print(line)
    for name, why in result.skipped.items():
        warn(f"{name}: not listed: {why}")
    for name, why in result.partial.items():
        warn(f"{name}: partial: {why}")
    for name, why in result.errors.items():
        warn(f"{name}: {why}")
    return 0


def device_json(device: Device) -> dict[str, Any]:
    return device.model_dump(mode="json")


def listing_json(result: DeviceListing) -> dict[str, Any]:
    return {
        "devices": [device_json(d) for d in result.devices],
        "errors": result.errors,
        "skipped": result.skipped,
        "partial": result.partial,
    }


def listing_lines(devices: list[Device]) -> list[str]:
    if not devices:
        return ["no devices"]
    # 80 columns: the name a technician searched by stays beside the id.
    lines = [
        f"{out.pad('CLOUD', 8)} {out.pad('DEVICE', 17)} {out.pad('NAME', 11)} {out.pad('ON', 3)} "
        f"{out.pad('FIRMWARE', 9)} {out.pad('GROUP', 9)} LAST SEEN"
    ]
    for d in devices:
        online = {True: "yes", False: "no", None: "-"}[d.online]
        name = d.name if d.name and d.name != d.id else "-"
        lines.append(
            out.clean_line(
                f"{out.pad(d.backend, 8)} {out.pad(d.id, 17)} {out.pad(name, 11)} {out.pad(online, 3)} "
                f"{out.pad(d.firmware or '-', 9)} {out.pad(d.group or '-', 9)} {out.when(d.last_seen)}"
            )
        )
    return lines
