"""An MQTT command is run once, judged by what the simulated device took.

Document 003 gives a command no answer but the device's status updates, and the device
announces only its unfinished command: a sync that published a command and died (or lost the
broker before its acknowledgement) leaves a successor that cannot see a command the device has
already finished. The command's id is what the device knows it by (it drops an id it already
has: a QoS 1 redelivery), so every try of one outbox action carries the same id.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from outbox_doubles import FAST, drain_all

from fieldtui.core.actions import ActionState
from fieldtui.service.writes import open_outbox

#: How long a drain loop or a wait for the device may take at most (the machine may be loaded).
PATIENCE = 120.0


def _taken(sim: Any, device: str, marker: int) -> list[dict[str, Any]]:
    """The commands the device took with this marker, as the simulator's admin route shows them."""
    commands = sim.admin("GET", f"/_sim/inspect/live/{device}").json()["commands"]
    return [c for c in commands if c["parameters"].get("marker") == marker]


async def test_a_command_a_dead_sync_sent_is_not_run_again_by_the_next(
    sim_setup: Any, sim_clean: Any
) -> None:
    device = [d for d in sorted(sim_clean.fleet.of("mqtt").values(), key=lambda d: d.id) if d.online][2]
    marker = int(time.time() * 1000)
    async with open_outbox(sim_setup.loaded(), offline=True) as dead:
        record = await dead.writes.send_command(device.id, "identify", {"marker": marker}, backend="live")
        [claimed] = await dead.store.claim(dead.engine.owner, limit=1, lease_seconds=30)
        assert claimed.record.id == record.id
        # Its request went out (as the engine sends it) ...
        await dead.connectors["live"].send_command(
            device.id, "identify", {"marker": marker}, correlation=record.action.params["correlation"]
        )
        # ... and the process died before it could record it: the action is back, to be checked.
        assert await dead.store.release(dead.engine.owner, record.id, uncertain=True) is not None
    deadline = time.monotonic() + PATIENCE
    while [c["status"] for c in _taken(sim_clean, device.id, marker)] != ["done"]:
        assert time.monotonic() < deadline, _taken(sim_clean, device.id, marker)
        await asyncio.sleep(0.1)
    async with open_outbox(sim_setup.loaded(), backoff=FAST) as successor:
        await drain_all(successor, PATIENCE)
        done = await successor.store.get(record.id)
    assert done is not None and done.state is ActionState.DONE, done
    await asyncio.sleep(1.0)  # a second run of it would have begun by now
    assert len(_taken(sim_clean, device.id, marker)) == 1, _taken(sim_clean, device.id, marker)
