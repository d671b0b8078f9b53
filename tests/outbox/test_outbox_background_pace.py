"""The app's background sync keeps ``outbox sync``'s pace: a 503 or a dropped connection on one
request, from a cloud that answers the others, is tried again within seconds, not after an
exponential backoff of minutes; a cloud that answers nothing still backs off in full."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fieldtui.core.actions import ActionState
from fieldtui.service.sync import DRAIN_BACKOFF_CAP, ActionEvent
from fieldtui.service.writes import open_outbox

#: Generous: the machine may be loaded.
PATIENCE = 120.0


async def test_background_sync_retries_a_transient_failure_within_seconds_while_the_cloud_answers(
    sim_setup: Any, sim_clean: Any
) -> None:
    things = sorted(sim_clean.fleet.of("things").values(), key=lambda d: d.id)[:10]
    async with open_outbox(sim_setup.loaded(), offline=True) as outbox:
        records = []
        for d in things:
            for status in ("quarantine", "retired", "installed"):
                if status != d.installation_status:
                    records.append(
                        await outbox.writes.set_installation_status(d.id, status, backend="things")
                    )
    sim_clean.admin("PUT", "/_sim/faults/things", {"error_rate": 0.3, "drop_rate": 0.1})
    # The engine's own backoff (2 s doubling, up to 300 s), as the app has it.
    async with open_outbox(sim_setup.loaded()) as outbox:
        waits: list[float] = []

        def listen(event: ActionEvent) -> None:
            if event.state is ActionState.QUEUED and event.previous is ActionState.SENDING:
                waits.append(event.record.next_attempt_at.timestamp() - time.time())

        outbox.engine.subscribe(listen)
        running = asyncio.create_task(outbox.engine.run())
        try:
            deadline = time.monotonic() + PATIENCE
            while True:
                counts = await outbox.store.counts()
                if counts.get(ActionState.DONE, 0) == len(records):
                    break
                assert time.monotonic() < deadline, f"not all synced in {PATIENCE:g} s: {counts}"
                await asyncio.sleep(0.2)
        finally:
            await outbox.engine.stop()
            await running
    assert len(waits) >= 3, "the faults did not bite"
    # The first failure of a run may come before the cloud has answered anything (a full
    # backoff step then); after it, none waits longer than a bounded drain would.
    assert sorted(waits)[-2] <= DRAIN_BACKOFF_CAP + 0.5, waits
    log = sim_clean.admin("GET", "/_sim/mutations?backend=things").json()
    posted = [m for m in log if m["path"].endswith("/installations") and m["method"] == "POST"]
    assert len(posted) == len(records)  # each once
