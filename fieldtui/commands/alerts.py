"""``fieldtui alerts [--json]``: what is alerting now across the clouds.

Things keeps its own alerting list and count (each alerting thing's active alert types are
read too); for clouds that keep none, the devices fieldtui knows are read (bounded) and their
own alerts shown: MQTT maintenance and firmware waiting, mysensor error states.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from fieldtui.commands import _output as out
from fieldtui.commands._session import session, warn
from fieldtui.config import load_config
from fieldtui.service.api import AlertsView


def run(args: argparse.Namespace) -> int:
    loaded = load_config(args.config, args.profile)

    async def read() -> AlertsView:
        async with session(loaded, offline=bool(args.offline)) as service:
            return await service.alerts()

    view = asyncio.run(read())
    if args.json:
        print(out.dumps(alerts_json(view), indent=2))
    else:
        for line in alerts_lines(view):
            print(line)
    for name, why in view.errors.items():
        warn(f"{name}: {why}")
    return 0


def alerts_json(view: AlertsView) -> dict[str, Any]:
    return {
        "devices": [d.model_dump(mode="json") for d in view.devices],
        "counts": view.counts,
        "checked": view.checked,
        "errors": view.errors,
    }


def alerts_lines(view: AlertsView) -> list[str]:
    lines: list[str] = []
    for name, count in view.counts.items():
        lines.append(f"{name}: the cloud counts {count} alerts")
    for name, n in view.checked.items():
        lines.append(f"{name}: {n} known devices checked")
    if not view.devices:
        return [*lines, "nothing is alerting"]
    for d in view.devices:
        words = ", ".join(d.alerts) if d.alerts else "alerting (types not read)"
        lines.append(out.clean_line(f"{out.pad(d.backend, 8)} {out.pad(d.device, 26)} {out.fit(words, 44)}"))
    return lines
